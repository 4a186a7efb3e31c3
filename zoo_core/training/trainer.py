"""One Trainer for every task: the loop, precision, schedule, evaluation and checkpoints.

It never looks at what the model is: the task draws batches, computes losses (one per optimizer),
and evaluates. See :mod:`zoo_core.tasks.base` for that contract.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from zoo_core import artifacts, protocols
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


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a sharded (FSDP) tensor; any other tensor as it is."""
    return t.to_local() if hasattr(t, "to_local") else t


def _first_non_finite(model: nn.Module) -> str | None:
    """The name of the first weight or floating buffer holding a NaN or an infinity, if any (one
    host synchronisation when all are finite). A sharded model's are checked shard by shard, on
    every rank, and all ranks learn of one: they stop together."""
    tensors = {
        name: _local(t)
        for name, t in model.state_dict().items()
        if isinstance(t, torch.Tensor) and t.is_floating_point()
    }
    if distributed.world_size() > 1 and any(distributed.is_sharded(m) for m in model.modules()):
        bad = _first_local_non_finite(tensors)
        device = next(iter(tensors.values())).device
        if distributed.any_rank(bad is not None, device):
            return bad or "on another process"
        return None
    return _first_local_non_finite(tensors)


def _first_local_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    if not tensors:
        return None
    flags = [torch.isfinite(t).all() for t in tensors.values()]
    finite = torch.stack([f.to(flags[0].device) for f in flags])  # buffers may live elsewhere
    if bool(finite.all()):
        return None
    return next(name for name, ok in zip(tensors, finite.tolist(), strict=True) if not ok)


@dataclass
class _Run:
    """What the loop carries from step to step: optimizers, data generator, counters, clocks."""

    optimizers: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    params: dict[str, list[nn.Parameter]]  # each optimizer's, for clipping
    loss_sums: dict[str, torch.Tensor]  # summed on the device since the last log: no host sync
    loss_count: int = 0
    step: int = 0
    units_total: int = 0
    elapsed_before: float = 0.0  # seconds trained before a resume
    start: float = 0.0  # perf_counter() when this process began its steps
    window_start: float = 0.0  # the throughput's window: since the last log
    window_units: int = 0

    def elapsed(self, now: float | None = None) -> float:
        """Seconds trained, those before a resume included."""
        return self.elapsed_before + ((time.perf_counter() if now is None else now) - self.start)


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
        name: str = "model",
        progress: bool = True,
    ):
        self.config = config
        self.task = task
        self.run_dir = Path(out) if out is not None else None
        self.name = name  # the model's registered name, for the progress title
        device = pick_device(config.device)
        distributed.init(device.type)
        self.device = distributed.local_device(device)
        self.is_main = distributed.is_main()
        self.world = distributed.world_size()
        self.out = self.run_dir if self.is_main else None  # where this rank writes
        self.model = model.to(self.device)
        if protocols.channels_last(model):
            # Faster convolutions on GPUs and, with oneDNN, on CPUs too (here: resnet ~30%, gan ~17%).
            self.model = self.model.to(memory_format=torch.channels_last)
        # Sharded state (FSDP) is checkpointed with torch.distributed.checkpoint, also when the
        # run goes on in one process.
        self.sharded = config.parallel == "fsdp"
        if self.sharded:
            checkpoint.check_sharded_support()
            if config.early_stopping and self.world > 1:
                raise ZooError(
                    "early_stopping keeps the best weights whole in one process, and "
                    "parallel=fsdp shards them; use parallel=ddp, or train without early_stopping"
                )
        self.show_progress = progress and self.is_main
        self._stop_requested = False
        self._stop_signal = signal.SIGINT
        self.checkpoint_step: int | None = None  # the step of the newest checkpoint written or read
        self.history: list[dict[str, Any]] = []
        self._best: tuple[float, dict[str, torch.Tensor]] | None = None  # early stopping's best
        self._since_best = 0  # evaluations since the best
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        precision = config.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.precision = precision
        distributed.broadcast_parameters(self.model)  # every rank starts from rank 0's weights
        blocks = protocols.blocks(self.model)
        if config.activation_checkpointing:
            if not blocks:
                raise ZooError(
                    f"activation_checkpointing recomputes the blocks a model declares, and "
                    f"{name} declares none; train it without activation_checkpointing"
                )
            distributed.recompute_in_backward(blocks)
        self.wrapped: list[nn.Module] = []  # what _wrap made: DDP or FSDP modules, for no_sync
        self.train_model = self.task.wrap_model(self.model, functools.partial(self._wrap, blocks))

    def _wrap(self, blocks: list[nn.Module], module: nn.Module) -> nn.Module:
        """``module`` ready to train: under torchrun in DistributedDataParallel, or sharded with
        ``parallel=fsdp`` (one unit per block in it); compiled with ``compile``. The task calls
        this on what its ``training_step`` calls (see ``Task.wrap_model``)."""
        if self.world > 1:
            if self.sharded:
                module = distributed.shard(module, blocks)
            else:
                module = distributed.data_parallel(module, self.device)
            self.wrapped.append(module)
        return torch.compile(module) if self.config.compile else module

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
        """The finished weights, whole: a sharded model's are gathered (every rank takes part)."""
        if self.sharded:
            state = checkpoint.full_state_dict(self.model)
            if self.out is not None:
                artifacts.state_to_file(state, self.out / artifacts.WEIGHTS_FILE)
        elif self.out is not None:
            artifacts.save_weights(self.model, self.out / artifacts.WEIGHTS_FILE)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train to ``config.steps`` (or ``config.time`` seconds); return the final metrics."""
        cfg = self.config
        run = self._start(resume)
        eval_every = cfg.eval_interval or (max(1, cfg.steps // 5) if cfg.time is None else 500)
        ckpt_every = cfg.checkpoint_interval or eval_every
        with self._stop_on_signals(), self._explain_failures(run):
            with self._progress(run) as progress:
                while run.step < cfg.steps:
                    elapsed = run.elapsed()
                    if self._time_up(elapsed):
                        break
                    if self._stop_requested:
                        self._interrupt(run)
                    self._set_lr(run, elapsed)
                    self._step(run)
                    last = run.step >= cfg.steps
                    evaluate = not last and run.step % eval_every == 0
                    save = not last and run.step % ckpt_every == 0
                    # Losses are read (a host sync) only at log steps, and always before a
                    # checkpoint, so a non-finite loss never reaches a saved checkpoint.
                    if run.step % cfg.log_interval == 0 or last or evaluate or save:
                        self._log_losses(run, progress)
                    # A sharded model's forward needs every rank: all evaluate, rank 0 logs.
                    if evaluate and (self.is_main or self.sharded):
                        progress.note(self._evaluate(run.step, cfg.eval_batches))
                    if save:
                        self._checkpoint(run)
                    if evaluate and cfg.early_stopping and self._no_longer_improving(run):
                        break
            if not (self.is_main or self.sharded):
                return {}
            if self._best is not None:  # stopped early (or ended past the best): the best weights
                self.model.load_state_dict(self._best[1])
            final = self._evaluate(run.step, None)
            self._checkpoint(run)
            if not self.is_main:
                return {}
            return {"step": run.step, "elapsed": run.elapsed(), **final}

    def _no_longer_improving(self, run: _Run) -> bool:
        """Early stopping: remember the weights of the lowest val_loss so far; True once
        ``early_stopping`` evaluations in a row found none lower (every rank answers alike)."""
        loss = self.history[-1].get("val_loss") if self.is_main and self.history else None
        if loss is None and self.is_main:
            raise ZooError(
                f"early_stopping watches val_loss, which task '{self.task.name}' does not report; "
                "train without --set early_stopping"
            )
        if loss is not None and (self._best is None or loss < self._best[0]):
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self._best, self._since_best = (loss, state), 0
        else:
            self._since_best += 1
        stop = self._since_best >= self.config.early_stopping
        if self.world > 1:
            stop = distributed.any_rank(stop, self.device)
        if stop and self.is_main:
            self._log({"step": run.step, "early_stop": True, "best_val_loss": self._best[0]})
        return stop

    def _start(self, resume: bool) -> _Run:
        """Seed, build the optimizers and, resuming, restore the newest checkpoint's state."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        optimizers = self.task.configure_optimizers(self.model, cfg)
        if cfg.grad_accum > 1 and len(optimizers) > 1 and self.world > 1 and not self.sharded:
            # DDP arms its all-reduce in the forward pass; a task that steps one optimizer
            # between another's forward and backward (a GAN's generator: its forward comes
            # before the discriminator's step, its backward after) would be averaged after its
            # first micro-batch.
            raise ZooError(
                f"grad_accum={cfg.grad_accum} with a task that steps several optimizers in turn "
                f"({', '.join(optimizers)}) is not supported with parallel=ddp across processes; "
                "use grad_accum=1, one process, or parallel=fsdp"
            )
        for opt in optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        run = _Run(
            optimizers=optimizers,
            generator=generator,
            params={
                name: [p for g in opt.param_groups for p in g["params"]]
                for name, opt in optimizers.items()
            },
            loss_sums={name: torch.zeros((), device=self.device) for name in optimizers},
        )
        checkpoints = self._checkpoints_dir()
        if resume and checkpoints is not None and checkpoint.list_checkpoints(checkpoints):
            state = checkpoint.load_latest(
                checkpoints, self.model, optimizers, generator, sharded=self.sharded
            )
            run.step = self.checkpoint_step = state["step"]
            run.elapsed_before = state["trainer"]["elapsed"]
            run.units_total = state["trainer"]["units"]
        # else a run stopped before its first checkpoint starts again (its initial weights are
        # its seed's), forgetting what it had logged
        if resume and self.is_main:
            self._truncate_metrics(run.step)
        return run

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM ask the loop to stop (see :meth:`_request_stop`) while it runs;
        the handlers before it are put back after. Signals reach only the main thread."""
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous_handlers = (
            {s: signal.signal(s, self._request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
            if in_main_thread
            else {}
        )
        try:
            yield
        finally:
            for signum, handler in previous_handlers.items():
                if handler is not None:
                    signal.signal(signum, handler)

    @contextlib.contextmanager
    def _progress(self, run: _Run) -> Iterator[Progress]:
        """The progress bar, shown while the steps run; the clocks start with it."""
        cfg = self.config
        progress = Progress(
            cfg.steps,
            cfg.time,
            self.task.unit,
            enabled=self.show_progress,
            start_step=run.step,
            title=self._title(run.step),
        )
        run.start = run.window_start = time.perf_counter()
        self.model.train()
        with progress:
            yield progress

    @contextlib.contextmanager
    def _explain_failures(self, run: _Run) -> Iterator[None]:
        """Running out of memory or of disk is one line saying what to do, not a traceback."""
        cfg = self.config
        try:
            yield
        except RuntimeError as exc:
            if not _out_of_memory(exc):
                raise
            where = f"at step {run.step + 1}" if run.step < cfg.steps else "in the last evaluation"
            raise ZooError(
                f"out of memory {where} on {self.device} with batch size {cfg.batch_size}; "
                f"{self._kept()}. Start a new run with a smaller --batch-size, or a smaller "
                "model or input (--set seq_len=, image_size=...)"
            ) from None
        except OSError as exc:  # a full disk, a folder made read-only while training
            raise ZooError(
                f"cannot write to the run folder '{self.run_dir}': {exc.strerror or exc}; free "
                "some space or fix its permissions, then continue with --resume (the last "
                "checkpoint is intact)"
            ) from None

    def _time_up(self, elapsed: float) -> bool:
        """Whether the time budget is spent. Under torchrun every rank answers alike, and learns
        of a stop asked of any rank, so that all stop at the same step."""
        cfg = self.config
        time_up = cfg.time is not None and elapsed >= cfg.time
        if self.world > 1:
            flags = (
                distributed.any_rank(time_up, self.device),
                distributed.any_rank(self._stop_requested, self.device),
            )
            time_up, self._stop_requested = flags
        return time_up

    def _interrupt(self, run: _Run) -> NoReturn:
        """Save a checkpoint and raise TrainingInterrupted, saying how to continue."""
        self._checkpoint(run)
        distributed.barrier()  # no rank exits while rank 0 still writes
        again = f" --nproc {self.world}" if self.world > 1 else ""
        term = self._stop_signal == signal.SIGTERM
        kept = (
            f"checkpoint saved. Continue with: zoo train --resume {self.run_dir}{again}"
            if self.run_dir is not None
            else "nothing was saved"  # a training with no run folder
        )
        raise TrainingInterrupted(
            f"interrupted{' by SIGTERM' if term else ''} at step {run.step}; {kept}",
            exit_code=143 if term else 130,
        )

    def _set_lr(self, run: _Run, elapsed: float) -> None:
        """The schedule's learning rate, by steps or by time, whichever is further along."""
        cfg = self.config
        by_steps = (run.step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        by_time = elapsed / cfg.time if cfg.time else 0.0
        factor = lr_factor(max(by_steps, by_time), run.step, cfg)
        for opt in run.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def _step(self, run: _Run) -> None:
        """One optimisation step: a global batch, this rank's ``grad_accum`` micro-batches of it,
        then each of the task's losses through its optimizer.

        The task's ``training_step`` runs once per micro-batch, the micro-batches in lockstep:
        each yields its loss for an optimizer, each loss (divided by ``grad_accum``, so the
        gradients are those of the mean over the whole batch) goes backward, and only then is
        that optimizer stepped, before any micro-batch goes on to the next optimizer's loss (a
        GAN's generator plays against the discriminator stepped on the whole batch). Gradients
        are averaged across ranks on the last micro-batch only.
        """
        cfg = self.config
        accum = cfg.grad_accum
        batch = self.task.train_batch(cfg.batch_size, run.generator)
        n_units = self.task.units(batch)  # of the global batch: every rank's
        micro = [
            to_device(b, self.device)
            for b in distributed.micro_batches(batch, cfg.batch_size, accum)
        ]
        with self._autocast():
            steps = [self.task.training_step(self.train_model, b) for b in micro]
            while True:
                name = None
                for k, losses in enumerate(steps):
                    with distributed.no_sync(self.wrapped, skip=k < accum - 1):
                        item = next(losses, None)  # the forward pass runs here
                        if item is None:
                            break
                        name, loss = item
                        if k == 0:
                            run.optimizers[name].zero_grad(set_to_none=True)
                        (loss / accum if accum > 1 else loss).backward()
                    run.loss_sums[name] += loss.detach() / accum
                if name is None:
                    break
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(run.params[name], cfg.grad_clip)
                run.optimizers[name].step()
        self.task.after_step(self.model, run.step)
        run.step += 1
        run.loss_count += 1
        run.units_total += n_units
        run.window_units += n_units

    def _log_losses(self, run: _Run, progress: Progress) -> None:
        """Log the mean losses since the last log, with the learning rate and throughput; a
        non-finite loss stops the training."""
        losses = {k: (v / run.loss_count).item() for k, v in run.loss_sums.items()}
        for v in run.loss_sums.values():
            v.zero_()
        run.loss_count = 0
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise NonFiniteLoss(
                f"the {'loss' if bad == ['model'] else 'loss of ' + bad[0]} became "
                f"{losses[bad[0]]} at step {run.step}; {self._kept()}. Try a lower "
                "--lr or a smaller --set grad_clip"
            )
        now = time.perf_counter()
        throughput = run.window_units / max(now - run.window_start, 1e-9)
        run.window_start, run.window_units = now, 0
        record = {
            "step": run.step,
            "lr": run.optimizers[next(iter(run.optimizers))].param_groups[0]["lr"],
            f"{self.task.unit}_per_s": round(throughput, 1),
            "elapsed": round(run.elapsed(now), 2),
        }
        record.update({"loss" if k == "model" else f"loss_{k}": v for k, v in losses.items()})
        self._log(record)
        progress.update(run.step, losses, throughput, run.elapsed(now))

    def _checkpoints_dir(self) -> Path | None:
        return self.run_dir / artifacts.CHECKPOINTS_DIR if self.run_dir is not None else None

    def _checkpoint(self, run: _Run) -> None:
        """Write a resumable checkpoint of step ``run.step`` and the weights (rank 0 alone)."""
        # A finite loss was computed before its step's update, which can still overflow the
        # weights: a checkpoint is only written of finite ones (on every rank, so all stop).
        bad = _first_non_finite(self.model)
        if bad is not None:
            raise NonFiniteLoss(
                f"the weights became non-finite at step {run.step} ({bad}); {self._kept()}. Try "
                "a lower --lr or a smaller --set grad_clip"
            )
        if self.run_dir is None:
            return
        if self.out is None and not self.sharded:  # rank 0 writes; every rank knows its step
            self.checkpoint_step = run.step
            return
        checkpoints = self._checkpoints_dir()
        save = (
            functools.partial(checkpoint.save_sharded, main=self.is_main)
            if self.sharded
            else checkpoint.save
        )
        try:
            save(
                checkpoints,
                run.step,
                self.model,
                run.optimizers,
                run.generator,
                {"elapsed": run.elapsed(), "units": run.units_total},
                keep=self.config.keep_checkpoints,
            )
            self.save_weights()
            self.checkpoint_step = run.step
        except OSError as exc:
            raise ZooError(
                f"cannot write a checkpoint in '{checkpoints}': {exc.strerror or exc}; free some "
                f"space, then continue with zoo train --resume {self.run_dir} (the previous "
                "checkpoint is intact)"
            ) from None

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
        parts = [f"{self.name} ({parameters:,} parameters)"]
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
