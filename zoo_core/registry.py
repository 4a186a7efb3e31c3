"""Specs (light data that names code by ``"module:attr"``) and the catalog built from the hooks.

Nothing here imports torch: ``zoo list`` reads specs only. Code is imported by :func:`resolve`
when a model, task or tokenizer is actually built.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo_core.errors import ZooError


@dataclass(frozen=True)
class PretrainedWeights:
    """Named weights a model spec may point at: a Hub repo, a revision and the weights' sha256."""

    repo: str
    revision: str = "main"
    sha256: str | None = None
    summary: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A model name: where its code lives, what it is for, and the defaults of this variant.

    ``model`` is a ``"module:Class"`` string; the class is an ``nn.Module`` built as
    ``Class(config)`` and has a ``config_class`` attribute, a dataclass. ``defaults`` override that
    dataclass's defaults for this variant; ``train_defaults`` override the Trainer's
    (``steps``, ``batch_size``, ``lr``...) and the task's options (``seq_len``...).

    ``width`` names the config field that is the model's width (what ``zoo compare
    --match-params`` turns); the width stays a multiple of the product of
    ``width_multiple_of`` (numbers, and names of config fields whose values count), and the fields
    in ``tied_widths`` follow it where they start equal to it.
    """

    name: str
    model: str
    tasks: tuple[str, ...]
    summary: str
    family: str = ""
    paper: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    train_defaults: dict[str, Any] = field(default_factory=dict)
    pretrained: dict[str, PretrainedWeights] = field(default_factory=dict)
    width: str = ""
    width_multiple_of: tuple[str | int, ...] = ()
    tied_widths: tuple[str, ...] = ()
    plugin: str = ""  # filled in by the host: the plugin that registered it

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            object.__setattr__(self, "tasks", (self.tasks,))
        if not self.family:
            object.__setattr__(self, "family", self.name)


@dataclass(frozen=True)
class TaskSpec:
    """A task name and its ``"module:Class"`` (a :class:`zoo_core.tasks.Task` subclass)."""

    name: str
    task: str
    summary: str
    plugin: str = ""


@dataclass(frozen=True)
class TokenizerSpec:
    """A tokenizer name and its ``"module:Class"`` (a :class:`zoo_core.tokenizers.Tokenizer`)."""

    name: str
    tokenizer: str
    summary: str
    plugin: str = ""


@dataclass(frozen=True)
class ImporterSpec:
    """A foreign format a plugin reads: ``model_type`` of ``format`` (a ``transformers``
    config.json's ``model_type``, such as ``"gpt2"``), and the ``"module:function"`` that maps it
    onto one of the plugin's models. The function takes a :class:`ForeignModel` and returns an
    :class:`Imported`; it is imported only when such a repo is pulled."""

    name: str
    format: str
    model_type: str
    importer: str
    summary: str
    plugin: str = ""


@dataclass(frozen=True)
class ForeignModel:
    """What an importer is handed of a repo in another library's layout. Every value is a
    stranger's data: ``config`` and ``preprocessor`` are parsed JSON objects (bounded in size),
    ``tokenizer`` the text of its ``tokenizer.json`` (or None), ``header`` the name, shape and
    dtype of each tensor of its ``model.safetensors`` (no tensor read)."""

    repo: str
    revision: str
    config: dict[str, Any]
    header: dict[str, tuple[tuple[int, ...], str]]
    preprocessor: dict[str, Any] | None = None
    tokenizer: str | None = None


@dataclass(frozen=True)
class Imported:
    """An importer's answer: which registered ``model`` (with ``model_config`` over its spec's
    defaults) and ``task`` the foreign weights become, the task's state (class names, image
    preprocessing), the tokenizer to save with them (a registered name and what its
    ``from_dict`` reads), and ``convert``: ``convert(name, tensor)`` returns the zoo tensors
    that the foreign tensor ``name`` becomes, as ``(name, tensor)`` pairs (none to drop it).
    ``convert`` is called once per tensor, on meta tensors first (to check every name and
    shape before anything is read), then on the real ones, one at a time."""

    model: str
    task: str
    convert: Callable[[str, Any], list[tuple[str, Any]]]
    model_config: dict[str, Any] = field(default_factory=dict)
    task_state: dict[str, Any] = field(default_factory=dict)
    tokenizer: str | None = None
    tokenizer_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    """A study name: the ``"module:attr"`` of its function and what it costs.

    The function takes a :class:`zoo_core.studies.StudyContext` and trains, measures and records
    its tables and plots through it (``zoo study NAME``). ``cpu_minutes`` is the expected wall time
    of the full study on a 2-core CPU; ``cuda`` says what ``--device cuda`` runs instead.
    """

    name: str
    study: str
    summary: str
    cpu_minutes: float = 0.0
    cuda: str = ""
    paper: str = ""
    plugin: str = ""


@dataclass
class PluginInfo:
    """What one plugin is and what it registered (or why it failed)."""

    name: str
    distribution: str
    version: str
    builtin: bool = False
    models: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    tokenizers: list[str] = field(default_factory=list)
    importers: list[str] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


KINDS = ("model", "task", "tokenizer", "study")


@dataclass
class Catalog:
    """Every registered model, task and tokenizer, and the plugins they came from."""

    models: dict[str, ModelSpec] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    tokenizers: dict[str, TokenizerSpec] = field(default_factory=dict)
    importers: dict[str, ImporterSpec] = field(default_factory=dict)
    studies: dict[str, StudySpec] = field(default_factory=dict)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    # (kind, name) -> the plugins that both registered it; such a name cannot be used.
    conflicts: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, Any]:
        return {
            "model": self.models,
            "task": self.tasks,
            "tokenizer": self.tokenizers,
            "importer": self.importers,
            "study": self.studies,
        }[kind]

    def get(self, kind: str, name: str) -> Any:
        """The spec registered under ``name``, or a clear error offering the closest names."""
        table = self.table(kind)
        if name in table:
            return table[name]
        if (kind, name) in self.conflicts:
            a, b = self.conflicts[(kind, name)][:2]
            raise ZooError(
                f"{kind} '{name}' is registered by both plugin '{a}' and plugin '{b}'; "
                "uninstall one of them (see `zoo plugins`)"
            )
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listing = {
            "model": "zoo list",
            "task": "zoo tasks",
            "tokenizer": "zoo tokenizers",
            "importer": "zoo plugins",
            "study": "zoo study --list",
        }[kind]
        raise ZooError(f"unknown {kind} '{name}'.{hint} Run `{listing}` to see them all.")

    def importer_for(self, format: str, model_type: str) -> ImporterSpec | None:
        """The importer of ``model_type`` models of ``format``, if an installed plugin has one."""
        for spec in sorted(self.importers.values(), key=lambda s: s.name):
            if spec.format == format and spec.model_type == model_type:
                return spec
        return None

    def list_models(
        self, pattern: str | None = None, task: str | None = None, exclude: str | None = None
    ) -> list[ModelSpec]:
        """Model specs sorted by name, filtered by shell-style wildcards and by task."""
        specs = sorted(self.models.values(), key=lambda s: s.name)
        if pattern:
            specs = [s for s in specs if fnmatch.fnmatchcase(s.name, pattern)]
        if exclude:
            specs = [s for s in specs if not fnmatch.fnmatchcase(s.name, exclude)]
        if task:
            if task not in self.tasks and not any(task in s.tasks for s in self.models.values()):
                self.get("task", task)  # a typo: the error offers the closest task names
            specs = [s for s in specs if task in s.tasks]
        return specs


def resolve(ref: str, what: str) -> Any:
    """Import the object a ``"module:attr"`` string names; ``what`` says whose it is in errors."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ZooError(f"{what} names its code as '{ref}', which is not of the form 'module:attr'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a missing module, or one that fails as it runs: a one-line error
        raise ZooError(
            f"{what} points at module '{module_name}', which cannot be imported: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ZooError(
                f"{what} points at '{ref}', but module '{module_name}' has no attribute '{attr}'"
            ) from None
    return obj
