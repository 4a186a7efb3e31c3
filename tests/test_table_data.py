"""Local Parquet files, Arrow files and `save_to_disk` folders, read through `datasets` as a Hub
data set is (the Hub itself: tests/hub/test_hub_data.py)."""

import pytest
import torch

from zoo_core.data import hf
from zoo_core.errors import ZooError
from zoo_core.tasks.image import ImageClassification, ImageOptions
from zoo_core.tasks.lm import LanguageModeling, LMOptions
from zoo_core.tasks.seq2seq import Seq2SeqOptions, SequenceToSequence
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


# -- seq2seq: source and target columns, or a translation column ---------------------------------
PAIRS = [(f"jump {i} times", f"JUMP x{i}") for i in range(40)]


def _seq2seq(data, **options):
    task = SequenceToSequence(Seq2SeqOptions(**options))
    task.setup(str(data))
    return task


def _pairs_of(task, encoded):
    """The (source, target) texts of encoded pairs, as the task's tokenizers read them back."""
    pair = task.tokenizer
    return [
        (pair.source.decode([i - 3 for i in s[:-1]]), task.decode_target(t)) for s, t in encoded
    ]


def test_seq2seq_reads_source_and_target_columns_of_parquet_and_saved_folders(tmp_path):
    rows = {"id": list(range(40)), "source": [s for s, _ in PAIRS], "target": [t for _, t in PAIRS]}
    datasets.Dataset.from_dict(rows).to_parquet(tmp_path / "p.parquet")
    task = _seq2seq(tmp_path / "p.parquet")
    # No validation split: val_fraction of the pairs held out, the rest trained on.
    assert len(task.train_set) == 36 and len(task.val_pairs) == 4
    assert sorted(_pairs_of(task, task.train_set) + task.val_pairs) == sorted(PAIRS)

    val = [("walk twice", "WALK WALK"), ("run", "RUN")]
    dd = datasets.DatasetDict(
        train=datasets.Dataset.from_dict(rows),
        validation=datasets.Dataset.from_dict(
            {"id": [0, 1], "source": [s for s, _ in val], "target": [t for _, t in val]}
        ),
    )
    dd.save_to_disk(tmp_path / "dd")
    task = _seq2seq(tmp_path / "dd")
    assert _pairs_of(task, task.train_set) == PAIRS  # every row, in order
    assert task.val_pairs == val  # the data set's own validation split
    again = SequenceToSequence(Seq2SeqOptions(), tokenizer=task.tokenizer, state=task.state())
    again.setup_eval(None)  # a trained run's validation data: the same split again
    assert again.val_pairs == val
    flipped = _seq2seq(tmp_path / "dd", data_split="validation", val_fraction=0.5)
    assert _pairs_of(flipped, flipped.train_set) == val
    # A validation file of its own: the pairs of its data_split.
    other = SequenceToSequence(Seq2SeqOptions())
    other.setup(str(tmp_path / "dd"), str(tmp_path / "p.parquet"))
    assert other.val_pairs == PAIRS
    with pytest.raises(ZooError, match=r"has no split 'nope'; it has train, validation"):
        _seq2seq(tmp_path / "dd", data_split="nope")
    with pytest.raises(ZooError, match=r"split chooses SCAN's split.*--set data_split=NAME"):
        _seq2seq(tmp_path / "dd", split="length")


def _translations(languages, n=20, struct=False):
    rows = [{lang: f"{lang} words {i}" for lang in languages} for i in range(n)]
    if struct:  # a dict of language to string, as a Parquet file without features gives it
        return datasets.Dataset.from_dict({"translation": rows, "n": list(range(n))})
    features = datasets.Features(
        {"translation": datasets.Translation(languages=languages), "n": datasets.Value("int64")}
    )
    return datasets.Dataset.from_dict({"translation": rows, "n": list(range(n))}, features=features)


@pytest.mark.parametrize("struct", [False, True], ids=["Translation", "struct"])
def test_seq2seq_reads_the_languages_chosen_of_a_translation_column(tmp_path, struct):
    path = tmp_path / "t.parquet"
    _translations(["de", "en"], struct=struct).to_parquet(path)
    expected = [(f"de words {i}", f"en words {i}") for i in range(20)]
    task = _seq2seq(path, source_lang="de", target_lang="en", val_fraction=0.25)
    assert sorted(_pairs_of(task, task.train_set) + task.val_pairs) == sorted(expected)
    # One language named, of two: the other one is the other side.
    flipped = _seq2seq(path, target_lang="de", val_fraction=0.25)
    assert flipped.val_pairs == [(t, s) for s, t in task.val_pairs]
    with pytest.raises(ZooError) as none_set:
        _seq2seq(path)
    message = str(none_set.value)
    assert "\n" not in message
    assert "translation column 'translation'" in message and "has the languages de, en" in message
    assert "--set source_lang=de --set target_lang=en" in message
    with pytest.raises(ZooError, match=r"no language 'fr' \(source_lang\); its languages: de, en"):
        _seq2seq(path, source_lang="fr")
    with pytest.raises(ZooError, match="both language 'de'"):
        _seq2seq(path, source_lang="de", target_lang="de")
    with pytest.raises(ZooError, match="by column .* or by language"):
        _seq2seq(path, source_column="n", source_lang="de")


def test_seq2seq_column_errors_list_the_columns_and_their_types(tmp_path):
    path = tmp_path / "t.parquet"
    _translations(["de", "en", "fr"]).to_parquet(path)
    with pytest.raises(ZooError, match=r"has the languages de, en, fr; choose"):
        _seq2seq(path)
    with pytest.raises(ZooError, match=r"has the languages de, en, fr; set target_lang too"):
        _seq2seq(path, source_lang="fr")
    task = _seq2seq(path, source_lang="fr", target_lang="en", val_fraction=0.5)
    assert task.val_pairs[0][0].startswith("fr words") and task.val_pairs[0][1].startswith("en")
    with pytest.raises(ZooError) as wrong:
        _seq2seq(path, source_column="n")
    assert str(wrong.value) == (
        f"column 'n' of '{path}' is int64, not a text column; its columns: "
        "translation (Translation de/en/fr), n (int64)"
    )
    odd = tmp_path / "odd.parquet"
    datasets.Dataset.from_dict({"source": ["a b"] * 4, "target": [1, 2, 3, 4]}).to_parquet(odd)
    listed = r"is int64, not a text column; its columns: source \(string\), target \(int64\)"
    with pytest.raises(ZooError, match=r"column 'target' .* " + listed):
        _seq2seq(odd)
    none = tmp_path / "none.parquet"
    datasets.Dataset.from_dict({"en": ["a"] * 4, "de": ["b"] * 4}).to_parquet(none)
    with pytest.raises(ZooError) as neither:
        _seq2seq(none)
    assert str(neither.value) == (
        f"data set '{none}' has no text columns 'source' and 'target' and no translation "
        "columns; choose the columns with --set source_column=NAME --set target_column=NAME. "
        "Its columns: en (string), de (string)"
    )
    task = _seq2seq(none, source_column="en", target_column="de", val_fraction=0.5)
    assert task.val_pairs == [("a", "b")] * 2


def test_seq2seq_rows_without_a_source_or_a_target_are_left_out(tmp_path):
    rows = {"source": ["a", None, " ", "b", "c"], "target": ["A", "B", "C", None, " C "]}
    datasets.Dataset.from_dict(rows).save_to_disk(tmp_path / "saved")
    task = _seq2seq(tmp_path / "saved", val_fraction=0.5)
    assert sorted(_pairs_of(task, task.train_set) + task.val_pairs) == [("a", "A"), ("c", "C")]
    empty = {"source": [None, ""], "target": ["A", "B"]}
    datasets.Dataset.from_dict(empty).save_to_disk(tmp_path / "empty")
    with pytest.raises(ZooError, match="holds no rows with both a source and a target text"):
        _seq2seq(tmp_path / "empty")
