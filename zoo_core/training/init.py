"""Fine-tuning: a new run that starts from the weights of another (``zoo train --init``).

The weights come from a run folder, a zoo model on the Hub or a converted ``transformers`` repo
(``zoo_core.artifact.train`` resolves the source to a local folder). They bring their model
config, their tokenizer and what their task learned that the weights depend on (an image
classifier's preprocessing). A classifier whose data has another number of classes gets a new
head; ``--set freeze=backbone`` trains the head alone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from zoo_core import artifacts
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog
from zoo_core.registry import ModelSpec
from zoo_core.runconfig import RunConfig, build_task, missing_message

if TYPE_CHECKING:
    from zoo_core.tasks.base import Task

# The module whose parameters ``freeze=backbone`` leaves trainable: each model of the zoo
# names its output layer ``head``.
HEAD = "head"


@dataclass
class Init:
    """The weights a run starts from: their folder, the source as given, their config."""

    folder: Path
    source: str
    config: RunConfig
    task: Task  # its task, with tokenizer and learned state, as a load builds it

    @property
    def origin(self) -> dict[str, Any]:
        """What the run's config records of where its weights started."""
        origin: dict[str, Any] = {"kind": "init", "source": self.source}
        imported = self.config.origin if self.config.origin.get("kind") == "import" else {}
        for key in ("revision", "format"):
            if imported.get(key):
                origin[key] = imported[key]
        origin["model"] = self.config.model
        origin["sha256"] = artifacts.file_sha256(self.folder / artifacts.WEIGHTS_FILE)
        return origin


def read_init(folder: Path, source: str, spec: ModelSpec, task_name: str) -> Init:
    """The weights in ``folder`` for a new run of ``spec`` on ``task_name``; one line when they
    are of another architecture or task."""
    config = RunConfig.read(folder)
    catalog = get_catalog()
    if config.model not in catalog.models:
        raise ZooError(missing_message(config))
    if catalog.models[config.model].model != spec.model:
        raise ZooError(
            f"'{source}' holds weights of model '{config.model}', whose code is not that of "
            f"'{spec.name}'; start from them with `zoo train {config.model} --init {source}`"
        )
    if config.task != task_name:
        raise ZooError(
            f"'{source}' was trained for task '{config.task}', not '{task_name}'; give "
            f"--task {config.task}"
        )
    if not (folder / artifacts.WEIGHTS_FILE).is_file():
        raise ZooError(f"'{source}' has no {artifacts.WEIGHTS_FILE} to start from")
    return Init(folder, source, config, build_task(config, folder, from_hub=True))


def check_settings(init: Init, task_over: dict[str, Any], model_over: dict[str, Any]) -> None:
    """A tokenizer or vocabulary that contradicts the one the weights come with is an error."""
    tokenizer = init.config.tokenizer
    given = task_over.get("tokenizer")
    if given is not None and given != tokenizer:
        raise ZooError(
            f"'{init.source}' comes with its own tokenizer ({tokenizer or 'none'}); drop "
            f"--tokenizer {given}: the weights read that tokenizer's ids"
        )
    for key in ("vocab_size",):
        for over in (task_over, model_over):
            saved = init.config.model_config.get(key)
            if key in over and saved is not None and over[key] != saved:
                raise ZooError(
                    f"'{init.source}' has {key} {saved}, the size of its tokenizer's vocabulary; "
                    f"drop --set {key}={over[key]}"
                )


def load_init(net: nn.Module, init: Init, renewed: dict[str, tuple[Any, Any]]) -> None:
    """Give ``net`` the init weights. Tensors whose shape the data changed (``renewed``: the
    config fields set from the data that differ from the weights', as (weights', data's))
    keep their fresh initialisation, and one line says so; any other mismatch is an error."""
    path = init.folder / artifacts.WEIGHTS_FILE
    header = artifacts.read_header(path)
    expected = net.state_dict()
    reshaped = sorted(
        name
        for name, tensor in expected.items()
        if name in header and header[name][0] != tuple(tensor.shape)
    )
    if reshaped and renewed:
        kept = {k: v for k, v in header.items() if k not in reshaped}
        kept.update(
            {k: (tuple(expected[k].shape), v[1]) for k, v in header.items() if k in reshaped}
        )
        header = kept
        changes = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in renewed.items())
        print(
            f"zoo: the data sets {changes} (the weights of '{init.source}' have the first): "
            f"{', '.join(reshaped)} start from random weights",
            file=sys.stderr,
        )
    artifacts.check_header(net, header, str(path), dtypes=False)
    state, _ = artifacts.state_from_file(path, net)
    for name in reshaped if renewed else ():
        state[name] = expected[name]
    net.load_state_dict(state, strict=True)


def freeze(net: nn.Module, how: str, name: str) -> None:
    """``how="backbone"``: only the parameters of the model's ``head`` train."""
    if how == "none":
        return
    if how != "backbone":
        raise ZooError(f"freeze must be none or backbone, not {how!r}")
    if not isinstance(getattr(net, HEAD, None), nn.Module):
        raise ZooError(
            f"--set freeze=backbone trains a model's '{HEAD}' alone, and model '{name}' has "
            f"no module named '{HEAD}'"
        )
    head = {id(p) for p in getattr(net, HEAD).parameters()}
    for parameter in net.parameters():
        parameter.requires_grad_(id(parameter) in head)
