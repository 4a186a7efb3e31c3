"""Text data: the embedded default (the standard library's pydoc topics) and user files."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.artifacts import atomic_write
from zoo_core.data.files import visible_files
from zoo_core.data.fingerprint import fingerprint
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


def iter_text(path: str | Path, block: int = 1 << 22) -> Iterator[str]:
    """``read_text(path)`` in pieces of about ``block`` characters, never all in memory: the
    pieces joined are that text (files joined by blank lines, each without its byte-order mark,
    line ends made ``\\n``). The same errors, raised when the reader reaches them."""
    p = Path(path)
    if not p.exists():
        raise ZooError(
            f"data path '{path}' does not exist; give a text file or a folder of .txt files"
        )
    files = text_files(p) if p.is_dir() else [p]
    if not files:
        raise ZooError(f"folder '{path}' holds no .txt files; put text files in it or give a file")
    seen_text = False
    for n, f in enumerate(files):
        if n:
            yield "\n\n"
        for piece in _iter_one(f, block):
            seen_text = seen_text or not piece.isspace()
            yield piece
    if not seen_text:
        raise ZooError(f"data '{path}' is empty; give a text with something in it")


def _iter_one(path: Path, block: int) -> Iterator[str]:
    """One UTF-8 file as ``_read_one`` reads it, in pieces: an incremental decoder over binary
    blocks (so a bad byte is named by its offset), with universal newlines as ``read_text``."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset, carry = 0, ""
    try:
        with open(path, "rb") as handle:
            while True:
                raw = handle.read(block)
                try:
                    piece = carry + decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    raise ZooError(
                        f"'{path}' is not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
                    ) from None
                offset += len(raw)
                # A "\r" at the end may be the first half of "\r\n": keep it for the next piece.
                carry = piece[-1:] if raw and piece.endswith("\r") else ""
                piece = piece[: len(piece) - len(carry)]
                if piece:
                    yield piece.replace("\r\n", "\n").replace("\r", "\n")
                if not raw:
                    return
    except OSError as exc:
        raise ZooError(f"cannot read '{path}': {exc.strerror}") from None


@dataclass
class TextSource:
    """A text to tokenize, read in pieces: what to call it, what it is (JSON for a cache key:
    a fingerprint, a data set's revision) and its pieces, read anew at each call."""

    name: str
    key: dict[str, Any]
    pieces: Callable[[], Iterable[str]]


def text_source(data: str | Path | None) -> TextSource:
    """The default text (None) or a text file or folder, as a :class:`TextSource`."""
    if data is None:
        text = default_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        return TextSource(DEFAULT_TEXT_NAME, {"default": digest}, lambda: iter([text]))
    found = fingerprint(data)
    if found is None:
        list(iter_text(data))  # the error that says why it cannot be read
        raise ZooError(f"cannot read '{data}'")
    key = {"fingerprint": found}
    if found.startswith("stat:"):  # names, sizes and times only: the path tells copies apart
        key["path"] = str(Path(data).resolve())
    return TextSource(str(data), key, lambda: iter_text(data))


def upto(pieces: Iterable[str], stop: int) -> Iterator[str]:
    """The first ``stop`` characters of the text of ``pieces``, in pieces."""
    n = 0
    for piece in pieces:
        if n >= stop:
            return
        yield piece[: stop - n]
        n += len(piece)
