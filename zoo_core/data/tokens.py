"""Token maps: a text tokenized once into a file of ids, read back through ``numpy.memmap``.

Like nanoGPT's ``train.bin``: ``uint16`` ids where the vocabulary fits (65,536 ids or fewer),
``uint32`` beyond, so a token costs 2 or 4 bytes on disk and nothing in memory until a window is
read. The text is read and encoded in line-aligned chunks (a tokenizer's ``encode_batch``, which
the ``bpe`` tokenizer runs on all cores in Rust), so no corpus has to fit in memory.

The files live in the cache folder (``$ZOO_CACHE``, default ``$HF_HOME/zoo``) under
``tokens/``, named by a key made of what the text is (its fingerprint, or a data set's revision,
split and column) and of the tokenizer (its saved JSON). Later runs, resumed runs and every
``--nproc`` rank find them there. One process builds a map while the others wait on a lock;
the file is written under a temporary name and renamed when complete, and its description
(``.json``) is written last, so a map without one is never read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo_core.artifacts import atomic_write, write_json
from zoo_core.errors import ZooError

CACHE_ENV = "ZOO_CACHE"
FORMAT = 1  # bumped when what a key's files hold changes
CHUNK_CHARS = 1 << 18  # characters per encoded chunk (256 Ki: little memory in flight)
BATCH_CHUNKS = 16  # chunks handed to the tokenizer's batch encoder at once


def cache_dir() -> Path:
    """The zoo's cache folder: ``$ZOO_CACHE``, else ``zoo`` under the Hugging Face home."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "zoo"


def key_of(parts: dict[str, Any]) -> str:
    """A file name for what ``parts`` (JSON) describe."""
    text = json.dumps({"format": FORMAT, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def dtype_for(vocab_size: int) -> np.dtype:
    """The smallest unsigned type holding every id of a vocabulary (nanoGPT's uint16)."""
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise ZooError(f"a vocabulary of {vocab_size} ids does not fit a token map (at most 2**32)")


@dataclass
class TokenMap:
    """Token ids (a view of the mapped file, as a tensor) and the characters they encode (for
    bits per character). Training and evaluation read their windows with ``rows``, from the
    file rather than through the mapping: a page touched through a mapping stays counted in the
    process's resident memory (the kernel maps up to 64 KiB around each one read, so a batch
    of random windows brings in megabytes), while a page read from the file stays in the
    kernel's page cache, shared and reclaimable, and the process holds only the ids it asked
    for."""

    ids: torch.Tensor
    chars: int
    path: Path | None = None

    def rows(self, starts: Sequence[int], length: int) -> torch.Tensor:
        """The ids ``ids[s : s + length]`` of each start ``s``, stacked: ``(len(starts),
        length)`` in the map's dtype. Every window must lie within the ids."""
        if self.path is None or not hasattr(os, "pread"):  # in memory (or no pread: Windows)
            if not starts:
                return self.ids.new_zeros((0, length))
            return torch.stack([self.ids[s : s + length] for s in starts])
        dtype = self.ids.numpy().dtype
        size = length * dtype.itemsize
        out = np.empty((len(starts), length), dtype=dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for row, start in zip(out, starts, strict=True):
                data = os.pread(fd, size, int(start) * dtype.itemsize)
                if len(data) != size:
                    raise ZooError(f"the token map '{self.path}' is shorter than it was")
                row[:] = np.frombuffer(data, dtype=dtype)
        finally:
            os.close(fd)
        return torch.from_numpy(out)


def _map(path: Path, dtype: np.dtype) -> torch.Tensor:
    """The ids in ``path`` as a tensor over a copy-on-write mapping of it (torch gets a
    writable buffer and the file never changes), advised as read at random so that the kernel
    reads ahead no pages a window does not ask for. (``numpy.memmap`` offers no ``madvise``.)"""
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return torch.from_numpy(np.frombuffer(mapped, dtype=dtype))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes: one builds, the others wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            import fcntl  # POSIX; elsewhere the temporary names and renames keep files whole
        except ImportError:
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open(base: Path) -> list[TokenMap] | None:
    """The maps described by ``base``.json, if it is there and its files agree with it."""
    try:
        meta = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
        parts = []
        for n, part in enumerate(meta["parts"]):
            dtype = np.dtype(part["dtype"])
            tokens, chars = part["tokens"], part["chars"]
            if dtype not in (np.uint16, np.uint32) or not isinstance(tokens, int):
                return None
            path = base.with_suffix(f".{n}.bin")
            if path.stat().st_size != tokens * dtype.itemsize:
                return None
            if not tokens:  # an empty file cannot be mapped
                parts.append(TokenMap(torch.from_numpy(np.zeros(0, dtype=dtype)), int(chars)))
                continue
            parts.append(TokenMap(_map(path, dtype), int(chars), path))
        return parts
    except (OSError, ValueError, TypeError, KeyError):
        return None


def token_maps(
    key: str,
    pieces: Callable[[], Iterable[str]],
    tokenizer: Any,
    cuts: Callable[[], list[int]] | None = None,
    what: str = "text",
) -> list[TokenMap]:
    """The text ``pieces()`` yields, tokenized into one map per part: the parts end at the
    character offsets ``cuts()`` returns (increasing; the last part runs to the end). ``key``
    names the text and the cuts; the tokenizer is added to it here. Built once, then reused."""
    full_key = key_of({"text": key, "tokenizer": {"type": tokenizer.name, **tokenizer.to_dict()}})
    base = cache_dir() / "tokens" / full_key
    try:
        with _locked(base.with_suffix(".lock")):
            found = _open(base)
            if found is None:
                _build(base, pieces, tokenizer, cuts() if cuts else [], what)
                found = _open(base)
    except OSError as exc:
        raise ZooError(
            f"cannot write the token map in '{base.parent}' ({exc.strerror}); free space there, "
            f"or set {CACHE_ENV} to another folder"
        ) from None
    if found is None:
        raise ZooError(f"the token map '{base}.json' was written but cannot be read back")
    return found


def _build(
    base: Path, pieces: Callable[[], Iterable[str]], tokenizer: Any, cuts: list[int], what: str
) -> None:
    dtype = dtype_for(tokenizer.vocab_size)
    paths = [base.with_suffix(f".{n}.bin") for n in range(len(cuts) + 1)]
    temps = [p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in paths]
    tokens, chars = [0] * len(paths), [0] * len(paths)
    handles = [open(t, "wb") for t in temps]
    try:
        with _progress(what) as advance:
            for part, batch in _batches(_cut(line_chunks(pieces()), cuts)):
                encoded = tokenizer.encode_batch(batch)
                for text, ids in zip(batch, encoded, strict=True):
                    array = np.asarray(ids)  # a list becomes int64; an array stays as it is
                    if array.size and (array.min() < 0 or array.max() >= tokenizer.vocab_size):
                        raise ZooError(
                            f"the {tokenizer.name} tokenizer gave an id outside its vocabulary "
                            f"of {tokenizer.vocab_size}"
                        )
                    handles[part].write(array.astype(dtype).tobytes())
                    tokens[part] += array.size
                    chars[part] += len(text)
                    advance(len(text))
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        for temp, path in zip(temps, paths, strict=True):
            os.replace(temp, path)
    except BaseException:
        for handle, temp in zip(handles, temps, strict=True):
            handle.close()
            temp.unlink(missing_ok=True)
        raise
    parts = [
        {"dtype": dtype.name, "tokens": t, "chars": c} for t, c in zip(tokens, chars, strict=True)
    ]
    atomic_write(base.with_suffix(".json"), lambda tmp: write_json(tmp, {"parts": parts}))


def line_chunks(pieces: Iterable[str], size: int | None = None) -> Iterator[str]:
    """The text of ``pieces`` again, in chunks of about ``size`` characters that end at the
    start of a line that does not start with white space, so that a tokenizer whose words never
    span such a place (all of the zoo's) encodes the chunks as it would the whole text."""
    size = size or CHUNK_CHARS
    buffer = ""
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            cut = _line_start(buffer, size)
            if cut is None:
                if len(buffer) < 8 * size:
                    break  # wait for a line break
                cut = size  # one line of megabytes: cut it anyway
            yield buffer[:cut]
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def _line_start(text: str, size: int) -> int | None:
    """The last offset at or before ``size`` (or the first after, if none is) just after a
    ``\\n`` that has no white space on either side; None if there is none. (GPT-2's word pattern
    reads a run of white space at the end of a text otherwise than within it.)"""

    def clean(at: int) -> bool:
        return 0 < at < len(text) - 1 and not text[at - 1].isspace() and not text[at + 1].isspace()

    at = text.rfind("\n", 0, size)
    while at != -1:
        if clean(at):
            return at + 1
        at = text.rfind("\n", 0, at)
    at = text.find("\n", size)
    while at != -1:
        if clean(at):
            return at + 1
        at = text.find("\n", at + 1)
    return None


def _cut(chunks: Iterable[str], cuts: list[int]) -> Iterator[tuple[int, str]]:
    """``(part, chunk)``: the chunks, split where the character offsets ``cuts`` fall."""
    part, offset = 0, 0
    for chunk in chunks:
        while part < len(cuts) and offset + len(chunk) > cuts[part]:
            head = cuts[part] - offset
            if head > 0:
                yield part, chunk[:head]
            chunk, offset = chunk[head:], cuts[part]
            part += 1
        if chunk:
            yield part, chunk
        offset += len(chunk)


def _batches(parts: Iterable[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
    """Runs of up to ``BATCH_CHUNKS`` chunks of one part, for the batch encoder."""
    current, batch = 0, []
    for part, chunk in parts:
        if batch and (part != current or len(batch) == BATCH_CHUNKS):
            yield current, batch
            batch = []
        current = part
        batch.append(chunk)
    if batch:
        yield current, batch


@contextlib.contextmanager
def _progress(what: str) -> Iterator[Callable[[int], None]]:
    """A progress bar (characters tokenized) on a terminal, shown by rank 0 only."""
    if not sys.stderr.isatty() or os.environ.get("RANK", "0") != "0":
        yield lambda n: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn(f"tokenizing {what}"),
        BarColumn(),
        TextColumn("{task.completed:,} chars"),
    )
    with Progress(*columns, TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("tokenize", total=None)
        yield lambda n: bar.advance(task, n)
