"""`zoo compare`: the same budget for every model, results at every length, tables and plots."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image
from zoo_testutil import run_zoo
from zoo_transformer.model import TransformerConfig, TransformerLM

import zoo_core
from zoo_core import artifacts
from zoo_core.compare import compare, resume, split_sets
from zoo_core.errors import ZooError

TINY = [
    "--set",
    "n_layer=1",
    "--set",
    "n_head=2",
    "--set",
    "n_embd=16",
    "--set",
    "hidden_size=16",
    "--set",
    "embed_dim=16",
    "--set",
    "val_size=32",
]
LSTM_TINY = ["--set", "hidden_size=16", "--set", "embed_dim=16", "--set", "val_size=32"]


def test_compare_end_to_end_writes_results_for_every_variant_and_length(zoo, tmp_path):
    out = tmp_path / "cmp"
    proc = zoo(
        "compare",
        "lstm",
        "transformer",
        "--task",
        "copy",
        "--train-length",
        "4",
        "--eval-lengths",
        "4,6",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--out",
        out,
        *TINY,
        # learned positions for 9 tokens: length 4 (8 tokens) fits, length 6 (12) is refused
        "--set",
        "pos_encoding=learned,rope",
        "--set",
        "context_length=9",
    )
    results = json.loads((out / "results.json").read_text())
    labels = [v["label"] for v in results["variants"]]
    assert labels == ["lstm", "transformer pos_encoding=learned", "transformer pos_encoding=rope"]
    assert results["eval_lengths"] == [4, 6]
    rows = {row["label"]: row for row in results["summary"]}
    for label in labels:
        assert set(rows[label]["lengths"]) == {"4", "6"}
        assert rows[label]["params"] > 0
    for run in results["runs"]:
        assert run["loss_curve"] and (out / run["folder"] / "model.safetensors").exists()
    assert "refused" in rows["transformer pos_encoding=learned"]["lengths"]["6"]
    for label in ("lstm", "transformer pos_encoding=rope"):
        acc = rows[label]["lengths"]["6"]["val_accuracy"]["mean"]
        assert 0 <= acc <= 1
    assert "val_accuracy" in rows["transformer pos_encoding=learned"]["lengths"]["4"]
    for name in results["plots"]:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert set(results["plots"]) == {"length.png", "length_tokens.png", "loss.png"}
    assert "refused" in proc.stdout and "transformer pos_encoding=rope" in proc.stdout
    assert proc.stderr.count("[") >= 3  # one progress line per finished run


def test_a_task_without_lengths_is_compared_by_its_own_metric(zoo, tmp_path):
    out = tmp_path / "cmp"
    proc = zoo("compare", "gan-mlp", "--steps", "3", "--set", "hidden=8,16", "--out", out)
    results = json.loads((out / "results.json").read_text())
    assert results["metric"] == "val_modes" and results["lower_is_better"] is False
    assert results["eval_lengths"] == [None]
    for row in results["summary"]:
        assert 0 <= row["lengths"]["-"]["val_modes"]["mean"] <= 8
    assert results["plots"] == ["loss.png"]  # no plot against a length the task does not have
    assert not (out / "length.png").exists()
    header = proc.stdout.splitlines()[0].split()
    assert header[-1] == "val_modes" and "val_modes: higher is better" in proc.stdout


def test_match_params_brings_widths_to_the_first_models_count(tmp_path):
    results = compare(
        ["lstm", "transformer"],
        "parity",
        steps=1,
        batch_size=4,
        match_params=True,
        sets={"hidden_size": "48", "embed_dim": "48", "n_layer": "1", "val_size": "8"},
        out=tmp_path / "cmp",
    )
    lstm, transformer = results["variants"]
    assert "n_embd" in transformer["settings"]
    assert abs(transformer["params"] - lstm["params"]) < 0.15 * lstm["params"]
    built = zoo_core.load(
        tmp_path / "cmp" / f"transformer_n_embd-{transformer['settings']['n_embd']}-seed0"
    )
    assert zoo_core.count_parameters(built.model) == transformer["params"]


def test_match_params_needs_a_declared_width(tmp_path):
    # gan-mlp's spec declares no width: its hidden size is not taken for one by its name.
    with pytest.raises(ZooError, match="model 'gan-mlp' declares no width field"):
        compare(["gan-mlp"], sets={"hidden": "8,64"}, match_params=True, out=tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_data_fractions_sweep_the_lm_training_split(tmp_path):
    results = compare(
        ["lstm"],
        "lm",
        train_length=16,
        steps=2,
        batch_size=4,
        data_fractions=[0.01, 1.0],
        sets={"hidden_size": "8", "embed_dim": "8", "num_layers": "1"},
        out=tmp_path / "cmp",
    )
    assert [v["settings"] for v in results["variants"]] == [
        {"train_fraction": "0.01"},
        {"train_fraction": "1.0"},
    ]
    assert "data_fraction.png" in results["plots"]
    assert all("val_loss" in r["eval"]["16"] for r in results["runs"])


def test_sets_split_into_fixed_values_and_sweeps():
    assert split_sets({"a": "1", "b": "x, y"}) == ({"a": "1"}, {"b": ["x", "y"]})
    with pytest.raises(ZooError, match="empty value"):
        split_sets({"b": "x,"})
    with pytest.raises(ZooError, match="no compared model"):
        compare(["lstm"], "copy", sets={"n_embd": "8,16"}, steps=1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--steps", "0", "--steps must be at least 1, not 0"),
        ("--batch-size", "0", "--batch-size must be at least 1, not 0"),
        ("--lr", "-1", "--lr must be positive, not -1.0"),
    ],
)
def test_a_bad_training_budget_is_refused_before_any_run(zoo, tmp_path, option, value, message):
    out = tmp_path / "cmp"
    args = ["compare", "lstm", "--task", "parity", "--steps", "1", option, value, "--out", out]
    proc = zoo(*args, *LSTM_TINY, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"Error: {message}"
    assert not out.exists()


def test_when_every_run_fails_compare_exits_with_the_first_error(zoo, tmp_path):
    out = tmp_path / "cmp"
    proc = zoo(
        "compare", "lstm", "--task", "parity", "--steps", "1", "--set", "log_interval=0",
        "--seeds", "2", "--out", out, *LSTM_TINY, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: every run failed") and "log_interval must be at least 1" in last
    assert "val_accuracy" not in proc.stdout  # no table of dashes
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 2 and all("log_interval" in r["error"] for r in runs)


def _results(out):
    return json.loads((out / "results.json").read_text())


def test_ctrl_c_stops_the_comparison_and_resume_finishes_it(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "lstm", "--task", "parity", "--steps", "1000", "--seeds", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", *args, "--set", "checkpoint_interval=20", *LSTM_TINY,
         "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    checkpoints = out / "lstm-seed1" / "checkpoints"
    deadline = time.time() + 120
    while not (checkpoints.is_dir() and any(checkpoints.iterdir())):
        assert proc.poll() is None and time.time() < deadline, "the second run never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    # Ctrl-C stops the comparison, not just the run it was in; one line says how to go on.
    assert proc.returncode == 130 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1/2] lstm seed 0: "), err
    assert lines[1] == (
        f"Error: interrupted at lstm seed 1 (run 2 of 2); 1 finished run kept in "
        f"{out / 'results.json'}. Continue with: zoo compare --resume {out}"
    )
    assert [r["folder"] for r in _results(out)["runs"]] == ["lstm-seed0"]
    first = (out / "lstm-seed0" / "model.safetensors").read_bytes()

    done = run_zoo("compare", "--resume", out)
    assert "[1/2] lstm seed 0: " in done.stderr and "[2/2] lstm seed 1: " in done.stderr
    results = _results(out)
    assert [r["folder"] for r in results["runs"]] == ["lstm-seed0", "lstm-seed1"]
    assert not any("error" in r for r in results["runs"])
    assert results["summary"][0]["lengths"]  # the table and plots are made at the end
    assert (out / "lstm-seed0" / "model.safetensors").read_bytes() == first  # kept, not redone
    steps = [
        json.loads(line)["step"]
        for line in (out / "lstm-seed1" / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 1000  # continued, not restarted


def test_resume_evaluates_a_trained_run_and_restarts_one_stopped_before_its_first_step(tmp_path):
    out = tmp_path / "cmp"
    sets = {"hidden_size": "16", "embed_dim": "16", "val_size": "32"}
    whole = compare(["lstm"], "parity", steps=5, seeds=3, batch_size=8, sets=sets, out=out)
    # What Ctrl-C can leave: seed 1 trained but not yet evaluated, seed 2 stopped before its
    # first step, with only the files a run writes as it starts.
    cut = {**whole, "runs": whole["runs"][:1]}
    for key in ("summary", "plots", "folder"):
        cut.pop(key)
    (out / "results.json").write_text(json.dumps(cut))
    trained = {p.name: p.read_bytes() for p in (out / "lstm-seed1").iterdir() if p.is_file()}
    started = out / "lstm-seed2"
    for path in [*started.iterdir()]:
        if path.name != "config.json":
            subprocess.run(["rm", "-r", str(path)], check=True)
    (started / "config.json").write_text(
        json.dumps({k: v for k, v in json.loads((started / "config.json").read_text()).items()
                    if k != "metrics"})
    )  # fmt: skip

    again = resume(out)
    assert [r["folder"] for r in again["runs"]] == ["lstm-seed0", "lstm-seed1", "lstm-seed2"]
    # seed 1 was evaluated as it was, not trained again; seed 2 trained from the start, to the
    # same result as the first time (same seed).
    assert {p.name: p.read_bytes() for p in (out / "lstm-seed1").iterdir() if p.is_file()} == (
        trained
    )
    assert [r["eval"] for r in again["runs"]] == [r["eval"] for r in whole["runs"]]
    assert [row["lengths"] for row in again["summary"]] == [
        row["lengths"] for row in whole["summary"]
    ]


def test_resume_keeps_the_comparisons_settings(zoo, tmp_path):
    out = tmp_path / "cmp"
    zoo("compare", "lstm", "--task", "parity", "--steps", "2", "--out", out, *LSTM_TINY)
    for args, message in [
        (["--steps", "5"], "keeps the settings it was started with; drop --steps"),
        (["lstm", "--set", "x=1"], "drop MODELS, --set"),
    ]:
        proc = zoo("compare", "--resume", out, *args, check=False)
        assert proc.returncode == 1 and proc.stderr.strip().endswith(message), proc.stderr
    proc = zoo("compare", "--resume", tmp_path, check=False)
    assert proc.returncode == 1 and "is not a comparison folder" in proc.stderr
    proc = zoo("compare", check=False)
    assert proc.returncode == 1 and "name the models to compare" in proc.stderr
    # Resuming a finished comparison changes nothing and prints its table again.
    before = _results(out)
    again = zoo("compare", "--resume", out)
    assert "val_accuracy @" in again.stdout and _results(out) == before
    # While another process runs the comparison (here: holds its lock), a resume stops at once.
    with artifacts.locked(out):
        proc = zoo("compare", "--resume", out, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(
        "is being trained by another zoo process; wait for it "
        "to finish, or stop it (Ctrl-C saves a checkpoint) and "
        "resume again"
    )
    assert _results(out) == before


def test_lstm_mixer_carries_its_state_through_forward_step():
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=20,
        n_layer=2,
        n_head=2,
        n_embd=16,
        context_length=32,
        pos_encoding="sinusoidal",
        mixer="lstm",
    )
    model = TransformerLM(config).double().eval()
    assert not any("qkv" in name for name, _ in model.named_parameters())
    x = torch.randint(20, (2, 12))
    first, state = model.forward_step(x[:, :5])
    second, state = model.forward_step(x[:, 5:6], state)
    third, state = model.forward_step(x[:, 6:], state)
    assert torch.allclose(model(x), torch.cat([first, second, third], dim=1))
