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


# Repo ids the Hub refuses; and a script (for a hub Client's python) that hands each to one
# function of zoo_core and prints the errors as JSON: every id in one process, where one
# command line each would start the zoo six times.
BAD_REPO_IDS = ("acme/a.git", "acme/a--b", "a--b/c", "acme/a-", "acme/a.", "acme/" + "x" * 97)
REFUSED = (
    "import json, sys\n"
    "from zoo_core.errors import ZooError\n"
    "from zoo_core.{module} import {function}\n"
    "found = []\n"
    "for bad in sys.argv[{first}:]:\n"
    "    try:\n"
    "        {function}({before}bad)\n"
    "        found.append(None)\n"
    "    except ZooError as exc:\n"
    "        found.append(str(exc))\n"
    "print(json.dumps(found))"
)
