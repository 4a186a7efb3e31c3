"""The `zoo` command as a user runs it: a real subprocess, real files."""

import json
import subprocess
import sys

import pytest
import torch
from zoo_testutil import TINY


def _one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_version_and_help(zoo):
    assert zoo("--version").stdout.startswith("zoo ")
    for command in ("list", "info", "plugins", "tasks", "tokenizers", "train", "eval", "generate"):
        assert "Usage:" in zoo(command, "--help").stdout


@pytest.mark.parametrize("args", [["list"], ["--help"], ["list", "--json"]])
def test_the_catalog_imports_no_torch(args):
    # Listing must stay fast however many plugins exist: no command module may import torch
    # (nor numpy) at its top.
    code = (
        "import sys\n"
        f"sys.argv = ['zoo', *{args!r}]\n"
        "from zoo_core.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.split() == ["False", "False"]


def test_list_json_and_wildcards(zoo):
    models = json.loads(zoo("list", "--json").stdout)
    names = {m["name"] for m in models}
    assert {"lstm", "lstm-large"} <= names
    lstm = next(m for m in models if m["name"] == "lstm")
    assert lstm["family"] == "lstm" and lstm["tasks"][0] == "lm" and lstm["plugin"] == "lstm"
    assert "parity" in lstm["tasks"]  # the core's synthetic tasks, which any lm model can do
    only = json.loads(zoo("list", "lstm-*", "--json").stdout)
    assert [m["name"] for m in only] == ["lstm-large", "lstm-seq2seq", "lstm-seq2seq-bahdanau"]
    assert json.loads(zoo("list", "nothing-*", "--json").stdout) == []
    # Piped, the table has one row per model, unwrapped, with no padding after its last column.
    table = zoo("list").stdout.splitlines()
    assert table[0].split() == ["name", "family", "tasks", "plugin", "summary"]
    assert len(table) == 1 + len(models) and all(line == line.rstrip() for line in table)
    assert zoo("list", "nothing-*").stdout == (
        f"No model matches 'nothing-*'; `zoo list` shows all {len(models)}.\n"
    )
    classifiers = json.loads(zoo("list", "--task", "image-classification", "--json").stdout)
    assert classifiers and all("image-classification" in m["tasks"] for m in classifiers)
    # A task name with a typo is an error that offers the closest, not an empty list.
    _one_line_error(zoo("list", "--task", "lmm", check=False), "unknown task 'lmm'", "lm")


def test_info_counts_parameters_of_the_default_config(zoo):
    info = json.loads(zoo("info", "lstm", "--json").stdout)
    fields = {f["name"]: f["default"] for f in info["config"]}
    assert fields["hidden_size"] == 256 and fields["num_layers"] == 2
    v, e, h = fields["vocab_size"], fields["embed_dim"], fields["hidden_size"]
    lstm = 4 * h * (e + h + 2) + 4 * h * (h + h + 2)
    head = 0 if fields["tie_weights"] else h * v  # a tied head shares the embedding
    assert info["parameters"] == v * e + lstm + head + v


def test_tasks_tokenizers_and_plugins(zoo):
    assert "lm" in zoo("tasks").stdout
    out = zoo("tokenizers", "--json").stdout
    assert {t["name"] for t in json.loads(out)} >= {"char", "byte"}
    plugins = {p["name"]: p for p in json.loads(zoo("plugins", "--json").stdout)}
    assert plugins["lstm"]["distribution"] == "zoo-lstm"
    assert "lstm" in plugins["lstm"]["models"] and plugins["lstm"]["errors"] == []
    assert "lm" in plugins["builtin-tasks"]["tasks"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "lstn"], ["unknown model 'lstn'", "Did you mean: lstm"]),
        (["info", "transformr-xyz"], ["unknown model"]),
        (["train", "lstm", "--set", "bogus=1"], ["no setting 'bogus'", "hidden_size"]),
        (["train", "lstm", "--set", "hidden_size=wide"], ["hidden_size must be an integer"]),
        (["train", "lstm", "--set", "oops"], ["--set takes key=value"]),
        (["train", "lstm", "--task", "nope"], ["does not do task 'nope'"]),
        (["train", "lstm", "--steps", "0"], ["steps must be at least 1"]),
        (["train", "lstm", "--lr", "inf"], ["learning rate must be positive and finite"]),
        (["train", "lstm", "--time", "inf"], ["time must be a positive, finite number"]),
        (["train", "lstm", "--time", "0"], ["time must be a positive, finite number"]),
        (["train", "lstm", "--set", "warmup=-1"], ["warmup must be 0 steps or more"]),
        (["train", "lstm", "--set", "keep_checkpoints=0"], ["keep_checkpoints must be at least"]),
        (["train", "lstm", "--set", "seq_len=0"], ["seq_len must be at least 1"]),
        (["train", "lstm", "--data", "/no/such/file.txt"], ["does not exist"]),
        (["train", "lstm", "--set", "tokenizer=nope"], ["unknown tokenizer 'nope'"]),
        (
            ["train", "lstm", "--tokenizer", "byte", "--set", "tokenizer=bpe"],
            ["--tokenizer byte and --set tokenizer=bpe disagree"],
        ),
        (["eval", "/no/such/run"], ["neither a run folder"]),
        (["train"], ["name a model"]),
        (["train", "lstm", "--device", "tpu"], ["unknown device 'tpu'", "cuda:N"]),
        (["train", "lstm", "--device", "cuda:x"], ["unknown device 'cuda:x'"]),
    ],
)
def test_user_errors_are_one_line_without_traceback(zoo, tmp_path, args, fragments):
    _one_line_error(zoo(*args, cwd=tmp_path, check=False), *fragments)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_compile_trains_a_model_that_loads_as_any_other(zoo, tmp_path):
    out = tmp_path / "compiled"
    zoo("train", "lstm", "--compile", "--steps", "3", "--out", out, "--quiet", *TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["train_config"]["compile"] is True
    # The weights are the module's own (no torch.compile wrapper's key prefix): they load.
    metrics = json.loads(zoo("eval", out, "--json").stdout)
    assert metrics["val_loss"] == pytest.approx(config["metrics"]["val_loss"], rel=1e-4)


def test_compile_on_a_cpu_with_no_compiler_is_one_line_before_training(zoo, tmp_path):
    empty = tmp_path / "bin"  # a PATH with no g++ on it
    empty.mkdir()
    proc = zoo(
        "train", "lstm", "--compile", "--steps", "1", cwd=tmp_path, check=False,
        env={"PATH": str(empty), "CXX": "g++"},
    )  # fmt: skip
    _one_line_error(proc, "--compile on the CPU needs a C++ compiler")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_device_is_checked_before_anything_is_written(zoo, tiny_run, tmp_path):
    config = (tiny_run / "config.json").read_bytes()
    for args in (
        ["eval", tiny_run, "--device", "cuda:x"],
        ["generate", tiny_run, "--device", "tpu"],
        ["train", "--resume", tiny_run, "--steps", "40", "--device", "cuda:-1"],
    ):
        _one_line_error(zoo(*args, check=False), "unknown device")
    assert (tiny_run / "config.json").read_bytes() == config  # the resume wrote nothing
    if not torch.cuda.is_available():
        proc = zoo("train", "lstm", "--device", "cuda:1", cwd=tmp_path, check=False)
        _one_line_error(proc, "--device cuda:1 was asked for, but PyTorch sees no CUDA GPU")


def test_a_folder_that_is_not_a_run_is_named_with_the_runs_inside_it(zoo, tiny_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["eval"], ["generate"], ["train", "--resume"], ["push"]):
        extra = ["acme/x"] if command == ["push"] else []
        _one_line_error(
            zoo(*command, empty, *extra, check=False),
            f"'{empty}' is not a run folder (it has no config.json)",
            "give a folder that `zoo train` wrote",
        )
    # The folder above a run, as `runs/` is: the runs in it are named.
    _one_line_error(
        zoo("eval", tiny_run.parent, check=False),
        f"'{tiny_run.parent}' is not a run folder",
        f"the runs in it are {tiny_run}",
    )


def test_info_on_a_run_shows_the_trained_model(zoo, tiny_run):
    import zoo_core

    config = json.loads((tiny_run / "config.json").read_text())
    lines = zoo("info", tiny_run).stdout.splitlines()
    assert lines[0] == f"{tiny_run}: lstm (plugin lstm, zoo-lstm) for task lm"
    assert lines[1:4] == ["  data: pydoc-topics", "  tokenizer: char", lines[3]]
    assert lines[3].startswith("  trained: 30 steps in ")
    shown = dict(part.split() for part in lines[4].removeprefix("  metrics: ").split(", "))
    assert {k: float(v) for k, v in shown.items()} == pytest.approx(config["metrics"], abs=1e-4)
    parameters = zoo_core.count_parameters(zoo_core.load(tiny_run).model)
    assert lines[5] == f"  parameters: {parameters:,}"
    assert lines[6].startswith("  model config: vocab_size=") and "hidden_size=32" in lines[6]
    data = json.loads(zoo("info", tiny_run, "--json").stdout)
    assert data["finished"] and data["steps"] == 30 and data["parameters"] == parameters
    assert data["metrics"] == config["metrics"] and data["model_config"] == config["model_config"]
    # A registered model's name still shows the model; a folder that is not a run says so.
    assert zoo("info", "lstm").stdout.startswith("lstm: ")
    _one_line_error(zoo("info", tiny_run.parent, check=False), "is not a run folder")


def test_the_default_text_written_out_trains_as_the_default_does(zoo, tmp_path):
    import zoo_core
    from zoo_core.data.text import default_text

    path = tmp_path / "text" / "pydoc.txt"
    assert "characters) to" in zoo("data", "text", "--out", path).stdout
    assert path.read_text(encoding="utf-8") == default_text()
    common = dict(steps=2, batch_size=8, progress=False)
    overrides = {"hidden_size": 16, "embed_dim": 16, "seq_len": 32}
    default = zoo_core.train("lstm", out=tmp_path / "a", overrides=dict(overrides), **common)
    files = zoo_core.train(
        "lstm", out=tmp_path / "b", data=path, overrides=dict(overrides), **common
    )
    assert files[1]["val_loss"] == default[1]["val_loss"]
    _one_line_error(zoo("data", "text", "--out", path, check=False), "already exists")


def test_training_says_what_it_trains_and_where_before_the_first_step(zoo, tmp_path):
    import zoo_core

    run = tmp_path / "run"
    proc = zoo("train", "lstm", "--steps", "2", "--out", run, *TINY)
    parameters = zoo_core.count_parameters(zoo_core.load(run).model)
    first = proc.stderr.splitlines()[0]
    assert first == f"lstm ({parameters:,} parameters), task lm, on cpu (fp32): {run}"
    again = zoo("train", "--resume", run, "--steps", "3")
    assert again.stderr.splitlines()[0] == first.replace(": ", ", from step 2: ")
    quiet = zoo("train", "lstm", "--steps", "1", "--out", tmp_path / "quiet", "--quiet", *TINY)
    assert quiet.stderr == ""


def test_too_short_a_validation_text_is_an_error_before_the_run_starts(zoo, tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("the quick brown fox\n" * 15)  # 300 characters: 30 held out
    proc = zoo("train", "lstm", "--data", text, "--out", tmp_path / "run", *TINY, check=False)
    _one_line_error(
        proc, "the validation text has 30 tokens, fewer than one window of 33", "val_fraction"
    )
    assert not (tmp_path / "run").exists()
    held = tmp_path / "held.txt"
    held.write_text("too short")
    proc = zoo(
        "train",
        "lstm",
        "--data",
        text,
        "--val-data",
        held,
        "--out",
        tmp_path / "run",
        *TINY,
        check=False,
    )
    _one_line_error(proc, "has 9 tokens", "give more validation text or set a smaller seq_len")
    assert not (tmp_path / "run").exists()


def test_data_changed_under_its_path_is_noticed_on_eval_and_resume(zoo, tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("".join(f"line {i}: the quick brown fox\n" for i in range(200)))
    run = tmp_path / "run"
    zoo("train", "lstm", "--data", text, "--steps", "3", "--out", run, "--quiet", *TINY)
    recorded = json.loads((run / "config.json").read_text())["data_fingerprints"]
    assert list(recorded) == ["data"] and recorded["data"].startswith("sha256:")
    assert "warning" not in zoo("eval", run).stderr
    text.write_text("".join(f"line {i}: the lazy dog\n" for i in range(200)))  # same path
    warned = zoo("eval", run)
    assert warned.stderr.startswith(f"zoo: warning: '{text}' has changed since this run")
    assert (
        "the metrics are of the data as it is now" in warned.stderr and "val_loss" in warned.stdout
    )
    resumed = zoo("train", "--resume", run, "--steps", "5", "--quiet")
    assert "the run goes on with the data as it is now" in resumed.stderr
    # Another file given to eval is the user's choice: nothing to warn about.
    assert "warning" not in zoo("eval", run, "--data", text).stderr


def test_fingerprints_see_contents_and_leave_out_hidden_files(tmp_path, monkeypatch):
    import os

    from zoo_core.data import fingerprint as fp

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("abc")
    first = fp.fingerprint(tmp_path / "a")
    (tmp_path / "a" / ".DS_Store").write_text("noise")
    assert fp.fingerprint(tmp_path / "a") == first
    (tmp_path / "a" / "x.txt").write_text("abd")  # same size, same name
    assert fp.fingerprint(tmp_path / "a") != first
    assert fp.fingerprint(tmp_path / "missing") is None
    monkeypatch.setattr(fp, "CONTENT_LIMIT", 2)  # beyond it: names, sizes and times
    quick = fp.fingerprint(tmp_path / "a")
    assert quick.startswith("stat:") and fp.fingerprint(tmp_path / "a") == quick
    os.utime(tmp_path / "a" / "x.txt", ns=(0, 10**9))
    assert fp.fingerprint(tmp_path / "a") != quick


def test_text_folders_leave_out_hidden_files_and_a_byte_order_mark(tmp_path):
    from zoo_core.data.text import read_text

    (tmp_path / "a.txt").write_bytes("\ufefffirst".encode())
    (tmp_path / "B.TXT").write_text("second")
    (tmp_path / "._a.txt").write_bytes(b"\x00\x05\x16\x07")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.txt").write_text("a copy")
    (tmp_path / "notes.md").write_text("not text data")
    assert read_text(tmp_path) == "second\n\nfirst"  # sorted by name: "B.TXT" < "a.txt"


def test_empty_data_file_is_a_clear_error(zoo, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    _one_line_error(
        zoo("train", "lstm", "--data", tmp_path / "empty.txt", cwd=tmp_path, check=False),
        "is empty",
    )


def test_an_existing_run_is_never_overwritten(zoo, tiny_run, tmp_path):
    before = (tiny_run / "model.safetensors").read_bytes()
    _one_line_error(
        zoo("train", "lstm", "--out", tiny_run, *TINY, check=False), "already exists", "--resume"
    )
    assert (tiny_run / "model.safetensors").read_bytes() == before


def test_train_eval_generate_end_to_end(zoo, tiny_run):
    files = {p.name for p in tiny_run.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.jsonl",
        "README.md",
        "checkpoints",
    } <= files
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"] == "lstm" and config["task"] == "lm" and config["tokenizer"] == "char"
    assert config["model_config"]["hidden_size"] == 32
    assert config["metrics"]["val_loss"] > 0
    metrics = json.loads(zoo("eval", tiny_run, "--json").stdout)
    assert metrics["val_loss"] == pytest.approx(config["metrics"]["val_loss"], rel=1e-5)
    text = zoo("generate", tiny_run, "--prompt", "def ", "--length", "40", "--seed", "1").stdout
    assert text.startswith("def ") and len(text.rstrip("\n")) == 44
    again = zoo(
        "generate", tiny_run, "--prompt", "def ", "--length", "40", "--seed", "1", "--no-cache"
    )
    assert again.stdout == text


def test_generate_stops_at_the_stop_string(zoo, tiny_run):
    out = zoo("generate", tiny_run, "--length", "200", "--seed", "3", "--stop", "e").stdout
    assert "e" not in out and len(out) < 200


def test_generate_refuses_the_options_of_the_other_kind_of_model(zoo, tiny_run, tmp_path):
    # A language model prints text: --out and --num (pictures) are an error, not ignored.
    proc = zoo("generate", tiny_run, "--num", "3", "--out", tmp_path / "x.png", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and not proc.stdout
    assert "--num, --out are for image and 2-D models" in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_eval_on_a_user_file(zoo, tiny_run, tmp_path):
    (tmp_path / "val.txt").write_text("def f(x):\n    return x\n" * 20)
    metrics = json.loads(zoo("eval", tiny_run, "--data", tmp_path / "val.txt", "--json").stdout)
    assert metrics["val_loss"] > 0 and metrics["val_bpc"] > 0


def test_eval_defaults_to_the_validation_text_the_run_was_trained_with(zoo, tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("".join(f"line {i}: the quick brown fox\n" for i in range(200)))
    held = tmp_path / "held.txt"
    held.write_text("a different text, held out on purpose\n" * 40)
    for name, extra in (("split", []), ("val", ["--val-data", held])):
        run = tmp_path / name
        zoo("train", "lstm", "--data", text, *extra, "--steps", "3", "--out", run, "--quiet", *TINY)
        trained = json.loads((run / "config.json").read_text())["metrics"]["val_loss"]
        evaluated = json.loads(zoo("eval", run, "--json").stdout)["val_loss"]
        assert evaluated == pytest.approx(trained, rel=1e-5)  # not the embedded default text
    text.rename(tmp_path / "moved.txt")
    _one_line_error(zoo("eval", tmp_path / "split", check=False), "mine.txt", "--data")
    moved = zoo("eval", tmp_path / "split", "--data", tmp_path / "moved.txt", "--json").stdout
    assert json.loads(moved)["val_loss"] > 0


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("--temperature", "nan", "temperature must be >= 0 and finite"),
        ("--temperature", "inf", "temperature must be >= 0 and finite"),
        ("--top-k", "-5", "top-k must be at least 1 (or 0: off)"),
    ],
)
def test_generate_refuses_sampling_settings_out_of_range(zoo, tiny_run, option, value, fragment):
    proc = zoo("generate", tiny_run, "--prompt", "def ", option, value, check=False)
    _one_line_error(proc, fragment)
    assert proc.stdout == ""  # not the prompt, echoed before the options were checked


def test_predict_on_a_language_model_says_it_is_no_classifier(zoo, tiny_run):
    _one_line_error(zoo("predict", tiny_run, "some text", check=False), "'lm' is not a classifier")


def test_eval_refuses_a_batch_size_below_one(zoo, tiny_run):
    _one_line_error(zoo("eval", tiny_run, "--batch-size", "0", check=False), "batch size", "0")


def test_tokenizer_option_trains_with_byte_tokens(zoo, tmp_path):
    out = tmp_path / "bytes"
    zoo("train", "lstm", "--steps", "3", "--out", out, "--tokenizer", "byte", "--quiet", *TINY)
    config = json.loads((out / "config.json").read_text())
    assert config["tokenizer"] == "byte" and config["model_config"]["vocab_size"] == 256
    assert json.loads((out / "tokenizer.json").read_text())["type"] == "byte"
