"""The files of a data folder: at any depth, sorted, hidden ones left out."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path


def visible_files(folder: Path, suffixes: Collection[str] | None = None) -> list[Path]:
    """The files at any depth under ``folder``, sorted, with one of ``suffixes`` (lower case,
    matched in any case; None: any). Hidden files and anything in hidden folders are left out:
    macOS's ``._name`` companions, Jupyter's ``.ipynb_checkpoints`` copies, ``.git``."""
    return sorted(
        f
        for f in folder.rglob("*")
        if (suffixes is None or f.suffix.lower() in suffixes)
        and not any(part.startswith(".") for part in f.relative_to(folder).parts)
        and f.is_file()
    )
