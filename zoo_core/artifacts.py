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
    """The records of a run's metrics.jsonl (none if it has none). A line a kill cut short, or
    that is not UTF-8 JSON, is skipped: the others still count."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # cut, not UTF-8, or nested past the parser
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


def read_header(path: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """The name, shape and dtype (safetensors' name: ``F32``) of every tensor of a weights file,
    read from its header alone: no tensor is loaded, however large the file says they are."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise ZooError(f"weights file '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = {}
            for name in f.keys():  # noqa: SIM118 (safe_open has no iter)
                piece = f.get_slice(name)
                header[name] = (tuple(piece.get_shape()), piece.get_dtype())
            metadata = f.metadata() or {}
    except Exception as exc:
        raise ZooError(f"'{path}' is not a readable safetensors file ({exc})") from None
    for alias, source in _tied(
        metadata.get("zoo.tied", "{}"), path
    ).items():  # files written before ties were read from the model
        if source in header and alias not in header:
            header[alias] = header[source]
    return header


def _dtype_name(dtype: torch.dtype) -> str:
    from safetensors.torch import _TYPES  # safetensors' own names of the dtypes it stores

    return next((name for name, t in _TYPES.items() if t == dtype), str(dtype))


def _ties(model: nn.Module) -> list[list[str]]:
    """Groups of names that are one tensor in ``model`` (tied weights), first name first.

    Read from the objects, not their storage: on the meta device every tensor has none.
    """
    groups: dict[int, list[str]] = {}
    for name, tensor in [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]:
        groups.setdefault(id(tensor), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def check_header(
    model: nn.Module,
    header: dict[str, tuple[tuple[int, ...], str]],
    source: str,
    dtypes: bool = True,
) -> None:
    """One line naming every key of ``model``'s state that the file ``header`` does not fit:
    missing, unexpected, or of another shape (or dtype, with ``dtypes``). Reads no tensor of the
    file, and works on a model on the meta device, so a file is checked before memory is spent
    on it. (Weights copied into a built model may change dtype; assigned ones may not.)"""
    expected = {k: (tuple(v.shape), _dtype_name(v.dtype)) for k, v in model.state_dict().items()}
    header = dict(header)
    for names in _ties(model):  # a tied weight is stored once, under any of its names
        stored = next((n for n in names if n in header), None)
        for name in names:
            if stored is not None and name in expected:
                header.setdefault(name, header[stored])
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    mismatched = [
        f"{k} (file {header[k][0]}, model {expected[k][0]})"
        for k in expected
        if k in header and header[k][0] != expected[k][0]
    ]
    retyped = [
        f"{k} (file {header[k][1]}, model {expected[k][1]})"
        for k in expected
        if dtypes and k in header and header[k][0] == expected[k][0]
        if header[k][1] != expected[k][1]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_few(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_few(mismatched)}")
    if retyped:
        problems.append(f"dtype mismatches: {_few(retyped)}")
    if problems:
        raise ZooError(
            f"weights in '{source}' do not fit the model: {'; '.join(problems)}. "
            "Were they saved by another model or config?"
        )


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights strictly: any missing, unexpected or mis-shaped key is an error naming it,
    found in the file's header before a tensor is read. Tied weights are restored from the
    model, as ``safetensors.torch.load_model`` does."""
    check_header(model, read_header(path), str(path), dtypes=False)
    state, _ = state_from_file(path, model)
    load_state_strict(model, state, str(path))


def load_model(build: Callable[[], nn.Module], path: str | Path) -> nn.Module:
    """``build()`` a model and give it the weights of file ``path``, allocating nothing before
    every shape and dtype of the model is known to match the file's header.

    The model is built on the meta device (no memory) and checked against the header; only
    then do its parameters take the file's tensors (``assign``: no random initialisation, no
    second copy), and tied weights are tied again as the model defines them. A config that
    asks for a huge model is so refused in one line, before any memory is spent on it.
    """
    import torch

    header = read_header(path)
    source = str(path)
    try:
        with torch.device("meta"), bounded_build(len(header), source):
            model = build()
    except (RuntimeError, NotImplementedError):
        # The model reads a tensor's value while it is built, which the meta device has not
        # (or its config cannot build one: then the real build says why, at no cost). It is
        # built for real only once the file it is to hold is known to fit in memory.
        _check_fits(header, source)
        with bounded_build(len(header), source), _config_errors(source):
            model = build()
        load_weights(model, path)
        return model
    except BUILD_ERRORS as exc:
        raise _config_error(exc, source) from None
    check_header(model, header, source)
    stored = set(model.state_dict())
    if any(name not in stored for name, _ in model.named_buffers()):
        # Buffers the file does not hold (a rope cache, a mask) are computed while the model
        # is built: build it again, with its buffers real and its parameters on meta.
        model = _build_with_meta_parameters(build)
    ties = _ties(model)
    state, _ = state_from_file(path)
    for names in ties:  # storage is not there to compare on meta: the ties are the model's
        stored = next((n for n in names if n in state), None)
        for name in names if stored is not None else ():
            state.setdefault(name, state[stored])
    model.load_state_dict(state, strict=True, assign=True)
    for first, *others in ties:  # assign gave each name a tensor of its own: tie them again
        tensor = model.get_parameter(first) if _is_parameter(model, first) else None
        for name in others if tensor is not None else ():
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, tensor)
    return model


# What a model's code raises for a config it cannot build (a negative or overflowing size).
BUILD_ERRORS = (ValueError, TypeError, OverflowError, RuntimeError, MemoryError)


def _config_error(exc: BaseException, source: str) -> ZooError:
    reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return ZooError(
        f"the model config beside '{source}' does not build a model ({type(exc).__name__}: "
        f"{reason}); the run's config.json is damaged or was written for another model"
    )


@contextlib.contextmanager
def _config_errors(source: str) -> Iterator[None]:
    try:
        yield
    except BUILD_ERRORS as exc:
        raise _config_error(exc, source) from None


class _TooManyTensors(Exception):
    pass


@contextlib.contextmanager
def bounded_build(stored: int, source: str) -> Iterator[None]:
    """Stop building a model once it registers far more parameters than the file holds
    tensors: a config that asks for a million layers is refused at once, not after minutes
    spent building them on the meta device."""
    from torch.nn.modules.module import register_module_parameter_registration_hook

    limit = 4 * stored + 64
    count = 0

    def counted(module: Any, name: str, param: Any) -> None:
        nonlocal count
        count += 1
        if count > limit:
            raise _TooManyTensors

    handle = register_module_parameter_registration_hook(counted)
    try:
        yield
    except _TooManyTensors:
        raise ZooError(
            f"the model config beside '{source}' describes far more tensors than the "
            f"{stored} its weights file holds; the run's config.json is damaged or was written "
            "for another model"
        ) from None
    finally:
        handle.remove()


def _is_parameter(model: nn.Module, name: str) -> bool:
    owner, _, attr = name.rpartition(".")
    return attr in model.get_submodule(owner)._parameters


def _build_with_meta_parameters(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with every parameter moved to the meta device as it is registered: buffers
    get their values, parameters no memory (each exists, uninitialised, for a moment only; the
    header has already bounded their size)."""
    import torch
    from torch import nn
    from torch.nn.modules.module import register_module_parameter_registration_hook

    def to_meta(module: nn.Module, name: str, param: Any) -> Any:
        if param is None or param.is_meta:
            return None  # a tied weight registered again keeps being that one parameter
        return nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    handle = register_module_parameter_registration_hook(to_meta)
    try:
        with torch.no_grad():
            return build()
    finally:
        handle.remove()


def _check_fits(header: dict[str, tuple[tuple[int, ...], str]], source: str) -> None:
    """One line when the tensors of a file would not fit in the memory free now."""
    import math

    from safetensors.torch import _TYPES

    total = 0
    for shape, dtype in header.values():
        kind = _TYPES.get(dtype)
        size = kind.itemsize if kind is not None else 8
        total += math.prod(shape) * size
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf: nothing to compare with
        return
    if 2 * total > free:  # the model and the file's tensors, side by side for a moment
        raise ZooError(
            f"the weights in '{source}' need {total / 2**30:.1f} GiB, twice that while they "
            f"load, and {free / 2**30:.1f} GiB of memory is free"
        )


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``, or one line naming every key that does not fit."""
    check_header(
        model,
        {k: (tuple(v.shape), _dtype_name(v.dtype)) for k, v in state.items()},
        source,
        dtypes=False,
    )
    model.load_state_dict(state, strict=True)


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
