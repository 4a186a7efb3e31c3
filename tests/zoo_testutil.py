"""Helpers shared by the tests: the real `zoo` command in a subprocess."""

import os
import subprocess
import sys

# Tiny LSTM settings: end-to-end runs take seconds, not minutes.
TINY = [
    "--set",
    "hidden_size=32",
    "--set",
    "embed_dim=32",
    "--set",
    "seq_len=32",
    "--batch-size",
    "8",
]


def run_zoo(*args, cwd=None, env=None, check=True, timeout=300, input=None):
    """Run the real `zoo` command in a subprocess (``input``: its stdin); return the
    CompletedProcess."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "zoo_core", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"zoo {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}"
        )
    return proc
