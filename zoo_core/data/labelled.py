"""Labelled text for classification: a folder with one sub-folder per class, or a JSONL/CSV file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from zoo_core.data.text import _read_one, text_files
from zoo_core.errors import ZooError

# The longest CSV field read: a long document, but not a file that runs on unquoted to its end.
_CSV_FIELD_LIMIT = 16 << 20
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
    files = {d.name: text_files(d) for d in classes}
    empty = [name for name, found in files.items() if not found]
    if len(empty) == len(classes):
        raise ZooError(f"the class sub-folders of '{root}' hold no .txt files; {_LAYOUT}")
    if empty:  # a class with no examples is a mistake, not a class to leave out quietly
        raise ZooError(
            f"the class folder{'s' if len(empty) > 1 else ''} {', '.join(map(repr, empty))} of "
            f"'{root}' hold{'' if len(empty) > 1 else 's'} no .txt files; add examples or "
            "remove the folder"
        )
    return [(_read_one(f), name) for name, found in files.items() for f in found]


def _check(record: object, where: str) -> tuple[str, str]:
    if not isinstance(record, dict) or "text" not in record or "label" not in record:
        raise ZooError(f"{where} is not an object with 'text' and 'label'; {_LAYOUT}")
    text, label = record["text"], record["label"]
    if not isinstance(text, str):
        raise ZooError(f"{where}: 'text' must be a string, not {type(text).__name__}")
    if label is None or (isinstance(label, str) and not label.strip()):
        raise ZooError(f"{where}: 'label' is empty")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise ZooError(
            f"{where}: 'label' must be a string or a whole number, not {json.dumps(label)}"
        )
    return text, str(label).strip()


def _read_jsonl(path: Path) -> list[tuple[str, str]]:
    examples = []
    # Lines end at "\n" only: JSON strings may hold U+2028, U+0085 or a form feed unescaped.
    for n, line in enumerate(_read_one(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ZooError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError):  # an integer of thousands of digits; deep nesting
            raise ZooError(
                f"{path}, line {n}: JSON the parser refuses (a number too long, or nested too deep)"
            ) from None
        examples.append(_check(record, f"{path}, line {n}"))
    return examples


def _read_csv(path: Path) -> list[tuple[str, str]]:
    # newline="" hands the csv module the text as it is, so a quoted field keeps its line breaks.
    rows = csv.DictReader(io.StringIO(_read_one(path), newline=""))
    # csv refuses a field over 128 KiB; a long document is an example, not a mistake. The limit
    # is the process's, so it is set for this file alone.
    limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        if rows.fieldnames is None or not {"text", "label"} <= set(rows.fieldnames):
            raise ZooError(f"'{path}' needs a header row with the columns 'text' and 'label'")
        return [_check(row, f"{path}, row {n}") for n, row in enumerate(rows, 2)]
    except csv.Error as exc:  # a field over the limit, a NUL byte
        raise ZooError(f"{path}, line {rows.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)


def sort_labels(labels: set[str]) -> list[str]:
    """Class names in a stable order: numerically when every label is an integer."""
    try:
        # int() takes any decimal digits, not "²" or "1.5"; "01" and "1" keep a fixed order.
        return sorted(labels, key=lambda label: (int(label), label))
    except ValueError:
        return sorted(labels)
