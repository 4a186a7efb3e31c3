"""Training throughput (and peak memory, and MFU on a GPU) of the zoo's Trainer beside a plain
PyTorch loop.

Both sides train the same model (same config, same initial weights) on the same batches drawn
by the task's sampler, with the same optimizer (fused AdamW on CUDA), schedule-free learning
rate, gradient clipping, precision (bf16 autocast on CUDA) and, with --compile, torch.compile;
the only difference is the loop. Steady-state throughput excludes the first steps.

    python benchmarks/train_throughput.py                  # lstm, on CPU here
    python benchmarks/train_throughput.py --models lstm,transformer,resnet --steps 60
    python benchmarks/train_throughput.py --memory          # peak memory, each side in its own process
    python benchmarks/train_throughput.py --models gpt2-small --device cuda --compile \
        --batch-size 16 --set seq_len=1024                  # tokens/s, MFU, peak memory
    python benchmarks/train_throughput.py --models transformer \
        --zoo-set activation_checkpointing=true --memory    # the zoo side with a training setting

MFU is the model FLOPs per unit times units per second over the device's peak bf16 FLOPS
(dense, from a table of GPUs, or --peak-tflops): per token 6 N + 12 L C T for a transformer of
N non-embedding parameters, L layers, width C and window T (nanoGPT's estimate_mfu, from the
model's config), 6 N for other token models, and for images the FLOPs that
torch.utils.flop_counter counts in one forward and backward pass.

Goal: ratio (zoo / plain) of at least 0.95 for throughput, at most 1.1 for peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from zoo_core import _config, protocols
from zoo_core.catalog import get_model_spec, model_class
from zoo_core.tasks.base import task_class
from zoo_core.training import distributed
from zoo_core.training.config import TrainConfig
from zoo_core.training.optim import adamw
from zoo_core.training.trainer import Trainer, pick_device

# Dense bf16 peak FLOPS of GPUs by a part of their name (the first that matches counts).
PEAK_BF16 = {
    "H200": 989.5e12,
    "H100 PCIe": 756e12,
    "H100": 989.5e12,  # SXM
    "GH200": 989.5e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165.2e12,
}
# --tiny: sizes that run in seconds on a CPU, to check the script's path before a GPU run.
TINY = {
    "transformer": {"n_layer": 2, "n_head": 2, "n_embd": 32, "seq_len": 32},
    "lstm": {"hidden_size": 32, "embed_dim": 32, "num_layers": 1, "seq_len": 32},
    "resnet": {"width": 4, "image_size": 16, "num_images": 400},
}


def setup(name: str, batch_size: int | None, device: str, sets=None, zoo_sets=None):
    """The task with its data, the model config and the training config of a model's defaults,
    with ``sets`` (model config fields and task options) and ``zoo_sets`` (training settings)
    over them."""
    sets = dict(sets or {})
    spec = get_model_spec(name)
    task_cls = task_class(spec.tasks[0])
    model_cls = model_class(spec)
    task_fields = _config.field_types(task_cls.Options)
    fields = _config.field_types(model_cls.config_class)
    unknown = sorted(set(sets) - set(task_fields) - set(fields))
    if unknown:
        raise SystemExit(f"{name} has no model field or task option {', '.join(unknown)}")
    options = _config.build(
        task_cls.Options,
        {
            **{k: v for k, v in spec.train_defaults.items() if k in task_fields},
            **{k: v for k, v in sets.items() if k in task_fields},
        },
        "options",
    )
    task = task_cls(options)
    task.setup(None)
    from_data = {k: v for k, v in task.model_config().items() if k in fields}
    model_over = {k: v for k, v in sets.items() if k in fields and k not in task_fields}
    model_cfg = _config.build(
        model_cls.config_class, {**spec.defaults, **from_data, **model_over}, name
    )
    task.bind(model_cfg)
    train = {k: v for k, v in spec.train_defaults.items() if k not in task_fields}
    train.update(device=device, warmup=0, min_lr_ratio=1.0, eval_interval=10**9, log_interval=5)
    if batch_size:
        train["batch_size"] = batch_size
    train.update(zoo_sets or {})
    return task, model_cls, model_cfg, _config.build(TrainConfig, train, "train")


def _reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak(dev: torch.device) -> float | None:
    """Peak memory allocated on a GPU since the last reset, in MiB (None on the CPU)."""
    return torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None


def run_zoo(name, steps, warm, batch_size, device, sets=None, zoo_sets=None, compile=False):
    """The zoo's Trainer: (units per second, unit, peak GPU MiB or None)."""
    train = {**(zoo_sets or {}), "compile": compile}
    task, model_cls, model_cfg, cfg = setup(name, batch_size, device, sets, train)
    cfg.steps = steps
    dev = pick_device(device)
    _reset_peak(dev)
    torch.manual_seed(0)
    model = model_cls(model_cfg)
    trainer = Trainer(model, task, cfg, out=None, progress=False)
    # Skip the final full evaluation: it is not training.
    task.evaluate = lambda *a, **k: {}
    trainer.fit()
    rates = [
        r[f"{task.unit}_per_s"] for r in trainer.history if r.get("step", 0) > warm and "loss" in r
    ]
    return statistics.median(rates), task.unit, _peak(dev)


def run_plain(name, steps, warm, batch_size, device, sets=None, zoo_sets=None, compile=False):
    """The plain loop (``zoo_sets`` are the zoo's alone): (units per second, unit, peak MiB)."""
    task, model_cls, model_cfg, cfg = setup(name, batch_size, device, sets)
    dev = pick_device(device)
    _reset_peak(dev)
    torch.manual_seed(0)
    model = model_cls(model_cfg).to(dev)
    if getattr(model, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    opt = adamw(model.parameters(), cfg)
    if dev.type == "cuda":
        torch.set_float32_matmul_precision("high")
    forward = torch.compile(model) if compile else model
    generator = torch.Generator().manual_seed(0)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dev.type == "cuda"
        else contextlib.nullcontext()
    )
    model.train()
    units, start = 0, None
    for step in range(steps):
        if step == warm:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            units, start = 0, time.perf_counter()
        x, y = task.train_batch(cfg.batch_size, generator)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with autocast:
            logits = forward(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        units += y.numel() if task.unit == "tokens" else y.shape[0]
        if step % 5 == 0:
            loss.item()  # the same sync a logging loop does
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return units / (time.perf_counter() - start), task.unit, _peak(dev)


def flops_per_unit(name, batch_size, device, sets=None) -> float:
    """Training FLOPs (forward and backward) per token, or per image."""
    task, model_cls, model_cfg, cfg = setup(name, batch_size, "cpu", sets)
    model = model_cls(model_cfg)
    n = sum(p.numel() for p in model.parameters())
    if task.unit == "tokens":
        embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
        tied = {
            id(p) for m in model.modules() if isinstance(m, torch.nn.Linear) for p in [m.weight]
        }
        # Embedding tables are looked up, not multiplied, unless the head shares one.
        n -= sum(m.weight.numel() for m in embeddings if id(m.weight) not in tied)
        if all(hasattr(model_cfg, k) for k in ("n_layer", "n_embd")):
            seq_len = task.options.seq_len
            return 6 * n + 12 * model_cfg.n_layer * model_cfg.n_embd * seq_len
        return 6 * n
    x, y = task.train_batch(2, torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 2


def held_for_backward(name, batch_size, sets=None, zoo_sets=None) -> float:
    """MiB of activations one training step holds for its backward pass, on the CPU: the
    tensors autograd saves (parameters aside) and, with activation checkpointing, the inputs each
    recomputed block keeps. A CPU's peak resident memory is set by reading the data, so this
    is what shows what activation checkpointing saves there."""
    task, model_cls, model_cfg, cfg = setup(name, batch_size, "cpu", sets, zoo_sets)
    torch.manual_seed(0)
    model = model_cls(model_cfg).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    held: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            held[storage.data_ptr()] = storage.nbytes()
        return t

    if cfg.activation_checkpointing:
        blocks = protocols.blocks(model)
        for block in blocks:  # what checkpoint keeps of a block: its inputs
            block.register_forward_pre_hook(
                lambda m, args: [keep(a) for a in args if isinstance(a, torch.Tensor)] and None
            )
        distributed.recompute_in_backward(blocks)
    batch = task.train_batch(cfg.batch_size, torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        _, loss = next(iter(task.training_step(model, batch)))
    loss.backward()
    return sum(held.values()) / 2**20


def peak_flops(device: str, given: float | None) -> tuple[float | None, str]:
    """The device's dense bf16 peak FLOPS (``given``, in TFLOPS, wins) and its name."""
    dev = pick_device(device)
    label = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    if given:
        return given * 1e12, label
    if dev.type == "cuda":
        for part, peak in PEAK_BF16.items():
            if part in label:
                return peak, label
    return None, label


def peak_memory(
    side: str, name: str, steps: int, batch_size: int | None, device: str, sets=None, zoo_sets=None
) -> float:
    """Peak memory in MiB of one side, measured in a fresh process (resident memory on the CPU,
    allocated GPU memory on CUDA)."""
    code = (
        "import json, resource, sys, torch; sys.argv = ['x']\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import train_throughput as b\n"
        f"fn = b.run_{side}; fn({name!r}, {steps}, 2, {batch_size!r}, {device!r}, "
        f"{sets!r}, {zoo_sets!r})\n"
        "cuda = torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0\n"
        "peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(peak))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _pairs(items: list[str]) -> dict[str, object]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, not '{item}'")
        out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lstm")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="Also measure peak memory.")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides.")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="A model config field or task option, for both sides (repeatable).",
    )  # fmt: skip
    parser.add_argument(
        "--zoo-set", dest="zoo_sets", action="append", default=[], metavar="KEY=VALUE",
        help="A training setting of the zoo's side (activation_checkpointing=true...).",
    )  # fmt: skip
    parser.add_argument("--peak-tflops", type=float, help="The device's peak bf16 TFLOPS.")
    parser.add_argument("--tiny", action="store_true", help="Tiny sizes: check the path on a CPU.")
    parser.add_argument("--json-out", help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    # The zoo's side reads the rate it logs every 5 steps after the warm-up; the memory runs take
    # half the steps and 2 warm-up steps.
    if args.steps < args.warmup_steps + 5:
        parser.error(f"--steps must be at least --warmup-steps + 5 ({args.warmup_steps + 5})")
    if args.memory and args.steps < 14:
        parser.error("--memory needs --steps 14 or more")
    peak, device_name = peak_flops(args.device, args.peak_tflops)
    print(f"device: {device_name}, peak bf16: {f'{peak / 1e12:.1f} TFLOPS' if peak else 'n/a'}")
    results = {"device": device_name, "peak_flops": peak, "models": {}}
    zoo_sets = _pairs(args.zoo_sets)
    for name in args.models.split(","):
        sets = _pairs(args.sets)
        if args.tiny:
            family = get_model_spec(name).family
            sets = {**TINY.get(family, {}), **sets}
            sets = {k: v for k, v in sets.items() if _known(name, k)}
        zoo_rates, plain_rates, zoo_mem, plain_mem = [], [], [], []
        common = (name, args.steps, args.warmup_steps, args.batch_size, args.device)
        for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
            rate, unit, mem = run_plain(*common, sets, zoo_sets, args.compile)
            plain_rates.append(rate)
            plain_mem.append(mem)
            rate, unit, mem = run_zoo(*common, sets, zoo_sets, args.compile)
            zoo_rates.append(rate)
            zoo_mem.append(mem)
        zoo, plain = max(zoo_rates), max(plain_rates)
        line = f"{name:12s} zoo {zoo:12,.0f} {unit}/s   plain {plain:12,.0f} {unit}/s   ratio {zoo / plain:.3f}"
        row = {"zoo": zoo, "plain": plain, "ratio": zoo / plain, "unit": unit}
        flops = flops_per_unit(name, args.batch_size, args.device, sets)
        row["flops_per_unit"] = flops
        if peak:
            row.update(mfu_zoo=zoo * flops / peak, mfu_plain=plain * flops / peak)
            line += f"   MFU zoo {row['mfu_zoo']:.1%} plain {row['mfu_plain']:.1%}"
        if zoo_mem[0] is not None:  # CUDA: allocated memory, measured in this process
            mz, mp = max(zoo_mem), max(plain_mem)
            line += f"   peak memory zoo {mz:,.0f} MiB plain {mp:,.0f} MiB ratio {mz / mp:.3f}"
            row.update(mem_zoo=mz, mem_plain=mp, mem_ratio=mz / mp)
        elif args.memory:
            mz = peak_memory(
                "zoo", name, args.steps // 2, args.batch_size, args.device, sets, zoo_sets
            )
            mp = peak_memory("plain", name, args.steps // 2, args.batch_size, args.device, sets)
            line += f"   peak memory zoo {mz:,.0f} MiB plain {mp:,.0f} MiB ratio {mz / mp:.3f}"
            row.update(mem_zoo=mz, mem_plain=mp, mem_ratio=mz / mp)
        if args.memory:
            az = held_for_backward(name, args.batch_size, sets, zoo_sets)
            ap = held_for_backward(name, args.batch_size, sets)
            line += f"   held for backward zoo {az:,.0f} MiB plain {ap:,.0f} MiB"
            row.update(activations_zoo=az, activations_plain=ap)
        results["models"][name] = row
        print(line, flush=True)
    print(json.dumps(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _known(name: str, key: str) -> bool:
    """Whether ``key`` is a field of the model's config or an option of its first task."""
    spec = get_model_spec(name)
    return key in _config.field_types(model_class(spec).config_class) or key in (
        _config.field_types(task_class(spec.tasks[0]).Options)
    )


if __name__ == "__main__":
    main()
