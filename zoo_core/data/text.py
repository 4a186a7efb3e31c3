"""Text data: the embedded default (the standard library's pydoc topics) and user files."""

from __future__ import annotations

from pathlib import Path

from zoo_core.artifacts import atomic_write
from zoo_core.data.files import visible_files
from zoo_core.errors import ZooError

DEFAULT_TEXT_NAME = "pydoc-topics"


def default_text() -> str:
    """The English reference text every CPython ships (``pydoc_data.topics``, ~465k chars)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        raise ZooError(
            "this Python has no pydoc_data module, so the default text is missing; "
            "pass --data FILE with a text file of your own"
        ) from None
    return "\n\n".join(topics[key] for key in sorted(topics))


def write_default(out: str | Path) -> tuple[Path, int]:
    """Write the default text to the new file ``out`` (UTF-8, all or nothing); return the path
    and its length in characters. Training on that file is training on the default."""
    out = Path(out)
    if out.exists():
        raise ZooError(f"'{out}' already exists; choose a new --out")
    text = default_text()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out, len(text)


def read_text(path: str | Path) -> str:
    """A text file, or every ``.txt`` file of a folder (sorted, recursively, hidden files and
    folders left out) joined by blank lines."""
    p = Path(path)
    if not p.exists():
        raise ZooError(
            f"data path '{path}' does not exist; give a text file or a folder of .txt files"
        )
    if p.is_dir():
        files = text_files(p)
        if not files:
            raise ZooError(
                f"folder '{path}' holds no .txt files; put text files in it or give a file"
            )
        parts = [_read_one(f) for f in files]
        text = "\n\n".join(parts)
    else:
        text = _read_one(p)
    if not text.strip():
        raise ZooError(f"data '{path}' is empty; give a text with something in it")
    return text


def text_files(folder: Path) -> list[Path]:
    """The ``.txt`` files (any case) at any depth under ``folder``, sorted, hidden files and
    folders left out."""
    return visible_files(folder, {".txt"})


def _read_one(path: Path) -> str:
    """A UTF-8 file's text; a byte-order mark at its start (Windows editors write one) is not."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ZooError(f"'{path}' is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ZooError(f"cannot read '{path}': {exc.strerror}") from None


def split(text: str, val_fraction: float) -> tuple[str, str]:
    """The first part for training, the last ``val_fraction`` for validation (deterministic)."""
    if not 0 < val_fraction < 1:
        raise ZooError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    n = int(len(text) * (1 - val_fraction))
    return text[:n], text[n:]
