"""``zoo train --nproc N``: run the same command under torchrun, one process per device."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from zoo_core.errors import ZooError


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
    return subprocess.call(command, env=env)
