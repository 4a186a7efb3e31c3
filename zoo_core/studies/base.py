"""``zoo study NAME``: run a registered study with its recorded settings; write its tables (as
Markdown), its plots and ``study.json`` in one folder.

A study is a function that takes a :class:`StudyContext`. It trains through the context (most
often one or more ``zoo compare`` plans, :meth:`StudyContext.compare`), then records tables
(:meth:`StudyContext.table`) and plots. Every table is written to ``tables.md`` between markers
that name it, so a document that includes the table (``docs/studies.md``) can be brought up to
date from the command's output (:func:`update_document`) and checked against it.

Three sizes: ``quick`` (a few steps, to check that the study runs and what its tables look like),
``cpu`` (the recorded study, minutes on a 2-core CPU) and ``cuda`` (bigger, for a GPU).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from zoo_core import artifacts
from zoo_core import compare as comparison
from zoo_core.catalog import get_study_spec
from zoo_core.errors import ZooError
from zoo_core.launch import usable_cores
from zoo_core.registry import resolve
from zoo_core.training.run import new_run_dir
from zoo_core.training.trainer import pick_device

STUDY_FILE = "study.json"
TABLES_FILE = "tables.md"
SIZES = ("quick", "cpu", "cuda")
# A table in Markdown between two markers: <!-- study:NAME/KEY --> ... <!-- /study -->
_BLOCK = re.compile(r"<!-- study:(?P<key>[\w./-]+) -->\n(?P<body>.*?)<!-- /study -->", re.S)

T = TypeVar("T")


@dataclass
class Table:
    """One table of a study: its key (``study/what``), columns and rows of text."""

    key: str
    columns: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def block(self) -> str:
        return f"<!-- study:{self.key} -->\n{self.markdown()}<!-- /study -->\n"


@dataclass
class StudyContext:
    """What a study function is given: where to write, at which size, on which device; and
    where it records its tables, plots and numbers."""

    name: str
    folder: Path
    size: str = "cpu"  # quick | cpu | cuda
    device: str = "cpu"
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # paths relative to the folder
    results: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping
    on_run: Callable[[str, dict[str, Any], int, int], None] | None = None
    resume: bool = False  # continue the comparisons an earlier run of the study left here
    jobs: int = 1  # runs of a comparison trained at a time, each in its own process

    def pick(self, quick: T, cpu: T, cuda: T) -> T:
        """The setting of this size."""
        return {"quick": quick, "cpu": cpu, "cuda": cuda}[self.size]

    def compare(self, part: str, models: list[str], **options: Any) -> dict[str, Any]:
        """A ``zoo compare`` plan in the sub-folder ``part``, on the study's device; returns its
        results (``summary``, ``runs``...). ``options`` are :func:`zoo_core.compare.compare`'s."""
        sets = {**options.pop("sets", {}), "device": self.device}
        if self.size == "quick":  # small validation sets: a quick study checks, it does not measure
            sets.setdefault("eval_batches", "2")
        on_run = None
        if self.on_run is not None:
            report = self.on_run

            def on_run(run: dict[str, Any], done: int, total: int) -> None:
                report(part, run, done, total)

        if self.resume and (self.folder / part / comparison.RESULTS_FILE).is_file():
            # its own plan, as it was started; finished runs are kept, the rest trained
            results = comparison.resume(self.folder / part, on_run=on_run, jobs=self.jobs)
        else:
            results = comparison.compare(
                models, out=self.folder / part, sets=sets, on_run=on_run, jobs=self.jobs, **options
            )
        self.plots += [f"{part}/{p}" for p in results.get("plots", [])]
        return results

    def table(self, key: str, columns: list[str], rows: list[list[str]]) -> Table:
        """Record a table; its key in ``tables.md`` and documents is ``<study>/<key>``."""
        if not re.fullmatch(r"[\w.-]+", key):
            raise ZooError(f"study {self.name}: a table key is letters, digits, '.-_', not {key!r}")
        if any(len(row) != len(columns) for row in rows):
            raise ZooError(f"study {self.name}: table {key} has rows of another width")
        table = Table(f"{self.name}/{key}", columns, rows)
        self.tables.append(table)
        return table

    def comparison_tables(
        self, key: str, results: dict[str, Any], *, tokens: bool = True, digits: int = 3
    ) -> None:
        """The tables of a comparison: its metric at each length, ``mean ± 95% interval`` over
        the seeds (and the answer tokens right, where the task scores them)."""
        metric = results["metric"]
        summary = results["summary"]
        lengths = list(summary[0]["lengths"]) if summary else []
        head = [metric if k == "-" else f"{metric} @{k}" for k in lengths]
        rows = [
            [
                row["label"],
                f"{row['params']:,}",
                "-" if row["train_seconds"] is None else f"{row['train_seconds']:.0f}",
            ]
            + [comparison.format_cell(row["lengths"][k], metric, "ci95", digits) for k in lengths]
            for row in summary
        ]
        self.table(key, ["variant", "params", "train s", *head], rows)
        has_tokens = any("val_token_accuracy" in c for r in summary for c in r["lengths"].values())
        if tokens and has_tokens:
            rows = [
                [row["label"]]
                + [
                    comparison.format_cell(row["lengths"][k], "val_token_accuracy", "ci95", 2)
                    for k in lengths
                ]
                for row in summary
            ]
            self.table(f"{key}-tokens", ["variant", *[f"token acc @{k}" for k in lengths]], rows)


def _clear(folder: Path, name: str, overwrite: bool) -> None:
    """Refuse a folder that holds anything, unless it holds an earlier output of the same study
    and ``overwrite`` is given: then empty it (and nothing else is ever removed)."""
    if not any(folder.iterdir()):
        return
    if not overwrite:
        raise ZooError(
            f"'{folder}' already exists and is not empty; choose a new --out, or replace an "
            f"earlier output of this study with --overwrite"
        )
    recorded = folder / STUDY_FILE
    earlier = artifacts.read_json(recorded, "study record") if recorded.is_file() else None
    if not isinstance(earlier, dict) or earlier.get("study") != name:
        raise ZooError(
            f"--overwrite replaces only an earlier output of `zoo study {name}`, and '{folder}' "
            f"is not one (it has no {STUDY_FILE} of that study); choose another --out"
        )
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _earlier(folder: Path, name: str, size: str, device: str) -> dict[str, Any]:
    """The record of the run of study ``name`` that ``--resume`` continues, at the same size."""
    path = folder / STUDY_FILE
    earlier = artifacts.read_json(path, "study record") if path.is_file() else None
    if not isinstance(earlier, dict) or earlier.get("study") != name:
        raise ZooError(
            f"--resume continues an earlier `zoo study {name}` in its --out folder, and "
            f"'{folder}' holds none; run the study without --resume"
        )
    if (earlier.get("size"), earlier.get("device")) != (size, device):
        raise ZooError(
            f"'{folder}' holds a run of {name} at size {earlier.get('size')} on "
            f"{earlier.get('device')}; resume it with the same --quick and --device"
        )
    return earlier


def run_study(
    name: str,
    *,
    quick: bool = False,
    device: str = "cpu",
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    on_run: Callable[[str, dict[str, Any], int, int], None] | None = None,
    jobs: int | Literal["auto"] = 1,
) -> dict[str, Any]:
    """Run study ``name`` at its recorded size (``quick``: a few steps; on a ``cuda`` device,
    the GPU size); write ``tables.md``, ``study.json`` and plots to ``out``; return the record.
    ``resume`` continues an earlier run of the study in ``out``: its finished runs are kept, its
    interrupted ones continued, and every table measured again. ``jobs`` runs of a comparison
    are trained at a time, each in its own process (``"auto"``: :func:`auto_jobs`)."""
    spec = get_study_spec(name)
    pick_device(device)  # an unknown device, or a GPU that is not here: one line, nothing written
    if jobs == "auto":
        jobs = auto_jobs(device, quick)
    if not isinstance(jobs, int) or jobs < 1:
        raise ZooError(f"--jobs must be at least 1 (or auto), not {jobs}")
    function = resolve(spec.study, f"study '{spec.name}' of plugin '{spec.plugin}'")
    if not callable(function):
        raise ZooError(f"study '{spec.name}' points at '{spec.study}', which is not a function")
    size = "quick" if quick else ("cuda" if device.startswith("cuda") else "cpu")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ZooError(f"--out '{out}' is a file; give a folder")
    if out is not None:
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ZooError(f"cannot create the folder '{out}': {exc.strerror or exc}") from None
    folder = Path(out) if out is not None else new_run_dir(f"study-{spec.name}", None)
    context = StudyContext(spec.name, folder, size, device, on_run=on_run, jobs=jobs)
    started = time.perf_counter()
    # The lock before the check: of two studies started together in one --out, the second
    # writes nothing over the first one's output.
    with artifacts.locked(folder):
        earlier = _earlier(folder, spec.name, size, device) if resume else None
        if not resume:
            _clear(folder, spec.name, overwrite)
        context.resume = resume
        record: dict[str, Any] = {
            "study": spec.name,
            "size": size,
            "device": device,
            "command": f"zoo study {spec.name}"
            + (" --quick" if quick else "")
            + (f" --device {device}" if device != "cpu" else ""),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": _machine(),
            "jobs": jobs,  # for the wall time; a resume may use another number
        }
        if earlier is not None:  # what the earlier run took stays on record
            record["resumed"] = {k: earlier.get(k) for k in ("started", "wall_seconds", "machine")}
        artifacts.write_json(folder / STUDY_FILE, record)  # marks the folder as this study's
        function(context)
        record["wall_seconds"] = round(time.perf_counter() - started, 1)
        record["load_average_after"] = _load()
        record["tables"] = [
            {"key": t.key, "columns": t.columns, "rows": t.rows} for t in context.tables
        ]
        record["plots"] = context.plots
        record["results"] = context.results
        artifacts.write_json(folder / STUDY_FILE, record)
        text = (
            f"<!-- Written by `{record['command']}` in {record['wall_seconds']:.0f} s; "
            "do not edit: run the study again. -->\n\n"
        )
        text += "\n".join(t.block() for t in context.tables)
        artifacts.atomic_write(folder / TABLES_FILE, lambda p: p.write_text(text, encoding="utf-8"))
    record["folder"] = str(folder)
    return record


def auto_jobs(device: str, quick: bool) -> int:
    """``--jobs auto``: one run per usable core on the CPU; one at a time with ``quick`` (a
    child process's start would cost more than its few steps) and on a GPU (which one run
    fills)."""
    if quick or pick_device(device).type != "cpu":
        return 1
    return usable_cores()


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on this system
        return None


def _machine() -> dict[str, Any]:
    import torch  # the version of the library that trained: the study has imported it already

    return {
        "cpus": os.cpu_count(),
        "load_average": _load(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def table_blocks(text: str) -> dict[str, str]:
    """The study tables in a Markdown text: key -> the table's Markdown."""
    return {m["key"]: m["body"] for m in _BLOCK.finditer(text)}


def update_document(document: str | Path, folder: str | Path) -> list[str]:
    """Replace, in ``document``, every study table that the study output in ``folder`` has;
    return the keys of the tables the document does not include."""
    document, folder = Path(document), Path(folder)
    tables = folder / TABLES_FILE
    if not tables.is_file():
        raise ZooError(f"'{folder}' holds no {TABLES_FILE}: give the --out folder of a zoo study")
    new = table_blocks(tables.read_text(encoding="utf-8"))
    try:
        text = document.read_text(encoding="utf-8")
    except OSError as exc:
        raise ZooError(f"cannot read '{document}': {exc.strerror or exc}") from None
    found: set[str] = set()

    def replace(match: re.Match) -> str:
        key = match["key"]
        if key not in new:
            return match.group(0)
        found.add(key)
        return f"<!-- study:{key} -->\n{new[key]}<!-- /study -->"

    updated = _BLOCK.sub(replace, text)
    artifacts.atomic_write(document, lambda p: p.write_text(updated, encoding="utf-8"))
    return [key for key in new if key not in found]
