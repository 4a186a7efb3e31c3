"""Sequence classification: the embedded default end to end, the folder/JSONL/CSV readers, errors."""

import json
import math
import subprocess
import sys

import pytest

import zoo_core
from zoo_core.data import brackets
from zoo_core.data.labelled import read_labelled
from zoo_core.errors import ZooError

ENCODER = ["--set", "n_layer=1", "--set", "n_embd=16", "--set", "n_head=2", "--batch-size", "8"]
TINY = {"n_layer": 1, "n_embd": 16, "n_head": 2}


def test_the_synthetic_default_is_seeded_and_labelled_right():
    train, val = brackets.default_splits()
    assert train == brackets.default_splits()[0] and train != val
    assert all(brackets.is_balanced(t) == (label == "balanced") for t, label in train + val)
    labels = [label for _, label in train]
    assert 0.4 < labels.count("balanced") / len(labels) < 0.6
    # Counting is not enough: some unbalanced strings have as many ')' as '('.
    assert any(t.count("(") == t.count(")") for t, label in train if label == "unbalanced")


def test_cli_trains_the_embedded_default(zoo, tmp_path):
    out = tmp_path / "run"
    proc = zoo("train", "transformer-encoder", "--steps", "5", "--out", out, "--quiet", *ENCODER)
    assert "val_accuracy" in proc.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "sequence-classification" and config["tokenizer"] == "char"
    assert config["task_state"]["classes"] == ["balanced", "unbalanced"]
    assert config["model_config"]["num_classes"] == 2
    artifact = zoo_core.load(out)
    assert config["model_config"]["vocab_size"] == artifact.tokenizer.vocab_size <= 4
    assert artifact.tokenizer.decode(artifact.tokenizer.encode("(()")) == "(()"
    metrics = artifact.evaluate()
    assert set(metrics) >= {"val_loss", "val_accuracy", "val_acc_balanced", "val_acc_unbalanced"}
    assert 0 <= metrics["val_accuracy"] <= 1 and math.isfinite(metrics["val_loss"])
    probs = artifact.task.classify(artifact.model, ["(())", "))(("])
    assert [sorted(p) for p in probs] == [["balanced", "unbalanced"]] * 2
    assert all(abs(sum(p.values()) - 1) < 1e-5 for p in probs)

    # `zoo predict` on texts: arguments, or one per line from stdin in place of `-`.
    texts = ["(())", "))(("]
    results = json.loads(zoo("predict", out, *texts, "--json").stdout)
    assert [r["text"] for r in results] == texts
    for result, p in zip(results, probs, strict=True):
        ranked = [x["class"] for x in result["predictions"]]
        assert ranked == sorted(p, key=p.get, reverse=True)
        assert [x["probability"] for x in result["predictions"]] == pytest.approx(
            [p[c] for c in ranked], abs=1e-5
        )
    from_api = artifact.predict(texts, top_k=1)
    for api, cli in zip(from_api, results, strict=True):
        assert (
            len(api["predictions"]) == 1
            and api["predictions"][0]["class"] == cli["predictions"][0]["class"]
        )
        assert api["predictions"][0]["probability"] == pytest.approx(
            cli["predictions"][0]["probability"], abs=1e-5
        )
    # One text alone is one input, not a list of characters.
    alone = artifact.predict("(())")
    assert len(alone) == 1 and alone[0]["text"] == "(())"
    assert alone[0]["predictions"][0]["probability"] == pytest.approx(max(probs[0].values()))
    with pytest.raises(ZooError, match="cannot classify 'int' objects: give texts"):
        artifact.predict(["(())", 3])
    lines = zoo("predict", out, "-", "--top-k", "1", input="(())\n\n))((\n").stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["'(())'", "'))(('"]  # blank lines skipped
    assert [line.split(": ")[1].split()[0] for line in lines] == [
        r["predictions"][0]["class"] for r in results
    ]
    # An argument that names a file is still a text; a note says how to classify its lines.
    (tmp_path / "texts.txt").write_text("(())\n")
    proc = zoo("predict", out, "texts.txt", "--top-k", "1", cwd=tmp_path)
    assert proc.stdout.startswith("'texts.txt': ")
    assert "is classified as a text of its own" in proc.stderr and "- < texts.txt" in proc.stderr
    assert "note" not in zoo("predict", out, "(())", cwd=tmp_path).stderr
    # A text longer than any file name is a text, not an error about file names.
    long_text = "(" * 200 + ")" * 200
    proc = zoo("predict", out, long_text, "--json", cwd=tmp_path)
    assert json.loads(proc.stdout)[0]["text"] == long_text and "note" not in proc.stderr
    # stdin: a byte-order mark is no character of the first text; lines end at \n (and \r\n)
    # only, so a form feed or U+2028 inside a text stays in it.
    from_stdin = zoo("predict", out, "-", "--json", input="\ufeff(())\r\n()\x0c()\n(\u2028)\n")
    assert [r["text"] for r in json.loads(from_stdin.stdout)] == ["(())", "()\x0c()", "(\u2028)"]
    latin1 = subprocess.run(
        [sys.executable, "-m", "zoo_core", "predict", str(out), "-"],
        input="caf\xe9\n".encode("latin-1"),
        capture_output=True,
    )
    assert latin1.returncode == 1 and not latin1.stdout
    assert latin1.stderr.decode().strip().splitlines() == [
        "Error: stdin is not UTF-8 text (invalid continuation byte at byte 3); convert it "
        "first, e.g. iconv -f latin1 -t utf-8"
    ]


def _folder(root, examples):
    for i, (text, label) in enumerate(examples):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text, encoding="utf-8")
    return root


EXAMPLES = [
    ("a lovely film", "pos"),
    ("great fun", "pos"),
    ("dull and long", "neg"),
    ("awful plot", "neg"),
    ("superb", "pos"),
    ("boring", "neg"),
    ("héllo 🦒", "pos"),
]


def test_folder_reader(tmp_path):
    root = _folder(tmp_path / "data", EXAMPLES)
    (root / "pos" / "notes.md").write_text("not an example")
    assert sorted(read_labelled(root)) == sorted(EXAMPLES)


def test_folder_reader_reads_nested_and_upper_case_files_and_leaves_out_hidden_ones(tmp_path):
    root = _folder(tmp_path / "data", EXAMPLES)
    (root / "pos" / "more").mkdir()
    (root / "pos" / "more" / "nested.txt").write_text("nested")
    (root / "neg" / "SHOUT.TXT").write_text("upper case")
    (root / "neg" / "._0.txt").write_bytes(b"\x00\x05\x16\x07 resource fork")  # macOS
    (root / "pos" / ".ipynb_checkpoints").mkdir()
    (root / "pos" / ".ipynb_checkpoints" / "0-checkpoint.txt").write_text("a copy")
    assert sorted(read_labelled(root)) == sorted(
        EXAMPLES + [("nested", "pos"), ("upper case", "neg")]
    )
    (root / "neutral").mkdir()  # a class folder with no examples is named, not dropped
    with pytest.raises(ZooError, match="class folder 'neutral' of .* holds no .txt files"):
        read_labelled(root)


def test_readers_keep_what_the_formats_allow_inside_a_text(tmp_path):
    csv_file = tmp_path / "data.csv"
    csv_file.write_bytes(
        '\ufefftext,label\r\n"two\nlines",pos\r\n"one, with a comma",neg\r\n'.encode()
    )  # a byte-order mark, as Excel writes one, and a quoted line break
    assert read_labelled(csv_file) == [("two\nlines", "pos"), ("one, with a comma", "neg")]
    jsonl = tmp_path / "data.jsonl"
    texts = ["page\x0cbreak", "line\u2028separator", "next\x85line"]  # unescaped in JSON
    jsonl.write_text(
        "\ufeff"
        + "".join(
            json.dumps({"text": t, "label": "a"}, ensure_ascii=False) + "\r\n" for t in texts
        ),
        encoding="utf-8",
    )
    assert read_labelled(jsonl) == [(t, "a") for t in texts]
    txt = tmp_path / "class" / "a"
    txt.mkdir(parents=True)
    (txt / "0.txt").write_bytes("\ufeffbom".encode())
    (tmp_path / "class" / "b").mkdir()
    (tmp_path / "class" / "b" / "0.txt").write_text("plain")
    assert sorted(read_labelled(tmp_path / "class")) == [("bom", "a"), ("plain", "b")]


def test_labels_are_strings_or_whole_numbers_sorted_as_numbers_when_all_are(tmp_path):
    from zoo_core.data.labelled import sort_labels

    assert sort_labels({"10", "9", "-1", "01", "1"}) == ["-1", "01", "1", "9", "10"]
    assert sort_labels({"²", "1", "a"}) == ["1", "a", "²"]  # "²" is a digit, not a number
    assert sort_labels({"--5", "3"}) == ["--5", "3"]
    bad = tmp_path / "bad.jsonl"
    for label in ("true", "1.5", "[1]", '{"a": 1}'):
        bad.write_text(f'{{"text": "x", "label": {label}}}\n')
        with pytest.raises(ZooError, match="line 1: 'label' must be a string or a whole number"):
            read_labelled(bad)


def test_metric_names_of_classes_are_distinct():
    from zoo_core.tasks.seqcls import _keys

    assert _keys(["c", "c++", "c#", "+", "-", "a b"]) == [
        "c",
        "c_2",
        "c_3",
        "class",
        "class_2",
        "a_b",
    ]


def test_the_held_out_split_keeps_every_class_in_training():
    from zoo_core.tasks.seqcls import _split

    examples = [(f"common {i}", "common") for i in range(20)]
    examples += [(f"rare {i}", f"rare-{i}") for i in range(20)]  # one example each
    examples += [(f"some {i}", "some") for i in range(10)]
    train, val = _split(examples, 0.1)
    assert sorted(train + val) == sorted(examples)
    assert {y for _, y in train} == {y for _, y in examples}
    assert sorted(y for _, y in val) == ["common"] * 2 + ["some"]
    assert _split(examples, 0.1) == (train, val)  # seeded
    two = [("a", "x"), ("b", "y")]
    train, val = _split(two, 0.1)
    assert len(train) == len(val) == 1


def test_jsonl_and_csv_readers(tmp_path):
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in EXAMPLES) + "\n\n")
    assert read_labelled(jsonl) == EXAMPLES
    csv_file = tmp_path / "data.csv"
    csv_file.write_text(
        "text,label\n" + "".join(f'"{t}",{y}\n' for t, y in EXAMPLES), encoding="utf-8"
    )
    assert read_labelled(csv_file) == EXAMPLES
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text(
        "".join(json.dumps({"text": "x" * i, "label": i % 11}) + "\n" for i in range(30))
    )
    assert {y for _, y in read_labelled(numbers)} == {str(i) for i in range(11)}


@pytest.mark.parametrize("kind", ["folder", "jsonl"])
def test_trains_on_user_data(kind, tmp_path):
    if kind == "folder":
        data = _folder(tmp_path / "data", EXAMPLES * 3)
    else:
        data = tmp_path / "data.jsonl"
        data.write_text(
            "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in EXAMPLES * 3)
        )
    artifact, metrics = zoo_core.train(
        "transformer-encoder",
        data=data,
        out=tmp_path / "run",
        progress=False,
        steps=3,
        batch_size=4,
        overrides=TINY,
    )
    assert artifact.task.classes == ["neg", "pos"]
    per_class = {k for k in metrics if k.startswith("val_acc_")}
    assert "val_accuracy" in metrics and per_class and per_class <= {"val_acc_neg", "val_acc_pos"}
    loaded = zoo_core.load(tmp_path / "run")
    assert loaded.tokenizer.encode("héllo") == artifact.tokenizer.encode("héllo")
    assert loaded.task.classes == ["neg", "pos"]


def test_eval_defaults_to_the_validation_examples_of_training(tmp_path):
    train = _folder(tmp_path / "train", EXAMPLES * 3)
    val = _folder(tmp_path / "held-out", EXAMPLES[:4])
    for name, val_data in (("run-split", None), ("run-val", val)):
        _, metrics = zoo_core.train(
            "transformer-encoder",
            data=train,
            val_data=val_data,
            out=tmp_path / name,
            progress=False,
            steps=3,
            batch_size=4,
            overrides=TINY,
        )
        # Not the embedded brackets, whose labels this model does not know.
        again = zoo_core.load(tmp_path / name).evaluate()
        assert again["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)
    # --val-data beside the embedded default is used, not ignored.
    own = tmp_path / "brackets.jsonl"
    examples = brackets.examples(10, seed=99)
    own.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in examples))
    artifact, _ = zoo_core.train(
        "transformer-encoder",
        val_data=own,
        out=tmp_path / "run-default",
        progress=False,
        steps=1,
        overrides=TINY,
    )
    assert len(artifact.task.val_set) == 10
    reloaded = zoo_core.load(tmp_path / "run-default")
    reloaded.evaluate()
    assert len(reloaded.task.val_set) == 10
    val.rename(tmp_path / "elsewhere")
    with pytest.raises(ZooError, match="trained on .*held-out', which is not here; .* --data"):
        zoo_core.load(tmp_path / "run-val").evaluate()


def test_empty_or_invalid_data_is_a_clear_error(zoo, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ZooError, match="no class sub-folders"):
        read_labelled(empty)
    (empty / "pos").mkdir()
    with pytest.raises(ZooError, match=r"hold no \.txt files"):
        read_labelled(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "a"}\n{"text": "no label"}\n')
    with pytest.raises(ZooError, match="line 2"):
        read_labelled(bad)
    bad.write_text('{"text": "fine", "label": "a"}\nnot json\n')
    with pytest.raises(ZooError, match="line 2: not valid JSON"):
        read_labelled(bad)
    one_class = _folder(tmp_path / "one", [("a", "pos"), ("b", "pos")])
    with pytest.raises(ZooError, match="at least two classes"):
        zoo_core.train(
            "transformer-encoder",
            data=one_class,
            out=tmp_path / "r1",
            progress=False,
            steps=1,
            overrides=TINY,
        )
    assert not (tmp_path / "r1").exists()  # nothing half-written
    proc = zoo(
        "train",
        "transformer-encoder",
        "--data",
        empty,
        "--steps",
        "1",
        "--out",
        tmp_path / "r2",
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "class sub-folders" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_validation_labels_must_be_known(tmp_path):
    train = _folder(tmp_path / "train", EXAMPLES)
    val = _folder(tmp_path / "val", [("meh", "neutral")])
    with pytest.raises(ZooError, match="'neutral' are not among the classes"):
        zoo_core.train(
            "transformer-encoder",
            data=train,
            val_data=val,
            out=tmp_path / "r",
            progress=False,
            steps=1,
            overrides=TINY,
        )


def test_the_default_written_out_trains_as_the_default_does(zoo, tmp_path):
    out = tmp_path / "brackets"
    zoo("data", "brackets", "--out", out)
    train, val = brackets.default_splits()
    assert read_labelled(out / "train.jsonl") == train
    assert read_labelled(out / "val.jsonl") == val
    common = dict(overrides=TINY, steps=2, batch_size=8, progress=False)
    default = zoo_core.train("transformer-encoder", out=tmp_path / "a", **common)[1]
    files = zoo_core.train(
        "transformer-encoder",
        out=tmp_path / "b",
        data=out / "train.jsonl",
        val_data=out / "val.jsonl",
        **common,
    )[1]
    assert {k: v for k, v in files.items() if k.startswith("val_")} == {
        k: v for k, v in default.items() if k.startswith("val_")
    }
    again = zoo("data", "brackets", "--out", out, check=False)
    assert again.returncode == 1 and "already exists and is not empty" in again.stderr
