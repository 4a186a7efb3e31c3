"""The on-disk format shared by run folders, checkpoints and Hub repos.

```
config.json         which model, task and tokenizer; the model, task and training configs
model.safetensors   weights only; its metadata names the model and the weights it shares
tokenizer.json      when the task has a tokenizer
metrics.jsonl       one JSON object per logged step or evaluation
README.md           a model card
checkpoints/        resumable state (see zoo_core.training.checkpoint)
```

Nothing here uses pickle. Loading is strict: missing or unexpected keys and shape mismatches are
an error that names them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core.errors import ZooError

if TYPE_CHECKING:
    import torch
    from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
METRICS_FILE = "metrics.jsonl"
CARD_FILE = "README.md"
CHECKPOINTS_DIR = "checkpoints"
# The files of a published model (what `zoo pull` fetches and `zoo push` uploads).
ARTIFACT_FILES = (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, METRICS_FILE, CARD_FILE)


# -- atomic writes ---------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(folder: bool = False) -> int:
    """The permissions ``open()`` or ``mkdir()`` would give a new file or folder (the umask's).

    ``tempfile`` makes its files and folders private (0600, 0700); what it made for a run folder
    gets these instead, so a run is as readable as the files written beside it.
    """
    return (0o777 if folder else 0o666) & ~_umask()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over.

    A crash leaves either the old file or the new one, never half of one. The file keeps the
    permissions of the one it replaces; a new one gets the umask's, as ``open()`` would give it.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = default_mode()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, mode)  # after: a writer may replace the file (safetensors makes it 0600)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def new_folder(out: str | Path) -> Iterator[Path]:
    """Fill a temporary folder beside ``out``, which is renamed to ``out`` at the end: the folder
    appears complete or not at all. ``out`` must not exist, or be an empty folder."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ZooError(f"'{out}' already exists and is not empty; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(default_mode(folder=True))
        yield tmp
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a run, a comparison) while it is trained, so that a
    second process that would train the same folder stops with an error instead of writing over
    the first one's checkpoints. The lock is the folder's own (``flock``), no file is added, and
    it ends with the process, however that ends. Where there is no ``flock`` (Windows, some
    network file systems) nothing is locked."""
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    fd = None
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ZooError(
                    f"'{folder}' is being trained by another zoo process; wait for it to finish, "
                    "or stop it (Ctrl-C saves a checkpoint) and resume again"
                ) from None
            except OSError:
                pass  # this file system does not lock
        yield
    finally:
        if fd is not None:
            os.close(fd)


def write_json(path: str | Path, data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def read_json(path: str | Path, what: str = "file") -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZooError(f"{what} '{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZooError(f"{what} '{path}' is not valid JSON ({exc})") from None


def read_metrics(folder: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (none if it has none). A line a kill cut short is
    skipped: the others still count."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def format_metric(value: Any) -> str:
    """A metric as the zoo prints it: a measure to 4 places, a count (modes, classes) whole."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# -- weights ---------------------------------------------------------------------------------------
def _tied_names(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """For each tensor that shares storage with an earlier one, the earlier one's name."""
    seen: dict[tuple, str] = {}
    tied = {}
    for name, tensor in state.items():
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue
        key = (
            tensor.device,
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        if key in seen:
            tied[name] = seen[key]
        else:
            seen[key] = name
    return tied


def state_to_file(
    state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write a dict of tensors as safetensors, atomically; shared tensors are stored once."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tied = _tied_names(state)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items() if k not in tied}
    meta = {"format": "pt", **(metadata or {})}
    if tied:
        meta["zoo.tied"] = json.dumps(tied, sort_keys=True)

    def write(p: Path) -> None:
        if sys.byteorder != "little":  # safetensors stores little-endian bytes
            try:
                save_file(tensors, str(p), metadata=meta)
            except SafetensorError as exc:  # a full disk or an unwritable folder
                raise OSError(str(exc)) from None
            return
        _write_safetensors(tensors, meta, p)

    atomic_write(path, write)


def _write_safetensors(tensors: dict[str, torch.Tensor], meta: dict[str, str], path: Path) -> None:
    """The safetensors format, written so that the same tensors and metadata give the same bytes.
    (safetensors' own writer orders the metadata differently in each process, so two identical
    runs would give files that differ, and a Hub upload would see a change where there is none.)

    The layout is the format's: an 8-byte little-endian header length, a JSON header (the
    metadata, then each tensor's dtype, shape and byte range) padded with spaces to a multiple of
    8 bytes, then the tensors' bytes, larger items first and by name, as safetensors orders them."""
    import torch

    names = {
        torch.float64: "F64",
        torch.float32: "F32",
        torch.float16: "F16",
        torch.bfloat16: "BF16",
        torch.int64: "I64",
        torch.int32: "I32",
        torch.int16: "I16",
        torch.int8: "I8",
        torch.uint8: "U8",
        torch.bool: "BOOL",
        torch.float8_e4m3fn: "F8_E4M3",
        torch.float8_e5m2: "F8_E5M2",
    }
    order = sorted(tensors, key=lambda name: (-tensors[name].element_size(), name))
    header: dict[str, Any] = {"__metadata__": dict(sorted(meta.items()))}
    offset = 0
    for name in order:
        tensor = tensors[name]
        if tensor.dtype not in names:
            raise ZooError(f"tensor '{name}' has dtype {tensor.dtype}, which safetensors lacks")
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": names[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in order:
            flat = tensors[name].reshape(-1)
            if flat.numel():
                f.write(memoryview(flat.view(torch.uint8).numpy()))


def state_from_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file written by :func:`state_to_file`: tensors (aliases restored), metadata."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise ZooError(f"weights file '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except ZooError:
        raise
    except Exception as exc:
        raise ZooError(f"'{path}' is not a readable safetensors file ({exc})") from None
    for alias, source in json.loads(metadata.get("zoo.tied", "{}")).items():
        if source in state:
            state[alias] = state[source]
    return state, metadata


def save_weights(
    model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Save a model's ``state_dict`` as safetensors (atomically)."""
    state_to_file(model.state_dict(), path, metadata)


def load_weights(model: nn.Module, path: str | Path) -> dict[str, str]:
    """Load weights strictly: any missing, unexpected or mis-shaped key is an error naming it."""
    state, metadata = state_from_file(path)
    load_state_strict(model, state, str(path))
    return metadata


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_few(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_few(mismatched)}")
    if problems:
        raise ZooError(
            f"weights in '{source}' do not fit the model: {'; '.join(problems)}. "
            "Were they saved by another model or config?"
        )
    model.load_state_dict(state, strict=True)


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
