"""Lookups in the catalog: model specs and classes, configs, building a model, its size.

This sits on the plugin manager and below everything that trains or loads. Torch is imported
only where a model class is resolved or built, so listing stays light.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import metadata
from typing import TYPE_CHECKING, Any

from zoo_core import _config
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog
from zoo_core.registry import (
    ModelSpec,
    PluginInfo,
    StudySpec,
    TaskSpec,
    TokenizerSpec,
    resolve,
)

if TYPE_CHECKING:
    from torch import nn


def list_models(
    pattern: str | None = None, *, task: str | None = None, exclude: str | None = None
) -> list[ModelSpec]:
    """Registered models, sorted by name; ``pattern`` and ``exclude`` are shell-style wildcards."""
    return get_catalog().list_models(pattern, task=task, exclude=exclude)


def get_model_spec(name: str) -> ModelSpec:
    """The spec of a model name (an error offering the closest names if unknown)."""
    return get_catalog().get("model", name)


def list_tasks() -> list[TaskSpec]:
    """Registered tasks, sorted by name."""
    return sorted(get_catalog().tasks.values(), key=lambda s: s.name)


def list_tokenizers() -> list[TokenizerSpec]:
    """Registered tokenizers, sorted by name."""
    return sorted(get_catalog().tokenizers.values(), key=lambda s: s.name)


def list_studies() -> list[StudySpec]:
    """Registered studies (``zoo study``), sorted by name."""
    return sorted(get_catalog().studies.values(), key=lambda s: s.name)


def get_study_spec(name: str) -> StudySpec:
    """The spec of a study name (an error offering the closest names if unknown)."""
    return get_catalog().get("study", name)


def resolve_class(ref: str, what: str, base: type) -> type:
    """The class ``ref`` names, which must subclass ``base``: else one clear line."""
    cls = resolve(ref, what)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ZooError(
            f"{what} points at '{ref}', which is not a subclass of "
            f"{base.__module__}.{base.__qualname__}"
        )
    return cls


def model_class(spec: ModelSpec) -> type:
    """The ``nn.Module`` class a spec names (imports the plugin's model code)."""
    from torch import nn  # here, not above: `zoo list` imports no torch

    what = f"model '{spec.name}' of plugin '{spec.plugin}'"
    cls = resolve_class(spec.model, what, nn.Module)
    config_class = getattr(cls, "config_class", None)
    if config_class is None:
        raise ZooError(
            f"{what}: class {cls.__name__} has no config_class attribute (the dataclass of its "
            "config)"
        )
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise ZooError(f"{what}: {cls.__name__}.config_class is not a dataclass")
    return cls


def model_config(spec: ModelSpec, overrides: dict[str, Any] | None = None) -> Any:
    """The spec's config dataclass with the variant's defaults and ``overrides`` applied."""
    cls = model_class(spec).config_class
    return _config.build(cls, {**spec.defaults, **(overrides or {})}, f"model '{spec.name}' config")


def build_model(name: str, **overrides: Any) -> nn.Module:
    """A registered model with freshly initialised weights, config fields overridden."""
    spec = get_model_spec(name)
    return model_class(spec)(model_config(spec, overrides))


def count_parameters(model: nn.Module) -> int:
    """Parameters of a model, each shared tensor counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def parameters_of(cls: type, cfg: Any, real_build: bool = True) -> int:
    """The parameter count of ``cls(cfg)``, built on the meta device: nothing is allocated
    (unless the model reads a tensor's value as it is built, which needs real memory: then it
    is built for real, if ``real_build``; a config of unknown origin should not be)."""
    import torch  # here, not above: `zoo list` imports no torch

    try:
        with torch.device("meta"):
            return count_parameters(cls(cfg))
    except (RuntimeError, NotImplementedError):  # "cannot be called on meta tensors"
        if not real_build:
            raise
        return count_parameters(cls(cfg))


# Bytes a parameter takes to train with AdamW: fp32 weights, gradients and two moments.
TRAIN_BYTES_PER_PARAMETER = 16


def model_info(name: str) -> dict[str, Any]:
    """Everything `zoo info` shows: the spec, each config field with its default, parameters,
    and the memory its weights, gradients and AdamW state take to train (activations aside)."""
    spec = get_model_spec(name)
    cls = model_class(spec)
    cfg = model_config(spec)
    types_ = _config.field_types(cls.config_class)
    parameters = parameters_of(cls, cfg)
    return {
        "name": spec.name,
        "family": spec.family,
        "summary": spec.summary,
        "paper": spec.paper,
        "plugin": spec.plugin,
        "tasks": list(spec.tasks),
        "parameters": parameters,
        "train_state_bytes": parameters * TRAIN_BYTES_PER_PARAMETER,
        "config": [
            {"name": k, "type": _config.type_name(types_[k]), "default": v}
            for k, v in _config.to_json(cfg).items()
        ],
        "train_defaults": dict(spec.train_defaults),
        "pretrained": {k: vars(v) for k, v in spec.pretrained.items()},
    }


# -- where registered names come from ----------------------------------------------------------
def distribution(plugin: str) -> str:
    """The distribution that installed plugin ``plugin`` ('' when unknown)."""
    info = get_catalog().plugins.get(plugin)
    return info.distribution if info else ""


def spec_distribution(kind: str, name: str | None) -> str | None:
    """The distribution that registers task (tokenizer) ``name``, recorded so that a run whose
    plugin is gone can say what to install."""
    spec = get_catalog().table(kind).get(name) if name else None
    return distribution(spec.plugin) if spec else None


def distribution_version(dist: str | None) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(dist) if dist else None
    except metadata.PackageNotFoundError:
        return None


def unloaded_plugins() -> list[PluginInfo]:
    """Installed plugins that ``ZOO_LOAD_PLUGINS`` left out of the catalog."""
    loaded = get_catalog().plugins
    out: dict[str, PluginInfo] = {}
    for ep in sorted(metadata.entry_points(group="zoo"), key=lambda e: e.name):
        if ep.name not in loaded and ep.name not in out:
            dist = getattr(ep, "dist", None)
            version = dist.version if dist else "unknown"
            out[ep.name] = PluginInfo(ep.name, dist.name if dist else ep.value, version)
    return list(out.values())


def left_out_note(name: str | None = None) -> str:
    """`` (installed, but ZOO_LOAD_PLUGINS=... leaves it out)`` when the allow-list hides the
    plugin or distribution ``name`` (any plugin, if None); else an empty string."""
    allow = os.environ.get("ZOO_LOAD_PLUGINS")
    if allow is None:
        return ""
    hidden = unloaded_plugins()
    if name is not None:
        hidden = [i for i in hidden if name in (i.name, i.distribution)]
    if not hidden:
        return ""
    names = ", ".join(sorted({i.name for i in hidden}))
    return f" (installed: {names}; but ZOO_LOAD_PLUGINS='{allow}' leaves it out)"
