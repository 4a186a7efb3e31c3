"""The encoder-decoder: the paper's base size, post- and pre-LayerNorm, mixed stacks, SCAN."""

import pytest
import torch
from zoo_transformer.seq2seq import Seq2SeqConfig, TransformerSeq2Seq

import zoo_core
from zoo_core.catalog import model_info
from zoo_core.testing import check_model

TINY = {"source_vocab_size": 13, "target_vocab_size": 11, "n_embd": 16, "n_head": 2, "ffn": 32}


def test_base_is_the_papers_65m_model():
    info = model_info("transformer-seq2seq-base")
    config = {c["name"]: c["default"] for c in info["config"]}
    assert (config["encoder_layers"], config["decoder_layers"]) == (6, 6)
    assert (config["n_embd"], config["n_head"], config["ffn"]) == (512, 8, 2048)
    assert config["norm"] == "post" and config["share_embeddings"]
    assert info["train_defaults"]["label_smoothing"] == 0.1
    V, C, F = 37000, 512, 2048
    attention = 4 * C * C + 4 * C
    ffn = 2 * C * F + C + F
    encoder = 6 * (attention + ffn + 2 * 2 * C)
    decoder = 6 * (2 * attention + ffn + 3 * 2 * C)
    assert info["parameters"] == V * C + encoder + decoder  # one shared embedding matrix
    # "65M" in Table 3 of the paper: this count is 63.1M, within 3% of it.
    assert abs(info["parameters"] - 65e6) / 65e6 < 0.03


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_post_and_pre_layernorm_put_the_norm_where_they_say(norm):
    torch.manual_seed(0)
    model = TransformerSeq2Seq(Seq2SeqConfig(**TINY, norm=norm)).eval()
    source = torch.randint(3, 13, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.bool)
    memory = model.encode(source, mask)
    # Post-LayerNorm ends every block with a LayerNorm; pre-LayerNorm ends the stack with one.
    assert torch.allclose(memory.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert isinstance(model.encoder_ln, torch.nn.LayerNorm) == (norm == "pre")


def test_padding_of_the_source_changes_nothing():
    torch.manual_seed(0)
    for encoder in ("attention", "lstm"):
        model = TransformerSeq2Seq(Seq2SeqConfig(**TINY, encoder=encoder)).eval()
        source = torch.randint(3, 13, (1, 5))
        target = torch.randint(3, 11, (1, 4))
        padded = torch.cat([source, torch.zeros(1, 3, dtype=torch.long)], dim=1)
        mask = padded != 0
        with torch.no_grad():
            alone = model(source, source != 0, target)
            with_pad = model(padded, mask, target)
        assert torch.allclose(alone, with_pad, atol=1e-5), encoder


ENCODINGS = ["sinusoidal", "learned", "rope", "alibi", "none"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_position_encoding_passes_the_contract_checks(encoding):
    # decode_step against forward (the key/value cache), padding, save and load...
    check_model("transformer-seq2seq", {"pos_encoding": encoding})


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_padding_changes_nothing_and_decoding_matches_with_each_encoding(encoding):
    torch.manual_seed(0)
    model = TransformerSeq2Seq(Seq2SeqConfig(**TINY, pos_encoding=encoding)).eval()
    source = torch.randint(3, 13, (1, 5))
    target = torch.randint(3, 11, (1, 6))
    padded = torch.cat([source, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        alone = model(source, source != 0, target)
        with_pad = model(padded, padded != 0, target)
        memory = model.encode(source, source != 0)
        state, steps = None, []
        for t in range(target.size(1)):  # one token at a time through the cache
            logits, state = model.decode_step(target[:, t : t + 1], memory, source != 0, state)
            steps.append(logits)
    assert torch.allclose(alone, with_pad, atol=1e-5)
    assert torch.allclose(alone, torch.cat(steps, dim=1), atol=1e-5)


@pytest.mark.parametrize("encoding", ["rope", "alibi"])
def test_relative_encodings_see_distances_not_positions(encoding):
    """With rope or alibi the encoder's self-attention depends on how far apart two tokens are,
    not where they are: a source read after padding on the left (masked) keeps its output."""
    torch.manual_seed(0)
    model = TransformerSeq2Seq(Seq2SeqConfig(**TINY, pos_encoding=encoding)).eval()
    source = torch.randint(3, 13, (1, 5))
    shifted = torch.cat([torch.zeros(1, 4, dtype=torch.long), source], dim=1)
    with torch.no_grad():
        plain = model.encode(source, source != 0)
        moved = model.encode(shifted, shifted != 0)[:, 4:]
    assert torch.allclose(plain, moved, atol=1e-5)
    # Absolute positions do not have that property: the check can fail.
    absolute = TransformerSeq2Seq(Seq2SeqConfig(**TINY, pos_encoding="sinusoidal")).eval()
    with torch.no_grad():
        a = absolute.encode(source, source != 0)
        b = absolute.encode(shifted, shifted != 0)[:, 4:]
    assert not torch.allclose(a, b, atol=1e-3)


def test_learned_positions_refuse_a_longer_sequence():
    model = TransformerSeq2Seq(Seq2SeqConfig(**TINY, pos_encoding="learned", max_positions=4))
    source = torch.randint(3, 13, (1, 5))
    with pytest.raises(ValueError, match="longer than the 4 learned positions"):
        model.encode(source, source != 0)


def test_mixed_stacks_swap_only_the_self_attention():
    model = TransformerSeq2Seq(Seq2SeqConfig(**TINY, encoder="lstm", decoder="attention"))
    assert isinstance(model.encoder[0].mix, torch.nn.LSTM) and model.encoder[0].mix.bidirectional
    assert not isinstance(model.decoder[0].mix, torch.nn.LSTM)
    other = TransformerSeq2Seq(Seq2SeqConfig(**TINY, encoder="attention", decoder="lstm"))
    assert isinstance(other.decoder[0].mix, torch.nn.LSTM)
    # The decoder keeps its attention over the source and every block its feed-forward layer.
    assert all(hasattr(b, "cross") and hasattr(b, "ffn") for b in other.decoder)


def test_bad_configs_are_one_line():
    with pytest.raises(ValueError, match="use attention or lstm"):
        Seq2SeqConfig(encoder="gru")
    with pytest.raises(ValueError, match="unknown pos_encoding 'xpos'"):
        Seq2SeqConfig(pos_encoding="xpos")
    with pytest.raises(ValueError, match="even head size"):
        Seq2SeqConfig(n_embd=6, n_head=2, pos_encoding="rope")
    with pytest.raises(ValueError, match="share_vocab=true"):
        Seq2SeqConfig(source_vocab_size=10, target_vocab_size=12, share_embeddings=True)


@pytest.mark.slow
def test_learns_scan_simple(tmp_path):
    """SCAN's simple split: at least 95% exact match on its 4,182 test commands."""
    _, metrics = zoo_core.train(
        "transformer-seq2seq",
        out=tmp_path / "run",
        progress=False,
        **SCAN_RECIPE["train"],
        overrides=SCAN_RECIPE["overrides"],
    )
    assert metrics["val_exact_match"] >= 0.95, metrics


SCAN_RECIPE = {
    "train": {"steps": 1000, "batch_size": 64, "lr": 3e-3, "eval_interval": 10**6, "seed": 0},
    "overrides": {"n_embd": 64, "ffn": 256, "n_head": 4, "dropout": 0.0, "warmup": 100},
}
