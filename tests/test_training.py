"""The Trainer under faults: Ctrl-C, SIGKILL, damaged checkpoints, divergence, torchrun."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from zoo_testutil import TINY, run_zoo

import zoo_core
from zoo_core.data import scan

STEPS = "600"
FAST = [*TINY, "--set", "checkpoint_interval=25", "--set", "log_interval=5", "--quiet"]


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _steps(folder):
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if "loss" in json.loads(line)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    run_zoo("train", "lstm", "--steps", STEPS, "--out", out, *FAST)
    return out


def _start(out, *extra, train=("lstm", "--steps", STEPS, *FAST)):
    """`zoo train` in the background, in a process group of its own (as a terminal starts it);
    ``train``: what it trains (the tiny LSTM of these tests unless given)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "zoo_core", "train", *map(str, train), "--out", str(out), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_checkpoints(out, n=2, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        folder = out / "checkpoints"
        if (
            folder.is_dir()
            and len([p for p in folder.iterdir() if p.name.startswith("step-")]) >= n
        ):
            return
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_same_seed_same_loss_curve(tmp_path):
    overrides = {"hidden_size": 16, "embed_dim": 16, "seq_len": 16, "log_interval": 5}
    runs = [
        zoo_core.train(
            "lstm",
            steps=20,
            batch_size=4,
            out=tmp_path / f"r{i}",
            overrides=overrides,
            progress=False,
        )
        for i in range(2)
    ]
    curves = [
        [
            (r["step"], r["loss"])
            for r in map(json.loads, (a.path / "metrics.jsonl").open())
            if "loss" in r
        ]
        for a, _ in runs
    ]
    assert curves[0] == curves[1] and {5, 10, 15, 20} <= {s for s, _ in curves[0]}
    other = zoo_core.train(
        "lstm",
        steps=20,
        batch_size=4,
        out=tmp_path / "other",
        seed=1,
        overrides=overrides,
        progress=False,
    )[0]
    assert not _same(_weights(other.path), _weights(runs[0][0].path))


def _stop(out, signum):
    """Start a run in ``out``, send it ``signum`` once it has a checkpoint; its exit code, stderr
    and the step its message says it stopped at."""
    proc = _start(out)
    _wait_for_checkpoints(out, 1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    found = re.search(r"interrupted(?: by SIGTERM)? at step (\d+);", err)
    return proc.returncode, err, int(found[1]) if found else None


def test_ctrl_c_saves_and_resume_continues_the_run(tmp_path, uninterrupted):
    out = tmp_path / "run"
    code, err, stopped_at = _stop(out, signal.SIGINT)
    assert code == 130, err
    assert "interrupted at step" in err and "--resume" in err and "Traceback" not in err
    assert 0 < stopped_at < int(STEPS)
    # `zoo info` tells an unfinished run, how far it got and how to go on.
    trained = run_zoo("info", out).stdout.splitlines()[3]
    assert trained.startswith(f"  trained: {stopped_at:,} of {int(STEPS):,} steps in ")
    assert trained.endswith(f"unfinished (continue with: zoo train --resume {out})")
    run_zoo("train", "--resume", out, "--quiet")
    steps = _steps(out)
    assert steps == sorted(set(steps)) and steps[-1] == int(STEPS)  # one curve, no repeats
    assert _same(_weights(out), _weights(uninterrupted))


def test_sigterm_saves_like_ctrl_c_and_resume_is_bit_identical(tmp_path, uninterrupted):
    # What a scheduler sends a job it preempts, before SIGKILL.
    out = tmp_path / "run"
    code, err, stopped_at = _stop(out, signal.SIGTERM)
    assert code == 143, err  # 128 + SIGTERM, as a shell reports it
    assert "interrupted by SIGTERM at step" in err and "Traceback" not in err
    assert (out / "checkpoints" / f"step-{stopped_at:08d}").is_dir()
    run_zoo("train", "--resume", out, "--quiet")
    assert _same(_weights(out), _weights(uninterrupted))


def test_a_run_being_trained_is_not_trained_by_a_second_process(tmp_path):
    out = tmp_path / "run"
    first = _start(out, "--steps", "1000000")  # the last --steps counts: it trains until stopped
    try:
        _wait_for_checkpoints(out, 1)
        second = run_zoo("train", "--resume", out, "--steps", "2000000", check=False)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert "is being trained by another zoo process" in second.stderr
        assert first.poll() is None  # the first goes on, its folder untouched by the second
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    stopped_at = int(err.split("interrupted at step ")[1].split(";")[0])
    # The lock ended with the process: the run resumes.
    run_zoo("train", "--resume", out, "--steps", str(stopped_at + 1), "--quiet")
    assert _steps(out)[-1] == stopped_at + 1


def test_sigkill_then_resume_is_bit_identical(tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_checkpoints(out, 2)
    time.sleep(0.3)  # somewhere between checkpoints
    proc.kill()
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    run_zoo("train", "--resume", out, "--quiet")
    assert _same(_weights(out), _weights(uninterrupted))
    assert _steps(out) == _steps(uninterrupted)


SEQ2SEQ = {  # tiny sizes, dropout on: its random state must be restored too
    "transformer-seq2seq": ["--set", "n_embd=16", "--set", "n_head=2", "--set", "ffn=32"],
    "lstm-seq2seq": ["--set", "embed_dim=16", "--set", "hidden_size=16", "--set", "dropout=0.2"],
}


@pytest.mark.parametrize(
    "model", ["transformer-seq2seq", pytest.param("lstm-seq2seq", marks=pytest.mark.slow)]
)
def test_a_seq2seq_run_killed_then_resumed_is_bit_identical(tmp_path, model):
    train, test = scan.split("simple")
    for name, pairs in (("train", train[:400]), ("val", test[:40])):
        lines = [json.dumps({"source": s, "target": t}) for s, t in pairs]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    # Evaluated (greedy decoding) between checkpoints, so resuming replays steps around it.
    args = [model, "--data", tmp_path / "train.jsonl", "--val-data", tmp_path / "val.jsonl",
            "--steps", "80", "--batch-size", "8", *SEQ2SEQ[model], "--set",
            "checkpoint_interval=10", "--set", "eval_interval=20", "--set", "eval_batches=1",
            "--set", "log_interval=5", "--quiet"]  # fmt: skip
    full, out = tmp_path / "full", tmp_path / "run"
    run_zoo("train", *args, "--out", full)
    proc = _start(out, train=args)
    _wait_for_checkpoints(out, 1)
    proc.kill()  # somewhere after step 10, before its next checkpoint or while writing it
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _steps(out)[-1] < 80  # it stopped on the way
    run_zoo("train", "--resume", out, "--quiet")
    assert _same(_weights(out), _weights(full))
    assert _steps(out) == _steps(full)
    evaluations = [
        [
            (r["step"], r["val_loss"], r["val_bleu"])
            for r in map(json.loads, f.open())
            if "val_loss" in r
        ]
        for f in (full / "metrics.jsonl", out / "metrics.jsonl")
    ]
    assert evaluations[0] == evaluations[1] and len(evaluations[0]) >= 4


def test_a_run_that_used_its_time_resumes_only_with_more(tmp_path):
    out = tmp_path / "run"
    run_zoo("train", "lstm", "--time", "1", "--out", out, *FAST)
    proc = run_zoo("train", "--resume", out, "--quiet", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "already and --time is 1 s" in proc.stderr and "longer --time" in proc.stderr
    first = _steps(out)[-1]
    run_zoo("train", "--resume", out, "--time", "2", "--quiet")
    assert _steps(out)[-1] > first


def test_a_resume_keeps_its_model_task_data_and_folder(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("".join(f"line {i}: the quick brown fox\n" for i in range(300)))
    other = tmp_path / "other.txt"
    other.write_text(text.read_text())
    out = tmp_path / "run"
    run_zoo("train", "lstm", "--data", text, "--steps", "4", "--out", out, *FAST)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # Other settings than the run's are refused, all named in one line, not silently ignored.
    proc = run_zoo(
        "train", "resnet", "--resume", out, "--steps", "8", "--task", "parity", "--data", other,
        "--val-data", text, "--out", tmp_path / "elsewhere", check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    for fragment in ("the model resnet", "--task parity", "--data", "--val-data", "--out"):
        assert fragment in line, line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "elsewhere").exists()
    # Naming the run's own model, data and folder is harmless.
    run_zoo(
        "train", "lstm", "--resume", out, "--data", text, "--out", out, "--steps", "8", "--quiet"
    )
    assert _steps(out)[-1] == 8
    # Its data moved away: one line that says so, instead of an error about --data.
    text.rename(tmp_path / "moved.txt")
    proc = run_zoo("train", "--resume", out, "--steps", "12", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "mine.txt', which is not here; put it back" in proc.stderr


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    out = tmp_path / "run"
    run_zoo("train", "lstm", "--steps", "50", "--out", out, *FAST)
    # A finished run: resuming it again, or to fewer steps, is one clear error that changes
    # nothing in the run folder.
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for more in ([], ["--steps", "20"], ["--steps", "50"]):
        proc = run_zoo("train", "--resume", out, "--quiet", *more, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "has trained 50 steps already" in proc.stderr and "--steps above 50" in proc.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    checkpoints = sorted((out / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step-00000025", "step-00000050"]
    latest = checkpoints[-1] / "model.safetensors"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])  # truncated, as by a crash or a full disk
    proc = run_zoo("train", "--resume", out, "--steps", "60", "--quiet")
    assert "step-00000050" in proc.stderr and "damaged" in proc.stderr
    assert _steps(out)[-1] == 60
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == "step-00000060"


def test_a_non_finite_loss_stops_cleanly_and_keeps_good_checkpoints(tmp_path):
    out = tmp_path / "run"
    # A checkpoint at every step: the loss is finite at step 1 and explodes soon after.
    proc = run_zoo(
        "train",
        "lstm",
        "--steps",
        "200",
        "--out",
        out,
        *TINY,
        "--quiet",
        "--set",
        "checkpoint_interval=1",
        "--set",
        "log_interval=1",
        "--lr",
        "1e30",
        "--set",
        "warmup=0",
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    # The loss, or the weights after a step's update, became non-finite.
    found = re.search(
        r"became (nan|inf|non-finite) at step (\d+).*; the checkpoint of step (\d+) is kept", last
    )
    assert found, last
    kept = sorted((out / "checkpoints").glob("step-*"))
    assert kept and kept[-1].name == f"step-{int(found[3]):08d}" and int(found[3]) < int(found[2])
    for ckpt in kept:
        weights = load_file(str(ckpt / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in weights.values())


def test_a_run_that_fails_before_it_saved_anything_leaves_no_folder(tmp_path):
    # The loss explodes before the first log line and the first checkpoint.
    out = tmp_path / "run"
    proc = run_zoo(
        "train", "lstm", "--steps", "200", "--out", out, *FAST, "--lr", "1e30", check=False
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "nothing was saved" in proc.stderr.strip().splitlines()[-1]
    assert not out.exists()
    # Out of memory (a batch no machine can hold) is one error too; an empty --out folder that
    # was there before stays, empty.
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(zoo_core.ZooError, match=r"out of memory at step 1 .*nothing was saved"):
        zoo_core.train("lstm", steps=1, batch_size=10**11, out=empty, progress=False)
    assert empty.is_dir() and list(empty.iterdir()) == []
    proc = run_zoo(
        "train", "lstm", "--steps", "1", "--batch-size", str(10**11), check=False, cwd=tmp_path
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: out of memory at step 1 on cpu")
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(tmp_path, tiny_run):
    # As a run killed before its first checkpoint leaves it: its config, tokenizer, a log line.
    run = tmp_path / "run"
    run.mkdir()
    config = json.loads((tiny_run / "config.json").read_text())
    del config["metrics"]
    (run / "config.json").write_text(json.dumps(config))
    (run / "tokenizer.json").write_text((tiny_run / "tokenizer.json").read_text())
    (run / "metrics.jsonl").write_text('{"step": 20, "loss": 3.0}\n')
    proc = run_zoo("eval", run, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "has no weights yet" in proc.stderr and f"zoo train --resume {run}" in proc.stderr
    trained = run_zoo("info", run).stdout.splitlines()[3]
    assert trained == (
        f"  trained: 0 of 30 steps, unfinished (no checkpoint yet; start it again with: "
        f"zoo train --resume {run})"
    )
    run_zoo("train", "--resume", run, "--quiet")
    # It trained from the start, as the uninterrupted run did: the same weights, the same log.
    assert _same(_weights(run), _weights(tiny_run))
    assert _steps(run) == _steps(tiny_run)
    # A trained run whose checkpoints were removed is not started again over its weights.
    shutil.rmtree(run / "checkpoints")
    before = (run / "model.safetensors").read_bytes(), (run / "metrics.jsonl").read_bytes()
    proc = run_zoo("train", "--resume", run, "--steps", "60", check=False)
    assert proc.returncode == 1 and "has trained weights but no checkpoint" in proc.stderr
    assert (
        (run / "model.safetensors").read_bytes(),
        (run / "metrics.jsonl").read_bytes(),
    ) == before


@pytest.mark.slow
def test_torchrun_reports_once_and_stops_every_rank_on_errors_and_signals(tmp_path):
    # That two processes train what one does, for every reference model, is test_parallel.py's.
    args = ["--steps", "12", *TINY, "--set", "dropout=0", "--quiet"]
    two = run_zoo("train", "lstm", "--nproc", "2", "--out", tmp_path / "two", *args, cwd=tmp_path)
    assert two.stdout.count("saved to") == 1  # rank 0 alone reports
    assert _steps(tmp_path / "two") == sorted(set(_steps(tmp_path / "two")))  # one writer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two"]
    # A rank's error under torchrun: its one line and exit code, without torchrun's traceback.
    again = run_zoo(
        "train", "--resume", tmp_path / "two", "--nproc", "2", cwd=tmp_path, check=False
    )
    assert again.returncode == 1 and "has trained 12 steps already" in again.stderr
    # Both ranks stop on it; the line is printed once, and nothing else (no torchrun log lines).
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), again.stderr

    # Ctrl-C in the terminal (SIGINT to the whole process group): every rank stops at one step,
    # one line says how to go on, and that resume finishes the run.
    out = tmp_path / "ctrl-c"
    proc = _start(out, "--nproc", "2")
    _wait_for_checkpoints(out, 1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: interrupted at step "), err
    assert lines[0].endswith(f"Continue with: zoo train --resume {out} --nproc 2")
    run_zoo("train", "--resume", out, "--nproc", "2", "--quiet", cwd=tmp_path)
    steps = _steps(out)
    assert steps == sorted(set(steps)) and steps[-1] == int(STEPS)

    # SIGTERM to the launcher alone (a scheduler preempting the job) reaches every rank through
    # torchrun: they stop at one step with a checkpoint, as on Ctrl-C.
    out = tmp_path / "term"
    proc = _start(out, "--nproc", "2")
    _wait_for_checkpoints(out, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: interrupted by SIGTERM at step "), err
    stopped_at = int(lines[0].split("at step ")[1].split(";")[0])
    assert (out / "checkpoints" / f"step-{stopped_at:08d}").is_dir()


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB file system: room for a run's first files, not for its checkpoints."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_clear_error_with_nothing_half_written(small_disk):
    out = small_disk / "run"
    proc = run_zoo(
        "train",
        "lstm",
        "--steps",
        "100",
        "--out",
        out,
        *FAST,
        "--set",
        "hidden_size=128",
        "--set",
        "embed_dim=128",
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "No space left on device" in proc.stderr and "--resume" in proc.stderr
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no temporary files or folders
    for ckpt in (out / "checkpoints").glob("step-*"):  # what was kept is whole
        json.loads((ckpt / "state.json").read_text())


def test_an_output_path_under_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    proc = run_zoo("train", "lstm", "--out", tmp_path / "file" / "run", *FAST, check=False)
    assert proc.returncode == 1 and "cannot create the run folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_signal_to_a_training_with_no_run_folder_says_nothing_was_saved():
    # A training that writes no folder (the classifier a GAN fits for its metrics) has nothing
    # to resume: its message must not offer `zoo train --resume None`.
    from zoo_core.tasks.lm import LanguageModeling, LMOptions
    from zoo_core.training.config import TrainConfig
    from zoo_core.training.trainer import Trainer, TrainingInterrupted

    class Preempted(LanguageModeling):
        calls = 0

        def train_batch(self, batch_size, generator):
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # a real signal, to this process
            return super().train_batch(batch_size, generator)

    task = Preempted(LMOptions(seq_len=16))
    task.setup(None)
    model = zoo_core.create_model(
        "lstm", vocab_size=task.tokenizer.vocab_size, hidden_size=16, embed_dim=16
    )
    config = TrainConfig(steps=50, batch_size=2, eval_interval=0, log_interval=50)
    with pytest.raises(TrainingInterrupted) as caught:
        Trainer(model, task, config, None, progress=False).fit()
    assert caught.value.exit_code == 143
    message = str(caught.value)
    assert message.startswith("interrupted by SIGTERM at step ") and "nothing was saved" in message
    assert "--resume" not in message
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
