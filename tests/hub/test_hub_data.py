"""`--data hf:ORG/NAME` end to end: data sets made with `datasets`, saved as Parquet in git repos
that olah serves as data set repos, read by the real `zoo` command in a subprocess."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")

TINY_LM = ["--set", "hidden_size=16", "--set", "embed_dim=16", "--set", "seq_len=16"]
STEPS = ["--steps", "3", "--batch-size", "4", "--quiet", "--device", "cpu"]


def _parquet(dataset) -> bytes:
    out = io.BytesIO()
    dataset.to_parquet(out)
    return out.getvalue()


def _texts(version: int):
    lines = [f"version {version}: the cat sat on the mat, line {i}." for i in range(120)]
    return datasets.Dataset.from_dict({"text": lines})


def _reviews(n: int, offset: int = 0):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    rows = {
        "text": [("a lovely film" if i % 2 else "a dull film") + f" {i}" for i in range(n)],
        "label": [i % 2 for i in range(offset, offset + n)],
    }
    return datasets.Dataset.from_dict(rows, features=features)


def _pictures():
    from PIL import Image

    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    images, labels = [], []
    for i in range(36):
        k = i % 3
        image = Image.new("RGB", (12, 12), list(colours.values())[k])
        image.putpixel((i % 12, i // 3 % 12), (255, 255, 255))
        images.append(image)
        labels.append(k)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(colours))}
    )
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def _phrases(n: int, offset: int = 0):
    """English-German pairs in a Translation column, as WMT and OPUS sets on the Hub have."""
    words = [("one", "eins"), ("two", "zwei"), ("three", "drei"), ("four", "vier")]
    rows = [
        {
            "en": f"{words[i % 4][0]} {words[i // 4 % 4][0]}",
            "de": f"{words[i % 4][1]} {words[i // 4 % 4][1]}",
        }
        for i in range(offset, offset + n)
    ]
    features = datasets.Features({"translation": datasets.Translation(languages=["de", "en"])})
    return datasets.Dataset.from_dict({"translation": rows}, features=features)


@pytest.fixture(scope="module")
def data_mirror(tmp_path_factory, repo_kit):
    """Data set repos laid out as olah wants them: {path}/datasets/{org}/{name}."""
    git_commit = repo_kit.git_commit
    root = tmp_path_factory.mktemp("data-mirror")
    repos = root / "datasets" / "acme"
    commits = {}
    val = datasets.Dataset.from_dict({"text": [f"held out line {i}, the mat." for i in range(40)]})
    for version in (1, 2):
        commits[f"texts-{version}"] = git_commit(
            repos / "texts",
            {
                "data/train-00000-of-00001.parquet": _parquet(_texts(version)),
                "data/validation-00000-of-00001.parquet": _parquet(val),
            },
            f"version {version}",
        )
    commits["reviews"] = git_commit(
        repos / "reviews",
        {
            "data/train-00000-of-00001.parquet": _parquet(_reviews(40)),
            "data/test-00000-of-00001.parquet": _parquet(_reviews(10, offset=1)),
        },
        "reviews",
    )
    commits["pictures"] = git_commit(
        repos / "pictures", {"data/train-00000-of-00001.parquet": _parquet(_pictures())}, "images"
    )
    commits["phrases"] = git_commit(
        repos / "phrases",
        {
            "data/train-00000-of-00001.parquet": _parquet(_phrases(48)),
            "data/validation-00000-of-00001.parquet": _parquet(_phrases(8, offset=3)),
        },
        "phrases",
    )
    two = datasets.Dataset.from_dict({"title": ["a", "b"] * 20, "body": ["x y z"] * 40})
    commits["two"] = git_commit(
        repos / "two", {"data/train-00000-of-00001.parquet": _parquet(two)}, "two text columns"
    )
    return repo_kit.Mirror(root, commits)


@pytest.fixture
def client(tmp_path, data_mirror, make_client, repo_kit):
    server = repo_kit.start_olah(tmp_path / "olah", data_mirror)
    try:
        yield make_client(server.endpoint, tmp_path / "hf-home"), server
    finally:
        server.stop()


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.mark.slow
def test_lm_on_a_hub_data_set_pinned_resumed_and_offline(client, data_mirror, tmp_path):
    hub, server = client
    first, head = data_mirror.commits["texts-1"], data_mirror.commits["texts-2"]
    cache = {"ZOO_CACHE": str(tmp_path / "zoo-cache")}
    pinned, latest = tmp_path / "pinned", tmp_path / "latest"
    hub.zoo("train", "lstm", "--data", f"hf:acme/texts@{first}", *TINY_LM, *STEPS,
            "--out", pinned, **cache)  # fmt: skip
    hub.zoo("train", "lstm", "--data", "hf:acme/texts", *TINY_LM, *STEPS, "--out", latest, **cache)
    # The run records the repo and the commit it read; without a revision, the branch's head.
    assert _config(pinned)["data"] == f"hf:acme/texts@{first}"
    assert _config(latest)["data"] == f"hf:acme/texts@{head}"
    assert _config(pinned)["task_config"]["split"] == "train"
    # Its validation split is the repo's own: 40 lines of another text than the training one.
    assert _config(pinned)["data_fingerprints"] == {}
    card = (pinned / "README.md").read_text()
    assert "datasets:\n- acme/texts\n" in card
    info = hub.zoo("info", pinned, **cache).stdout
    assert f"hf:acme/texts@{first}" in info
    # The two revisions are two token maps; each run's first batch came from its own text.
    assert len(list((tmp_path / "zoo-cache" / "tokens").glob("*.json"))) == 4

    # Offline, the cached data set loads with no request to the server.
    before = server.requests()
    for offline in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        metrics = json.loads(hub.zoo("eval", pinned, "--json", **cache, **{offline: "1"}).stdout)
        assert metrics["val_loss"] > 0
    assert server.requests() == before

    # The server stopped: resuming and evaluating read the same revision from the caches.
    server.stop()
    hub.zoo("train", "--resume", pinned, "--steps", "5", "--quiet", **cache)
    assert _config(pinned)["data"] == f"hf:acme/texts@{first}"
    offline = {**cache, "HF_HUB_OFFLINE": "1"}
    metrics = json.loads(hub.zoo("eval", pinned, "--json", **offline).stdout)
    assert metrics["val_loss"] > 0
    # Offline, a data set never fetched is one line that says what to fetch.
    line = hub.error("train", "lstm", "--data", "hf:acme/reviews", *STEPS, **offline)
    assert "'hf:acme/reviews' is not in the Hugging Face cache" in line
    assert "offline mode is on" in line and "fetch it once" in line
    # A resumed run keeps its data set: naming another revision is refused.
    line = hub.error("train", "--resume", pinned, "--data", f"hf:acme/texts@{head}", **offline)
    assert "a resumed run keeps its model, task, data and folder" in line


@pytest.mark.slow
def test_column_choices_and_their_errors(client, tmp_path):
    hub, server = client
    cache = {"ZOO_CACHE": str(tmp_path / "zoo-cache")}
    line = hub.error("train", "lstm", "--data", "hf:acme/two", *STEPS, **cache)
    assert "has 2 (title, body) text columns; choose one with --set text_column=NAME" in line
    assert "title (string), body (string)" in line
    line = hub.error(
        "train", "lstm", "--data", "hf:acme/two", "--set", "text_column=nope", *STEPS, **cache
    )
    assert "has no column 'nope'; its columns: title (string), body (string)" in line
    line = hub.error("train", "lstm", "--data", "hf:acme/pictures", *STEPS, **cache)
    assert "has none text columns" in line and "image (Image), label (ClassLabel)" in line
    line = hub.error("train", "lstm", "--data", "hf:acme/texts", "--set", "split=nope", *STEPS)
    assert "has no split 'nope'; it has train, validation (--set split=NAME)" in line
    run = tmp_path / "body"
    hub.zoo("train", "lstm", "--data", "hf:acme/two", "--set", "text_column=body", *TINY_LM,
            *STEPS, "--out", run, **cache)  # fmt: skip
    assert _config(run)["task_config"]["text_column"] == "body"
    line = hub.error("train", "lstm", "--data", "hf:acme/nothing", *STEPS, **cache)
    assert "acme/nothing" in line


@pytest.mark.slow
def test_classifiers_and_the_gan_train_on_hub_data_sets(client, data_mirror, tmp_path):
    hub, _ = client
    cache = {"ZOO_CACHE": str(tmp_path / "zoo-cache")}
    text = tmp_path / "text"
    hub.zoo("train", "transformer-encoder", "--task", "sequence-classification", "--data",
            "hf:acme/reviews", "--set", "n_layer=1", "--set", "n_embd=16", "--set", "n_head=2",
            *STEPS, "--out", text, **cache)  # fmt: skip
    config = _config(text)
    assert config["data"] == f"hf:acme/reviews@{data_mirror.commits['reviews']}"
    assert config["task_state"]["classes"] == ["neg", "pos"]  # the ClassLabel's names
    assert "val_acc_neg" in json.loads(hub.zoo("eval", text, "--json", **cache).stdout)

    images = tmp_path / "images"
    hub.zoo("train", "resnet", "--data", "hf:acme/pictures", *STEPS, "--out", images, **cache)
    config = _config(images)
    assert config["task_state"]["classes"] == ["red", "green", "blue"]
    assert config["task_state"]["source"] == f"hf:acme/pictures@{data_mirror.commits['pictures']}"
    predictions = json.loads(hub.zoo("eval", images, "--json", **cache).stdout)
    assert 0 <= predictions["val_accuracy"] <= 1

    gan = tmp_path / "gan"
    hub.zoo("train", "gan", "--data", "hf:acme/pictures", "--steps", "2", "--batch-size", "4",
            "--set", "classifier_steps=0", "--quiet", "--out", gan, **cache)  # fmt: skip
    assert _config(gan)["task_state"]["classes"] == ["red", "green", "blue"]


@pytest.mark.slow
def test_seq2seq_on_a_hub_translation_data_set(client, data_mirror, tmp_path):
    hub, server = client
    cache = {"ZOO_CACHE": str(tmp_path / "zoo-cache")}
    tiny = ["--set", "n_embd=16", "--set", "n_head=2", "--set", "ffn=32"]
    line = hub.error("train", "transformer-seq2seq", "--data", "hf:acme/phrases", *STEPS, **cache)
    assert "translation column 'translation' of 'hf:acme/phrases@" in line
    assert (
        "has the languages de, en" in line and "--set source_lang=de --set target_lang=en" in line
    )
    run = tmp_path / "run"
    hub.zoo("train", "transformer-seq2seq", "--data", "hf:acme/phrases", "--set",
            "source_lang=en", *tiny, *STEPS, "--out", run, **cache)  # fmt: skip
    config = _config(run)
    assert config["data"] == f"hf:acme/phrases@{data_mirror.commits['phrases']}"
    assert config["task_config"]["data_split"] == "train"
    assert (config["task_config"]["source_lang"], config["task_config"]["target_lang"]) == (
        "en",
        None,  # the other of the two: de
    )
    saved = json.loads((run / "tokenizer.json").read_text())
    assert {"one", "four"} <= set(saved["source"]["words"])
    assert {"eins", "vier"} <= set(saved["target"]["words"])
    assert "datasets:\n- acme/phrases\n" in (run / "README.md").read_text()
    # Its validation split is the repo's own; evaluating offline rereads that commit's from the
    # cache, with no request to the server.
    before = server.requests()
    offline = {**cache, "HF_HUB_OFFLINE": "1"}
    metrics = json.loads(hub.zoo("eval", run, "--json", **offline).stdout)
    assert metrics["val_loss"] > 0 and 0 <= metrics["val_exact_match"] <= 1
    assert server.requests() == before
    line = hub.error("train", "transformer-seq2seq", "--data", "hf:acme/phrases", "--set",
                     "source_lang=en", "--set", "data_split=nope", *STEPS, **cache)  # fmt: skip
    assert "has no split 'nope'; it has train, validation (--set data_split=NAME)" in line
