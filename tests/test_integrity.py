"""A user's own runs under unlucky timing: kills, signals, read-only files, racing commands."""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from zoo_core import artifacts


def _run_as_nobody(code: str, folder: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python process that has dropped root for the user ``nobody``, who owns
    ``folder``: file permissions are enforced there, as for any user but root. The modules it
    uses are imported first, while the interpreter's files (perhaps under /root) are readable."""
    nobody = pwd.getpwnam("nobody")
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    prelude = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from zoo_core import artifacts
        os.setgid({nobody.pw_gid})
        os.setgroups([])
        os.setuid({nobody.pw_uid})
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(folder)},
    )


@pytest.mark.skipif(
    not hasattr(os, "setuid") or os.geteuid() != 0,
    reason="needs root to become another user (as a non-root user, the plain write checks it)",
)
def test_atomic_write_replaces_a_read_only_file_as_a_non_root_user():
    # tmp_path is private to root: the folder must be one that nobody can reach and own.
    folder = Path(tempfile.mkdtemp(prefix="zoo-readonly-"))
    try:
        os.chmod(folder, 0o755)
        target = folder / "config.json"
        proc = _run_as_nobody(
            f"""
            target = Path({str(target)!r})
            target.write_text("old")
            target.chmod(0o444)
            artifacts.atomic_write(target, lambda p: p.write_text("new"))
            assert target.read_text() == "new"
            assert target.stat().st_mode & 0o777 == 0o444  # it keeps the permissions it had
            assert target.stat().st_uid == os.getuid()  # and was written by nobody
            """,
            folder,
        )
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["config.json"]  # no temporary left
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_atomic_write_keeps_a_read_only_mode():
    # The same write as root, where the mode is not enforced: the mode still carries over.
    folder = Path(tempfile.mkdtemp(prefix="zoo-readonly-"))
    try:
        target = folder / "f"
        target.write_text("old")
        target.chmod(0o444)
        artifacts.atomic_write(target, lambda p: p.write_text("new"))
        assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o444
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- checkpoints -----------------------------------------------------------------------------------
def _tiny_training(seed: int = 0):
    """A real model, optimizer and data generator, one step trained: a checkpoint's contents."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, {"model": opt}, torch.Generator().manual_seed(seed)


def _save(folder: Path, step: int, seed: int = 0, keep: int = 2) -> None:
    from zoo_core.training import checkpoint

    model, optimizers, generator = _tiny_training(seed)
    checkpoint.save(folder, step, model, optimizers, generator, {"elapsed": 1.0}, keep=keep)


def _resumed_step(folder: Path) -> int:
    from zoo_core.training import checkpoint

    model, optimizers, generator = _tiny_training(seed=99)
    return checkpoint.load_latest(folder, model, optimizers, generator)["step"]


def test_checkpoints_past_10_to_the_8_steps_are_ordered_by_their_number(tmp_path):
    from zoo_core.training import checkpoint

    # `--time` sets the steps to 10**12: step numbers outgrow the names' eight digits.
    for step in (99_999_999, 100_000_000, 100_000_001):
        _save(tmp_path, step, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "step-100000000",
        "step-100000001",
    ]  # the oldest was pruned, not the newest
    assert checkpoint.newest_state(tmp_path)["step"] == 100_000_001
    assert _resumed_step(tmp_path) == 100_000_001


# A second save of step 5 (a Ctrl-C right after a resume), SIGKILLed at its kill_at-th rename or
# folder removal in the checkpoints folder: each moment a kill can stop it at.
_KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import torch
from zoo_core.training import checkpoint

folder, kill_at = Path(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(1)
model = torch.nn.Linear(3, 2)
opt = torch.optim.AdamW(model.parameters(), lr=0.1)
model(torch.randn(4, 3)).sum().backward()
opt.step()
seen = 0

def kill(event, args):
    global seen
    if event in ("os.rename", "shutil.rmtree") and Path(args[0]).parent == folder:
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(kill)
checkpoint.save(folder, 5, model, {"model": opt}, torch.Generator(), {"elapsed": 2.0}, keep=1)
"""


def test_a_kill_while_a_checkpoint_of_the_same_step_is_replaced_loses_nothing(tmp_path):
    import torch

    from zoo_core.training import checkpoint

    old, new = (_tiny_training(seed)[0].state_dict() for seed in (0, 1))
    folders, kill_at = [], 1
    while True:
        folder = tmp_path / f"kill-{kill_at}"
        _save(folder, 5, seed=0, keep=1)
        proc = subprocess.run(
            [sys.executable, "-c", _KILLED_SAVE, str(folder), str(kill_at)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode in (0, -9), proc.stderr
        # A checkpoint of step 5 is found and resumes, with the old weights or the new ones.
        state = checkpoint.newest_state(folder)
        assert state is not None and state["step"] == 5, f"no checkpoint after kill {kill_at}"
        model, optimizers, generator = _tiny_training(seed=99)
        assert checkpoint.load_latest(folder, model, optimizers, generator)["step"] == 5
        loaded = model.state_dict()
        assert any(all(torch.equal(loaded[k], w[k]) for k in w) for w in (old, new))
        folders.append(folder)
        if proc.returncode == 0:  # it got through every moment without a kill
            break
        kill_at += 1
    assert kill_at > 3  # killed at each moment: moving the old one aside, naming the new one...
    for folder in folders:
        # The next save puts back what was moved aside and clears what was left half-done.
        _save(folder, 6, seed=0, keep=1)
        assert sorted(p.name for p in folder.iterdir()) == ["step-00000006"]


# -- comparisons -----------------------------------------------------------------------------------
_HOLD_LOCK = """
import sys, time
from zoo_core import artifacts

with artifacts.locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_comparison_in_the_same_folder_writes_nothing_there(tmp_path):
    from zoo_testutil import run_zoo

    out = tmp_path / "cmp"
    out.mkdir()
    # Another comparison of that --out has taken the folder's lock and not yet written its plan.
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout.readline().strip() == "locked"
        proc = run_zoo(
            "compare", "lstm", "--task", "parity", "--steps", "1", "--out", out, check=False
        )
    finally:
        first.kill()
        first.wait(timeout=30)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "is being trained by another zoo process" in proc.stderr
    assert list(out.iterdir()) == []  # no results.json over the first one's


# -- metrics and weights ---------------------------------------------------------------------------
FAST = ["--set", "checkpoint_interval=25", "--set", "log_interval=5", "--quiet"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_a_resumed_run_stopped_after_a_checkpoint_has_no_final_metrics(tmp_path, signum):
    from zoo_testutil import TINY, run_zoo

    run = tmp_path / "run"
    run_zoo("train", "lstm", "--steps", "30", "--out", run, *TINY, *FAST)
    config = json.loads((run / "config.json").read_text())
    old = config["metrics"]
    assert old and "val_loss" in (run / "README.md").read_text()
    resumed = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", "train", "--resume", str(run), "--steps", "2000"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # a checkpoint past the finished step 30: new weights in model.safetensors
        deadline = time.time() + 120
        while not (run / "checkpoints" / "step-00000050").is_dir() and time.time() < deadline:
            time.sleep(0.05)
    finally:
        resumed.send_signal(signum)
        _, err = resumed.communicate(timeout=60)
    assert resumed.returncode in (130, -signal.SIGKILL), err
    # The metrics of step 30's weights are not left to describe the new ones.
    assert "metrics" not in json.loads((run / "config.json").read_text())
    card = (run / "README.md").read_text()
    assert "Unfinished" in card and "eval_results" not in card
    assert all(f"{name}: " not in card for name in old)
    info = json.loads(run_zoo("info", run, "--json").stdout)
    assert info["finished"] is False and info["steps"] >= 50 and info["metrics"] == {}
    pushed = run_zoo("push", run, "acme/run", check=False, env={"HF_HUB_OFFLINE": "0"})
    assert pushed.returncode == 1 and f"'{run}' is unfinished (trained" in pushed.stderr
    # Finishing it gives it final metrics again, of its new weights. (On a busy machine the
    # signal may land some checkpoints after step 50: finish a little past where it stopped.)
    run_zoo("train", "--resume", run, "--steps", str(info["steps"] + 10), "--quiet")
    config = json.loads((run / "config.json").read_text())
    assert config["metrics"] and config["metrics"] != old
    assert "Unfinished" not in (run / "README.md").read_text()
