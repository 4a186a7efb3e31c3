"""``zoo compare``: train several models (or values of a config field) on the same data with the
same budget, evaluate each at several lengths, and report a table, results.json and plots.

Every run goes through :func:`zoo_core.train`, so a compared model is an ordinary run folder
(``<out>/<variant>-seed<k>``) that ``zoo eval`` and ``zoo generate`` read. A value list in
``--set key=a,b,c`` is a sweep: each model that has the field is trained once per value.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zoo_core import _config, artifacts
from zoo_core.artifact import load_local
from zoo_core.artifact import train as train_one
from zoo_core.catalog import count_parameters, get_model_spec, model_class
from zoo_core.errors import ZooError
from zoo_core.launch import threads_per_process
from zoo_core.plot import line_chart
from zoo_core.runconfig import RunConfig
from zoo_core.tasks.base import task_class
from zoo_core.training import checkpoint
from zoo_core.training.config import TrainConfig
from zoo_core.training.run import new_run_dir, split_overrides
from zoo_core.training.trainer import TrainingInterrupted

RESULTS_FILE = "results.json"


@dataclass
class Variant:
    """One model with one value of every swept setting that applies to it."""

    model: str
    settings: dict[str, str]
    overrides: dict[str, Any] = field(default_factory=dict)  # everything passed to train()
    params: int = 0

    @property
    def label(self) -> str:
        return " ".join([self.model] + [f"{k}={v}" for k, v in self.settings.items()])

    @property
    def slug(self) -> str:
        parts = [self.model] + [f"{k}-{v}" for k, v in self.settings.items()]
        return "_".join(parts).replace("/", "-").replace(" ", "")


def split_sets(sets: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``--set`` values: a single value is fixed, a comma-separated list is swept."""
    fixed, sweeps = {}, {}
    for key, value in sets.items():
        values = [v.strip() for v in str(value).split(",")]
        if len(values) > 1:
            if any(not v for v in values):
                raise ZooError(f"--set {key}={value}: an empty value in the list")
            sweeps[key] = values
        else:
            fixed[key] = values[0]
    return fixed, sweeps


def _fields(spec, task_cls) -> dict[str, set[str]]:
    return {
        "model": set(_config.field_types(model_class(spec).config_class)),
        "task": set(_config.field_types(task_cls.Options)),
        "train": set(_config.field_types(TrainConfig)),
    }


def _known(fields: dict[str, set[str]], key: str) -> bool:
    return any(key in f for f in fields.values())


def _length_key(task_cls) -> str | None:
    """The task's length option, if it has one its evaluate() takes (Task.length_option)."""
    key = task_cls.length_option
    return key if key in _config.field_types(task_cls.Options) else None


def _tokens(task_cls, options: dict[str, Any], length: int, key: str) -> int:
    """Tokens a model reads at ``length`` (synthetic tasks add the question's structure)."""
    if not hasattr(task_cls, "sequence_length"):
        return length
    values = {k: v for k, v in options.items() if k in _config.field_types(task_cls.Options)}
    task = task_cls(_config.build(task_cls.Options, {**values, key: length}, "task options"))
    task.check_length(length)
    return task.sequence_length(length)


def _count(spec, task_cls, task_name: str, overrides: dict[str, Any]) -> int:
    """Parameters of ``spec`` built as train() would build it (on the meta device: no memory)."""
    cls = model_class(spec)
    model_over, task_over, _ = split_overrides(overrides, cls, task_cls, spec.name)
    task_defaults = {
        k: v for k, v in spec.train_defaults.items() if k in _config.field_types(task_cls.Options)
    }
    task = task_cls(_config.build(task_cls.Options, {**task_defaults, **task_over}, task_name))
    task.setup(None)
    from_data = {
        k: v for k, v in task.model_config().items() if k in _config.field_types(cls.config_class)
    }
    config = _config.build(
        cls.config_class, {**spec.defaults, **from_data, **model_over}, spec.name
    )
    with torch.device("meta"):
        return count_parameters(cls(config))


def _match_width(spec, task_cls, task_name: str, variant: Variant, target: int) -> None:
    """Set the variant's width (the field its spec declares) so its parameter count is closest
    to ``target``."""
    key = spec.width
    if not key:
        raise ZooError(
            f"--match-params: model '{spec.name}' declares no width field (ModelSpec.width), "
            "so its size cannot be matched; compare it without --match-params"
        )
    cls = model_class(spec)
    fields = _config.field_types(cls.config_class)
    defaults = _config.field_defaults(cls.config_class) | spec.defaults

    def value(name: str) -> Any:
        return variant.overrides.get(name, defaults.get(name))

    for name in (key, *(f for f in spec.width_multiple_of if isinstance(f, str))):
        if name not in fields:
            raise ZooError(
                f"--match-params: model '{spec.name}' names '{name}' for its width, but its "
                f"config has no such field; fix the spec of plugin '{spec.plugin}'"
            )
    step = math.prod(f if isinstance(f, int) else int(value(f)) for f in spec.width_multiple_of)
    width = value(key)
    # A tied field that starts equal to the width keeps a square model square.
    ties = {f for f in spec.tied_widths if f in fields and str(value(f)) == str(width)}

    def count(w: int) -> int:
        return _count(
            spec, task_cls, task_name, {**variant.overrides, key: w, **dict.fromkeys(ties, w)}
        )

    lo, hi = 1, 1
    while count(hi * step) < target and hi < 4096:  # parameters grow with the width
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid * step) < target else (lo, mid)
    best = min((lo, hi), key=lambda m: abs(count(m * step) - target)) * step
    variant.overrides.update({key: best, **dict.fromkeys(ties, best)})
    variant.settings[key] = str(best)
    variant.params = count(best)


def _evaluate(artifact, length: int, key: str, batch_size: int) -> dict[str, Any]:
    try:
        return artifact.task.evaluate(artifact.model, batch_size, **{key: length})
    except ZooError as exc:  # learned positions cannot read past their table: a result, not a crash
        return {"refused": str(exc)}


def _loss_curve(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in artifacts.read_metrics(run_dir) if "loss" in r]


# Student's t, two-sided 95%, by degrees of freedom (1..30); beyond 30 the value of 30, a
# little wide, is used.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def interval95(values: list[float]) -> float:
    """Half the width of the 95% confidence interval of the mean of ``values`` (Student's t);
    0 for a single value."""
    n = len(values)
    if n < 2:
        return 0.0
    return _T95[min(n - 1, len(_T95)) - 1] * statistics.stdev(values) / math.sqrt(n)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "ci95": interval95(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def compare(
    models: list[str],
    task: str | None = None,
    *,
    train_length: int | None = None,
    eval_lengths: list[int] | None = None,
    steps: int | None = None,
    seeds: int = 1,
    sets: dict[str, str] | None = None,
    match_params: bool = False,
    data_fractions: list[float] | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    out: str | Path | None = None,
    on_run: Callable[[dict[str, Any], int, int], None] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train every variant ``seeds`` times, evaluate at every length; write results and plots.

    ``on_run(run, done, total)`` is called after each run (for progress lines). ``jobs`` > 1
    trains that many runs at a time, each in a process of its own (the results are the same).
    """
    if not models:
        raise ZooError("name at least one model to compare (see `zoo list`)")
    if seeds < 1:
        raise ZooError(f"--seeds must be at least 1, not {seeds}")
    for option, value, ok in (
        ("--steps", steps, steps is None or steps >= 1),
        ("--batch-size", batch_size, batch_size is None or batch_size >= 1),
        ("--jobs", jobs, jobs >= 1),
    ):
        if not ok:
            raise ZooError(f"{option} must be at least 1, not {value}")
    if lr is not None and not lr > 0:
        raise ZooError(f"--lr must be positive, not {lr}")
    specs = [get_model_spec(m) for m in models]
    task = task or specs[0].tasks[0]
    for spec in specs:
        if task not in spec.tasks:
            raise ZooError(
                f"model '{spec.name}' does not do task '{task}'; it does: {', '.join(spec.tasks)}"
            )
    task_cls = task_class(task)
    fixed, sweeps = split_sets(sets or {})
    if data_fractions:
        if "train_fraction" not in _config.field_types(task_cls.Options):
            raise ZooError(
                f"task '{task}' has no train_fraction option; --data-fraction needs one (use lm)"
            )
        if any(not 0 < f <= 1 for f in data_fractions):
            raise ZooError(f"data fractions must be in (0, 1], not {data_fractions}")
        sweeps["train_fraction"] = [str(f) for f in data_fractions]
    fields = {spec.name: _fields(spec, task_cls) for spec in specs}
    for key in [*fixed, *sweeps]:
        if not any(_known(f, key) for f in fields.values()):
            raise ZooError(
                f"no compared model, task '{task}' or training setting has a field '{key}'"
            )

    key = _length_key(task_cls)
    if key is None and (train_length or eval_lengths):
        raise ZooError(
            f"task '{task}' has no length option; drop --train-length and --eval-lengths"
        )
    if key is not None and train_length is None:
        default = specs[0].train_defaults.get(key) or _config.field_defaults(task_cls.Options).get(
            key
        )
        train_length = int(fixed.pop(key, default or 64))
    if key is not None:
        fixed.pop(key, None)
    lengths = sorted(set(eval_lengths or [train_length])) if key is not None else [None]
    task_fixed = {k: v for k, v in fixed.items() if k in _config.field_types(task_cls.Options)}
    longest = (
        max(_tokens(task_cls, task_fixed, n, key) for n in [train_length, *lengths]) if key else 0
    )

    # One variant per model and combination of the swept values that apply to it.
    variants: list[Variant] = []
    for spec in specs:
        f = fields[spec.name]
        keys = [k for k in sweeps if _known(f, k)]
        for combo in itertools.product(*(sweeps[k] for k in keys)):
            overrides: dict[str, Any] = {k: v for k, v in fixed.items() if _known(f, k)}
            overrides.update(zip(keys, combo, strict=True))
            if key is not None:
                overrides[key] = train_length
                if "context_length" in f["model"] and "context_length" not in overrides:
                    overrides["context_length"] = longest  # learned positions cover every length
            variants.append(Variant(spec.name, dict(zip(keys, combo, strict=True)), overrides))
    by_name = {spec.name: spec for spec in specs}
    for v in variants:
        v.params = _count(by_name[v.model], task_cls, task, v.overrides)
    if match_params:
        target = variants[0].params
        for v in variants[1:]:  # within 5% already (a swept task option, say): left as it is
            if abs(v.params - target) > 0.05 * target:
                _match_width(by_name[v.model], task_cls, task, v, target)
    slugs = [v.slug for v in variants]
    if len(set(slugs)) != len(slugs):
        raise ZooError("two compared variants have the same name; name each model once")

    folder = new_run_dir("compare", out)
    metric = task_cls.metric
    results: dict[str, Any] = {
        "task": task,
        "metric": metric,
        "lower_is_better": task_cls.lower_is_better,
        "length_option": key,
        "train_length": train_length,
        "eval_lengths": lengths,
        "steps": steps,
        "seeds": seeds,
        "batch_size": batch_size,
        "lr": lr,
        "settings": {"fixed": fixed, "sweeps": sweeps, "match_params": match_params},
        "variants": [
            {
                "label": v.label,
                "model": v.model,
                "settings": v.settings,
                "params": v.params,
                "overrides": v.overrides,
            }
            for v in variants
        ],
        "runs": [],
    }
    # The lock before the plan: of two comparisons started together in one --out, the second
    # writes nothing over the first one's results.json.
    with artifacts.locked(folder):
        if any(folder.iterdir()):  # the other wrote its plan and ended before this one locked
            raise ZooError(
                f"'{folder}' already exists and is not empty; choose a new --out, or continue "
                f"that comparison with --resume {folder}"
            )
        artifacts.write_json(folder / RESULTS_FILE, results)  # the plan, before any run
        return _run_plan(folder, results, on_run, jobs)


def resume(
    folder: str | Path,
    on_run: Callable[[dict[str, Any], int, int], None] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Continue an interrupted comparison in ``folder`` with the settings it was started with:
    finished runs are kept, an interrupted run continues from its checkpoint, the rest start.
    ``jobs`` is :func:`compare`'s, and need not be the one the comparison was started with."""
    if jobs < 1:
        raise ZooError(f"--jobs must be at least 1, not {jobs}")
    folder = Path(folder)
    path = folder / RESULTS_FILE
    if not path.is_file():
        raise ZooError(
            f"'{folder}' is not a comparison folder (it has no {RESULTS_FILE}): give the --out "
            "folder of a `zoo compare`"
        )
    results = artifacts.read_json(path, "comparison results")
    variants = results.get("variants") if isinstance(results, dict) else None
    if not variants or any("overrides" not in v for v in variants) or "lr" not in results:
        raise ZooError(
            f"'{path}' was written by an earlier version of zoo and cannot be resumed; start a "
            "new comparison"
        )
    results.pop("summary", None)
    results.pop("plots", None)
    return _run_all(folder, results, on_run, jobs)


def _run_all(
    folder: Path,
    results: dict[str, Any],
    on_run: Callable[[dict[str, Any], int, int], None] | None,
    jobs: int = 1,
) -> dict[str, Any]:
    with artifacts.locked(folder):  # one process runs a comparison at a time
        return _run_plan(folder, results, on_run, jobs)


def _plan(results: dict[str, Any]) -> list[tuple[Variant, int]]:
    """The runs of ``results``' plan, in order: every variant, seed by seed."""
    return [
        (Variant(v["model"], v["settings"], v["overrides"], v["params"]), seed)
        for v in results["variants"]
        for seed in range(results["seeds"])
    ]


def _run_plan(
    folder: Path,
    results: dict[str, Any],
    on_run: Callable[[dict[str, Any], int, int], None] | None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train and evaluate every run of ``results``' plan that it has no record of, in order,
    writing results.json after each; then the summary and plots. Ctrl-C stops the comparison
    (an interrupted run keeps its checkpoint) and says how to continue it. ``jobs`` > 1 runs
    that many at a time, each in a child process (:func:`_run_in_processes`)."""
    plan = _plan(results)
    if jobs > 1:
        _run_in_processes(folder, results, plan, on_run, jobs)
        return _finish(folder, results)
    recorded = {run["folder"]: run for run in results["runs"]}
    for done, (v, seed) in enumerate(plan, 1):
        run_dir = folder / f"{v.slug}-seed{seed}"
        if run_dir.name in recorded:
            if on_run is not None:
                on_run(recorded[run_dir.name], done, len(plan))
            continue
        try:
            run = _run_one(folder, v, seed, results)
        except (TrainingInterrupted, KeyboardInterrupt) as exc:
            raise _interrupted(
                folder,
                results,
                f"at {v.label} seed {seed} (run {done} of {len(plan)})",
                getattr(exc, "exit_code", 130),
            ) from None
        results["runs"].append(run)
        artifacts.write_json(folder / RESULTS_FILE, results)
        if on_run is not None:
            on_run(run, done, len(plan))
    return _finish(folder, results)


def _run_one(folder: Path, v: Variant, seed: int, results: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one run of the plan; its record for results.json. A ZooError is the
    run's ``error``; an interruption (TrainingInterrupted, KeyboardInterrupt) is raised."""
    run_dir = folder / f"{v.slug}-seed{seed}"
    run = _new_run(v, seed, run_dir)
    started = time.perf_counter()
    try:
        artifact, final = _train_run(run_dir, v, seed, results)
        run["train_seconds"] = final.get("elapsed")
        eval_batch = artifact.config.train_config["batch_size"]
        key = results["length_option"]
        run["eval"] = (
            {str(n): _evaluate(artifact, n, key, eval_batch) for n in results["eval_lengths"]}
            if key
            else {"-": {k: val for k, val in final.items() if k.startswith("val_")}}
        )
    except TrainingInterrupted:
        raise
    except ZooError as exc:
        run["error"] = str(exc)
    run["seconds"] = time.perf_counter() - started
    run["loss_curve"] = _loss_curve(run_dir)
    return run


def _new_run(v: Variant, seed: int, run_dir: Path) -> dict[str, Any]:
    return {"variant": v.label, "seed": seed, "folder": run_dir.name, "params": v.params}


def _interrupted(
    folder: Path, results: dict[str, Any], where: str, exit_code: int
) -> TrainingInterrupted:
    """The error a stopped comparison ends with: where it stopped, what it kept, how to go on."""
    finished = sum("error" not in r for r in results["runs"])
    return TrainingInterrupted(
        f"interrupted {where}; {finished} finished run{'' if finished == 1 else 's'} kept in "
        f"{folder / RESULTS_FILE}. Continue with: zoo compare --resume {folder}",
        exit_code=exit_code,
    )


def _finish(folder: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Every run is recorded: write the summary and plots (or fail if no run succeeded)."""
    results["summary"] = _summarise(results)
    results["plots"] = _plots(results, folder)
    artifacts.write_json(folder / RESULTS_FILE, results)
    results["folder"] = str(folder)
    if all("error" in run for run in results["runs"]):
        first = results["runs"][0]
        raise ZooError(
            f"every run failed, so there is nothing to compare; {first['variant']} seed "
            f"{first['seed']}: {first['error']} (the errors are in {folder / RESULTS_FILE})"
        )
    return results


# -- jobs > 1: one child process per run, talking to this one through JSON files ---------------
_POLL_SECONDS = 0.2
# A child that ends this way without its record was stopped (by Ctrl-C or SIGTERM), not broken:
# the trainer's exit codes, or killed by the signal itself outside the training loop.
_STOPPED = {130: 130, 143: 143, -signal.SIGINT: 130, -signal.SIGTERM: 143}


@dataclass
class _Child:
    """A run of the plan being trained by a child process."""

    index: int  # in the plan
    variant: Variant
    seed: int
    process: subprocess.Popen
    log: Path  # its stdout and stderr
    record: Path  # where it writes its run's record
    started: float = field(default_factory=time.perf_counter)


def _start(folder: Path, plan: list[tuple[Variant, int]], index: int, jobs: int) -> _Child:
    v, seed = plan[index]
    name = f"{v.slug}-seed{seed}"
    log, record = folder / f".{name}.log", folder / f".{name}.record.json"
    record.unlink(missing_ok=True)  # one a process that was killed left: run it again
    threads = threads_per_process(jobs)
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    env.setdefault("MKL_NUM_THREADS", threads)
    with open(log, "w", encoding="utf-8") as out:  # the child has its own copy of the file
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo_core.compare", str(folder), str(index), str(record)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return _Child(index, v, seed, process, log, record)


def _crashed(child: _Child, code: int) -> str:
    """The error of a run whose process ended without a record: its code and last words."""
    lines = child.log.read_text(encoding="utf-8", errors="replace").splitlines()
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    how = (
        f"was killed by {signal.Signals(-code).name}"
        if code < 0 and -code in signal.valid_signals()
        else f"ended with exit code {code}"
    )
    return f"its process {how}" + (f": {last}" if last else "")


def _run_in_processes(
    folder: Path,
    results: dict[str, Any],
    plan: list[tuple[Variant, int]],
    on_run: Callable[[dict[str, Any], int, int], None] | None,
    jobs: int,
) -> None:
    """Run the plan's unrecorded runs ``jobs`` at a time, each in a child process
    (``python -m zoo_core.compare FOLDER INDEX RECORD``: :func:`main`), recording each as it
    ends. Ctrl-C or SIGTERM stops them all, each at a step with a checkpoint, and raises
    TrainingInterrupted once they have ended."""
    names = [f"{v.slug}-seed{seed}" for v, seed in plan]
    order = {name: i for i, name in enumerate(names)}

    def in_plan_order(run: dict[str, Any]) -> int:
        return order.get(run["folder"], len(order))

    recorded = {run["folder"] for run in results["runs"]}
    pending = [i for i, name in enumerate(names) if name not in recorded]
    total, done = len(plan), 0
    for run in sorted(results["runs"], key=in_plan_order):
        done += 1
        if on_run is not None:
            on_run(run, done, total)
    running: list[_Child] = []
    stopped: list[int] = []  # plan indices of the runs a signal stopped
    signals: list[int] = []  # the signals that stop the comparison, first first

    def stop(signum: int, frame: Any) -> None:  # the loop below passes it on
        signals.append(signum)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        if in_main_thread
        else {}
    )
    forwarded = False
    try:
        while running or (pending and not signals):
            while pending and len(running) < jobs and not signals:
                running.append(_start(folder, plan, pending.pop(0), jobs))
            if signals and not forwarded:
                # SIGTERM, for Ctrl-C too: the terminal has sent the children SIGINT already,
                # and a second SIGINT would stop their training at once, without a checkpoint.
                for child in running:
                    if child.process.poll() is None:
                        child.process.send_signal(signal.SIGTERM)
                forwarded = True
            time.sleep(_POLL_SECONDS)
            for child in [c for c in running if c.process.poll() is not None]:
                running.remove(child)
                code = child.process.returncode
                run_dir = folder / names[child.index]
                if child.record.is_file():
                    run = artifacts.read_json(child.record, "run record")
                    child.record.unlink()
                    child.log.unlink(missing_ok=True)
                elif code in _STOPPED or signals:
                    # Not recorded: resuming continues it from its checkpoint. Stopped alone
                    # (a SIGTERM to its PID), it stops the comparison, as in one process.
                    stopped.append(child.index)
                    signals.append(signal.SIGTERM if _STOPPED.get(code) == 143 else signal.SIGINT)
                    child.log.unlink(missing_ok=True)
                    continue
                else:  # a crash: the log is kept
                    run = {
                        **_new_run(child.variant, child.seed, run_dir),
                        "error": _crashed(child, code),
                        "seconds": time.perf_counter() - child.started,
                        "loss_curve": _loss_curve(run_dir),
                    }
                results["runs"].append(run)
                results["runs"].sort(key=in_plan_order)
                artifacts.write_json(folder / RESULTS_FILE, results)
                done += 1
                if on_run is not None:
                    on_run(run, done, total)
    finally:
        for child in running:  # only on an error in this process: end the children it started
            child.process.terminate()
        for child in running:
            child.process.wait()
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    if signals and len(results["runs"]) < total:
        where = " and ".join(
            f"{plan[i][0].label} seed {plan[i][1]} (run {i + 1} of {total})"
            for i in sorted(stopped or pending[:1])
        )
        raise _interrupted(
            folder,
            results,
            f"{'at' if stopped else 'before'} {where}",
            143 if signals[0] == signal.SIGTERM else 130,
        )


def _train_run(run_dir: Path, v: Variant, seed: int, results: dict[str, Any]):
    """Train one run of the plan; a run folder an interrupted comparison left is continued: from
    its checkpoint (from the start if it stopped before one), or only evaluated if its training
    had finished."""
    if (run_dir / artifacts.CONFIG_FILE).is_file():
        config = RunConfig.read(run_dir)
        if config.finished and (run_dir / artifacts.WEIGHTS_FILE).is_file():  # trained
            state = checkpoint.newest_state(run_dir / artifacts.CHECKPOINTS_DIR)
            elapsed = ((state or {}).get("trainer") or {}).get("elapsed")
            return load_local(run_dir), {**config.metrics, "elapsed": elapsed}
        return train_one(resume=run_dir, progress=False)
    # No config yet: the folder was made and nothing written in it; training takes it as --out.
    return train_one(
        v.model,
        task=results["task"],
        out=run_dir,
        overrides=dict(v.overrides),
        progress=False,
        steps=results["steps"],
        seed=seed,
        batch_size=results["batch_size"],
        lr=results["lr"],
    )


def _summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant and length: the metric's mean and spread over seeds (or why it is missing)."""
    metric = results["metric"]
    keys = [str(n) if n is not None else "-" for n in results["eval_lengths"]]
    summary = []
    for variant in results["variants"]:
        runs = [r for r in results["runs"] if r["variant"] == variant["label"]]
        row: dict[str, Any] = {
            **{k: v for k, v in variant.items() if k != "overrides"},
            "lengths": {},
            "train_seconds": None,
        }
        times = [r["train_seconds"] for r in runs if r.get("train_seconds") is not None]
        if times:
            row["train_seconds"] = statistics.fmean(times)
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            row["error"] = errors[0]
        for k in keys:
            evals = [r["eval"][k] for r in runs if "eval" in r]
            values = [e[metric] for e in evals if metric in e]
            cell: dict[str, Any] = {}
            if values:
                cell[metric] = _spread(values)
                # and every other validation metric the runs report (token accuracy, BLEU...)
                others = {m for e in evals for m in e if m.startswith("val_") and m != metric}
                for name in sorted(others):
                    found = [e[name] for e in evals if isinstance(e.get(name), int | float)]
                    if found:
                        cell[name] = _spread(found)
            refused = [e["refused"] for e in evals if "refused" in e]
            if refused:
                cell["refused"] = refused[0]
            row["lengths"][k] = cell
        summary.append(row)
    return summary


def _plots(results: dict[str, Any], folder: Path) -> list[str]:
    metric = results["metric"]
    written = []
    sweeps = results["settings"]["sweeps"]
    by_fraction = "train_fraction" in sweeps
    lengths = [n for n in results["eval_lengths"] if n is not None]
    if by_fraction:  # the metric against the data size, one line per model (and other settings)
        series: dict[str, list] = {}
        for row in results["summary"]:
            others = {k: v for k, v in row["settings"].items() if k != "train_fraction"}
            name = " ".join([row["model"]] + [f"{k}={v}" for k, v in others.items()])
            cell = row["lengths"].get(str(lengths[0]) if lengths else "-", {})
            y = cell.get(metric, {}).get("mean")
            series.setdefault(name, []).append((float(row["settings"]["train_fraction"]), y))
        path = folder / "data_fraction.png"
        line_chart(
            series,
            path,
            title=f"{results['task']}: {metric} against training data",
            xlabel="fraction of the training data",
            ylabel=metric,
            log_x=True,
            x_ticks=[float(f) for f in sweeps["train_fraction"]],
        )
        written.append(path.name)
    if len(lengths) > 1 or (lengths and not by_fraction):  # a task with lengths
        series = {}
        for row in results["summary"]:
            series[row["label"]] = [
                (float(n), row["lengths"][str(n)].get(metric, {}).get("mean")) for n in lengths
            ]
        path = folder / "length.png"
        accuracy = metric.endswith("accuracy")
        line_chart(
            series,
            path,
            title=f"{results['task']}: {metric} by evaluation length "
            f"(trained at {results['train_length']})",
            xlabel="evaluation length",
            ylabel=metric,
            y_range=(0.0, 1.0) if accuracy else None,
            x_ticks=[float(n) for n in lengths],
        )
        written.append(path.name)
        tokens = {  # per answer token: shows partial skill where exact match is all zeros
            row["label"]: [
                (float(n), row["lengths"][str(n)].get("val_token_accuracy", {}).get("mean"))
                for n in lengths
            ]
            for row in results["summary"]
        }
        if any(y is not None for points in tokens.values() for _, y in points):
            path = folder / "length_tokens.png"
            line_chart(
                tokens,
                path,
                title=f"{results['task']}: answer tokens right, by evaluation length "
                f"(trained at {results['train_length']})",
                xlabel="evaluation length",
                ylabel="val_token_accuracy",
                y_range=(0.0, 1.0),
                x_ticks=[float(n) for n in lengths],
            )
            written.append(path.name)
    curves: dict[str, list] = {}
    for row in results["summary"]:
        runs = [r for r in results["runs"] if r["variant"] == row["label"] and r["loss_curve"]]
        if not runs:
            continue
        steps = sorted({s for r in runs for s, _ in r["loss_curve"]})
        mean = []
        for s in steps:  # the mean over seeds at each logged step
            values = [
                loss for r in runs for t, loss in r["loss_curve"] if t == s and math.isfinite(loss)
            ]
            mean.append((float(s), statistics.fmean(values) if values else None))
        curves[row["label"]] = mean
    path = folder / "loss.png"
    line_chart(
        curves,
        path,
        title=f"{results['task']}: training loss",
        xlabel="step",
        ylabel="loss (answer tokens)" if results["length_option"] == "length" else "loss",
        log_y=True,
    )
    written.append(path.name)
    return written


def format_cell(cell: dict[str, Any], metric: str, spread: str = "std", digits: int = 3) -> str:
    """``mean ± std`` (or ``spread="ci95"``: ± half the 95% interval) of a summary cell, or why
    it has none."""
    if metric in cell:
        s = cell[metric]
        text = f"{s['mean']:.{digits}f}"
        # results.json of an older zoo has no ci95: computed from the std and the count.
        half = s.get(spread, _T95[min(s["n"] - 1, 30) - 1] * s["std"] / math.sqrt(s["n"]))
        return text + (f" ± {half:.{digits}f}" if s["n"] > 1 else "")
    return "refused" if "refused" in cell else "-"


def main(argv: list[str] | None = None) -> int:
    """Train and evaluate one run of a comparison's plan and write its record as JSON, as
    :func:`_run_in_processes` asks a child process to: ``python -m zoo_core.compare FOLDER
    INDEX RECORD``. Its exit code: 0 with the record written, the trainer's when interrupted."""
    folder, index, record = argv if argv is not None else sys.argv[1:]
    try:
        results = artifacts.read_json(Path(folder) / RESULTS_FILE, "comparison results")
        v, seed = _plan(results)[int(index)]
        run = _run_one(Path(folder), v, seed, results)
    except TrainingInterrupted as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside the training loop, or a second one
        return 130
    except ZooError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    artifacts.write_json(record, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
