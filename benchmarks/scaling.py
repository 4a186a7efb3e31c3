"""Training throughput of 1, 2, ... N processes under torchrun, the scaling efficiency, and the
memory each process holds, with DDP and with FSDP.

    python benchmarks/scaling.py --model transformer --nproc 1,2           # gloo on the CPU
    python benchmarks/scaling.py --model transformer --nproc 1,2 --parallel ddp,fsdp
    python benchmarks/scaling.py --model gpt2-small --device cuda --nproc 1,2,4,8 \
        --batch-size 64 --set seq_len=1024                                  # NCCL on GPUs

Each run is the zoo's Trainer in ``nproc`` processes started by torchrun, on the same global
batch (``--batch-size``, divided among the processes), with the model's default settings. It
prints, per number of processes and kind of parallelism:

- throughput: units (tokens or images) per second of the whole run, the median of the rates
  the Trainer logs after the warm-up steps, and the speedup and efficiency against one process
  (efficiency = throughput / (N x throughput of one process));
- state per process: the bytes of parameters, gradients and optimizer state this process holds
  (its shards under FSDP), counted from its tensors after training: FSDP's fall as 1/N;
- peak memory per process: resident memory on the CPU (ru_maxrss), allocated memory on a GPU.

On the CPU, all processes share the machine's cores (each gets cores / N threads), so the
throughput cannot grow with N there: the CPU figures check the path and measure the overhead of
communication; GPUs, one per process, measure scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(args: argparse.Namespace) -> None:
    """One rank: train, then write this rank's figures to ``args.out/rank-R.json``."""
    import torch

    sys.path.insert(0, str(HERE))
    import train_throughput

    from zoo_core.training.trainer import Trainer

    sets = dict(s.split("=", 1) for s in args.set)
    zoo_sets = {"parallel": args.worker_parallel, **dict(s.split("=", 1) for s in args.zoo_set)}
    task, model_cls, model_cfg, cfg = train_throughput.setup(
        args.model, args.batch_size, args.device, sets, zoo_sets
    )
    cfg.steps = args.steps
    torch.manual_seed(0)
    model = model_cls(model_cfg)
    optimizers = {}
    configure = task.configure_optimizers

    def keep_optimizers(m, c):  # the Trainer's optimizers, to count their state after
        optimizers.update(configure(m, c))
        return optimizers

    task.configure_optimizers = keep_optimizers
    task.evaluate = lambda *a, **k: {}  # not training
    trainer = Trainer(model, task, cfg, out=None, progress=False)
    trainer.fit()

    def local(t):
        return t.to_local() if hasattr(t, "to_local") else t

    def nbytes(tensors):
        return sum(local(t).numel() * local(t).element_size() for t in tensors)

    params = list(model.parameters())
    state = [v for o in optimizers.values() for s in o.state.values() for v in s.values()]
    rank = int(os.environ.get("RANK", "0"))
    device = trainer.device
    figures = {
        "rank": rank,
        "rates": [
            r[f"{task.unit}_per_s"]
            for r in trainer.history
            if r.get("step", 0) > args.warmup_steps and "loss" in r
        ],
        "unit": task.unit,
        "params": nbytes(params),
        "grads": nbytes(p.grad for p in params if p.grad is not None),
        "optimizer": nbytes(v for v in state if isinstance(v, torch.Tensor)),
        "peak": (
            torch.cuda.max_memory_allocated(device) / 2**20
            if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
    }
    Path(args.out, f"rank-{rank}.json").write_text(json.dumps(figures), encoding="utf-8")


def run(args: argparse.Namespace, n: int, parallel: str) -> list[dict]:
    """``n`` processes under torchrun; each rank's figures."""
    with tempfile.TemporaryDirectory(prefix="zoo-scaling-") as out:
        env = {**os.environ, "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={n}", __file__, "--worker", "--out", out,
            "--worker-parallel", parallel, "--model", args.model, "--steps", str(args.steps),
            "--warmup-steps", str(args.warmup_steps), "--batch-size", str(args.batch_size),
            "--device", args.device,
            *[f"--set={s}" for s in args.set], *[f"--zoo-set={s}" for s in args.zoo_set],
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        return [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank-*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--nproc", default="1,2", help="Numbers of processes, comma-separated.")
    parser.add_argument("--parallel", default="ddp", help="ddp, fsdp or ddp,fsdp.")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="The global batch.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--zoo-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json-out", help="Also write the figures to this JSON file.")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-parallel", default="ddp", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    counts = [int(n) for n in args.nproc.split(",")]
    results = []
    print(
        f"{args.model}, global batch {args.batch_size}, {args.steps} steps, on {args.device}\n"
        f"{'parallel':8s} {'procs':>5s} {'throughput':>16s} {'speedup':>8s} {'efficiency':>10s} "
        f"{'state/proc MiB':>15s} {'peak/proc MiB':>14s}"
    )
    for parallel in args.parallel.split(","):
        base = None
        for n in counts:
            ranks = run(args, n, parallel)
            rate = statistics.median(ranks[0]["rates"])
            if base is None:  # per process, in the smallest run (one process, usually)
                base = rate / n
            state = max(r["params"] + r["grads"] + r["optimizer"] for r in ranks) / 2**20
            peak = max(r["peak"] for r in ranks)
            speedup = rate / base
            row = {
                "parallel": parallel,
                "nproc": n,
                "throughput": rate,
                "unit": ranks[0]["unit"],
                "speedup": speedup,
                "efficiency": speedup / n,
                "state_mib_per_proc": state,
                "params_mib_per_proc": max(r["params"] for r in ranks) / 2**20,
                "optimizer_mib_per_proc": max(r["optimizer"] for r in ranks) / 2**20,
                "peak_mib_per_proc": peak,
            }
            results.append(row)
            print(
                f"{parallel:8s} {n:5d} {rate:11,.0f} {row['unit'][:4]}/s {speedup:8.2f} "
                f"{speedup / n:10.2f} {state:15.1f} {peak:14.0f}",
                flush=True,
            )
    print(json.dumps(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
