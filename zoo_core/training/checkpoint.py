"""Resumable checkpoints as safetensors plus JSON: weights, optimizer and every RNG state.

```
checkpoints/step-00000500/
  model.safetensors      the model's state_dict
  optimizer.safetensors  every optimizer's tensors, keyed "<optimizer>.<param index>.<name>"
  state.json             step, trainer state, optimizer hyper-parameters, Python RNG state, and
                         the sha256 of both files (checked on load)
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
    folder.mkdir(parents=True, exist_ok=True)
    _tidy(folder)
    name = f"{PREFIX}{step:08d}"
    final, tmp, aside = folder / name, folder / f"{_TMP}{name}", folder / f"{_ASIDE}{name}"
    tmp.mkdir()
    try:
        opt_tensors, opt_meta = _optimizer_state(optimizers)
        rng_tensors, rng_meta = rng_state(generator)
        state_to_file(model.state_dict(), tmp / "model.safetensors")
        state_to_file({**opt_tensors, **rng_tensors}, tmp / "optimizer.safetensors")
        state = {
            "step": step,
            "trainer": trainer_state,
            "optimizers": opt_meta,
            "rng": rng_meta,
            "sha256": {
                f: file_sha256(tmp / f) for f in ("model.safetensors", "optimizer.safetensors")
            },
        }
        (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        with open(tmp / "state.json", "rb") as f:
            os.fsync(f.fileno())
        fsync_dir(tmp)
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
) -> dict[str, Any]:
    """Restore the newest intact checkpoint; a corrupt one is skipped with a warning."""
    candidates = list_checkpoints(folder)
    if not candidates:
        raise ZooError(f"'{folder}' holds no checkpoint to resume from")
    for path in reversed(candidates):
        try:
            state = _verify(path)
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
