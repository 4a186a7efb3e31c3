"""``zoo train --nproc N``: run the same command under torchrun, one process per device."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zoo_core.errors import ZooError

RANK_ERRORS = "ZOO_RANK_ERRORS"  # the folder where ranks leave their error lines


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def threads_per_process(processes: int) -> str:
    """OMP_NUM_THREADS for each of ``processes`` sharing this machine: the user's own setting if
    there is one, else the usable cores shared out (at least one each)."""
    return os.environ.get("OMP_NUM_THREADS") or str(max(1, usable_cores() // processes))


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, name: str | None, out: str | None, resume: str | None) -> int:
    """Start torchrun on this machine with the current ``zoo train`` arguments; its exit code."""
    if nproc < 1:
        raise ZooError(f"--nproc must be at least 1, not {nproc}")
    args = _without_nproc(sys.argv[1:])
    if out is None and resume is None:
        # Every rank must agree on the folder: choose it here (rank 0 creates it).
        out = str(Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        args += ["--out", out]
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: talk over loopback
    if nproc > 1:  # share the cores (torchrun would set 1, with a warning)
        env["OMP_NUM_THREADS"] = threads_per_process(nproc)
    errors = tempfile.mkdtemp(prefix="zoo-rank-errors-")
    env[RANK_ERRORS] = errors  # each rank's Error line goes here; the launcher prints it once
    command = [
        sys.executable,
        "-m",
        "zoo_core._torchrun",  # torch.distributed.run, less its traceback after a rank's error
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "zoo_core",
        *args,
    ]
    # Ctrl-C reaches every process of the terminal's group: the ranks save a checkpoint and stop,
    # torchrun reports. This process waits for that rather than being interrupted (and killing
    # torchrun mid-report, as subprocess.call would). A SIGTERM sent to this process alone is
    # passed on to torchrun, which passes it to the ranks: they checkpoint and stop as well.
    # (Set here only after the start: a child would inherit an ignored signal.)
    try:
        with subprocess.Popen(command, env=env) as proc:
            previous = {
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(
                    signal.SIGTERM, lambda signum, frame: proc.send_signal(signal.SIGTERM)
                ),
            }
            try:
                return proc.wait()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
    finally:
        shutil.rmtree(errors, ignore_errors=True)


def report_rank_error(message: str) -> bool:
    """Under ``zoo train --nproc``, keep a rank's error line for the launcher, which prints each
    different line once (every rank usually fails the same way). False when not under it."""
    folder, rank = os.environ.get(RANK_ERRORS), os.environ.get("RANK")
    if not folder or rank is None or not os.path.isdir(folder):
        return False
    try:
        Path(folder, f"rank-{int(rank):05d}.txt").write_text(message, encoding="utf-8")
    except (OSError, ValueError):
        return False
    return True


def rank_errors() -> list[str]:
    """The error lines the ranks kept, each once, in rank order; a line that not every rank
    printed names its ranks."""
    folder = os.environ.get(RANK_ERRORS)
    if not folder or not os.path.isdir(folder):
        return []
    said: dict[str, list[int]] = {}
    files = sorted(Path(folder).glob("rank-*.txt"))
    for f in files:
        said.setdefault(f.read_text(encoding="utf-8"), []).append(int(f.stem.split("-")[1]))
    if len(said) == 1:
        return list(said)
    return [f"{line} (rank {', '.join(map(str, ranks))})" for line, ranks in said.items()]
