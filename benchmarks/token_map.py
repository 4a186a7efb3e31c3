"""A corpus larger than memory: `zoo train` on a generated text file, and tokenisation speed.

Generates a text file of ``--size-mb`` megabytes (seeded English-like lines), then, each in a
process of its own so that its peak resident memory is its own:

1. ``zoo train lstm --data FILE --steps 50``, with an empty token-map cache: tokenising the file
   into the token map and training. Peak resident memory against the file's size (goal: at most
   0.5x): the process's own high-water mark, and the sum over it and any processes it starts,
   sampled every 20 ms. Beside it, the baseline: a plain PyTorch loop of the same model for the
   same steps on random ids, with no data at all.
2. Tokenisation throughput in MB/s into the token map: the ``char`` tokenizer on the whole file,
   and a ``bpe`` tokenizer (fitted on the text) on its first ``--bpe-mb`` megabytes beside the
   ``tokenizers`` library's own batch encoder run alone on the same text, in chunks of the same
   size, counting its ids (no file). Its chunks are cut anywhere, the zoo's at line starts, so
   the two token counts differ by a few.
3. With ``--old`` (small sizes only: it needs many times the file's size), the in-memory path the
   lm task had before token maps: the whole text, a Python list of ids, one int64 tensor.

    python benchmarks/token_map.py --size-mb 1024          # the 1 GB benchmark
    python benchmarks/token_map.py --size-mb 1024 --bpe-mb 20   # bpe compared on 20 MB of it
    python benchmarks/token_map.py --size-mb 50 --old      # a smaller one, with the old path

The generated file and the caches are deleted at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = (
    "the a cat dog sat on mat and ran to of in was it he she they said big small red green "
    "house tree river time day night story little girl boy friend happy sad saw went home"
).split()

# Each measurement runs in a child; the child's own peak resident set (VmHWM, from the kernel:
# that of its largest process) is printed by a wrapper, which also samples the resident sets of
# all the processes it started (any workers included) every 20 ms and prints their largest sum.
PEAK = """
import os, resource, subprocess, sys, threading, time

def tree_kib(root):
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(entry)
            except OSError:
                pass
    total, todo = 0, [str(root)]
    while todo:
        pid = todo.pop()
        todo += parents.get(int(pid), [])
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total

start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
tree = [0]
def sample():
    while proc.poll() is None:
        tree[0] = max(tree[0], tree_kib(proc.pid))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
code = proc.wait()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(f"RESULT {code} {seconds:.3f} {peak} {tree[0]}")
"""

ZOO_TOKENIZE = """
import sys, time
from zoo_core.data import tokens
from zoo_core.data.text import iter_text
from zoo_core.tokenizers.base import fit_tokenizer
path, name, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3]) or None
start = time.perf_counter()
tokenizer = fit_tokenizer(name, vocab, iter_text(path))
fitted = time.perf_counter()
(part,) = tokens.token_maps("bench", lambda: iter_text(path), tokenizer, what=path)
end = time.perf_counter()
print(f"FIT {fitted - start:.3f} SECONDS {end - fitted:.3f} TOKENS {len(part.ids)}")
"""

PLAIN_TOKENIZE = """
import sys, time
from zoo_core.data import tokens
from zoo_core.data.text import iter_text
from zoo_core.tokenizers.base import fit_tokenizer
path, vocab = sys.argv[1], int(sys.argv[2])
tok = fit_tokenizer("bpe", vocab, iter_text(path))._tok  # the tokenizers.Tokenizer itself
start = time.perf_counter()
count, batch = 0, []
with open(path, encoding="utf-8") as f:
    while chunk := f.read(tokens.CHUNK_CHARS):
        batch.append(chunk)
        if len(batch) == tokens.BATCH_CHUNKS:
            count += sum(len(e.ids) for e in tok.encode_batch(batch, add_special_tokens=False))
            batch = []
count += sum(len(e.ids) for e in tok.encode_batch(batch, add_special_tokens=False))
print(f"SECONDS {time.perf_counter() - start:.3f} TOKENS {count}")
"""

# The baseline: the same model (the zoo's lstm at its defaults) trained for the same steps with
# batches of the same shape, by a plain PyTorch loop on random ids: no data, no zoo.
PLAIN_TRAIN = """
import sys, torch
import torch.nn.functional as F
from zoo_core.catalog import get_model_spec, model_class
spec = get_model_spec("lstm")
cls = model_class(spec)
model = cls(cls.config_class(**spec.defaults))
train = spec.train_defaults
optimizer = torch.optim.AdamW(model.parameters(), lr=train["lr"])
ids = torch.randint(0, model.config.vocab_size, (train["batch_size"], train["seq_len"] + 1))
for _ in range(int(sys.argv[1])):
    out = model(ids[:, :-1])
    logits = out[0] if isinstance(out, tuple) else out
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""

OLD_PATH = """
import sys, torch
from zoo_core.data.text import read_text, split
from zoo_core.tokenizers.base import fit_tokenizer
text = read_text(sys.argv[1])
train, val = split(text, 0.1)
tokenizer = fit_tokenizer("char", None, train)
ids = torch.tensor(tokenizer.encode(train), dtype=torch.long)
print(f"TOKENS {len(ids)}")
"""


def generate(path: Path, size: int, seed: int = 0) -> None:
    """About ``size`` bytes of lines drawn (seeded) from 50,000 made-up sentences."""
    rng = random.Random(seed)
    pool = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))).capitalize() + ".\n"
        for _ in range(50_000)
    ]
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < size:
            block = "".join(rng.choices(pool, k=20_000))
            f.write(block)
            written += len(block)


def measured(argv: list[str], env: dict[str, str]) -> tuple[int, float, int, str]:
    """(exit code, seconds, peak resident KiB, output) of ``argv`` in a process of its own; the
    output ends with a line ``TREE KiB``, the largest sampled sum over it and its children."""
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, *argv], env=env, capture_output=True, text=True
    )
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not result:
        raise SystemExit(f"measurement failed:\n{proc.stdout}\n{proc.stderr}")
    _, code, seconds, peak, tree = result[-1].split()
    return int(code), float(seconds), int(peak), f"{proc.stdout}{proc.stderr}\nTREE {tree}\n"


def field(output: str, name: str) -> float:
    for line in output.splitlines():
        parts = line.split()
        if name in parts:
            return float(parts[parts.index(name) + 1])
    raise SystemExit(f"no {name} in:\n{output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--vocab", type=int, default=1024, help="bpe vocabulary (throughput)")
    parser.add_argument(
        "--bpe-mb",
        type=float,
        default=1024,
        help="megabytes of the corpus the bpe comparison reads",
    )
    parser.add_argument("--old", action="store_true", help="also the in-memory path of before")
    parser.add_argument("--keep", action="store_true", help="keep the generated file and caches")
    parser.add_argument("--train-only", action="store_true", help="measure zoo train alone")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-", dir=args.dir))
    try:
        corpus = work / "corpus.txt"
        generate(corpus, int(args.size_mb * 1e6))
        size = corpus.stat().st_size
        mb = size / 1e6
        print(f"corpus: {mb:,.1f} MB ({corpus})")
        env = {**os.environ, "ZOO_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}
        zoo = [sys.executable, "-m", "zoo_core"]

        # A small validation file: the final evaluation reads all of its validation data, and
        # a held-out tenth of a gigabyte would take an hour on a CPU.
        val = work / "val.txt"
        generate(val, 200_000, seed=1)
        code, seconds, peak, out = measured(
            [*zoo, "train", "lstm", "--data", str(corpus), "--val-data", str(val),
             "--steps", str(args.steps), "--quiet", "--out", str(work / "run"), "--device", "cpu"],
            env,
        )  # fmt: skip
        if code:
            raise SystemExit(f"zoo train failed:\n{out}")
        peak_bytes, tree_bytes = peak * 1024, field(out, "TREE") * 1024
        print(
            f"zoo train lstm, {args.steps} steps (tokenising included): {seconds:,.1f} s, peak "
            f"resident {peak_bytes / 2**20:,.0f} MiB = {peak_bytes / size:.2f} x the file "
            f"(its processes together, sampled: {tree_bytes / 2**20:,.0f} MiB = "
            f"{tree_bytes / size:.2f} x)"
        )
        _, plain_seconds, plain_peak, _ = measured(
            [sys.executable, "-c", PLAIN_TRAIN, str(args.steps)], env
        )
        plain_bytes = plain_peak * 1024
        print(
            f"plain PyTorch loop of the same model, {args.steps} steps on random ids, no data: "
            f"{plain_seconds:,.1f} s, peak resident {plain_bytes / 2**20:,.0f} MiB = "
            f"{plain_bytes / size:.2f} x the file; the zoo with the data adds "
            f"{(peak_bytes - plain_bytes) / 2**20:+,.0f} MiB"
        )
        bins = sum(p.stat().st_size for p in (work / "cache").rglob("*.bin"))
        print(f"token map on disk: {bins / 2**20:,.0f} MiB ({bins / size:.2f} x the file)")

        if args.train_only:
            return
        env_all = {k: v for k, v in env.items() if k != "OMP_NUM_THREADS"}
        shutil.rmtree(work / "cache", ignore_errors=True)
        _, _, char_peak, out = measured(
            [sys.executable, "-c", ZOO_TOKENIZE, str(corpus), "char", "0"], env_all
        )
        print(
            f"char tokenisation into the token map: {mb / field(out, 'SECONDS'):,.1f} MB/s "
            f"(fitting, one pass over the text: {field(out, 'FIT'):,.1f} s; peak resident "
            f"{char_peak / 1024:,.0f} MiB)"
        )
        shutil.rmtree(work / "cache", ignore_errors=True)
        small = corpus
        if args.bpe_mb < args.size_mb:
            small = work / "small.txt"
            with open(corpus, "rb") as f, open(small, "wb") as out_file:
                out_file.write(f.read(int(args.bpe_mb * 1e6)).rsplit(b"\n", 1)[0] + b"\n")
        small_mb = small.stat().st_size / 1e6
        _, _, zoo_peak, out = measured(
            [sys.executable, "-c", ZOO_TOKENIZE, str(small), "bpe", str(args.vocab)], env_all
        )
        zoo_s, zoo_tokens = field(out, "SECONDS"), field(out, "TOKENS")
        _, _, plain_peak, out = measured(
            [sys.executable, "-c", PLAIN_TOKENIZE, str(small), str(args.vocab)], env_all
        )
        plain_s, plain_tokens = field(out, "SECONDS"), field(out, "TOKENS")
        print(
            f"bpe ({args.vocab} ids) tokenisation of {small_mb:,.1f} MB: zoo token map "
            f"{small_mb / zoo_s:,.2f} MB/s ({zoo_tokens:,.0f} tokens, peak {zoo_peak / 1024:,.0f} "
            f"MiB); tokenizers' batch encoder alone {small_mb / plain_s:,.2f} MB/s "
            f"({plain_tokens:,.0f} tokens, peak {plain_peak / 1024:,.0f} MiB); zoo / plain "
            f"{plain_s / zoo_s:.2f}"
        )
        if args.old:
            _, seconds, old_peak, out = measured([sys.executable, "-c", OLD_PATH, str(corpus)], env)
            print(
                f"the in-memory path of before (char, one int64 tensor): {seconds:,.1f} s, peak "
                f"resident {old_peak / 1024:,.0f} MiB = {old_peak * 1024 / size:.2f} x the file"
            )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
