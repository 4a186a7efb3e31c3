"""Labelled text for classification: a folder with one sub-folder per class, or a JSONL/CSV file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from zoo_core.data.text import _read_one
from zoo_core.errors import ZooError

_LAYOUT = (
    "lay it out as FOLDER/<class>/<example>.txt, or give a .jsonl or .csv file with the "
    "fields 'text' and 'label'"
)


def read_labelled(path: str | Path) -> list[tuple[str, str]]:
    """(text, label) pairs from a class-folder tree, a ``.jsonl`` file or a ``.csv`` file."""
    p = Path(path)
    if not p.exists():
        raise ZooError(f"data path '{path}' does not exist; {_LAYOUT}")
    if p.is_dir():
        examples = _read_folder(p)
    elif p.suffix.lower() in (".jsonl", ".json"):
        examples = _read_jsonl(p)
    elif p.suffix.lower() == ".csv":
        examples = _read_csv(p)
    else:
        raise ZooError(
            f"cannot read labelled data from '{path}' (not a folder, .jsonl or .csv); {_LAYOUT}"
        )
    if not examples:
        raise ZooError(f"'{path}' holds no examples; {_LAYOUT}")
    return examples


def _read_folder(root: Path) -> list[tuple[str, str]]:
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ZooError(f"folder '{root}' has no class sub-folders; {_LAYOUT}")
    examples = [
        (_read_one(f), d.name) for d in classes for f in sorted(d.glob("*.txt")) if f.is_file()
    ]
    if not examples:
        raise ZooError(f"the class sub-folders of '{root}' hold no .txt files; {_LAYOUT}")
    return examples


def _check(record: object, where: str) -> tuple[str, str]:
    if not isinstance(record, dict) or "text" not in record or "label" not in record:
        raise ZooError(f"{where} is not an object with 'text' and 'label'; {_LAYOUT}")
    text, label = record["text"], record["label"]
    if not isinstance(text, str):
        raise ZooError(f"{where}: 'text' must be a string, not {type(text).__name__}")
    if label is None or (isinstance(label, str) and not label.strip()):
        raise ZooError(f"{where}: 'label' is empty")
    return text, str(label).strip()


def _read_jsonl(path: Path) -> list[tuple[str, str]]:
    examples = []
    for n, line in enumerate(_read_one(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ZooError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
        examples.append(_check(record, f"{path}, line {n}"))
    return examples


def _read_csv(path: Path) -> list[tuple[str, str]]:
    rows = csv.DictReader(_read_one(path).splitlines())
    if rows.fieldnames is None or not {"text", "label"} <= set(rows.fieldnames):
        raise ZooError(f"'{path}' needs a header row with the columns 'text' and 'label'")
    return [_check(row, f"{path}, row {n}") for n, row in enumerate(rows, 2)]


def sort_labels(labels: set[str]) -> list[str]:
    """Class names in a stable order: numerically when every label is an integer."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)
