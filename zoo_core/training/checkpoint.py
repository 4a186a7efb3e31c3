"""Resumable checkpoints as safetensors plus JSON: weights, optimizer and every RNG state.

```
checkpoints/step-00000500/
  model.safetensors      the model's state_dict
  optimizer.safetensors  every optimizer's tensors, keyed "<optimizer>.<param index>.<name>"
  state.json             step, trainer state, optimizer hyper-parameters, Python RNG state, and
                         the sha256 of both files (checked on load)
```

A sharded model's (``parallel=fsdp``) is written by every rank with
``torch.distributed.checkpoint`` (DCP), through its safetensors storage writer: each rank writes
the shards it holds, with their offsets in the safetensors header, and no pickle is written or
read (DCP's default writer would pickle its ``.metadata``; this one needs none). It can be read
back by any number of processes, one included, which DCP reshards to:

```
checkpoints/step-00000500/
  model/shard-0000R-model-00001-of-00001.safetensors       rank R-1's shards of the weights
  optimizer/shard-0000R-model-00001-of-00001.safetensors   of every optimizer's tensors
  rng.safetensors        the RNG states (rank 0's: every rank draws alike)
  state.json             as above, "format": "dcp", the optimizers' other entries, every sha256
```

A checkpoint folder is written under a temporary name, fsynced, then renamed: a crash never
leaves a half-written one under a real name. One that replaces a checkpoint of the same step (a
Ctrl-C right after a resume) first moves the old one aside (``.old-step-...``), which is deleted
only once the new one has its name: a kill in between leaves the old one, which is read in its
place and put back by the next save. A folder is deleted by renaming it to ``.del-...`` first, so
that a kill never leaves half of one under a name that is read. A truncated or corrupt checkpoint
is detected on load, and the previous one is used with a warning.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from zoo_core.artifacts import (
    file_sha256,
    fsync_dir,
    load_state_strict,
    state_from_file,
    state_to_file,
)
from zoo_core.errors import ZooError

PREFIX = "step-"
_TMP = ".tmp-"  # a checkpoint being written
_ASIDE = ".old-"  # a checkpoint being replaced by a new one of the same step
_TRASH = ".del-"  # a folder being deleted


def rng_state(generator: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every random state a run depends on: tensors for safetensors, the rest for JSON."""
    tensors = {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], js: dict[str, Any], generator: torch.Generator):
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.data"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    version, internal, gauss = js["python"]
    random.setstate((version, tuple(internal), gauss))


def _optimizer_state(optimizers: dict[str, torch.optim.Optimizer]):
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for key, value in pstate.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{name}.{pid}.{key}"] = value
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, meta


def _load_optimizer_state(optimizers, tensors: dict[str, torch.Tensor], meta: dict[str, Any]):
    for name, opt in optimizers.items():
        if name not in meta:
            raise ZooError(f"checkpoint has no state for optimizer '{name}'")
        state: dict[int, dict[str, Any]] = {}
        prefix = f"{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                pid, _, field = key[len(prefix) :].partition(".")
                state.setdefault(int(pid), {})[field] = value
        for pid, scalars in meta[name]["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        opt.load_state_dict({"state": state, "param_groups": meta[name]["param_groups"]})


def save(
    folder: Path,
    step: int,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    generator: torch.Generator,
    trainer_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``folder/step-NNNNNNNN`` atomically and keep the newest ``keep`` checkpoints."""
    tmp = _begin(folder, step)

    def write() -> dict[str, Any]:
        opt_tensors, opt_meta = _optimizer_state(optimizers)
        rng_tensors, rng_meta = rng_state(generator)
        state_to_file(model.state_dict(), tmp / "model.safetensors")
        state_to_file({**opt_tensors, **rng_tensors}, tmp / "optimizer.safetensors")
        return {"step": step, "trainer": trainer_state, "optimizers": opt_meta, "rng": rng_meta}

    return _commit(folder, step, tmp, write, keep)


def _begin(folder: Path, step: int) -> Path:
    """Make the checkpoints folder, finish what a kill left, make the temporary folder."""
    folder.mkdir(parents=True, exist_ok=True)
    _tidy(folder)
    tmp = folder / f"{_TMP}{PREFIX}{step:08d}"
    tmp.mkdir()
    return tmp


def _commit(folder: Path, step: int, tmp: Path, write, keep: int) -> Path:
    """Fill ``tmp`` (``write`` returns state.json's contents, less the checksums), then give it
    its name, moving aside and deleting a checkpoint of the same step; prune to ``keep``."""
    name = f"{PREFIX}{step:08d}"
    final, aside = folder / name, folder / f"{_ASIDE}{name}"
    try:
        state = write()
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        state["sha256"] = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in files}
        (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        with open(tmp / "state.json", "rb") as f:
            os.fsync(f.fileno())
        for sub in {p.parent for p in files} | {tmp}:
            fsync_dir(sub)
        if final.exists():
            final.rename(aside)  # kept until the new one has its name (keep=1: the only one)
        tmp.rename(final)
        fsync_dir(folder)
    except BaseException:
        if aside.exists() and not final.exists():
            aside.rename(final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside.exists():
        _remove(aside)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        _remove(old)
    return final


# -- sharded (FSDP) state: torch.distributed.checkpoint ------------------------------------------
_FLAT = StateDictOptions(flatten_optimizer_state_dict=True)


def check_sharded_support() -> None:
    """Sharded checkpoints need DCP's safetensors storage (no pickle); say so before training."""
    if not hasattr(dcp, "HuggingFaceStorageWriter"):
        raise ZooError(
            f"parallel=fsdp checkpoints through torch.distributed.checkpoint's safetensors "
            f"writer (HuggingFaceStorageWriter), which PyTorch {torch.__version__} lacks; "
            "upgrade PyTorch or use parallel=ddp"
        )


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _dcp_save(state: dict[str, torch.Tensor], path: Path) -> None:
    # save_distributed: each rank writes its own shards, and no metadata file at all (the
    # safetensors headers say where each shard sits).
    writer = dcp.HuggingFaceStorageWriter(str(path), save_distributed=True)
    dcp.save(state, storage_writer=writer)


def _dcp_load(state: dict[str, torch.Tensor], path: Path) -> None:
    dcp.load(state, storage_reader=dcp.HuggingFaceStorageReader(str(path)))


def _aliases(model: torch.nn.Module) -> dict[str, str]:
    """Tied weights: each further name of a parameter, with its first name."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return {alias: tied[0] for tied in names.values() for alias in tied[1:]}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """This rank's part of the model's state dict, tied weights once (safetensors stores no
    tensor twice)."""
    aliases = _aliases(model)
    return {k: v for k, v in get_model_state_dict(model).items() if k not in aliases}


def _optimizer_templates(model, optimizers) -> dict[str, dict[str, Any]]:
    """Every optimizer's state, flattened (``state.<param name>.exp_avg``...) and, for a
    sharded model, sharded like it; made (by a step of learning rate 0) where there is none yet."""
    return {n: get_optimizer_state_dict(model, o, options=_FLAT) for n, o in optimizers.items()}


def save_sharded(
    folder: Path,
    step: int,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    generator: torch.Generator,
    trainer_state: dict[str, Any],
    keep: int = 2,
    *,
    main: bool = True,
) -> Path:
    """:func:`save` of a sharded model: every rank calls it and writes its shards; ``main``
    (rank 0) alone makes, names and prunes the folders."""
    name = f"{PREFIX}{step:08d}"
    tmp = _begin(folder, step) if main else folder / f"{_TMP}{name}"
    _barrier()  # the folder is there before anyone writes into it
    opt_state = _optimizer_templates(model, optimizers)

    def write() -> dict[str, Any]:
        _dcp_save(_weights(model), tmp / "model")
        tensors, meta = {}, {}
        for opt_name, flat in opt_state.items():
            for key, value in flat.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{opt_name}.{key}"] = value
                else:
                    meta.setdefault(opt_name, {})[key] = value
        _dcp_save(tensors, tmp / "optimizer")
        rng_tensors, rng_meta = rng_state(generator)
        if main:
            state_to_file(rng_tensors, tmp / "rng.safetensors")
        return {
            "format": "dcp",
            "step": step,
            "trainer": trainer_state,
            "optimizers": meta,
            "rng": rng_meta,
        }

    if not main:
        write()  # dcp.save returns on rank 0 once every rank has written
        return folder / name
    return _commit(folder, step, tmp, write, keep)


def _load_sharded(path: Path, state: dict[str, Any], model, optimizers, generator) -> None:
    # The optimizers' templates first: making one steps the optimizer (at learning rate 0).
    opt_state = _optimizer_templates(model, optimizers)
    weights = _weights(model)
    _dcp_load(weights, path / "model")
    for alias, name in _aliases(model).items():
        weights[alias] = weights[name]
    set_model_state_dict(model, weights)
    tensors = {
        f"{opt_name}.{key}": value
        for opt_name, flat in opt_state.items()
        for key, value in flat.items()
        if isinstance(value, torch.Tensor)
    }
    _dcp_load(tensors, path / "optimizer")
    for opt_name, flat in opt_state.items():
        if opt_name not in state["optimizers"]:
            raise ZooError(f"checkpoint has no state for optimizer '{opt_name}'")
        saved = state["optimizers"][opt_name]
        restored = {
            k: tensors[f"{opt_name}.{k}"] if isinstance(v, torch.Tensor) else saved[k]
            for k, v in flat.items()
        }
        set_optimizer_state_dict(model, optimizers[opt_name], restored, options=_FLAT)
    rng, _ = state_from_file(path / "rng.safetensors")
    set_rng_state(rng, state["rng"], generator)


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A sharded model's whole state dict, gathered on rank 0 (on the CPU; empty on the other
    ranks, which must all call this). Tied weights are one tensor again, as in the model, so
    that the file written of it is the one an unsharded model's would be."""
    full = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    for name, tensor in full.items():
        # Gathered from uneven shards, a tensor can be a view of a padded buffer, which
        # safetensors refuses to write (it would store the padding): own storage for those.
        if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            full[name] = tensor.clone()
    if full:
        for alias, name in _aliases(model).items():
            full[alias] = full[name]
    return full


def _remove(path: Path) -> None:
    """Delete a checkpoint folder; a kill on the way leaves its rest under a name never read."""
    trash = path.with_name(_TRASH + path.name)
    try:
        path.rename(trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _tidy(folder: Path) -> None:
    """Finish what a kill while saving left: a checkpoint moved aside whose replacement never got
    its name is put back (or deleted, if it did); half-written and half-deleted folders go."""
    for path in list(folder.iterdir()):
        if path.name.startswith(_ASIDE):
            final = folder / path.name[len(_ASIDE) :]
            if final.exists():
                _remove(path)
            else:
                path.rename(final)
        elif path.name.startswith((_TMP, _TRASH)):
            shutil.rmtree(path, ignore_errors=True)
    fsync_dir(folder)


def _step_of(name: str) -> int | None:
    """The step a checkpoint folder's name says (``step-00000500``: 500), or None."""
    digits = name[len(PREFIX) :]
    if name.startswith(PREFIX) and digits.isascii() and digits.isdigit():
        return int(digits)
    return None


def list_checkpoints(folder: Path) -> list[Path]:
    """Finished checkpoints, oldest first. Ordered by their step's number, not their name:
    past 10**8 steps (``--time`` allows 10**12) the names outgrow their eight digits.

    A checkpoint a kill left aside (``.old-step-...``) counts where its replacement never got its
    name. It is read where it is: every rank of a distributed run reads, and only the writer
    (:func:`save`) puts it back.
    """
    if not folder.is_dir():
        return []
    found: dict[Path, int] = {}
    for path in folder.iterdir():
        name = path.name.removeprefix(_ASIDE)
        step = _step_of(name)
        if step is None or not path.is_dir():
            continue
        if name != path.name and (folder / name).is_dir():
            continue  # moved aside and replaced: the new one counts
        found[path] = step
    return sorted(found, key=found.__getitem__)


def newest_state(folder: Path) -> dict[str, Any] | None:
    """The ``state.json`` of the newest checkpoint that has a readable one (its files are not
    checked here; ``load_latest`` does that), or None when there is none."""
    for path in reversed(list_checkpoints(folder)):
        try:
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(state, dict) and isinstance(state.get("step"), int):
            return state
    return None


def _verify(path: Path) -> dict[str, Any]:
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    for name, digest in state["sha256"].items():
        if file_sha256(path / name) != digest:
            raise ValueError(f"{name} does not match its checksum")
    return state


def load_latest(
    folder: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    generator: torch.Generator,
    *,
    sharded: bool = False,
) -> dict[str, Any]:
    """Restore the newest intact checkpoint; a corrupt one is skipped with a warning. With
    ``sharded`` (every rank calls it), one that DCP wrote, on any number of processes."""
    candidates = list_checkpoints(folder)
    if not candidates:
        raise ZooError(f"'{folder}' holds no checkpoint to resume from")
    for path in reversed(candidates):
        try:
            state = _verify(path)
            if (state.get("format") == "dcp") != sharded:
                raise ZooError(
                    f"'{path}' was written {'with' if not sharded else 'without'} "
                    "parallel=fsdp and cannot be read the other way"
                )
            if sharded:
                _load_sharded(path, state, model, optimizers, generator)
                return state
            weights, _ = state_from_file(path / "model.safetensors", model)
            extra, _ = state_from_file(path / "optimizer.safetensors")
        except (OSError, ValueError, KeyError, ZooError) as exc:
            print(
                f"zoo: warning: checkpoint '{path.name}' is damaged ({exc}); trying the one before",
                file=sys.stderr,
            )
            continue
        load_state_strict(model, weights, str(path))
        _load_optimizer_state(optimizers, extra, state["optimizers"])
        set_rng_state(extra, state["rng"], generator)
        return state
    raise ZooError(f"every checkpoint in '{folder}' is damaged; nothing to resume from")
