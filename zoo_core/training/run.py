"""A run's lifecycle: settings split and checked, a run folder made, the Trainer run, the folder
finished (config with final metrics, task files, model card); and resuming one.

:func:`train` and :func:`resume` return a :class:`TrainedRun`; ``zoo_core.train`` wraps it in an
``Artifact``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from zoo_core import _config, artifacts
from zoo_core._version import __version__
from zoo_core.card import write_card
from zoo_core.catalog import (
    distribution,
    distribution_version,
    get_model_spec,
    model_class,
    spec_distribution,
)
from zoo_core.data import hf
from zoo_core.data.fingerprint import fingerprint, warn_if_changed
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog
from zoo_core.registry import ModelSpec
from zoo_core.runconfig import RunConfig, build_task, missing_message, saved_model_config
from zoo_core.tasks.base import Task, task_class
from zoo_core.training import checkpoint, distributed
from zoo_core.training import init as initial
from zoo_core.training.config import TrainConfig
from zoo_core.training.trainer import Trainer, check_compiler, pick_device

if TYPE_CHECKING:
    from torch import nn

# Settings a resumed run may change; the rest are the run's own.
RESUME_CHANGEABLE = frozenset(
    {"steps", "time", "device", "log_interval", "eval_interval", "eval_batches"}
)


@dataclass
class TrainedRun:
    """What a finished (or resumed and finished) run leaves: its folder, config, model, task."""

    folder: Path
    config: RunConfig
    spec: ModelSpec
    model: nn.Module
    task: Task
    metrics: dict[str, Any]


def split_overrides(
    overrides: dict[str, Any], model_cls: type, task_cls: type, what: str
) -> tuple[dict, dict, dict]:
    """Settings by name, sorted into (model config, task options, training settings).

    A key both the task and the model know (``vocab_size``) is the task's: the task fits its
    tokenizer with it and then fills the model's field from the data.
    """
    tables = (
        _config.field_types(model_cls.config_class),
        _config.field_types(task_cls.Options),
        _config.field_types(TrainConfig),
    )
    out: tuple[dict, dict, dict] = ({}, {}, {})
    for key, value in overrides.items():
        for i in (1, 0, 2):
            if key in tables[i]:
                out[i][key] = value
                break
        else:
            raise ZooError(
                f"{what} has no setting '{key}'. Model fields: {', '.join(tables[0])}; "
                f"task fields: {', '.join(tables[1])}; training fields: {', '.join(tables[2])}"
            )
    return out


def new_run_dir(name: str, out: str | Path | None) -> Path:
    """``out`` (new, or an empty folder), else a fresh ``runs/NAME-DATE-TIME`` folder."""
    try:
        if out is not None:
            path = Path(out)
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise ZooError(
                    f"'{path}' already exists and is not empty; choose a new --out, or continue "
                    f"that run with --resume {path}"
                )
            path.mkdir(parents=True, exist_ok=True)
            return path
        base = Path("runs")
        base.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1, 1000):
            path = base / (f"{name}-{stamp}" + (f"-{i}" if i > 1 else ""))
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise ZooError("could not find a free run folder name under runs/")
    except OSError as exc:
        raise ZooError(f"cannot create the run folder: {exc.strerror}: '{exc.filename}'") from None


def validate_train_config(cfg: TrainConfig) -> None:
    """One line for the first setting out of range, and for a device that is not here."""
    checks = [
        (cfg.steps >= 1, f"steps must be at least 1, not {cfg.steps}"),
        (cfg.batch_size >= 1, f"batch size must be at least 1, not {cfg.batch_size}"),
        (0 < cfg.lr < math.inf, f"learning rate must be positive and finite, not {cfg.lr}"),
        (
            cfg.time is None or 0 < cfg.time < math.inf,
            f"time must be a positive, finite number of seconds, not {cfg.time}",
        ),
        (cfg.log_interval >= 1, f"log_interval must be at least 1, not {cfg.log_interval}"),
        (0 <= cfg.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], not {cfg.min_lr_ratio}"),
        (cfg.warmup >= 0, f"warmup must be 0 steps or more, not {cfg.warmup}"),
        (cfg.weight_decay >= 0, f"weight_decay must be 0 or more, not {cfg.weight_decay}"),
        (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, "beta1 and beta2 must be in [0, 1)"),
        (cfg.grad_clip >= 0, f"grad_clip must be 0 (off) or more, not {cfg.grad_clip}"),
        (
            cfg.eval_interval >= 0,
            f"eval_interval must be 0 (auto) or more, not {cfg.eval_interval}",
        ),
        (cfg.eval_batches >= 1, f"eval_batches must be at least 1, not {cfg.eval_batches}"),
        (
            cfg.early_stopping >= 0,
            f"early_stopping must be 0 (off) or a number of evaluations, not {cfg.early_stopping}",
        ),
        (
            cfg.checkpoint_interval >= 0,
            f"checkpoint_interval must be 0 (at each evaluation) or more, not {cfg.checkpoint_interval}",
        ),
        (
            cfg.keep_checkpoints >= 1,
            f"keep_checkpoints must be at least 1, not {cfg.keep_checkpoints}",
        ),
        (cfg.grad_accum >= 1, f"grad_accum must be at least 1, not {cfg.grad_accum}"),
        (
            cfg.parallel in ("ddp", "fsdp"),
            f"parallel must be ddp or fsdp, not '{cfg.parallel}'",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ZooError(message)
    n = distributed.world_size()
    if cfg.batch_size % (n * cfg.grad_accum):
        parts = [f"{n} processes"] if n > 1 else []
        parts += [f"{cfg.grad_accum} micro-batches"] if cfg.grad_accum > 1 else []
        raise ZooError(
            f"batch size {cfg.batch_size} does not divide among {' x '.join(parts)}; use a "
            f"multiple of {n * cfg.grad_accum} (--batch-size is the global batch of a step)"
        )
    device = pick_device(cfg.device)  # an unknown or absent device, before anything is written
    if cfg.compile:
        check_compiler(device)


def train(
    model: str | None = None,
    *,
    task: str | None = None,
    data: str | Path | None = None,
    val_data: str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    init: tuple[Path, str] | None = None,
    **train_options: Any,
) -> TrainedRun:
    """Train a registered model, or resume a run folder (see ``zoo_core.train``). ``init``:
    the folder of the weights to start from, and the source it was given as."""
    try:
        train_options = {k: v for k, v in train_options.items() if v is not None}
        overrides = dict(overrides or {})
        if resume is not None:
            if init is not None:
                raise ZooError(
                    "--init starts a new run; a resumed run goes on from its own checkpoints "
                    "(its config records what it started from)"
                )
            given = {"model": model, "task": task, "data": data, "val_data": val_data, "out": out}
            with _lock(Path(resume)):
                return _resume(Path(resume), overrides, train_options, progress, given)
        return _train_new(
            model, task, data, val_data, out, overrides, progress, train_options, init
        )
    finally:
        distributed.finish()  # under torchrun: leave the process group, error or not


def _train_new(
    model, task, data, val_data, out, overrides, progress, train_options, init=None
) -> TrainedRun:
    if model is None:
        raise ZooError("name a model to train (see `zoo list`), or --resume a run folder")
    spec = get_model_spec(model)
    task_name = task or spec.tasks[0]
    if task_name not in spec.tasks:
        raise ZooError(
            f"model '{spec.name}' does not do task '{task_name}'; it does: {', '.join(spec.tasks)}"
        )
    task_cls = task_class(task_name)
    model_cls = model_class(spec)
    model_over, task_over, train_over = split_overrides(
        {**overrides, **train_options},
        model_cls,
        task_cls,
        f"model '{spec.name}' with task '{task_name}'",
    )
    task_defaults = {
        k: v for k, v in spec.train_defaults.items() if k in _config.field_types(task_cls.Options)
    }
    start = None
    if init is not None:  # the weights bring their config, tokenizer and task's preprocessing
        start = initial.read_init(*init, spec, task_name)
        initial.check_settings(start, task_over, model_over)
        if start.config.tokenizer and "tokenizer" in _config.field_types(task_cls.Options):
            task_defaults["tokenizer"] = start.config.tokenizer
    # A variant's defaults may name options of its other tasks (an lm seq_len): skip those.
    train_defaults = {
        k: v for k, v in spec.train_defaults.items() if k in _config.field_types(TrainConfig)
    }
    if "time" in train_over and "steps" not in train_over:
        train_defaults.pop("steps", None)
        train_over["steps"] = 10**12  # the clock decides
    train_cfg = _config.build(TrainConfig, {**train_defaults, **train_over}, "training settings")
    options = _config.build(
        task_cls.Options, {**task_defaults, **task_over}, f"task '{task_name}' options"
    )
    validate_train_config(train_cfg)
    distributed.init(pick_device(train_cfg.device).type)
    # A path is recorded absolute; a Hub data set pinned to the commit it resolves to now.
    data, val_data = _where(data), _where(val_data)

    task_obj = task_cls(options, tokenizer=start.task.tokenizer if start else None)
    if start is not None:
        task_obj.adopt(start.task)
    task_obj.setup(data, val_data, train_cfg.seed)
    config_fields = _config.field_types(model_cls.config_class)
    from_data = {k: v for k, v in task_obj.model_config().items() if k in config_fields}
    saved = start.config.model_config if start else {}
    model_cfg = _config.build(
        model_cls.config_class,
        {**spec.defaults, **saved, **from_data, **model_over},
        f"model '{spec.name}' config",
    )
    task_obj.bind(model_cfg)
    torch.manual_seed(train_cfg.seed)  # the same seed, the same initial weights
    net = model_cls(model_cfg)
    if start is not None:
        renewed = {k: (saved[k], v) for k, v in from_data.items() if k in saved and saved[k] != v}
        initial.load_init(net, start, renewed)
    initial.freeze(net, train_cfg.freeze, spec.name)

    existed = out is not None and Path(out).is_dir()
    run_dir = _shared_run_dir(spec.name, out)
    with _lock(run_dir):  # one process trains a run folder at a time
        tokenizer = getattr(task_obj.tokenizer, "name", None)
        dist = distribution(spec.plugin)
        config = RunConfig(
            zoo_version=__version__,
            model=spec.name,
            family=spec.family,
            plugin=spec.plugin,
            distribution=dist,
            plugin_version=distribution_version(dist),
            task_distribution=spec_distribution("task", task_name),
            tokenizer_distribution=spec_distribution("tokenizer", tokenizer),
            task=task_name,
            tokenizer=tokenizer,
            model_config=_config.to_json(model_cfg),
            task_config=_config.to_json(task_obj.options),
            task_state=task_obj.state(),
            train_config=_config.to_json(train_cfg),
            data=data,
            val_data=val_data,
            data_fingerprints=_fingerprints(data, val_data),
            origin=start.origin if start else {},
        )
        trainer = None
        try:
            if distributed.is_main():
                _write_start(run_dir, config, task_obj)
            # Where a task may write files as it trains (progress samples); rank 0 alone writes.
            task_obj.run_dir = run_dir if distributed.is_main() else None
            trainer = Trainer(
                net,
                task_obj,
                train_cfg,
                run_dir,
                name=spec.name,
                progress=progress,
            )
            final = trainer.fit()
        except BaseException:
            # Failed (or was stopped at once) before it saved a checkpoint or logged a step: no
            # folder is left of it.
            if distributed.is_main() and (trainer is None or trainer.saved_nothing):
                _discard(run_dir, keep_folder=existed)
            raise
        net = _unsharded(net, model_cls, model_cfg, run_dir)
        return _finish(run_dir, config, spec, net, task_obj, final)


def _unsharded(net: nn.Module, cls: type, model_cfg: Any, run_dir: Path) -> nn.Module:
    """A model sharded across processes (parallel=fsdp) as a plain one with its trained weights,
    read back from the run folder (on rank 0, which wrote them); any other model as it is."""
    if not distributed.is_sharded(net) or not distributed.is_main():
        return net
    plain = cls(model_cfg)
    artifacts.load_weights(plain, run_dir / artifacts.WEIGHTS_FILE)
    return plain


def _has_checkpoint(run_dir: Path) -> bool:
    return checkpoint.newest_state(run_dir / artifacts.CHECKPOINTS_DIR) is not None


def _lock(run_dir: Path):
    """Under torchrun, rank 0 alone holds the run folder's lock."""
    return artifacts.locked(run_dir) if distributed.is_main() else contextlib.nullcontext()


def _discard(run_dir: Path, keep_folder: bool) -> None:
    """Remove a run that never trained; an empty --out folder that was there before stays."""
    if keep_folder:
        for path in run_dir.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


def _shared_run_dir(name: str, out: str | Path | None) -> Path:
    """Rank 0 makes the run folder; under torchrun the other ranks learn its path."""
    if distributed.world_size() == 1:
        return new_run_dir(name, out)
    path, error = "", None
    if distributed.is_main():
        try:
            path = str(new_run_dir(name, out))
        except ZooError as exc:
            error = exc
    path = distributed.broadcast_text(path)
    if error is not None:
        raise error
    if not path:
        raise ZooError("rank 0 could not create the run folder; see its error")
    return Path(path)


def _write_start(run_dir: Path, config: RunConfig, task_obj: Task) -> None:
    try:
        config.write(run_dir)
        if task_obj.tokenizer is not None:
            tok = task_obj.tokenizer
            artifacts.atomic_write(run_dir / artifacts.TOKENIZER_FILE, tok.save)
    except OSError as exc:
        raise ZooError(f"cannot write to the run folder '{run_dir}': {exc.strerror}") from None


def _finish(
    run_dir: Path,
    config: RunConfig,
    spec: ModelSpec,
    net: nn.Module,
    task_obj: Task,
    final: dict[str, Any],
) -> TrainedRun:
    net.eval()
    if not distributed.is_main():  # rank 0 alone writes
        return TrainedRun(run_dir, config, spec, net, task_obj, final)
    config.metrics = {k: v for k, v in final.items() if k.startswith("val_")}
    try:
        config.write(run_dir)
        task_obj.save_extras(run_dir)  # task-made files (an image task's confusion matrix)
        write_card(run_dir, config)  # after them: it shows the pictures among them
    except OSError as exc:
        raise ZooError(
            f"training finished and its weights are saved, but writing '{run_dir}' failed: "
            f"{exc.strerror or exc}"
        ) from None
    return TrainedRun(run_dir, config, spec, net, task_obj, final)


def _check_left_to_train(run_dir: Path, train_cfg: TrainConfig) -> None:
    """A run that has already reached its --steps (or --time) is left as it is: resuming it
    would only evaluate it again."""
    checkpoints = run_dir / artifacts.CHECKPOINTS_DIR
    state = checkpoint.newest_state(checkpoints)
    if state is None and not checkpoint.list_checkpoints(checkpoints):
        if (run_dir / artifacts.WEIGHTS_FILE).exists():  # trained once; its checkpoints are gone
            raise ZooError(
                f"'{run_dir}' has trained weights but no checkpoint to resume from (was "
                f"'{checkpoints}' removed?); its model.safetensors is kept as it is. Start a new "
                "run to train further"
            )
        return  # stopped before its first checkpoint: the run starts again from step 0
    if state is None:
        return  # every checkpoint damaged: load_latest says so
    done, spent = state["step"], (state.get("trainer") or {}).get("elapsed", 0.0)
    if done >= train_cfg.steps:
        raise ZooError(
            f"'{run_dir}' has trained {done} steps already and --steps is {train_cfg.steps}: "
            f"resume with --steps above {done} to train it further"
        )
    if train_cfg.time is not None and spent >= train_cfg.time:
        raise ZooError(
            f"'{run_dir}' has trained for {spent:.0f} s already and --time is {train_cfg.time:g} "
            f"s: resume with a longer --time to train it further"
        )


def _check_same_run(run_dir: Path, config: RunConfig, given: dict[str, Any]) -> None:
    """A resumed run keeps its model, task, data and folder: naming others is an error (naming
    the same ones is harmless)."""

    def path(p: Any) -> str | None:
        if p is None or hf.is_hub(str(p)):
            return None if p is None else str(p)
        return str(Path(p).resolve())

    def same(given: Any, recorded: str | None) -> bool:
        if recorded and hf.is_hub(str(given)) and hf.is_hub(recorded):
            # hf:ORG/NAME names the run's data set; a revision, if given, must be its commit.
            ask, have = hf.parse(str(given)), hf.parse(recorded)
            return (ask.repo, ask.config) == (have.repo, have.config) and (
                ask.revision is None or have.revision.startswith(ask.revision)
            )
        return path(given) == recorded

    differs = []
    if given.get("model") not in (None, config.model):
        differs.append(f"the model {given['model']} (it trains {config.model})")
    if given.get("task") not in (None, config.task):
        differs.append(f"--task {given['task']} (its task is {config.task})")
    for key, option, verb, default in (
        ("data", "--data", "trains", "the embedded default"),
        ("val_data", "--val-data", "validates", "the held-out part of its data"),
    ):
        recorded = getattr(config, key)
        if given.get(key) is not None and not same(given[key], recorded):
            differs.append(f"{option} (it {verb} on {recorded or default})")
    if given.get("out") is not None and path(given["out"]) != path(run_dir):
        differs.append("--out (it stays in its folder)")
    if differs:
        raise ZooError(
            f"a resumed run keeps its model, task, data and folder; drop {'; '.join(differs)}, "
            "or start a new run"
        )
    for recorded in (config.data, config.val_data):
        if recorded and not hf.is_hub(recorded) and not Path(recorded).exists():
            raise ZooError(
                f"'{run_dir}' was trained on '{recorded}', which is not here; put it back "
                "there to resume the run"
            )


def _where(data: str | Path | None) -> str | None:
    """How a run records its data: a path made absolute, or ``hf:ORG/NAME@COMMIT``."""
    if data is None:
        return None
    if hf.is_hub(str(data)):
        return hf.pin(str(data))
    return str(Path(data).resolve())


def _fingerprints(data: str | None, val_data: str | None) -> dict[str, str]:
    """What the data under the run's paths is now (an embedded data set has no path)."""
    found = {}
    for key, path in (("data", data), ("val_data", val_data)):
        if path is not None and (value := fingerprint(path)):
            found[key] = value
    return found


def _resume(
    run_dir: Path, overrides: dict, train_options: dict, progress: bool, given: dict[str, Any]
) -> TrainedRun:
    config = RunConfig.read(run_dir)
    _check_same_run(run_dir, config, given)
    warn_if_changed(
        {"data": config.data, "val_data": config.val_data},
        config.data_fingerprints,
        "the run goes on with the data as it is now",
    )
    fixed = sorted(set(overrides) | (set(train_options) - RESUME_CHANGEABLE))
    if fixed:
        raise ZooError(
            f"a resumed run keeps its settings; {', '.join(fixed)} cannot change "
            f"(only {', '.join(sorted(RESUME_CHANGEABLE))} can). Start a new run to change them"
        )
    catalog = get_catalog()
    if config.model not in catalog.models:
        raise ZooError(missing_message(config))
    spec = catalog.models[config.model]
    cls = model_class(spec)
    model_cfg = saved_model_config(cls, config)
    task_obj = build_task(config, run_dir)
    train_cfg = _config.from_json(TrainConfig, config.train_config)
    for key, value in train_options.items():
        setattr(
            train_cfg, key, _config.parse_value(value, _config.field_types(TrainConfig)[key], key)
        )
    validate_train_config(train_cfg)
    _check_left_to_train(run_dir, train_cfg)
    torch.manual_seed(train_cfg.seed)  # a run with no checkpoint yet starts as it first did
    net = cls(model_cfg)
    if config.origin.get("kind") == "init" and not _has_checkpoint(run_dir):
        raise ZooError(
            f"'{run_dir}' stopped before its first checkpoint, and it started from the weights "
            f"of '{config.origin.get('source')}': start it again with --init"
        )
    initial.freeze(net, train_cfg.freeze, spec.name)
    task_obj.setup(config.data, config.val_data, train_cfg.seed)
    task_obj.bind(model_cfg)
    config.train_config = _config.to_json(train_cfg)
    finished = _unfinish(run_dir, config) if distributed.is_main() else None
    # Where a task may write files as it trains (progress samples); rank 0 alone writes.
    task_obj.run_dir = run_dir if distributed.is_main() else None
    try:
        trainer = Trainer(net, task_obj, train_cfg, run_dir, name=spec.name, progress=progress)
        final = trainer.fit(resume=True)
    except BaseException:
        if finished is not None:
            _refinish(run_dir, config, finished)
        raise
    net = _unsharded(net, cls, model_cfg, run_dir)
    return _finish(run_dir, config, spec, net, task_obj, final)


@dataclass
class _Finished:
    """A finished run's final metrics, and the weights and card they belong to."""

    metrics: dict[str, Any]
    weights_sha256: str | None
    card: str | None


def _unfinish(run_dir: Path, config: RunConfig) -> _Finished | None:
    """Clear a finished run's final metrics (in config.json and its card) before it trains on:
    from its first checkpoint on, model.safetensors holds weights they do not describe, and a
    stop or a crash must not leave them to be pushed under them. What is cleared is returned,
    for :func:`_refinish`."""
    finished = None
    try:
        if config.metrics is not None:
            weights, card = run_dir / artifacts.WEIGHTS_FILE, run_dir / artifacts.CARD_FILE
            finished = _Finished(
                config.metrics,
                _sha256(weights),
                card.read_text(encoding="utf-8") if card.is_file() else None,
            )
            config.metrics = None
        config.write(run_dir)
        if finished is not None and finished.card is not None:
            write_card(run_dir, config)  # its results say it is unfinished
    except OSError as exc:
        raise ZooError(f"cannot write to the run folder '{run_dir}': {exc.strerror}") from None
    return finished


def _sha256(path: Path) -> str | None:
    return artifacts.file_sha256(path) if path.is_file() else None


def _refinish(run_dir: Path, config: RunConfig, finished: _Finished) -> None:
    """A resume that stopped before it changed the weights (a Ctrl-C at once; a checkpoint of
    the same step again) leaves the run finished, as it was, with its metrics and card."""
    weights = run_dir / artifacts.WEIGHTS_FILE
    with contextlib.suppress(OSError):  # else it stays unfinished: the safe side
        if finished.weights_sha256 != _sha256(weights):
            return
        config.metrics = finished.metrics
        config.write(run_dir)
        if finished.card is not None:
            text = finished.card
            artifacts.atomic_write(
                run_dir / artifacts.CARD_FILE, lambda p: p.write_text(text, encoding="utf-8")
            )
