"""The hooks a zoo plugin may implement.

Each hook is called once per process, when the catalog is first needed (``zoo list``, ``zoo train``,
``zoo_core.list_models()``...). Plugins receive a ``register`` callback instead of returning values,
so the host validates every registration and knows which plugin made it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from zoo_core.registry import ImporterSpec, ModelSpec, StudySpec, TaskSpec, TokenizerSpec

hookspec = pluggy.HookspecMarker("zoo")


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register the models a plugin provides.

    Called once, when the catalog is built. Call ``register(ModelSpec(...))`` once per model name;
    variants are separate specs over the same code with other ``defaults``. Do not import torch
    or the model code here: a spec names its code as a ``"module:attr"`` string.
    """


@hookspec
def register_tokenizers(register: Callable[[TokenizerSpec], None]) -> None:
    """Register the tokenizers a plugin provides.

    Called once, when the catalog is built. Call ``register(TokenizerSpec(...))`` once per name.
    """


@hookspec
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register the tasks (data, loss, metrics, inference) a plugin provides.

    Called once, when the catalog is built. Call ``register(TaskSpec(...))`` once per task name.
    """


@hookspec
def register_importers(register: Callable[[ImporterSpec], None]) -> None:
    """Register the foreign formats a plugin reads (a ``transformers`` repo of one model type).

    Called once, when the catalog is built. Call ``register(ImporterSpec(...))`` once per model
    type; the spec names its function as a ``"module:function"`` string, imported only when a
    repo of that type is pulled.
    """


@hookspec
def register_studies(register: Callable[[StudySpec], None]) -> None:
    """Register the studies (``zoo study NAME``) a plugin provides.

    Called once, when the catalog is built. Call ``register(StudySpec(...))`` once per study name;
    the spec names the study's function as a ``"module:attr"`` string, imported only when the
    study runs, so ``zoo study --list`` imports no torch.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``zoo`` command line.

    Called once, when the ``zoo`` command starts, with the root click group: decorate new
    commands with ``@cli.command()``. Keep command modules light; import heavy code inside them.
    """
