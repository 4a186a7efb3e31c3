"""Training throughput (and peak memory) of the zoo's Trainer beside a plain PyTorch loop.

Both sides train the same model (same config, same initial weights) on the same batches drawn
by the task's sampler, with the same optimizer, schedule-free learning rate, gradient clipping and
precision; the only difference is the loop. Steady-state throughput excludes the first steps.

    python benchmarks/train_throughput.py                  # lstm, on CPU here
    python benchmarks/train_throughput.py --models lstm,transformer,resnet --steps 60
    python benchmarks/train_throughput.py --memory          # peak memory, each side in its own process

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

from zoo_core import _config
from zoo_core.catalog import get_model_spec, model_class
from zoo_core.tasks.base import task_class
from zoo_core.training.config import TrainConfig
from zoo_core.training.optim import adamw
from zoo_core.training.trainer import Trainer, pick_device


def setup(name: str, batch_size: int | None, device: str):
    """The task with its data, the model config and the training config of a model's defaults."""
    spec = get_model_spec(name)
    task_cls = task_class(spec.tasks[0])
    model_cls = model_class(spec)
    task_fields = _config.field_types(task_cls.Options)
    options = _config.build(
        task_cls.Options,
        {k: v for k, v in spec.train_defaults.items() if k in task_fields},
        "options",
    )
    task = task_cls(options)
    task.setup(None)
    fields = _config.field_types(model_cls.config_class)
    from_data = {k: v for k, v in task.model_config().items() if k in fields}
    model_cfg = _config.build(model_cls.config_class, {**spec.defaults, **from_data}, name)
    task.bind(model_cfg)
    train = {k: v for k, v in spec.train_defaults.items() if k not in task_fields}
    train.update(device=device, warmup=0, min_lr_ratio=1.0, eval_interval=10**9, log_interval=5)
    if batch_size:
        train["batch_size"] = batch_size
    return task, model_cls, model_cfg, _config.build(TrainConfig, train, "train")


def run_zoo(name, steps, warm, batch_size, device):
    task, model_cls, model_cfg, cfg = setup(name, batch_size, device)
    cfg.steps = steps
    torch.manual_seed(0)
    model = model_cls(model_cfg)
    trainer = Trainer(model, task, cfg, out=None, progress=False)
    # Skip the final full evaluation: it is not training.
    task.evaluate = lambda *a, **k: {}
    trainer.fit()
    rates = [
        r[f"{task.unit}_per_s"] for r in trainer.history if r.get("step", 0) > warm and "loss" in r
    ]
    return statistics.median(rates), task.unit


def run_plain(name, steps, warm, batch_size, device):
    task, model_cls, model_cfg, cfg = setup(name, batch_size, device)
    dev = pick_device(device)
    torch.manual_seed(0)
    model = model_cls(model_cfg).to(dev)
    if getattr(model, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    opt = adamw(model.parameters(), cfg)
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
            logits = model(x)
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
    return units / (time.perf_counter() - start), task.unit


def peak_memory(side: str, name: str, steps: int, batch_size: int | None, device: str) -> float:
    """Peak memory in MiB of one side, measured in a fresh process."""
    code = (
        "import json, resource, sys, torch; sys.argv = ['x']\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import train_throughput as b\n"
        f"fn = b.run_{side}; fn({name!r}, {steps}, 2, {batch_size!r}, {device!r})\n"
        "cuda = torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0\n"
        "peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(peak))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lstm")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="Also measure peak memory.")
    args = parser.parse_args()
    # The zoo's side reads the rate it logs every 5 steps after the warm-up; the memory runs take
    # half the steps and 2 warm-up steps.
    if args.steps < args.warmup_steps + 5:
        parser.error(f"--steps must be at least --warmup-steps + 5 ({args.warmup_steps + 5})")
    if args.memory and args.steps < 14:
        parser.error("--memory needs --steps 14 or more")
    results = {}
    for name in args.models.split(","):
        zoo_rates, plain_rates = [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
            rate, unit = run_plain(
                name, args.steps, args.warmup_steps, args.batch_size, args.device
            )
            plain_rates.append(rate)
            rate, unit = run_zoo(name, args.steps, args.warmup_steps, args.batch_size, args.device)
            zoo_rates.append(rate)
        zoo, plain = max(zoo_rates), max(plain_rates)
        line = f"{name:12s} zoo {zoo:12,.0f} {unit}/s   plain {plain:12,.0f} {unit}/s   ratio {zoo / plain:.3f}"
        results[name] = {"zoo": zoo, "plain": plain, "ratio": zoo / plain, "unit": unit}
        if args.memory:
            mz = peak_memory("zoo", name, args.steps // 2, args.batch_size, args.device)
            mp = peak_memory("plain", name, args.steps // 2, args.batch_size, args.device)
            line += f"   peak memory zoo {mz:,.0f} MiB plain {mp:,.0f} MiB ratio {mz / mp:.3f}"
            results[name].update(mem_zoo=mz, mem_plain=mp, mem_ratio=mz / mp)
        print(line, flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
