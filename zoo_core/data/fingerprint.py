"""Fingerprints of the user's data, so that a run notices when the data under its path changed.

A run records the fingerprint of its ``--data`` and ``--val-data`` in ``config.json``; resuming it
or evaluating it on that data again compares. Up to ``CONTENT_LIMIT`` bytes the fingerprint is a
SHA-256 of the names, sizes and contents of the files; beyond it (a large image folder, where
reading everything at each start would cost minutes) it takes the names, sizes and modification
times, as Hugging Face ``datasets`` does for local files.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from zoo_core.data.files import visible_files

CONTENT_LIMIT = 1 << 30  # bytes read in full; more is fingerprinted by sizes and times


def fingerprint(path: str | Path) -> str | None:
    """``sha256:<hex>`` (contents) or ``stat:<hex>`` (sizes and times) of a file or folder; None
    when it is not there or cannot be read."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        files = [path] if path.is_file() else visible_files(path)
        stats = [f.stat() for f in files]
        by_content = sum(s.st_size for s in stats) <= CONTENT_LIMIT
        digest = hashlib.sha256()
        for f, s in zip(files, stats, strict=True):
            name = f.relative_to(path).as_posix() if f != path else ""
            digest.update(f"{name}\0{s.st_size}\0".encode())
            if not by_content:
                digest.update(f"{s.st_mtime_ns}\0".encode())
                continue
            with open(f, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return None
    return ("sha256:" if by_content else "stat:") + digest.hexdigest()


def warn_if_changed(
    paths: dict[str, str | None], recorded: dict[str, str], consequence: str
) -> None:
    """A warning on stderr for each of ``paths`` (``{"data": ...}``) whose data is still there
    but no longer has the fingerprint ``recorded`` under its key; silent where none is recorded."""
    for key, path in paths.items():
        before = recorded.get(key)
        if not path or not before or not Path(path).exists():
            continue
        if fingerprint(path) != before:
            print(
                f"zoo: warning: '{path}' has changed since this run was trained on it (its "
                f"files differ); {consequence}",
                file=sys.stderr,
            )
