"""Peak resident memory of importing a `transformers` GPT-2 medium, against its file's size.

A randomly initialised ``GPT2LMHeadModel`` of GPT-2 medium's shape (24 layers, 16 heads, 1024
wide, 50257 tokens: 355M parameters, 1.4 GB of float32) is saved with ``save_pretrained`` in a
snapshot-like folder, in a process of its own. A fresh process then imports it as
``zoo pull`` does (``zoo_core.importers.convert``: build on the meta device, map each tensor,
write ``model.safetensors``) and loads the converted artifact (``load_local``), and reports its
peak resident set size (``ru_maxrss``). The goal: at most 1.5 times the file's size.

    python benchmarks/import_memory.py [--layers 24] [--keep DIR]

Needs `transformers` (a test requirement). Takes a few minutes and about 3 GB of memory while
the model is first created.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CREATE = """
import sys
from pathlib import Path
import tokenizers as tk
import torch
from transformers import GPT2Config, GPT2LMHeadModel

folder, layers = Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir(parents=True)
tok = tk.Tokenizer(tk.models.BPE())
tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = tk.decoders.ByteLevel()
trainer = tk.trainers.BpeTrainer(
    vocab_size=400, initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(), show_progress=False
)
tok.train_from_iterator(["the meaning of life is a question"] * 100, trainer=trainer)
tok.save(str(folder / "tokenizer.json"))
torch.manual_seed(0)
config = GPT2Config(n_layer=layers, n_head=16, n_embd=1024, n_positions=1024, vocab_size=50257)
GPT2LMHeadModel(config).save_pretrained(folder)
"""

MEASURE = """
import json, resource, sys, time
from pathlib import Path
import torch
import zoo_core.artifact
from zoo_core import importers

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
importers.convert(folder, out, "bench/gpt2-medium")
converted = time.perf_counter()
artifact = zoo_core.artifact.load_local(out, from_hub=True)
loaded = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({
    "baseline": before, "peak": peak, "parameters": sum(p.numel() for p in artifact.model.parameters()),
    "convert_s": converted - start, "load_s": loaded - converted,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24, help="24: GPT-2 medium")
    parser.add_argument("--keep", type=Path, help="keep the files in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        folder = base / "models--bench--gpt2-medium" / "snapshots" / ("0" * 40)
        out = base / "models--bench--gpt2-medium" / "zoo-import" / ("0" * 40)
        if not (folder / "model.safetensors").is_file():
            subprocess.run([sys.executable, "-c", CREATE, folder, str(args.layers)], check=True)
        result = subprocess.run(
            [sys.executable, "-c", MEASURE, folder, out],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        size = (folder / "model.safetensors").stat().st_size
    gib = 2**30
    peak, baseline = figures["peak"], figures["baseline"]
    print(f"GPT-2 shape: {args.layers} layers, {figures['parameters']:,} parameters")
    print(f"safetensors file:           {size / gib:.2f} GiB")
    print(f"peak RSS (whole process):   {peak / gib:.2f} GiB = {peak / size:.2f} x the file")
    print(f"  of which torch and zoo:   {baseline / gib:.2f} GiB before the import began")
    print(
        f"  added by the import:      {(peak - baseline) / gib:.2f} GiB = "
        f"{(peak - baseline) / size:.2f} x the file"
    )
    print(f"convert {figures['convert_s']:.1f}s, load {figures['load_s']:.1f}s")
    print("goal: peak at most 1.5 x the file:", "met" if peak <= 1.5 * size else "NOT met")


if __name__ == "__main__":
    main()
