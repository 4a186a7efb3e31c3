"""One Trainer for every task: the loop, precision, schedule, evaluation and checkpoints.

It never looks at what the model is: the task draws batches, computes losses (one per optimizer),
and evaluates. See :mod:`zoo_core.tasks.base` for that contract.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo_core import artifacts
from zoo_core.catalog import count_parameters
from zoo_core.errors import ZooError
from zoo_core.tasks.base import Task
from zoo_core.training import checkpoint, distributed
from zoo_core.training.config import TrainConfig
from zoo_core.training.optim import lr_factor
from zoo_core.training.progress import Progress


class TrainingInterrupted(ZooError):
    """Training stopped on Ctrl-C (SIGINT) or SIGTERM after saving a checkpoint; ``exit_code`` is
    the shell's for that signal (130, 143)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class NonFiniteLoss(ZooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is a GPU, else the CPU; ``cuda:N`` is GPU N."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    unknown = f"unknown device '{name}'; use auto, cpu, cuda, cuda:N (GPU N) or mps"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ZooError(unknown) from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ZooError(unknown)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ZooError(
                f"--device {name} was asked for, but PyTorch sees no CUDA GPU here; use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ZooError(
                f"--device {name}: there is no GPU {device.index}; PyTorch sees {count} "
                f"(cuda:0 to cuda:{count - 1})"
            )
    if device.type == "mps" and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise ZooError(f"--device {name} was asked for, but this PyTorch has no MPS support here")
    return device


def check_compiler(device: torch.device) -> None:
    """``torch.compile`` turns a model into C++ on the CPU; with no compiler it fails at the first
    step, deep in a traceback. Say so before anything is written."""
    if device.type != "cpu":
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # a PyTorch laid out otherwise: torch.compile will say what it lacks
        return
    try:
        get_cpp_compiler()
    except RuntimeError:
        raise ZooError(
            "--compile on the CPU needs a C++ compiler (g++ or clang++) and none was found; "
            "install one (apt install g++), point CXX at one, or train without --compile"
        ) from None


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch; pinned and non-blocking on CUDA."""
    if isinstance(batch, torch.Tensor):
        if device.type == "cuda":
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _out_of_memory(exc: BaseException) -> bool:
    """A tensor could not be allocated: CUDA's OutOfMemoryError, or the CPU or MPS allocator's
    RuntimeError (which PyTorch gives no class of its own)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError from 2.5
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def _first_non_finite(model: nn.Module) -> str | None:
    """The name of the first weight or floating buffer holding a NaN or an infinity, if any (one
    host synchronisation when all are finite)."""
    tensors = {
        name: t
        for name, t in model.state_dict().items()
        if isinstance(t, torch.Tensor) and t.is_floating_point()
    }
    if not tensors:
        return None
    flags = [torch.isfinite(t).all() for t in tensors.values()]
    finite = torch.stack([f.to(flags[0].device) for f in flags])  # buffers may live elsewhere
    if bool(finite.all()):
        return None
    return next(name for name, ok in zip(tensors, finite.tolist(), strict=True) if not ok)


class Trainer:
    """Train ``model`` on ``task``; write metrics, checkpoints and weights under ``out``.

    Under torchrun every rank reads ``out`` (to resume) and only rank 0 writes to it.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        config: TrainConfig,
        out: Path | None = None,
        *,
        metadata: dict[str, str] | None = None,
        progress: bool = True,
    ):
        self.config = config
        self.task = task
        self.run_dir = Path(out) if out is not None else None
        self.metadata = metadata or {}
        device = pick_device(config.device)
        distributed.init(device.type)
        self.device = distributed.local_device(device)
        self.is_main = distributed.is_main()
        self.world = distributed.world_size()
        self.out = self.run_dir if self.is_main else None  # where this rank writes
        self.model = model.to(self.device)
        if getattr(model, "channels_last", False):
            # Faster convolutions on GPUs and, with oneDNN, on CPUs too (here: resnet ~30%, gan ~17%).
            self.model = self.model.to(memory_format=torch.channels_last)
        self.show_progress = progress and self.is_main
        self._stop_requested = False
        self._stop_signal = signal.SIGINT
        self.checkpoint_step: int | None = None  # the step of the newest checkpoint written or read
        self.history: list[dict[str, Any]] = []
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        precision = config.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.precision = precision
        self.train_model: nn.Module = self.model
        if config.compile:
            self.train_model = torch.compile(self.model)

    # -- helpers -------------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.out is not None:
            with open(self.out / artifacts.METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _truncate_metrics(self, step: int) -> None:
        """Drop records from after the checkpoint we resume from: those steps run again."""
        path = self.out / artifacts.METRICS_FILE
        if not path.exists():
            return
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
        self.history = [r for r in records if r.get("step", 0) <= step]
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        artifacts.atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))

    def _request_stop(self, signum, frame) -> None:
        """Ctrl-C, or SIGTERM (a scheduler preempting the job): stop after the step, with a
        checkpoint. A second Ctrl-C stops at once; a second SIGTERM (one sent both to the
        process group and through torchrun) changes nothing, as SIGKILL is what stops at once."""
        self._stop_requested = True
        self._stop_signal = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def save_weights(self) -> None:
        if self.out is not None:
            artifacts.save_weights(self.model, self.out / artifacts.WEIGHTS_FILE)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train to ``config.steps`` (or ``config.time`` seconds); return the final metrics."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        optimizers = self.task.configure_optimizers(self.model, cfg)
        for opt in optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        step, elapsed_before, units_total = 0, 0.0, 0
        checkpoints = self.run_dir / artifacts.CHECKPOINTS_DIR if self.run_dir is not None else None
        if resume and checkpoints is not None and checkpoint.list_checkpoints(checkpoints):
            state = checkpoint.load_latest(checkpoints, self.model, optimizers, generator)
            step = self.checkpoint_step = state["step"]
            elapsed_before = state["trainer"]["elapsed"]
            units_total = state["trainer"]["units"]
        # else a run stopped before its first checkpoint starts again (its initial weights are
        # its seed's), forgetting what it had logged
        if resume and self.is_main:
            self._truncate_metrics(step)
        distributed.broadcast_parameters(self.model)

        steps = cfg.steps
        eval_every = cfg.eval_interval or (max(1, steps // 5) if cfg.time is None else 500)
        ckpt_every = cfg.checkpoint_interval or eval_every
        params = {
            name: [p for g in opt.param_groups for p in g["params"]]
            for name, opt in optimizers.items()
        }
        loss_sums = {name: torch.zeros((), device=self.device) for name in optimizers}
        loss_count = 0

        def trainer_state() -> dict[str, Any]:
            return {"elapsed": elapsed_before + (time.perf_counter() - start), "units": units_total}

        def save_checkpoint() -> None:
            # A finite loss was computed before its step's update, which can still overflow the
            # weights: a checkpoint is only written of finite ones (on every rank, so all stop).
            bad = _first_non_finite(self.model)
            if bad is not None:
                raise NonFiniteLoss(
                    f"the weights became non-finite at step {step} ({bad}); {self._kept()}. Try "
                    "a lower --lr or a smaller --set grad_clip"
                )
            if self.run_dir is None:
                return
            if self.out is None:  # rank 0 writes it; every rank knows its step (for messages)
                self.checkpoint_step = step
                return
            try:
                checkpoint.save(
                    checkpoints,
                    step,
                    self.model,
                    optimizers,
                    generator,
                    trainer_state(),
                    keep=cfg.keep_checkpoints,
                )
                self.save_weights()
                self.checkpoint_step = step
            except OSError as exc:
                raise ZooError(
                    f"cannot write a checkpoint in '{checkpoints}': {exc.strerror or exc}; free some "
                    f"space, then continue with zoo train --resume {self.run_dir} (the previous "
                    "checkpoint is intact)"
                ) from None

        in_main_thread = threading.current_thread() is threading.main_thread()
        previous_handlers = (
            {s: signal.signal(s, self._request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
            if in_main_thread
            else {}
        )
        progress = Progress(
            steps,
            cfg.time,
            self.task.unit,
            enabled=self.show_progress,
            start_step=step,
            title=self._title(step),
        )
        start = time.perf_counter()
        window_start, window_units = start, 0
        self.model.train()
        try:
            with progress:
                while step < steps:
                    elapsed = elapsed_before + time.perf_counter() - start
                    time_up = cfg.time is not None and elapsed >= cfg.time
                    if self.world > 1:  # every rank stops at the same step
                        flags = (
                            distributed.any_rank(time_up, self.device),
                            distributed.any_rank(self._stop_requested, self.device),
                        )
                        time_up, self._stop_requested = flags
                    if time_up:
                        break
                    if self._stop_requested:
                        save_checkpoint()
                        distributed.barrier()  # no rank exits while rank 0 still writes
                        again = f" --nproc {self.world}" if self.world > 1 else ""
                        term = self._stop_signal == signal.SIGTERM
                        kept = (
                            f"checkpoint saved. Continue with: zoo train --resume "
                            f"{self.run_dir}{again}"
                            if self.run_dir is not None
                            else "nothing was saved"  # a training with no run folder
                        )
                        raise TrainingInterrupted(
                            f"interrupted{' by SIGTERM' if term else ''} at step {step}; {kept}",
                            exit_code=143 if term else 130,
                        )
                    by_steps = (step - cfg.warmup) / max(1, steps - cfg.warmup)
                    by_time = elapsed / cfg.time if cfg.time else 0.0
                    factor = lr_factor(max(by_steps, by_time), step, cfg)
                    for opt in optimizers.values():
                        for group in opt.param_groups:
                            group["lr"] = group["initial_lr"] * factor

                    batch = self.task.train_batch(cfg.batch_size, generator)
                    batch = to_device(distributed.shard(batch, cfg.batch_size), self.device)
                    with self._autocast():
                        for name, loss in self.task.training_step(self.train_model, batch):
                            opt = optimizers[name]
                            opt.zero_grad(set_to_none=True)
                            loss.backward()
                            distributed.average_gradients(params[name])
                            if cfg.grad_clip > 0:
                                nn.utils.clip_grad_norm_(params[name], cfg.grad_clip)
                            opt.step()
                            loss_sums[name] += loss.detach()
                    self.task.after_step(self.model, step)
                    step += 1
                    loss_count += 1
                    n_units = self.task.units(batch) * self.world
                    units_total += n_units
                    window_units += n_units

                    last = step >= steps
                    evaluate = not last and step % eval_every == 0
                    save = not last and step % ckpt_every == 0
                    # Losses are read (a host sync) only at log steps, and always before a
                    # checkpoint, so a non-finite loss never reaches a saved checkpoint.
                    if step % cfg.log_interval == 0 or last or evaluate or save:
                        losses = {k: (v / loss_count).item() for k, v in loss_sums.items()}
                        for v in loss_sums.values():
                            v.zero_()
                        loss_count = 0
                        bad = [k for k, v in losses.items() if not math.isfinite(v)]
                        if bad:
                            raise NonFiniteLoss(
                                f"the {'loss' if bad == ['model'] else 'loss of ' + bad[0]} became "
                                f"{losses[bad[0]]} at step {step}; {self._kept()}. Try a lower "
                                "--lr or a smaller --set grad_clip"
                            )
                        now = time.perf_counter()
                        throughput = window_units / max(now - window_start, 1e-9)
                        window_start, window_units = now, 0
                        record = {
                            "step": step,
                            "lr": optimizers[next(iter(optimizers))].param_groups[0]["lr"],
                            f"{self.task.unit}_per_s": round(throughput, 1),
                            "elapsed": round(elapsed_before + now - start, 2),
                        }
                        record.update(
                            {"loss" if k == "model" else f"loss_{k}": v for k, v in losses.items()}
                        )
                        self._log(record)
                        progress.update(step, losses, throughput, elapsed_before + now - start)
                    if evaluate and self.is_main:
                        progress.note(self._evaluate(step, cfg.eval_batches))
                    if save:
                        save_checkpoint()
            if not self.is_main:
                return {}
            final = self._evaluate(step, None)
            save_checkpoint()
            return {"step": step, "elapsed": trainer_state()["elapsed"], **final}
        except RuntimeError as exc:
            if not _out_of_memory(exc):
                raise
            where = f"at step {step + 1}" if step < steps else "in the last evaluation"
            raise ZooError(
                f"out of memory {where} on {self.device} with batch size {cfg.batch_size}; "
                f"{self._kept()}. Start a new run with a smaller --batch-size, or a smaller model "
                "or input (--set seq_len=, image_size=...)"
            ) from None
        except OSError as exc:  # a full disk, a folder made read-only while training
            raise ZooError(
                f"cannot write to the run folder '{self.run_dir}': {exc.strerror or exc}; free some "
                "space or fix its permissions, then continue with --resume (the last checkpoint is intact)"
            ) from None
        finally:
            for signum, handler in previous_handlers.items():
                if handler is not None:
                    signal.signal(signum, handler)

    @property
    def saved_nothing(self) -> bool:
        """No checkpoint and no logged metrics: the run folder holds nothing of this training."""
        return self.checkpoint_step is None and not self.history

    def _kept(self) -> str:
        if self.run_dir is None or self.saved_nothing:
            return "nothing was saved"  # and a new run's folder is removed (zoo_core.train)
        if self.checkpoint_step is None:
            return "no checkpoint was saved before it"
        return f"the checkpoint of step {self.checkpoint_step} is kept"

    def _title(self, step: int) -> str:
        """``lstm (1,079,400 parameters), task lm, on cpu (fp32), 4 processes: runs/lstm-...``"""
        parameters = count_parameters(self.model)
        parts = [f"{self.metadata.get('zoo.model', 'model')} ({parameters:,} parameters)"]
        if self.task.name:
            parts.append(f"task {self.task.name}")
        parts.append(f"on {self.device.type} ({self.precision})")
        if self.world > 1:
            parts.append(f"{self.world} processes")
        where = f": {self.run_dir}" if self.run_dir is not None else ""
        again = f", from step {step:,}" if step else ""
        return ", ".join(parts) + again + where

    def _evaluate(self, step: int, limit: int | None) -> dict[str, Any]:
        with self._autocast():
            metrics = self.task.evaluate(self.model, self.config.batch_size, limit)
        self._log({"step": step, **metrics})
        return metrics
