"""Source and target pairs for sequence-to-sequence tasks: a JSONL, TSV or CSV file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from zoo_core.data.text import _read_one
from zoo_core.errors import ZooError

_CSV_FIELD_LIMIT = 16 << 20  # the longest field read: a long document, not a runaway quote
_LAYOUT = (
    'give a .jsonl file of {"source": ..., "target": ...} lines, a .tsv file of '
    "source<TAB>target lines or a .csv file with the columns 'source' and 'target'"
)


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(source, target) pairs from a ``.jsonl``, ``.tsv`` or ``.csv`` file."""
    p = Path(path)
    if not p.exists():
        raise ZooError(f"data path '{path}' does not exist; {_LAYOUT}")
    if p.is_dir():
        raise ZooError(f"'{path}' is a folder; {_LAYOUT}")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json"):
        pairs = _read_jsonl(p)
    elif suffix == ".tsv":
        pairs = _read_tsv(p)
    elif suffix == ".csv":
        pairs = _read_csv(p)
    else:
        raise ZooError(f"cannot read pairs from '{path}' (not .jsonl, .tsv or .csv); {_LAYOUT}")
    if not pairs:
        raise ZooError(f"'{path}' holds no pairs; {_LAYOUT}")
    return pairs


def _check(source: object, target: object, where: str) -> tuple[str, str]:
    for key, value in (("source", source), ("target", target)):
        if not isinstance(value, str):
            shown = "nothing" if value is None else type(value).__name__
            raise ZooError(f"{where}: '{key}' must be a string, not {shown}")
        if not value.strip():
            raise ZooError(f"{where}: '{key}' is empty")
    return source.strip(), target.strip()


def _read_jsonl(path: Path) -> list[tuple[str, str]]:
    pairs = []
    # Lines end at "\n" only: JSON strings may hold U+2028, U+0085 or a form feed unescaped.
    for n, line in enumerate(_read_one(path).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}, line {n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ZooError(f"{where}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError):  # an integer of thousands of digits; deep nesting
            raise ZooError(
                f"{where}: JSON the parser refuses (a number too long, or nested too deep)"
            ) from None
        if not isinstance(record, dict) or "source" not in record or "target" not in record:
            raise ZooError(f"{where} is not an object with 'source' and 'target'; {_LAYOUT}")
        pairs.append(_check(record["source"], record["target"], where))
    return pairs


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for n, line in enumerate(_read_one(path).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ZooError(
                f"{path}, line {n}: {len(fields)} tab-separated fields, not 2 (source, target)"
            )
        if n == 1 and [f.strip().lower() for f in fields] == ["source", "target"]:
            continue  # a header
        pairs.append(_check(fields[0], fields[1], f"{path}, line {n}"))
    return pairs


def _read_csv(path: Path) -> list[tuple[str, str]]:
    # newline="" hands the csv module the text as it is, so a quoted field keeps its line breaks.
    rows = csv.DictReader(io.StringIO(_read_one(path), newline=""))
    limit = csv.field_size_limit(_CSV_FIELD_LIMIT)  # the process's: set for this file alone
    try:
        if rows.fieldnames is None or not {"source", "target"} <= set(rows.fieldnames):
            raise ZooError(f"'{path}' needs a header row with the columns 'source' and 'target'")
        return [
            _check(row["source"], row["target"], f"{path}, row {n}")
            for n, row in enumerate(rows, 2)
        ]
    except csv.Error as exc:  # a field over the limit, a NUL byte
        raise ZooError(f"{path}, line {rows.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)
