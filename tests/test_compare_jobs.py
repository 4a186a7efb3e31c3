"""`zoo compare --jobs N`: runs in child processes give what one process gives; a run that fails
or crashes in its process is recorded; Ctrl-C stops every child with a checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from zoo_core.cli import cli
from zoo_core.compare import compare, resume
from zoo_core.errors import ZooError

TINY = {"hidden_size": "16", "embed_dim": "16", "val_size": "32"}
TINY_TRANSFORMER = {**TINY, "n_layer": "1", "n_head": "2", "n_embd": "16"}


def _results(out):
    return json.loads((out / "results.json").read_text())


def _hidden(out):
    """What a child process leaves in the comparison folder: its log, its record."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_runs_in_two_processes_give_what_one_process_gives(tmp_path):
    options = dict(train_length=4, steps=20, seeds=2, batch_size=8, sets=TINY_TRANSFORMER)
    one = compare(["lstm", "transformer"], "copy", out=tmp_path / "one", **options)
    seen = []
    two = compare(
        ["lstm", "transformer"],
        "copy",
        out=tmp_path / "two",
        jobs=2,
        on_run=lambda run, done, total: seen.append((done, total)),
        **options,
    )
    plan = ["lstm-seed0", "lstm-seed1", "transformer-seed0", "transformer-seed1"]
    assert [r["folder"] for r in _results(tmp_path / "two")["runs"]] == plan
    runs = zip(_results(tmp_path / "one")["runs"], _results(tmp_path / "two")["runs"], strict=True)
    for a, b in runs:
        assert "error" not in b and b["eval"] == a["eval"] and b["loss_curve"] == a["loss_curve"]
    assert [row["lengths"] for row in two["summary"]] == [row["lengths"] for row in one["summary"]]
    assert "jobs" not in json.dumps(_results(tmp_path / "two"))  # it changes no result
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert _hidden(tmp_path / "two") == []


def test_a_run_that_fails_or_crashes_in_its_process_is_recorded_and_the_others_finish(
    tmp_path, monkeypatch
):
    # The run of log_interval=10 dies as its process starts, as a crash would.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if sys.argv[0] == '-m' and sys.argv[2:3] == ['2']:\n"
        "    print('something broke\\n', file=sys.stderr, flush=True)\n"
        "    os._exit(3)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "cmp"
    results = compare(
        ["lstm"], "parity", steps=5, batch_size=8, sets={**TINY, "log_interval": "0,5,10"},
        out=out, jobs=2,
    )  # fmt: skip
    failed, done, crashed = results["runs"]
    assert failed["error"] == "log_interval must be at least 1, not 0"  # as in one process
    assert "error" not in done and done["eval"]
    assert crashed["error"] == "its process ended with exit code 3: something broke"
    assert _hidden(out) == [".lstm_log_interval-10-seed0.log"]  # kept: it says what happened
    assert "error" in results["summary"][2] and results["summary"][1]["lengths"]


def test_ctrl_c_stops_every_run_and_resume_finishes_them(tmp_path):
    out = tmp_path / "cmp"
    sets = [f"--set={k}={v}" for k, v in {**TINY, "checkpoint_interval": "10"}.items()]
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", "compare", "lstm", "--task", "parity", "--steps", "300",
         "--seeds", "2", "--jobs", "2", *sets, "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
    )  # fmt: skip
    deadline = time.time() + 120
    while not any(any((out / f"lstm-seed{seed}" / "checkpoints").glob("*")) for seed in (0, 1)):
        assert proc.poll() is None and time.time() < deadline, "no run reached a checkpoint"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole group, children too
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: interrupted at lstm seed 0"), err
    assert lines[0].endswith(
        f"0 finished runs kept in {out / 'results.json'}. Continue with: zoo compare --resume {out}"
    )
    assert _results(out)["runs"] == [] and _hidden(out) == []

    # (in this process, which has imported PyTorch already: the test's time is the children's)
    done = CliRunner().invoke(cli, ["compare", "--resume", str(out), "--jobs", "2"])
    assert done.exit_code == 0 and "[2/2] lstm seed" in done.stderr, done.output
    results = _results(out)
    assert [r["folder"] for r in results["runs"]] == ["lstm-seed0", "lstm-seed1"]
    assert all(r["eval"]["16"]["val_accuracy"] >= 0 for r in results["runs"])
    assert _hidden(out) == []
    for run in results["runs"]:
        steps = [s for s, _ in run["loss_curve"]]
        assert steps == sorted(set(steps)) and steps[-1] == 300  # continued, not restarted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "lstm", "--jobs", "0"], "--jobs must be at least 1, not 0"),
        (["study", "induction", "--jobs", "two"], "--jobs takes a number of processes or auto"),
    ],
)
def test_a_bad_number_of_jobs_is_one_line(tmp_path, args, message):
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_jobs_below_one_is_refused_by_resume_too(tmp_path):
    with pytest.raises(ZooError, match="--jobs must be at least 1, not 0"):
        resume(tmp_path, jobs=0)
