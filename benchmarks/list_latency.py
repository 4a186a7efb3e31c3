"""`zoo list` latency beside `python -c "import torch"`: listing must never import torch.

    python benchmarks/list_latency.py [--repeats 7]

Goal: `zoo list` takes at most one fifth of the time of importing torch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(command: list[str], repeats: int) -> float:
    """Median wall time of a command, in seconds (after one untimed warm-up run)."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    zoo = timed([sys.executable, "-m", "zoo_core", "list"], args.repeats)
    torch = timed([sys.executable, "-c", "import torch"], args.repeats)
    print(f"zoo list      {zoo * 1000:8.0f} ms")
    print(f"import torch  {torch * 1000:8.0f} ms")
    print(f"ratio         {zoo / torch:8.3f}   (goal: at most 0.200)")


if __name__ == "__main__":
    main()
