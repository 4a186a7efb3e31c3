"""How every ``zoo`` command prints: tables, JSON, metrics, and a user's mistake as one line."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from zoo_core.artifacts import format_metric
from zoo_core.errors import printable
from zoo_core.launch import report_rank_error

__all__ = ["error", "fail", "format_metric", "metrics", "print_json", "shown", "table"]


def shown(value: Any, limit: int | None = 200) -> str:
    """``value`` as text safe to print: a Hub repo's config may hold terminal escapes, control
    characters or a megabyte of text, none of which reaches the terminal."""
    return printable(value, limit)


def table(columns: list[str], rows: list[list[Any]]) -> None:
    """Print ``rows`` under ``columns``: aligned on a terminal, one unwrapped line a row in a pipe."""
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*[Text(shown(c, None)) for c in row])  # Text: no [markup] read in a cell
    console = Console()
    if console.is_terminal:
        console.print(grid)
        return
    # Pipes and logs: one line a row however long (no wrapping at 80 or any other width), no
    # padding after the last column; the table is only as wide as its widest cells.
    console = Console(width=1_000_000, record=True, file=io.StringIO())
    console.print(grid)
    for line in console.export_text().splitlines():
        click.echo(line.rstrip())


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (what JSON cannot hold, as its ``str``)."""
    click.echo(json.dumps(data, indent=2, default=str))


def metrics(values: Mapping[str, Any], sep: str = ", ") -> str:
    """``val_loss 1.234, val_accuracy 0.912``: metrics as a person reads them."""
    return sep.join(
        f"{shown(key, 60)} {shown(format_metric(value), 60)}" for key, value in values.items()
    )


def error(message: str) -> None:
    """``Error: message`` on one line of stderr (under ``--nproc``, kept for the launcher, which
    prints each rank's line once)."""
    line = f"Error: {message}"
    if not report_rank_error(line):
        click.echo(line, err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as :func:`error` does and leave with exit status ``code``."""
    error(message)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.exit(code)
    sys.exit(code)
