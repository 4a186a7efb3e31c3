"""The Transformer plugin: every variant and positional encoding, extrapolation, the KV cache."""

import math

import pytest
import torch
from zoo_transformer.model import TransformerConfig, TransformerLM, alibi_slopes

import zoo_core
from zoo_core.catalog import model_info
from zoo_core.errors import ZooError
from zoo_core.tasks.lm import LanguageModeling, LMOptions
from zoo_core.testing import check_model, model_names

ENCODINGS = ["learned", "sinusoidal", "rope", "alibi", "none"]
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 16, "context_length": 16}
TEXT = "The quick brown fox jumps over the lazy dog; def f(x): return x * 2\n" * 40


# The decoders and the encoder; the encoder-decoder has tests of its own (test_seq2seq.py).
ONE_STACK = [n for n in model_names(plugin="transformer") if "seq2seq" not in n]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", ONE_STACK)
def test_contract_for_every_variant_and_encoding(name, encoding):
    check_model(name, {"pos_encoding": encoding})


def test_gpt2_small_is_gpt2_sized():
    info = model_info("gpt2-small")
    config = {c["name"]: c["default"] for c in info["config"]}
    assert (config["n_layer"], config["n_head"], config["n_embd"]) == (12, 12, 768)
    assert config["context_length"] == 1024 and config["pos_encoding"] == "learned"
    # 124M with GPT-2's 50257 tokens; here the vocabulary comes from the task (default 256).
    body = 12 * (12 * 768 * 768 + 13 * 768) + 1024 * 768 + 2 * 768
    assert info["parameters"] == body + 256 * 768


def test_init_gpt2_or_pytorch():
    """init=gpt2 draws N(0, 0.02) (residual projections smaller); init=pytorch keeps each
    layer's own default: N(0, 1) embeddings, Linear's uniform in +-1/sqrt(fan_in)."""
    config = {"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": 512, "tie_weights": False}
    torch.manual_seed(0)
    gpt2 = TransformerLM(TransformerConfig(**config))
    torch.manual_seed(0)
    plain = TransformerLM(TransformerConfig(**config, init="pytorch"))
    assert gpt2.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert gpt2.blocks[0].attn.proj.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert plain.wte.weight.std().item() == pytest.approx(1.0, rel=0.05)
    bound = 1 / math.sqrt(64)
    qkv = plain.blocks[0].attn.qkv.weight
    assert qkv.abs().max().item() <= bound
    assert qkv.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform's std
    with pytest.raises(ValueError, match="unknown init 'xavier'; use gpt2 or pytorch"):
        TransformerConfig(init="xavier")


def test_alibi_slopes_follow_the_paper():
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    six = alibi_slopes(6)  # not a power of two: the 4 slopes of 4 heads, then every other one of 8
    expected = [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]
    assert torch.allclose(six, torch.tensor(expected))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, text_file):
    """One tiny model per encoding, trained for a few steps at context 16."""
    runs = {}
    for encoding in ENCODINGS:
        out = tmp_path_factory.mktemp("runs") / encoding
        zoo_core.train(
            "transformer",
            data=text_file,
            out=out,
            progress=False,
            steps=4,
            batch_size=4,
            overrides={**TINY, "pos_encoding": encoding, "eval_batches": 1},
        )
        artifact = zoo_core.load(out)
        artifact.task.setup_eval(str(text_file))
        runs[encoding] = artifact
    return runs


@pytest.mark.parametrize("encoding", ["sinusoidal", "rope", "alibi", "none"])
def test_evaluates_at_twice_the_trained_context(trained, encoding):
    artifact = trained[encoding]
    assert artifact.model.max_context is None
    T = artifact.model.config.context_length
    at_t = artifact.task.evaluate(artifact.model, 4, limit=2)
    at_2t = artifact.task.evaluate(artifact.model, 4, limit=2, seq_len=2 * T)
    assert (
        math.isfinite(at_2t["val_loss"])
        and at_2t["val_loss"] < math.log(artifact.tokenizer.vocab_size) + 1
    )
    assert math.isfinite(at_t["val_loss"])


def test_learned_positions_refuse_longer_input(trained):
    artifact = trained["learned"]
    T = artifact.model.config.context_length
    assert artifact.model.max_context == T
    assert math.isfinite(artifact.task.evaluate(artifact.model, 4, limit=2, seq_len=T)["val_loss"])
    with pytest.raises(ZooError, match=f"at most {T}"):
        artifact.task.evaluate(artifact.model, 4, limit=2, seq_len=2 * T)
    with pytest.raises(ZooError, match="learned positions for 16 tokens"):
        artifact.model(torch.zeros(1, 2 * T, dtype=torch.long))


def test_the_config_declares_how_far_the_model_reads():
    from zoo_core.catalog import model_config

    spec = zoo_core.get_model_spec("transformer")
    learned = {"context_length": 64, "pos_encoding": "learned"}
    assert model_config(spec, learned).max_context == 64  # positions end at the context
    for encoding in ("sinusoidal", "rope", "alibi", "none"):
        assert model_config(spec, {"pos_encoding": encoding}).max_context is None


def test_learned_positions_refuse_a_longer_training_window(text_file, tmp_path):
    with pytest.raises(ZooError, match="longer than the model's context_length"):
        zoo_core.train(
            "transformer",
            data=text_file,
            out=tmp_path / "r",
            progress=False,
            steps=1,
            overrides={**TINY, "pos_encoding": "learned", "seq_len": 32},
        )


def _tiny_lm(encoding):
    task = LanguageModeling(LMOptions(seq_len=16))
    task.setup(None)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=task.tokenizer.vocab_size, pos_encoding=encoding, **TINY)
    # float64, so the cached and the full computation agree to far below sampling's resolution
    return task, TransformerLM(config).double().eval()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_kv_cache_generates_exactly_what_recomputation_does(encoding):
    task, model = _tiny_lm(encoding)
    fed = []
    step = model.forward_step

    def counting_step(ids, state):  # records how many tokens each cached call reads
        fed.append(ids.size(1))
        return step(ids, state)

    model.forward_step = counting_step
    length = 40  # more than the context of 16: `learned` slides its window, the others extrapolate
    for options in (
        {"temperature": 0},
        {"temperature": 1.0, "top_k": 20, "top_p": 0.95, "seed": 3},
    ):
        fed.clear()
        cached = task.generate(model, prompt="def ", length=length, use_cache=True, **options)
        uncached = task.generate(model, prompt="def ", length=length, use_cache=False, **options)
        assert cached == uncached
        assert len(fed) == length and fed[0] == 4
        if encoding != "learned":  # the prefix is never read again
            assert fed[1:] == [1] * (length - 1)


def test_sampling_depends_on_the_seed():
    task, model = _tiny_lm("rope")
    a = task.generate(model, length=30, temperature=1.0, seed=1)
    assert a == task.generate(model, length=30, temperature=1.0, seed=1)
    assert a != task.generate(model, length=30, temperature=1.0, seed=2)


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_lstm_and_transformer_are_interchangeable(name, text_file, tmp_path):
    small = TINY if name == "transformer" else {"embed_dim": 16, "hidden_size": 16, "seq_len": 16}
    artifact, metrics = zoo_core.train(
        name,
        data=text_file,
        out=tmp_path / name,
        progress=False,
        steps=2,
        batch_size=4,
        overrides={**small, "tokenizer": "bpe", "vocab_size": 300},
    )
    loaded = zoo_core.load(tmp_path / name)
    assert loaded.tokenizer.name == "bpe"
    assert loaded.tokenizer.encode(TEXT) == artifact.tokenizer.encode(TEXT)
    assert math.isfinite(loaded.evaluate()["val_loss"])
    text = loaded.generate(prompt="The ", length=10, seed=0)
    assert isinstance(text, str) and text
