"""Images decoded in worker processes: images/s and peak memory on a folder of generated JPEGs.

Generates ``--num`` JPEGs (``--pixels`` square, seeded noise and shapes, in ``--classes`` class
folders), then:

1. Images/s of the image task's training batches (``train_batch``: decode, resize, normalise,
   augment) at ``--image-size``, with ``--workers`` decoding processes (the next batch decoded
   while this one is used), beside the same loop decoding in its own process
   (``num_workers=0``). Best of ``--repeats`` interleaved runs of ``--batches`` batches each.
2. ``zoo train resnet --data FOLDER --set workers=N --steps S`` in a process of its own: its
   peak resident memory against the folder's size on disk and the size the images would take
   decoded.

    python benchmarks/image_loading.py                        # 50,000 JPEGs
    python benchmarks/image_loading.py --num 5000 --workers 2

The folder is deleted at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PEAK = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(f"RESULT {code} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
"""


def generate(folder: Path, num: int, pixels: int, classes: int) -> None:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for k in range(classes):
        (folder / f"class{k}").mkdir(parents=True)
    for i in range(num):
        k = i % classes
        noise = rng.integers(0, 256, (pixels, pixels, 3), dtype=np.uint8)
        image = Image.fromarray(noise)
        draw = ImageDraw.Draw(image)
        a, b = sorted(rng.integers(0, pixels, 2))
        draw.ellipse((a, a, b + 4, b + 4), fill=(40 * k % 256, 200, 90))
        image.save(folder / f"class{k}" / f"{i:06d}.jpg", quality=85)


def images_per_second(task, batch_size: int, batches: int, workers: int) -> float:
    task.train_x.workers = workers  # 0: the same loop, decoding in this process
    generator = torch.Generator().manual_seed(0)
    task.train_batch(batch_size, generator)  # warm: the pool started, the first prefetch made
    start = time.perf_counter()
    for _ in range(batches):
        task.train_batch(batch_size, generator)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=50_000)
    parser.add_argument("--pixels", type=int, default=96)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from zoo_core.tasks.image import ImageClassification, ImageOptions

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-images-"))
    try:
        folder = work / "images"
        start = time.perf_counter()
        generate(folder, args.num, args.pixels, args.classes)
        on_disk = sum(p.stat().st_size for p in folder.rglob("*.jpg"))
        print(
            f"{args.num:,} JPEGs of {args.pixels}x{args.pixels}: {on_disk / 2**20:,.0f} MiB "
            f"(made in {time.perf_counter() - start:,.0f} s)"
        )

        class Config:
            image_size, in_channels, num_classes = args.image_size, 3, args.classes

        task = ImageClassification(ImageOptions(workers=args.workers))
        task.setup(str(folder))
        task.bind(Config())
        best = {0: 0.0, args.workers: 0.0}
        for _ in range(args.repeats):
            for workers in best:
                rate = images_per_second(task, args.batch_size, args.batches, workers)
                best[workers] = max(best[workers], rate)
        task.train_x.close()
        plain, pooled = best[0], best[args.workers]
        print(
            f"training batches at {args.image_size}x{args.image_size}: {pooled:,.0f} images/s "
            f"with {args.workers} workers, {plain:,.0f} images/s decoding in the loop's own "
            f"process (num_workers=0); ratio {pooled / plain:.2f}"
        )

        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        argv = [sys.executable, "-m", "zoo_core", "train", "resnet", "--data", str(folder),
                "--set", f"workers={args.workers}", "--steps", str(args.steps), "--quiet",
                "--device", "cpu", "--out", str(work / "run")]  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-c", PEAK, *argv], env=env, capture_output=True, text=True
        )
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if not line or line[-1].split()[1] != "0":
            raise SystemExit(f"zoo train failed:\n{proc.stdout}\n{proc.stderr}")
        peak = int(line[-1].split()[2]) * 1024
        decoded = args.num * 3 * args.image_size**2
        print(
            f"zoo train resnet, {args.steps} steps, {args.workers} workers: peak resident "
            f"{peak / 2**20:,.0f} MiB (largest process); the folder {on_disk / 2**20:,.0f} MiB "
            f"({peak / on_disk:.2f} x), its images decoded at {args.image_size}x"
            f"{args.image_size} {decoded / 2**20:,.0f} MiB"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
