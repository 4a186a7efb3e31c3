"""The on-disk format shared by run folders, checkpoints and Hub repos.

```
config.json         which model, task and tokenizer; the model, task and training configs
model.safetensors   weights only, written by safetensors (tied weights stored once)
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
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core.errors import ZooError, printable

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
        # Opened before the mode is set: a read-only mode (0444) would forbid the open to anyone
        # but root. The mode is set after the write, which may replace the file (safetensors
        # makes it 0600), and before the fsync, which then makes it durable with the data.
        with open(tmp, "rb+") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:
                os.chmod(tmp, mode)
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
    """The JSON in ``path``, or one line naming the file when it is missing or not JSON the zoo
    reads (an integer of more digits than Python converts, nesting deeper than it recurses)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZooError(f"{what} '{path}' does not exist") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise ZooError(f"{what} '{path}' is not valid JSON ({printable(exc, 200)})") from None
    except RecursionError:
        raise ZooError(f"{what} '{path}' is not valid JSON (nested too deeply)") from None


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
        except (ValueError, RecursionError):  # a cut line, or nesting past the parser
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def format_metric(value: Any) -> str:
    """A metric as the zoo prints it: a measure to 4 places, a count (modes, classes) whole."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# -- weights ---------------------------------------------------------------------------------------
# The one metadata key of a weights file, as safetensors' own save_model and ModelHubMixin write it.
# safetensors orders metadata keys differently in each process, so a second key would give the same
# weights different bytes, and a Hub push would see a change where there is none. config.json says
# which model the weights are of; which tensors share storage is read from the model on loading.
_METADATA = {"format": "pt"}


def _shared(state: dict[str, torch.Tensor], prefer: Iterable[str] = ()) -> dict[str, list[str]]:
    """For each tensor name kept of a group that shares storage, the names that alias it.

    safetensors' own rule, so the names kept are those ``save_model`` keeps and ``load_model``
    restores; ``prefer`` names the ones a file holds. (``save_model`` itself also writes each
    dropped name into the metadata, which is what makes its files differ between processes.)
    """
    from safetensors.torch import _remove_duplicate_names

    return _remove_duplicate_names(state, preferred_names=list(prefer))


def state_to_file(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write a dict of tensors with safetensors' ``save_file``, atomically; tensors that share
    storage (tied weights) are stored once, under one name."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    aliases = {name for names in _shared(state).values() for name in names}
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items() if k not in aliases}

    def write(p: Path) -> None:
        try:
            save_file(tensors, str(p), metadata=dict(_METADATA))
        except SafetensorError as exc:  # a full disk or an unwritable folder
            raise OSError(str(exc)) from None

    atomic_write(path, write)


def state_from_file(
    path: str | Path, model: nn.Module | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file: its tensors and its metadata. With ``model``, the names the file
    left out because they share storage in ``model`` (tied weights) are restored as aliases."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise ZooError(f"weights file '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except Exception as exc:
        raise ZooError(f"'{path}' is not a readable safetensors file ({exc})") from None
    tied = _tied(metadata.get("zoo.tied", "{}"), path)
    for alias, source in tied.items():
        if source in state:
            state[alias] = state[source]
    if model is not None:
        for kept, aliases in _shared(model.state_dict(), prefer=state).items():
            for alias in aliases:
                if kept in state and alias not in state:
                    state[alias] = state[kept]
    return state, metadata


def _tied(text: str, path: Path) -> dict[str, str]:
    """The ``zoo.tied`` metadata of files written before the model's own sharing was read: each
    alias and the name it shares storage with. One line naming the file when it is not that."""
    try:
        tied = json.loads(text)
    except (ValueError, RecursionError):
        tied = None
    if not isinstance(tied, dict) or not all(isinstance(v, str) for v in tied.values()):
        raise ZooError(
            f"'{path}' has 'zoo.tied' metadata that is not a JSON object of tensor names; "
            "save the weights again, or remove that metadata"
        )
    return tied


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Save a model's ``state_dict`` as safetensors (atomically), tied weights once."""
    state_to_file(model.state_dict(), path)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights strictly: any missing, unexpected or mis-shaped key is an error naming it.
    Tied weights are restored from the model, as ``safetensors.torch.load_model`` does."""
    state, _ = state_from_file(path, model)
    load_state_strict(model, state, str(path))


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``, or one line naming every key that does not fit."""
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
