"""The typed record of a run: ``config.json`` read and written through one dataclass.

A run folder, a checkpointed run and a Hub repo all carry the same ``config.json``: which model,
task and tokenizer, their configs, what the run was trained on, and its final metrics once it
has finished. Everything that reads one goes through :class:`RunConfig`, so its fields are
checked once, here, and a folder of another library is told apart from a zoo run in one line.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core import _config, artifacts
from zoo_core.catalog import distribution_version, left_out_note
from zoo_core.errors import ZooError, printable
from zoo_core.plugins import get_catalog
from zoo_core.tasks.base import task_class
from zoo_core.tokenizers.base import tokenizer_class

if TYPE_CHECKING:
    from zoo_core.tasks.base import Task


@dataclass
class RunConfig:
    """What ``config.json`` holds; fields in the order they are written."""

    model: str
    task: str
    model_config: dict[str, Any]
    zoo_version: str | None = None
    family: str = ""
    plugin: str = ""
    distribution: str | None = None  # of the model's plugin: what to install to load it
    plugin_version: str | None = None
    task_distribution: str | None = None
    tokenizer_distribution: str | None = None
    tokenizer: str | None = None
    task_config: dict[str, Any] = field(default_factory=dict)
    task_state: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    data: str | None = None  # an absolute path, or None: the task's embedded default
    val_data: str | None = None
    data_fingerprints: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None  # the final validation metrics, once finished
    # Where its weights came from, when not from random ones: the Hub repo (or run folder) it
    # was converted from or initialised from, with revision and sha256. Written when set.
    origin: dict[str, Any] = field(default_factory=dict)
    # Fields a later version of the zoo wrote, kept so that rewriting the file loses nothing.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        """Whether the run trained to its end (its final metrics are recorded)."""
        return self.metrics is not None

    @property
    def family_name(self) -> str:
        return self.family or self.model

    @property
    def data_name(self) -> str | None:
        """What it trained on: a path, an embedded data set's name, or None (generated)."""
        return self.data or self.task_state.get("data")

    @property
    def val_data_name(self) -> str | None:
        return self.val_data or self.task_state.get("val_source")

    @classmethod
    def from_json(cls, data: Any) -> RunConfig:
        """A config read from JSON, every field checked; one line when it is not a zoo run's."""
        problem = config_problem(data)
        if problem:
            raise ZooError(f"its {artifacts.CONFIG_FILE} {problem}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``config.json``; ``metrics`` only once finished, unknown fields kept."""
        out = {name: getattr(self, name) for name in _ORDER}
        if self.metrics is None:
            del out["metrics"]
        if not self.origin:
            del out["origin"]
        return {**out, **self.extra}

    @classmethod
    def read(cls, folder: str | Path) -> RunConfig:
        """A run folder's config, or one line saying why ``folder`` is not a run folder (naming
        the runs inside it, when it holds some, as ``runs/`` does)."""
        folder = Path(folder)
        path = folder / artifacts.CONFIG_FILE
        if not path.is_file():
            if not folder.is_dir():
                raise ZooError(f"'{folder}' is not a run folder: it does not exist")
            inside = sorted(p for p in folder.iterdir() if (p / artifacts.CONFIG_FILE).is_file())
            hint = "give a folder that `zoo train` wrote"
            if inside:
                more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
                hint = f"the runs in it are {', '.join(str(p) for p in inside[:3])}{more}"
            raise ZooError(
                f"'{folder}' is not a run folder (it has no {artifacts.CONFIG_FILE}): {hint}"
            )
        data = artifacts.read_json(path, "run config")
        try:
            return cls.from_json(data)
        except ZooError as exc:
            raise ZooError(f"'{folder}' is not a zoo model: {exc}") from None

    def write(self, folder: str | Path) -> None:
        """Write ``config.json`` into ``folder`` atomically."""
        artifacts.write_json(Path(folder) / artifacts.CONFIG_FILE, self.to_json())


# The key order of config.json as the zoo has always written it.
_ORDER = (
    "zoo_version",
    "model",
    "family",
    "plugin",
    "distribution",
    "plugin_version",
    "task_distribution",
    "tokenizer_distribution",
    "task",
    "tokenizer",
    "model_config",
    "task_config",
    "task_state",
    "train_config",
    "data",
    "val_data",
    "data_fingerprints",
    "metrics",
    "origin",
)

_JSON_NAMES = {str: "a string", dict: "an object", type(None): "null"}


def _json_types(tp: Any) -> tuple[type, ...]:
    """The JSON value types a field of type ``tp`` takes (``str | None`` -> (str, NoneType))."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(tp) for t in _json_types(arg))
    return (origin or tp,)


def config_problem(config: Any) -> str | None:
    """What keeps ``config`` (parsed JSON) from being a zoo run's config, or None."""
    if not isinstance(config, dict):
        return f"holds a JSON {type(config).__name__}, not an object"
    if "model" not in config and ("model_type" in config or "architectures" in config):
        kind = printable(config.get("model_type") or "another library's", limit=40)
        return f"is a {kind} config of another library (transformers), not a zoo config"
    for key in ("model", "task", "model_config"):
        if key not in config:
            return f"has no '{key}' (a zoo config names its model, task and model_config)"
    for key, tp in _config.field_types(RunConfig).items():
        if key == "extra" or key not in config:
            continue
        kinds = _json_types(tp)
        if not isinstance(config[key], kinds):
            want = " or ".join(_JSON_NAMES[t] for t in kinds)
            return f"has '{key}' of the wrong kind ({type(config[key]).__name__}, not {want})"
    return None


# -- what a saved run needs from the installed plugins --------------------------------------------
# A distribution's name as PEP 508 has it; ASCII only, so that no look-alike letter matches.
_DISTRIBUTION = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]{0,98}[A-Z0-9]", re.IGNORECASE | re.ASCII)


def distribution_name(name: Any) -> str | None:
    """``name`` if it is a valid distribution name, else None: a repo's config names it, and
    the zoo suggests installing nothing else."""
    if isinstance(name, str) and _DISTRIBUTION.fullmatch(name):
        return name
    return None


def _version(version: Any) -> str | None:
    """``version`` normalised if it is a valid PEP 440 version, else None."""
    from packaging.version import InvalidVersion, Version  # of huggingface_hub, a dependency

    if not isinstance(version, str) or len(version) > 64:
        return None
    try:
        return str(Version(version))
    except (InvalidVersion, ValueError):
        return None


def missing_message(config: RunConfig, kind: str = "model") -> str:
    """Why a saved run cannot be loaded here: its model (task, tokenizer) is not registered."""
    name = printable(getattr(config, kind))
    dist = distribution_name(
        {
            "model": config.distribution,
            "task": config.task_distribution,
            "tokenizer": config.tokenizer_distribution,
        }[kind]
    )
    note = left_out_note(dist)
    if note:
        return f"this artifact needs {kind} '{name}' of {dist or 'a plugin'}{note}"
    if dist is None:
        return (
            f"this artifact needs {kind} '{name}', which no installed plugin provides; install "
            "the plugin that provides it and try again"
        )
    return (
        f"this artifact needs {kind} '{name}', which no installed plugin provides; its config "
        f"names the distribution {dist} (pip install {shlex.quote(dist)}); install it if you "
        "trust it, and try again"
    )


def check_installed(config: RunConfig) -> None:
    """One line naming what to install when the run's model, task or tokenizer is not here."""
    catalog = get_catalog()
    for kind in ("model", "task", "tokenizer"):
        name = getattr(config, kind)
        if name and name not in catalog.table(kind):
            raise ZooError(missing_message(config, kind))


def saved_model_config(cls: type, config: RunConfig) -> Any:
    """The model config a run saved, or one line on why this version of its plugin cannot read it."""
    try:
        return _config.from_json(cls.config_class, config.model_config)
    except ZooError as exc:
        dist = distribution_name(config.distribution)
        saved = _version(config.plugin_version)
        installed = distribution_version(dist)
        if dist and saved and saved != installed:
            wanted = shlex.quote(f"{dist}=={saved}")
            advice = (
                f"its config says it was saved with {dist} {saved}, and "
                f"{installed or 'another version'} is installed; install the one it was trained "
                f"with (pip install {wanted})"
            )
        else:
            advice = f"it was saved with another version of {dist or 'its plugin'}"
        raise ZooError(f"{exc}; {advice}") from None


def build_task(
    config: RunConfig, folder: Path, model_config: Any = None, *, from_hub: bool = False
) -> Task:
    """The task of a saved run, tokenizer and learned state restored (no data read). A task of
    a Hub repo (``from_hub``) is handed no validation path: a repo names no file here.

    With ``model_config`` it is bound to the model as training binds it, so a saved state that
    the model contradicts (an image size, a tokenizer's vocabulary, a number of classes) is one
    line here, not an index out of range at the first prediction.
    """
    check_installed(config)
    cls = task_class(config.task)
    options = _config.from_json(cls.Options, config.task_config)
    tokenizer = None
    if config.tokenizer:
        path = folder / artifacts.TOKENIZER_FILE
        if not path.exists():
            raise ZooError(f"'{folder}' has no {artifacts.TOKENIZER_FILE}, which its config names")
        tokenizer = tokenizer_class(config.tokenizer).load(path)
        tokenizer.name = config.tokenizer  # the name it is registered under, saved as such
    state = dict(config.task_state)
    state["val_data"] = None if from_hub else state.get("val_data", config.val_data)
    task = cls(options, state=state, tokenizer=tokenizer)
    if model_config is not None:
        task.bind(model_config)
    return task
