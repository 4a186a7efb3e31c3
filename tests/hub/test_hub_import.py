"""Repos in the `transformers` layout, imported through the plugins' importers, checked against
real `transformers` models.

The published GPT-2 and ResNet weights cannot be downloaded here, so each test builds small,
randomly initialised `GPT2LMHeadModel` and `ResNetForImageClassification` models, saves them
with `save_pretrained` (beside a byte-level BPE tokenizer.json trained with `tokenizers` and a
preprocessor_config.json), serves them as git repos through the olah mirror, and compares the
zoo's outputs with the `transformers` models' own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from zoo_core import artifacts

from .conftest import Mirror, git_commit, start_olah

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

PROMPT = "The meaning of life is"
CLASSES = {"basic": ["cat", "dog", "fox"], "bottleneck": ["ant", "bee", "cow", "eel", "owl"]}
# ConvNextImageProcessor's settings, as microsoft/resnet-50 has them, for 64-pixel images.
PREPROCESSOR = {
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": {"shortest_edge": 64},
    "image_processor_type": "ConvNextImageProcessor",
}


def _tokenizer(folder: Path) -> Path:
    """A byte-level BPE tokenizer.json, as GPT-2's is, trained with `tokenizers`."""
    import pydoc_data.topics

    import tokenizers as tk

    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=300,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    text = "\n".join(sorted(pydoc_data.topics.topics.values())[:40])
    tok.train_from_iterator([text], trainer=trainer)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def _gpt2(folder: Path, tokenizer: Path) -> Path:
    """A small GPT2LMHeadModel with weights large enough that greedy decoding varies."""
    import tokenizers as tk

    vocab = tk.Tokenizer.from_file(str(tokenizer)).get_vocab_size()
    config = transformers.GPT2Config(
        vocab_size=vocab,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=vocab - 1,
        eos_token_id=vocab - 1,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name:
                p.uniform_(0.8, 1.2) if name.endswith("weight") else p.uniform_(-0.1, 0.1)
            else:
                p.normal_(0, 0.3)
    model.save_pretrained(folder)
    return folder


def _resnet(folder: Path, block: str) -> Path:
    """A small ResNetForImageClassification (two stages) with non-trivial batch norms."""
    classes = CLASSES[block]
    expansion = 1 if block == "basic" else 4
    config = transformers.ResNetConfig(
        embedding_size=8,
        hidden_sizes=[8 * expansion, 16 * expansion],
        depths=[1, 2],
        layer_type=block,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )
    torch.manual_seed(1)
    model = transformers.ResNetForImageClassification(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        model.classifier[1].weight.mul_(20)  # class probabilities far from uniform
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    return folder


def _files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file()}


@dataclass
class Models:
    """The `transformers` models served by the mirror, and its olah."""

    root: Path
    endpoint: str
    log: Path
    commits: dict[str, str]

    def gpt2(self):
        return transformers.GPT2LMHeadModel.from_pretrained(self.root / "gpt2").eval()

    def resnet(self, block: str):
        path = self.root / f"resnet-{block}"
        return transformers.ResNetForImageClassification.from_pretrained(path).eval()

    def tokenizer(self):
        import tokenizers as tk

        return tk.Tokenizer.from_file(str(self.root / "gpt2" / "tokenizer.json"))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    root = tmp_path_factory.mktemp("transformers-models")
    saved = root / "saved"
    gpt2 = saved / "gpt2"
    gpt2.mkdir(parents=True)
    _gpt2(gpt2, _tokenizer(gpt2))
    for block in CLASSES:
        _resnet(saved / f"resnet-{block}", block)
    repos = root / "mirror" / "models" / "acme"
    commits = {}
    # Files a pull of a transformers repo must leave alone: pickle weights, code, a card.
    stray = {
        "pytorch_model.bin": b"\x80\x04pickle bytes, never loaded",
        "modeling_evil.py": b"import pathlib; pathlib.Path('EVIL_RAN').touch()\n",
        "README.md": b"# a tiny GPT-2\n",
    }
    commits["gpt2"] = git_commit(repos / "gpt2-tiny", {**_files(gpt2), **stray}, "gpt2")
    for block in CLASSES:
        files = _files(saved / f"resnet-{block}")
        commits[block] = git_commit(repos / f"resnet-{block}", files, block)
    llama = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
    git_commit(
        repos / "llama-tiny",
        {
            "config.json": json.dumps(llama).encode(),
            "model.safetensors": gpt2 / "model.safetensors",
        },
        "a model type no plugin imports",
    )
    git_commit(
        repos / "gpt2-pickled",
        {"config.json": gpt2 / "config.json", "pytorch_model.bin": b"\x80\x04never loaded"},
        "pickle weights only",
    )
    server = start_olah(root / "olah", Mirror(root / "mirror", commits))
    yield Models(saved, server.endpoint, server.log, commits)
    server.stop()


@pytest.fixture
def client(models, tmp_path, make_client):
    return make_client(models.endpoint, tmp_path / "hf-home")


def _pull(client, repo: str) -> Path:
    return Path(client.zoo("pull", repo).stdout.strip())


def _greedy(model, ids: list[int], length: int) -> list[int]:
    out = model.generate(
        torch.tensor([ids]),
        max_new_tokens=length,
        min_new_tokens=length,
        do_sample=False,
        pad_token_id=0,
    )
    return out[0, len(ids) :].tolist()


def test_gpt2_is_converted_once_and_matches_transformers(client, models):
    import zoo_core

    folder = _pull(client, "acme/gpt2-tiny")
    commit = models.commits["gpt2"]
    assert folder.parts[-2:] == ("zoo-import", commit)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*artifacts.ARTIFACT_FILES[:3], artifacts.CARD_FILE]
    )
    # Only the config, the safetensors weights and the tokenizer were downloaded.
    snapshot = folder.parent.parent / "snapshots" / commit
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    card = (folder / artifacts.CARD_FILE).read_text()
    sha = artifacts.file_sha256(snapshot / "model.safetensors")
    assert "acme/gpt2-tiny" in card and commit in card and sha in card

    ours = zoo_core.load(folder)
    theirs = models.gpt2()
    tokenizer = models.tokenizer()
    ids = tokenizer.encode(PROMPT).ids
    assert ours.tokenizer.encode(PROMPT) == ids  # the repo's own byte-level BPE
    x = torch.tensor([ids, ids[::-1]])  # (B, T)
    with torch.no_grad():
        expected, got = theirs(x).logits, ours.model(x)
    assert expected.std() > 1  # far from uniform: a wrong weight would show
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # Greedy decoding, token for token, 30 tokens (the prompt and 30 ids fit its 64 positions).
    new = _greedy(theirs, ids, 30)
    assert len(set(new)) > 3  # not one token repeated
    assert ours.generate(PROMPT, length=30, temperature=0) == tokenizer.decode(new)
    step, state, history, mine = ours.model.forward_step, None, torch.tensor([ids]), []
    with torch.no_grad():
        for _ in range(30):
            logits, state = step(history if state is None else history[:, -1:], state)
            mine.append(int(logits[0, -1].argmax()))
            history = torch.cat([history, torch.tensor([[mine[-1]]])], dim=1)
    assert mine == new


def test_a_second_load_downloads_and_converts_nothing(client, models):
    folder = _pull(client, "acme/gpt2-tiny")
    weights = folder / artifacts.WEIGHTS_FILE
    before = weights.stat()
    log = models.log.read_text()
    assert _pull(client, "acme/gpt2-tiny") == folder
    info = client.zoo("info", "acme/gpt2-tiny").stdout
    assert f"weights: converted from acme/gpt2-tiny@{models.commits['gpt2']}" in info
    after = weights.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    new_lines = models.log.read_text()[len(log) :].splitlines()
    fetched = [line for line in new_lines if '"GET ' in line and "model.safetensors" in line]
    assert not fetched, fetched
    # A pinned commit needs no Hub at all.
    offline = client.zoo("pull", f"acme/gpt2-tiny@{models.commits['gpt2']}", HF_HUB_OFFLINE="1")
    assert Path(offline.stdout.strip()) == folder
    # A copy another version of the plugin made is converted again.
    config = json.loads((folder / artifacts.CONFIG_FILE).read_text())
    installed = config["plugin_version"]
    (folder / artifacts.CONFIG_FILE).write_text(json.dumps({**config, "plugin_version": "0.0.1"}))
    assert _pull(client, "acme/gpt2-tiny") == folder
    assert json.loads((folder / artifacts.CONFIG_FILE).read_text())["plugin_version"] == installed
    assert weights.stat().st_ino != before.st_ino
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no stale copy left


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_resnet_probabilities_match_transformers(client, models, block):
    import zoo_core

    folder = _pull(client, f"acme/resnet-{block}")
    ours = zoo_core.load(folder)
    assert ours.task.classes == CLASSES[block]
    theirs = models.resnet(block)
    torch.manual_seed(2)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs(x).logits.softmax(1), ours.model(x).softmax(1)
    assert expected.max() > 0.5  # far from uniform
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_zoo_predict_prints_the_repo_classes_as_transformers_ranks_them(client, models, tmp_path):
    from PIL import Image

    import zoo_core

    picture = tmp_path / "cat.jpg"
    rng = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (90, 120, 3), generator=rng, dtype=torch.uint8).numpy()
    Image.fromarray(pixels).save(picture)
    proc = client.zoo("predict", "acme/resnet-bottleneck", picture, "--top-k", 3, "--json")
    (result,) = json.loads(proc.stdout)
    # The same preprocessed tensor (shorter side to 73 pixels, bicubic; centre 64; mean, std)
    # through transformers' model.
    ours = zoo_core.load(_pull(client, "acme/resnet-bottleneck"))
    assert (ours.task.resize, ours.task.resample) == (73, "bicubic")
    x = ours.task.normalise(torch.tensor(ours.task._read(picture))[None])  # (1, 3, 64, 64)
    with torch.no_grad():
        probs = models.resnet("bottleneck")(x).logits.softmax(1)[0]
    top = probs.topk(3)
    expected = [CLASSES["bottleneck"][i] for i in top.indices.tolist()]
    assert [p["class"] for p in result["predictions"]] == expected
    got = [p["probability"] for p in result["predictions"]]
    assert got == pytest.approx(top.values.tolist(), abs=1e-5)


def test_zoo_generate_is_greedy_gpt2(client, models):
    tokenizer = models.tokenizer()
    ids = tokenizer.encode(PROMPT).ids
    expected = tokenizer.decode(_greedy(models.gpt2(), ids, 30))
    out = client.zoo(
        "generate", "acme/gpt2-tiny", "--prompt", PROMPT, "--length", 30, "--temperature", 0
    ).stdout
    assert out == f"{PROMPT}{expected}\n"


def test_a_model_type_no_plugin_imports_is_one_line(client):
    error = client.error("pull", "acme/llama-tiny")
    assert "model type 'llama'" in error and "gpt2" in error and "resnet" in error


def test_a_transformers_repo_of_pickle_weights_only_is_refused(client):
    error = client.error("generate", "hf:acme/gpt2-pickled")
    assert "pickle" in error and "pytorch_model.bin" in error
    assert not (client.home / "hub" / "models--acme--gpt2-pickled" / "snapshots").exists()


PRETRAINED = """
import json, sys
import zoo_core
from zoo_core import ModelSpec, PretrainedWeights, ZooError, hookimpl
from zoo_core.plugins import pm, reset_catalog

repo, commit, good, bad = sys.argv[1:]

class Weights:
    @hookimpl
    def register_models(register):
        register(ModelSpec(
            name="gpt2-hub", model="zoo_transformer.model:TransformerLM", tasks=("lm",),
            family="transformer", summary="a decoder with published transformers weights",
            pretrained={
                "good": PretrainedWeights(repo, commit, good),
                "bad": PretrainedWeights(repo, commit, bad),
            },
        ))

pm.register(Weights, name="hub-weights")
reset_catalog()
model = zoo_core.create_model("gpt2-hub", pretrained="good")
try:
    zoo_core.create_model("gpt2-hub", pretrained="bad")
    refused = None
except ZooError as exc:
    refused = str(exc)
print(json.dumps({"activation": model.config.activation, "refused": refused}))
"""


def test_declared_pretrained_weights_are_converted_and_pinned(client, models):
    commit = models.commits["gpt2"]
    sha = artifacts.file_sha256(models.root / "gpt2" / "model.safetensors")
    out = client.python(PRETRAINED, "acme/gpt2-tiny", commit, sha, "0" * 64)
    assert out["activation"] == "gelu_tanh"  # the converted GPT-2, tanh-GELU and all
    assert "sha256" in out["refused"] and sha in out["refused"] and "0" * 64 in out["refused"]


def _text(path: Path) -> Path:
    import pydoc_data.topics

    path.write_text("\n".join(sorted(pydoc_data.topics.topics.values())[40:70]))
    return path


@pytest.mark.slow
def test_init_fine_tunes_gpt2_and_lowers_the_training_loss(client, models, tmp_path):
    data, out = _text(tmp_path / "my.txt"), tmp_path / "run"
    settings = ["--steps", 10, "--batch-size", 8, "--lr", "3e-3", "--quiet", "--device", "cpu"]
    for key in ("seq_len=32", "log_interval=1", "eval_interval=100", "warmup=0"):
        settings += ["--set", key]
    client.zoo(
        "train", "transformer", "--init", "acme/gpt2-tiny", "--data", data, "--out", out, *settings
    )
    losses = [r["loss"] for r in artifacts.read_metrics(out) if "loss" in r]
    assert len(losses) == 10 and sum(losses[-3:]) / 3 < losses[0] - 0.1, losses
    config = json.loads((out / artifacts.CONFIG_FILE).read_text())
    origin = config["origin"]
    assert (origin["kind"], origin["source"], origin["revision"]) == (
        "init",
        "acme/gpt2-tiny",
        models.commits["gpt2"],
    )
    assert config["tokenizer"] == "bpe" and config["model_config"]["activation"] == "gelu_tanh"
    assert "initialised from `acme/gpt2-tiny`" in (out / artifacts.CARD_FILE).read_text()
    import zoo_core

    # The tokenizer came with the weights.
    assert zoo_core.load(out).tokenizer.encode(PROMPT) == models.tokenizer().encode(PROMPT).ids
    # A tokenizer or vocabulary that contradicts the weights' is an error.
    refused = tmp_path / "refused"
    start = ["train", "transformer", "--init", "acme/gpt2-tiny", "--data", data, "--out", refused]
    error = client.error(*start, "--tokenizer", "char")
    assert "comes with its own tokenizer (bpe)" in error
    error = client.error(*start, "--set", "vocab_size=999")
    assert "vocab_size" in error and "999" in error
    assert not refused.exists()  # refused before a run folder was made


def _photos(folder: Path, classes: tuple[str, ...] = ("red", "blue"), each: int = 6) -> Path:
    from PIL import Image

    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(each):
            colour = (200, 40 + 10 * i, 30) if k == 0 else (30, 40 + 10 * i, 200)
            Image.new("RGB", (48, 40), colour).save(folder / name / f"{i}.png")
    return folder


@pytest.mark.slow
def test_init_gives_a_classifier_a_new_head_trains_it_alone_and_resumes_exactly(
    client, models, tmp_path, capfd
):
    import shutil

    import zoo_core

    folder = _pull(client, "acme/resnet-basic")
    pretrained = artifacts.state_from_file(folder / artifacts.WEIGHTS_FILE)[0]
    settings = {
        "freeze": "backbone",
        "checkpoint_interval": 2,
        "eval_interval": 100,
        "log_interval": 1,
        "warmup": 0,
    }
    photos = _photos(tmp_path / "photos")
    artifact, _ = zoo_core.train(
        "resnet",
        init=folder,
        data=photos,
        out=tmp_path / "a",
        overrides=settings,
        steps=4,
        batch_size=4,
        device="cpu",
        progress=False,
    )
    err = capfd.readouterr().err
    line = [x for x in err.splitlines() if "start from random weights" in x]
    assert len(line) == 1 and "num_classes 3 -> 2" in line[0] and "head.weight" in line[0], err
    trained = artifacts.state_from_file(artifact.path / artifacts.WEIGHTS_FILE)[0]
    assert trained["head.weight"].shape == (2, pretrained["head.weight"].shape[1])
    trainable = {k for k, p in artifact.model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    # Parameters outside the head are frozen (batch norms' running statistics still follow
    # the data, as they do in train mode).
    frozen = [k for k, _ in artifact.model.named_parameters() if not k.startswith("head.")]
    assert frozen and all(torch.equal(trained[k], pretrained[k]) for k in frozen)
    assert artifact.task.resize == 73 and artifact.task.mean == PREPROCESSOR["image_mean"]
    assert artifact.config.origin["source"] == str(folder)
    # Killed after its checkpoint of step 2: the resumed run ends with the same weights.
    copy = tmp_path / "b"
    shutil.copytree(artifact.path, copy)
    shutil.rmtree(copy / "checkpoints" / "step-00000004")
    config = json.loads((copy / artifacts.CONFIG_FILE).read_text())
    del config["metrics"]
    (copy / artifacts.CONFIG_FILE).write_text(json.dumps(config))
    zoo_core.train(resume=copy, progress=False)
    resumed = artifacts.state_from_file(copy / artifacts.WEIGHTS_FILE)[0]
    assert resumed.keys() == trained.keys()
    assert all(torch.equal(resumed[k], trained[k]) for k in trained)
