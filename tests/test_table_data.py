"""Local Parquet files, Arrow files and `save_to_disk` folders, read through `datasets` as a Hub
data set is (the Hub itself: tests/hub/test_hub_data.py)."""

import pytest
import torch

from zoo_core.data import hf
from zoo_core.errors import ZooError
from zoo_core.tasks.image import ImageClassification, ImageOptions
from zoo_core.tasks.lm import LanguageModeling, LMOptions
from zoo_core.tasks.seqcls import SeqClsOptions, SequenceClassification

datasets = pytest.importorskip("datasets")

LINES = [f"row {i}: the cat sat on the mat." for i in range(200)]


@pytest.fixture
def tables(tmp_path):
    """The same text as a Parquet file, an Arrow file and a save_to_disk folder."""
    table = datasets.Dataset.from_dict({"text": LINES, "n": list(range(200))})
    table.to_parquet(tmp_path / "t.parquet")
    table.save_to_disk(tmp_path / "saved")
    (arrow,) = (tmp_path / "saved").glob("*.arrow")
    return {"parquet": tmp_path / "t.parquet", "arrow": arrow, "saved": tmp_path / "saved"}


def test_parquet_arrow_and_saved_folders_give_one_text(tables):
    tasks = {}
    for kind, path in tables.items():
        assert hf.is_table(str(path)), kind
        task = LanguageModeling(LMOptions(seq_len=16))
        task.setup(str(path))
        tasks[kind] = task
    text = "\n\n".join(LINES)  # rows joined as a folder's files are
    cut = int(len(text) * 0.9)
    first = tasks["parquet"]
    assert first.train_ids.tolist() == first.tokenizer.encode(text[:cut])
    assert first.val_ids.tolist() == first.tokenizer.encode(text[cut:])
    for task in tasks.values():
        assert task.train_ids.tolist() == first.train_ids.tolist()
    assert not hf.is_table(str(tables["saved"].parent))  # a plain folder is not a table


def test_a_saved_dataset_dict_uses_its_validation_split(tmp_path):
    dd = datasets.DatasetDict(
        train=datasets.Dataset.from_dict({"text": LINES}),
        validation=datasets.Dataset.from_dict({"text": ["held out: the mat sat."] * 20}),
    )
    dd.save_to_disk(tmp_path / "dd")
    task = LanguageModeling(LMOptions(seq_len=16))
    task.setup(str(tmp_path / "dd"))
    assert task.train_ids.tolist() == task.tokenizer.encode("\n\n".join(LINES))
    assert task.val_ids.tolist() == task.tokenizer.encode(
        "\n\n".join(["held out: the mat sat."] * 20)
    )
    task.setup_eval(None)  # a trained run's validation data: the same split again
    assert task.val_chars == len("\n\n".join(["held out: the mat sat."] * 20))
    other = LanguageModeling(LMOptions(seq_len=16, split="validation"))
    other.setup(str(tmp_path / "dd"))
    assert len(other.train_ids) == len(task.val_ids)
    with pytest.raises(ZooError, match=r"has no split 'nope'; it has train, validation"):
        LanguageModeling(LMOptions(split="nope")).setup(str(tmp_path / "dd"))


def test_columns_are_found_or_one_line_lists_them(tmp_path):
    two = datasets.Dataset.from_dict({"title": ["a b"] * 50, "body": ["c d"] * 50, "n": [1] * 50})
    two.to_parquet(tmp_path / "two.parquet")
    with pytest.raises(ZooError) as caught:
        LanguageModeling(LMOptions()).setup(str(tmp_path / "two.parquet"))
    message = str(caught.value)
    assert "has 2 (title, body) text columns; choose one with --set text_column=NAME" in message
    assert "title (string), body (string), n (int64)" in message
    with pytest.raises(ZooError, match=r"column 'n' .* is int64, not a text column"):
        LanguageModeling(LMOptions(text_column="n")).setup(str(tmp_path / "two.parquet"))
    task = LanguageModeling(LMOptions(text_column="body", seq_len=4))
    task.setup(str(tmp_path / "two.parquet"))
    assert set(task.tokenizer.decode(task.train_ids.tolist())) <= set("cd \n")


def test_a_class_label_column_gives_labels_and_class_names(tmp_path):
    features = datasets.Features(
        {"review": datasets.Value("string"), "stars": datasets.ClassLabel(names=["bad", "good"])}
    )
    rows = {"review": [f"text {i}" for i in range(30)], "stars": [i % 2 for i in range(30)]}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "r.parquet")
    task = SequenceClassification(SeqClsOptions())
    task.setup(str(tmp_path / "r.parquet"))
    assert task.classes == ["bad", "good"]
    assert len(task.train_set) + len(task.val_set) == 30
    assert {label for _, label in task.train_set} == {0, 1}


def test_an_image_column_gives_the_images(tmp_path):
    from PIL import Image

    images = [Image.new("RGB", (6, 6), (40 * (i % 3), 90, 200)) for i in range(24)]
    features = datasets.Features(
        {"picture": datasets.Image(), "kind": datasets.ClassLabel(names=["a", "b", "c"])}
    )
    rows = {"picture": images, "kind": [i % 3 for i in range(24)]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(tmp_path / "pics")
    task = ImageClassification(ImageOptions(val_fraction=0.25))
    task.setup(str(tmp_path / "pics"))
    assert task.classes == ["a", "b", "c"]

    class Config:
        image_size, in_channels, num_classes = 8, 3, 3

    task.bind(Config())
    assert tuple(task.train_x.shape) == (18, 3, 8, 8) and len(task.val_y) == 6
    # Decoded as they are read, by a worker process: the same batches.
    lazy = ImageClassification(ImageOptions(val_fraction=0.25, workers=1))
    lazy.setup(str(tmp_path / "pics"))
    lazy.bind(Config())
    a, b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for _ in range(3):
        (xa, ya), (xb, yb) = task.train_batch(5, a), lazy.train_batch(5, b)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(lazy.val_x[:], task.val_x)
    lazy.train_x.close()


def test_a_streamed_data_set_gives_the_text_it_gives_downloaded(tables, tmp_path, monkeypatch):
    for kind in ("parquet", "saved"):
        monkeypatch.setenv("ZOO_CACHE", str(tmp_path / f"cache-{kind}"))
        downloaded = LanguageModeling(LMOptions(seq_len=16))
        downloaded.setup(str(tables[kind]))
        monkeypatch.setenv("ZOO_CACHE", str(tmp_path / f"streamed-{kind}"))  # built again
        streamed = LanguageModeling(LMOptions(seq_len=16, streaming=True))
        streamed.setup(str(tables[kind]))
        assert streamed.train_ids.tolist() == downloaded.train_ids.tolist()
        assert streamed.val_ids.tolist() == downloaded.val_ids.tolist()


def test_hub_names_are_parsed_and_odd_ones_refused():
    assert hf.parse("hf:acme/texts") == hf.HubData("acme/texts")
    assert hf.parse("hf:acme/texts:wiki-2@v1.0") == hf.HubData("acme/texts", "wiki-2", "v1.0")
    assert str(hf.parse("hf:imdb@refs/pr/1")) == "hf:imdb@refs/pr/1"
    for odd in ("hf:a/b@../../etc", "hf:a b", "hf:", "hf:a/b/c", "hf:a/b@x y"):
        with pytest.raises(ZooError, match="is not a data set of the Hub; write hf:ORG/NAME"):
            hf.parse(odd)
