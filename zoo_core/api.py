"""The Python API; the ``zoo`` command is a thin layer over these functions."""

from __future__ import annotations

import dataclasses
import inspect
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core import _config, artifacts
from zoo_core._version import __version__
from zoo_core.errors import ZooError
from zoo_core.inference import EvalOptions, PictureOptions, PredictOptions, SamplingOptions
from zoo_core.plugins import get_catalog
from zoo_core.registry import ModelSpec, TaskSpec, TokenizerSpec, resolve

if TYPE_CHECKING:
    from torch import nn

    from zoo_core.tasks.base import Task
    from zoo_core.tokenizers.base import Tokenizer


# -- the catalog -----------------------------------------------------------------------------------
def list_models(
    pattern: str | None = None, *, task: str | None = None, exclude: str | None = None
) -> list[ModelSpec]:
    """Registered models, sorted by name; ``pattern`` and ``exclude`` are shell-style wildcards."""
    return get_catalog().list_models(pattern, task=task, exclude=exclude)


def get_model_spec(name: str) -> ModelSpec:
    """The spec of a model name (an error offering the closest names if unknown)."""
    return get_catalog().get("model", name)


def list_tasks() -> list[TaskSpec]:
    return sorted(get_catalog().tasks.values(), key=lambda s: s.name)


def list_tokenizers() -> list[TokenizerSpec]:
    return sorted(get_catalog().tokenizers.values(), key=lambda s: s.name)


def _resolve_class(ref: str, what: str, base: type) -> type:
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
    from torch import nn

    what = f"model '{spec.name}' of plugin '{spec.plugin}'"
    cls = _resolve_class(spec.model, what, nn.Module)
    config_class = getattr(cls, "config_class", None)
    if config_class is None:
        raise ZooError(
            f"{what}: class {cls.__name__} has no config_class attribute (the dataclass of its "
            "config)"
        )
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise ZooError(f"{what}: {cls.__name__}.config_class is not a dataclass")
    return cls


def task_class(name: str) -> type[Task]:
    from zoo_core.tasks.base import Task

    spec = get_catalog().get("task", name)
    return _resolve_class(spec.task, f"task '{spec.name}' of plugin '{spec.plugin}'", Task)


def tokenizer_class(name: str) -> type[Tokenizer]:
    from zoo_core.tokenizers.base import Tokenizer

    spec = get_catalog().get("tokenizer", name)
    what = f"tokenizer '{spec.name}' of plugin '{spec.plugin}'"
    return _resolve_class(spec.tokenizer, what, Tokenizer)


def model_config(spec: ModelSpec, overrides: dict[str, Any] | None = None) -> Any:
    """The spec's config dataclass with the variant's defaults and ``overrides`` applied."""
    cls = model_class(spec).config_class
    return _config.build(cls, {**spec.defaults, **(overrides or {})}, f"model '{spec.name}' config")


def create_model(name: str, pretrained: str | bool | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model from its default config, with config fields overridden.

    ``pretrained`` loads named weights the spec declares (``True`` for the first one).
    """
    spec = get_model_spec(name)
    if pretrained:
        from zoo_core.hub import load_pretrained

        return load_pretrained(spec, pretrained, **overrides).model
    return model_class(spec)(model_config(spec, overrides))


def count_parameters(model: nn.Module) -> int:
    """Parameters of a model, each shared tensor counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _parameters_of(cls: type, cfg: Any) -> int:
    """The parameter count of ``cls(cfg)``, built on the meta device: nothing is allocated
    (unless the model reads a tensor's value as it is built, which needs real memory)."""
    import torch

    try:
        with torch.device("meta"):
            return count_parameters(cls(cfg))
    except (RuntimeError, NotImplementedError):  # "cannot be called on meta tensors"
        return count_parameters(cls(cfg))


def _saved_model_config(cls: type, config: dict[str, Any]) -> Any:
    """The model config a run saved, or one line on why this version of its plugin cannot read it."""
    try:
        return _config.from_json(cls.config_class, config["model_config"])
    except ZooError as exc:
        dist = config.get("distribution") or "its plugin"
        saved = config.get("plugin_version")
        installed = _distribution_version(dist)
        if saved and saved != installed:
            advice = (
                f"it was saved with {dist} {saved} and {installed or 'another version'} is "
                f"installed; install the one it was trained with (pip install '{dist}=={saved}')"
            )
        else:
            advice = f"it was saved with another version of {dist}; install that version"
        raise ZooError(f"{exc}; {advice}") from None


def model_info(name: str) -> dict[str, Any]:
    """Everything `zoo info` shows: the spec, each config field with its default, parameters."""
    spec = get_model_spec(name)
    cls = model_class(spec)
    cfg = model_config(spec)
    parameters = _parameters_of(cls, cfg)
    types_ = _config.field_types(cls.config_class)
    return {
        "name": spec.name,
        "family": spec.family,
        "summary": spec.summary,
        "paper": spec.paper,
        "plugin": spec.plugin,
        "tasks": list(spec.tasks),
        "parameters": parameters,
        "config": [
            {"name": k, "type": _config.type_name(types_[k]), "default": v}
            for k, v in _config.to_json(cfg).items()
        ],
        "train_defaults": dict(spec.train_defaults),
        "pretrained": {k: vars(v) for k, v in spec.pretrained.items()},
    }


def run_info(source: str | Path) -> dict[str, Any]:
    """Everything `zoo info RUN` shows of a trained model (a run folder or a Hub repo): its model,
    task, data, how far it trained, its last metrics and configs. Needs no plugin but for the
    parameter count."""
    from zoo_core.training.checkpoint import newest_state

    folder = Path(source)
    local = folder.is_dir()  # a run folder here, which --resume can continue
    if not local:
        folder = _pulled(source)
    config = artifacts.read_run_config(folder)
    log = artifacts.read_metrics(folder)
    steps = max((r.get("step", 0) for r in log), default=0)
    seconds = max((r["elapsed"] for r in log if "elapsed" in r), default=None)
    newest = newest_state(folder / artifacts.CHECKPOINTS_DIR)  # where a resume would go on
    finished = "metrics" in config
    if newest is not None and (newest["step"] > steps or not finished):
        # It saved after its last log line; or it is unfinished, and what counts is the step a
        # resume goes on from, not a log line written after the last checkpoint.
        steps = newest["step"]
        seconds = (newest.get("trainer") or {}).get("elapsed", seconds)
    elif not finished and not (folder / artifacts.WEIGHTS_FILE).exists():
        steps, seconds = 0, None  # stopped before its first checkpoint: no weights of any step
    state = config.get("task_state") or {}
    data = config.get("data") or state.get("data")
    parameters = None
    catalog = get_catalog()
    if config.get("model") in catalog.models:
        cls = model_class(catalog.models[config["model"]])
        try:
            parameters = _parameters_of(cls, _saved_model_config(cls, config))
        except ZooError:  # another version of the plugin: everything else can still be shown
            parameters = None
    train_config = config.get("train_config") or {}
    return {
        "source": str(source),
        "folder": str(folder),
        "model": config.get("model"),
        "plugin": config.get("plugin"),
        "distribution": config.get("distribution"),
        "task": config.get("task"),
        "tokenizer": config.get("tokenizer"),
        "data": data,  # a path, an embedded data set's name, or None: the task generates it
        "val_data": config.get("val_data") or state.get("val_source"),
        "steps": steps,
        "planned_steps": train_config.get("steps"),
        "seconds": seconds,
        "finished": finished,
        "local": local,
        "metrics": config.get("metrics") or {},
        "parameters": parameters,
        "model_config": config.get("model_config") or {},
        "train_config": train_config,
        "zoo_version": config.get("zoo_version"),
    }


# -- artifacts -------------------------------------------------------------------------------------
@dataclass
class Artifact:
    """A trained model with what it needs: its task (and tokenizer) and the config it came from."""

    path: Path
    config: dict[str, Any]
    spec: ModelSpec
    model: nn.Module
    task: Task

    @property
    def tokenizer(self) -> Tokenizer | None:
        return self.task.tokenizer

    def __repr__(self) -> str:
        parameters = count_parameters(self.model)
        return (
            f"Artifact('{self.path}', model='{self.spec.name}', task='{self.config['task']}', "
            f"parameters={parameters:,})"
        )

    @property
    def generate_options(self) -> type[SamplingOptions] | type[PictureOptions]:
        """What :meth:`generate` takes: :class:`SamplingOptions` for a model that writes text,
        :class:`PictureOptions` for one that draws samples."""
        kind = getattr(type(self.task), "generate_options", None)
        if kind is None:
            raise ZooError(f"task '{self.config['task']}' does not generate")
        return kind

    def generate(
        self,
        prompt: str | None = None,
        options: SamplingOptions | PictureOptions | None = None,
        *,
        stream: Callable[[str], None] | None = None,
        **keywords: Any,
    ) -> Any:
        """The task's inference: the new text after ``prompt`` for a language model, samples (a
        tensor) for a generative one. Give ``options``, or their fields as keywords:
        ``generate("def ", length=100, temperature=0.8, seed=0)``, ``generate(num=16, seed=0)``.
        ``stream`` is called with each piece of text as soon as it is sampled."""
        kind = self.generate_options
        options = self._options(kind, "generate", options, keywords)
        if isinstance(options, PictureOptions):
            if prompt is not None or stream is not None:
                raise ZooError(
                    f"task '{self.config['task']}' draws samples: it takes no prompt and streams "
                    "no text; its options are " + ", ".join(self._field_names(kind))
                )
            return self.task.generate(self.model, **dataclasses.asdict(options))
        pieces = []
        for piece in self.task.stream(
            self.model, "" if prompt is None else prompt, **dataclasses.asdict(options)
        ):
            pieces.append(piece)
            if stream is not None:
                stream(piece)
        return "".join(pieces)

    def sample_to_file(
        self, out: str | Path, options: PictureOptions | None = None, **keywords: Any
    ) -> Path:
        """Draw samples and write their picture to ``out`` (.png, .jpg, ...), as
        ``zoo generate --out`` does; ``options`` or their fields as keywords (``num=16``)."""
        if self.generate_options is not PictureOptions:
            raise ZooError(
                f"task '{self.config['task']}' draws no pictures; generate() gives its text"
            )
        options = self._options(PictureOptions, "sample_to_file", options, keywords)
        return self.task.sample_to_file(self.model, options.num, out, options.seed, options.label)

    def _options(self, kind: type, what: str, options: Any, keywords: dict[str, Any]) -> Any:
        """``options`` if it is a ``kind``, else a ``kind`` of ``keywords``; one line naming the
        fields of ``kind`` where they do not fit."""
        if options is not None:
            if keywords:
                raise ZooError(
                    f"{what}(): give options or keywords ({', '.join(keywords)}), not both"
                )
            if not isinstance(options, kind):
                raise ZooError(
                    f"{what}() for task '{self.config['task']}' takes {kind.__name__}, not "
                    f"{type(options).__name__}"
                )
            return options
        try:
            return kind(**keywords)
        except TypeError as exc:
            reason = str(exc).partition("() ")[2] or str(exc)
            raise ZooError(
                f"{what}() for task '{self.config['task']}' {reason}; its options are "
                + ", ".join(self._field_names(kind))
            ) from None

    @staticmethod
    def _field_names(kind: type) -> list[str]:
        """The fields of options dataclass ``kind``, after the prompt for text sampling."""
        prompt = ["prompt"] if kind is SamplingOptions else []
        return prompt + [f.name for f in dataclasses.fields(kind)]

    def _check_call(self, method: Any, what: str, *args: Any, **options: Any) -> None:
        """One line naming the options the task's ``method`` takes, where it takes not these."""
        signature = inspect.signature(method)
        try:
            signature.bind(self.model, *args, **options)
        except TypeError as exc:
            names = [name for name in signature.parameters if name != "model"]
            raise ZooError(
                f"{what}() for task '{self.config['task']}': {exc}; its options are "
                f"{', '.join(names)}"
            ) from None

    def predict(
        self, inputs: Any, options: PredictOptions | None = None, **keywords: Any
    ) -> list[dict[str, Any]]:
        """The ``top_k`` likeliest classes of each input (image files, folders of them or Pillow
        images for an image classifier, texts for a text classifier), with probabilities,
        likeliest first. One input may be given alone; the result is a list all the same.
        ``options`` is a :class:`PredictOptions`, or its fields are given as keywords.

        An input that cannot be read (an image file Pillow cannot open) raises a ZooError naming
        it, or with ``on_error="report"`` gets ``{"image": ..., "error": ...}`` in its place
        while the others are classified."""
        if not hasattr(self.task, "predict"):
            raise ZooError(f"task '{self.config['task']}' is not a classifier; nothing to predict")
        options = self._options(PredictOptions, "predict", options, keywords)
        one = (
            isinstance(inputs, str | Path)
            or hasattr(inputs, "getpixel")  # a Pillow image
            or not isinstance(inputs, Iterable)
        )
        items = [inputs] if one else list(inputs)
        task_options: dict[str, Any] = {"top_k": options.top_k}
        if "on_error" in inspect.signature(self.task.predict).parameters:
            task_options["on_error"] = options.on_error  # a task whose inputs all read has none
        return self.task.predict(self.model, items, **task_options)

    def evaluate(
        self, data: str | None = None, options: EvalOptions | None = None, **keywords: Any
    ) -> dict[str, float]:
        """Metrics on ``data`` (default: the validation split of the data it was trained on).
        ``options`` is an :class:`EvalOptions`, or ``batch_size`` and the task's own settings are
        given as keywords: ``evaluate(seq_len=512)`` scores a language model on windows longer
        than those it was trained on."""
        if options is None:
            batch_size = keywords.pop("batch_size", EvalOptions.batch_size)
            options = EvalOptions(batch_size=batch_size, task=keywords)
        else:
            options = self._options(EvalOptions, "evaluate", options, keywords)
        self._check_call(self.task.evaluate, "evaluate", options.batch_size, **options.task)
        if data is None:  # the data of its training, read again from where it was
            from zoo_core.data.fingerprint import warn_if_changed

            read = "val_data" if self.config.get("val_data") else "data"
            warn_if_changed(self.config, (read,), "the metrics are of the data as it is now")
        self.task.setup_eval(data)
        return self.task.evaluate(self.model, options.batch_size, **options.task)

    def push_to_hub(self, repo_id: str, **options: Any) -> Any:
        """Upload this artifact to Hub repo ``repo_id`` (created if needed), as ``zoo push`` does:
        the files of the folder it was loaded from, with a model card written for the repo.
        ``options`` are :func:`zoo_core.hub.push`'s (``private``, ``revision``, ``message``,
        ``include_checkpoints``, ``token``, ``allow_unfinished``, ``force``). Returns a
        ``zoo_core.hub.PushResult`` (``commit_url``, ``files``, ``removed``...)."""
        import torch

        from zoo_core.hub import push

        saved, _ = artifacts.state_from_file(self.path / artifacts.WEIGHTS_FILE)
        current = self.model.state_dict()
        if saved.keys() != current.keys() or any(
            not torch.equal(saved[k], current[k].detach().cpu()) for k in saved
        ):
            raise ZooError(
                f"this artifact's weights differ from those in '{self.path}', and a push uploads "
                "that folder's files; train or resume a run to change a model's weights"
            )
        return push(self.path, repo_id, **options)


def _missing_model_message(config: dict[str, Any], kind: str = "model") -> str:
    """Why a saved run cannot be loaded here: its model (task, tokenizer) is not registered."""
    from zoo_core.scaffold import left_out_note

    key = "distribution" if kind == "model" else f"{kind}_distribution"
    name = config.get(kind)
    dist = config.get(key) or "the plugin that provides it"
    note = left_out_note(config.get(key) or None)
    if note:
        return f"this artifact needs {kind} '{name}' of {dist}{note}"
    return (
        f"this artifact needs {kind} '{name}', which no installed plugin provides; "
        f"install {dist} (pip install {dist}) and try again"
    )


def build_task(config: dict[str, Any], folder: Path) -> Task:
    """The task of a saved run, tokenizer and learned state restored (no data read)."""
    catalog = get_catalog()
    for kind in ("task", "tokenizer"):
        if config.get(kind) and config[kind] not in catalog.table(kind):
            raise ZooError(_missing_model_message(config, kind))
    cls = task_class(config["task"])
    options = _config.from_json(cls.Options, config.get("task_config", {}))
    tokenizer = None
    if config.get("tokenizer"):
        path = folder / artifacts.TOKENIZER_FILE
        if not path.exists():
            raise ZooError(f"'{folder}' has no {artifacts.TOKENIZER_FILE}, which its config names")
        tokenizer = tokenizer_class(config["tokenizer"]).load(path)
        tokenizer.name = config["tokenizer"]  # the name it is registered under, saved as such
    state = dict(config.get("task_state", {}))
    state.setdefault("val_data", config.get("val_data"))  # what it validated on, if given
    return cls(options, state=state, tokenizer=tokenizer)


def load_local(
    folder: str | Path, device: str = "cpu", overrides: dict[str, Any] | None = None
) -> Artifact:
    """Load a run folder (or a downloaded Hub snapshot) into an :class:`Artifact`.

    ``overrides`` change config fields that keep the weights' shapes (``dropout=0``).
    """
    folder = Path(folder)
    config = artifacts.read_run_config(folder)
    catalog = get_catalog()
    if config.get("model") not in catalog.models:
        raise ZooError(_missing_model_message(config))
    spec = catalog.models[config["model"]]
    cls = model_class(spec)
    model_cfg = _saved_model_config(cls, config)
    if overrides:
        unknown = sorted(set(overrides) - set(_config.field_types(cls.config_class)))
        if unknown:
            raise ZooError(f"model '{spec.name}' config has no field {', '.join(unknown)}")
        try:
            model_cfg = dataclasses.replace(model_cfg, **overrides)
        except (TypeError, ValueError) as exc:
            raise ZooError(f"model '{spec.name}' config: {exc}") from None
    if not (folder / artifacts.WEIGHTS_FILE).exists() and "metrics" not in config:
        raise ZooError(
            f"'{folder}' has no weights yet: its training stopped before the first checkpoint. "
            f"Continue it with: zoo train --resume {folder}"
        )
    model = cls(model_cfg)
    artifacts.load_weights(model, folder / artifacts.WEIGHTS_FILE)
    model.eval()
    if device != "cpu":
        from zoo_core.training.trainer import pick_device

        model.to(pick_device(device))
    return Artifact(folder, config, spec, model, build_task(config, folder))


def load(source: str | Path, device: str = "cpu", revision: str | None = None) -> Artifact:
    """Load a model from a run folder, or from the Hub (``hf:org/name@rev`` or ``org/name``)."""
    path = Path(source)
    if path.is_dir():
        return load_local(path, device)
    return load_local(_pulled(source, revision), device)


def _pulled(source: str | Path, revision: str | None = None) -> Path:
    """The local snapshot of Hub repo ``source``; one line when it names no folder and no repo."""
    text = str(source)
    if text.startswith("hf:") or (text.count("/") == 1 and not text.startswith((".", "/"))):
        from zoo_core.hub import pull

        return pull(text, revision=revision)
    raise ZooError(f"'{source}' is neither a run folder nor a Hub repo id (org/name)")


# -- training --------------------------------------------------------------------------------------
def _new_run_dir(name: str, out: str | Path | None) -> Path:
    try:
        if out is not None:
            path = Path(out)
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise ZooError(
                    f"'{path}' already exists and is not empty; choose a new --out, or continue "
                    f"that run with --resume {path}"
                )
            path.mkdir(parents=True, exist_ok=True)
            return path
        base = Path("runs")
        base.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1, 1000):
            path = base / (f"{name}-{stamp}" + (f"-{i}" if i > 1 else ""))
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise ZooError("could not find a free run folder name under runs/")
    except OSError as exc:
        raise ZooError(f"cannot create the run folder: {exc.strerror}: '{exc.filename}'") from None


def _split_overrides(
    overrides: dict[str, Any], model_cls: type, task_cls: type, what: str
) -> tuple[dict, dict, dict]:
    from zoo_core.training.config import TrainConfig

    tables = (
        _config.field_types(model_cls.config_class),
        _config.field_types(task_cls.Options),
        _config.field_types(TrainConfig),
    )
    out: tuple[dict, dict, dict] = ({}, {}, {})
    for key, value in overrides.items():
        # A key both the task and the model know (vocab_size) is the task's: the task fits its
        # tokenizer with it and then fills the model's field from the data.
        for i in (1, 0, 2):
            table, target = tables[i], out[i]
            if key in table:
                target[key] = value
                break
        else:
            raise ZooError(
                f"{what} has no setting '{key}'. Model fields: {', '.join(tables[0])}; "
                f"task fields: {', '.join(tables[1])}; training fields: {', '.join(tables[2])}"
            )
    return out


def train(
    model: str | None = None,
    *,
    task: str | None = None,
    data: str | Path | None = None,
    val_data: str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    **train_options: Any,
) -> tuple[Artifact, dict[str, Any]]:
    """Train a registered model (or resume a run folder); return the artifact and final metrics.

    ``overrides`` set model config fields, task options (``tokenizer``, ``seq_len``) or training
    settings by name, typed by their dataclasses; ``train_options`` (``steps``, ``time``,
    ``batch_size``, ``lr``, ``seed``, ``device``...) are training settings. ``None`` values are
    ignored.
    """
    from zoo_core.training import distributed

    try:
        return _train(model, task, data, val_data, out, resume, overrides, progress, train_options)
    finally:
        distributed.finish()  # under torchrun: leave the process group, error or not


def _train(model, task, data, val_data, out, resume, overrides, progress, train_options):
    from zoo_core.training import distributed
    from zoo_core.training.config import TrainConfig
    from zoo_core.training.trainer import Trainer, pick_device

    train_options = {k: v for k, v in train_options.items() if v is not None}
    overrides = dict(overrides or {})
    if resume is not None:
        given = {"model": model, "task": task, "data": data, "val_data": val_data, "out": out}
        with _lock(Path(resume)):
            return _resume(Path(resume), overrides, train_options, progress, given)
    if model is None:
        raise ZooError("name a model to train (see `zoo list`), or --resume a run folder")
    spec = get_model_spec(model)
    task_name = task or spec.tasks[0]
    if task_name not in spec.tasks:
        raise ZooError(
            f"model '{spec.name}' does not do task '{task_name}'; it does: {', '.join(spec.tasks)}"
        )
    task_cls = task_class(task_name)
    model_cls = model_class(spec)
    model_over, task_over, train_over = _split_overrides(
        {**overrides, **train_options},
        model_cls,
        task_cls,
        f"model '{spec.name}' with task '{task_name}'",
    )
    task_defaults = {
        k: v for k, v in spec.train_defaults.items() if k in _config.field_types(task_cls.Options)
    }
    # A variant's defaults may name options of its other tasks (an lm seq_len): skip those.
    train_defaults = {
        k: v for k, v in spec.train_defaults.items() if k in _config.field_types(TrainConfig)
    }
    if "time" in train_over and "steps" not in train_over:
        train_defaults.pop("steps", None)
        train_over["steps"] = 10**12  # the clock decides
    train_cfg = _config.build(TrainConfig, {**train_defaults, **train_over}, "training settings")
    options = _config.build(
        task_cls.Options, {**task_defaults, **task_over}, f"task '{task_name}' options"
    )
    _validate_train_config(train_cfg)
    distributed.init(pick_device(train_cfg.device).type)
    data = str(Path(data).resolve()) if data is not None else None
    val_data = str(Path(val_data).resolve()) if val_data is not None else None

    task_obj = task_cls(options)
    task_obj.setup(data, val_data, train_cfg.seed)
    config_fields = _config.field_types(model_cls.config_class)
    from_data = {k: v for k, v in task_obj.model_config().items() if k in config_fields}
    model_cfg = _config.build(
        model_cls.config_class,
        {**spec.defaults, **from_data, **model_over},
        f"model '{spec.name}' config",
    )
    task_obj.bind(model_cfg)
    import torch

    torch.manual_seed(train_cfg.seed)  # the same seed, the same initial weights
    net = model_cls(model_cfg)

    existed = out is not None and Path(out).is_dir()
    run_dir = _shared_run_dir(spec.name, out)
    with _lock(run_dir):  # one process trains a run folder at a time
        config = {
            "zoo_version": __version__,
            "model": spec.name,
            "family": spec.family,
            "plugin": spec.plugin,
            "distribution": _distribution(spec.plugin),
            "plugin_version": _distribution_version(_distribution(spec.plugin)),
            "task_distribution": _spec_distribution("task", task_name),
            "tokenizer_distribution": _spec_distribution(
                "tokenizer", getattr(task_obj.tokenizer, "name", None)
            ),
            "task": task_name,
            "tokenizer": getattr(task_obj.tokenizer, "name", None),
            "model_config": _config.to_json(model_cfg),
            "task_config": _config.to_json(task_obj.options),
            "task_state": task_obj.state(),
            "train_config": _config.to_json(train_cfg),
            "data": data,
            "val_data": val_data,
            "data_fingerprints": _fingerprints(data, val_data),
        }
        trainer = None
        try:
            if distributed.is_main():
                _write_start(run_dir, config, task_obj)
            # Where a task may write files as it trains (progress samples); rank 0 alone writes.
            task_obj.run_dir = run_dir if distributed.is_main() else None
            trainer = Trainer(
                net,
                task_obj,
                train_cfg,
                run_dir,
                metadata={"zoo.model": spec.name},
                progress=progress,
            )
            final = trainer.fit()
        except BaseException:
            # Failed (or was stopped at once) before it saved a checkpoint or logged a step: no
            # folder is left of it.
            if distributed.is_main() and (trainer is None or trainer.saved_nothing):
                _discard(run_dir, keep_folder=existed)
            raise
        return _finish(run_dir, config, spec, net, task_obj, final)


def _lock(run_dir: Path):
    """Under torchrun, rank 0 alone holds the run folder's lock."""
    import contextlib

    from zoo_core.training import distributed

    return artifacts.locked(run_dir) if distributed.is_main() else contextlib.nullcontext()


def _discard(run_dir: Path, keep_folder: bool) -> None:
    """Remove a run that never trained; an empty --out folder that was there before stays."""
    if keep_folder:
        for path in run_dir.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


def _shared_run_dir(name: str, out: str | Path | None) -> Path:
    """Rank 0 makes the run folder; under torchrun the other ranks learn its path."""
    from zoo_core.training import distributed

    if distributed.world_size() == 1:
        return _new_run_dir(name, out)
    path, error = "", None
    if distributed.is_main():
        try:
            path = str(_new_run_dir(name, out))
        except ZooError as exc:
            error = exc
    path = distributed.broadcast_text(path)
    if error is not None:
        raise error
    if not path:
        raise ZooError("rank 0 could not create the run folder; see its error")
    return Path(path)


def _distribution(plugin: str) -> str:
    info = get_catalog().plugins.get(plugin)
    return info.distribution if info else ""


def _spec_distribution(kind: str, name: str | None) -> str | None:
    """The distribution that registers task (tokenizer) ``name``, recorded so that a run whose
    plugin is gone can say what to install."""
    spec = get_catalog().table(kind).get(name) if name else None
    return _distribution(spec.plugin) if spec else None


def _distribution_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(dist) if dist else None
    except metadata.PackageNotFoundError:
        return None


def _validate_train_config(cfg: Any) -> None:
    checks = [
        (cfg.steps >= 1, f"steps must be at least 1, not {cfg.steps}"),
        (cfg.batch_size >= 1, f"batch size must be at least 1, not {cfg.batch_size}"),
        (0 < cfg.lr < math.inf, f"learning rate must be positive and finite, not {cfg.lr}"),
        (
            cfg.time is None or 0 < cfg.time < math.inf,
            f"time must be a positive, finite number of seconds, not {cfg.time}",
        ),
        (cfg.log_interval >= 1, f"log_interval must be at least 1, not {cfg.log_interval}"),
        (0 <= cfg.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], not {cfg.min_lr_ratio}"),
        (cfg.warmup >= 0, f"warmup must be 0 steps or more, not {cfg.warmup}"),
        (cfg.weight_decay >= 0, f"weight_decay must be 0 or more, not {cfg.weight_decay}"),
        (0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, "beta1 and beta2 must be in [0, 1)"),
        (cfg.grad_clip >= 0, f"grad_clip must be 0 (off) or more, not {cfg.grad_clip}"),
        (
            cfg.eval_interval >= 0,
            f"eval_interval must be 0 (auto) or more, not {cfg.eval_interval}",
        ),
        (cfg.eval_batches >= 1, f"eval_batches must be at least 1, not {cfg.eval_batches}"),
        (
            cfg.checkpoint_interval >= 0,
            f"checkpoint_interval must be 0 (at each evaluation) or more, not {cfg.checkpoint_interval}",
        ),
        (
            cfg.keep_checkpoints >= 1,
            f"keep_checkpoints must be at least 1, not {cfg.keep_checkpoints}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ZooError(message)
    from zoo_core.training.trainer import check_compiler, pick_device

    device = pick_device(cfg.device)  # an unknown or absent device, before anything is written
    if cfg.compile:
        check_compiler(device)


def _write_start(run_dir: Path, config: dict[str, Any], task_obj: Task) -> None:
    try:
        artifacts.write_json(run_dir / artifacts.CONFIG_FILE, config)
        if task_obj.tokenizer is not None:
            tok = task_obj.tokenizer
            artifacts.atomic_write(run_dir / artifacts.TOKENIZER_FILE, tok.save)
    except OSError as exc:
        raise ZooError(f"cannot write to the run folder '{run_dir}': {exc.strerror}") from None


def _finish(run_dir, config, spec, net, task_obj, final) -> tuple[Artifact, dict[str, Any]]:
    from zoo_core.card import write_card
    from zoo_core.training import distributed

    if not distributed.is_main():  # rank 0 alone writes
        net.eval()
        return Artifact(run_dir, config, spec, net, task_obj), final
    config = {**config, "metrics": {k: v for k, v in final.items() if k.startswith("val_")}}
    try:
        artifacts.write_json(run_dir / artifacts.CONFIG_FILE, config)
        task_obj.save_extras(run_dir)  # task-made files (an image task's confusion matrix)
        write_card(run_dir, config)  # after them: it shows the pictures among them
    except OSError as exc:
        raise ZooError(
            f"training finished and its weights are saved, but writing '{run_dir}' failed: "
            f"{exc.strerror or exc}"
        ) from None
    net.eval()
    return Artifact(run_dir, config, spec, net, task_obj), final


def _check_left_to_train(run_dir: Path, train_cfg: Any) -> None:
    """A run that has already reached its --steps (or --time) is left as it is: resuming it
    would only evaluate it again."""
    from zoo_core.training import checkpoint

    checkpoints = run_dir / artifacts.CHECKPOINTS_DIR
    state = checkpoint.newest_state(checkpoints)
    if state is None and not checkpoint.list_checkpoints(checkpoints):
        if (run_dir / artifacts.WEIGHTS_FILE).exists():  # trained once; its checkpoints are gone
            raise ZooError(
                f"'{run_dir}' has trained weights but no checkpoint to resume from (was "
                f"'{checkpoints}' removed?); its model.safetensors is kept as it is. Start a new "
                "run to train further"
            )
        return  # stopped before its first checkpoint: the run starts again from step 0
    if state is None:
        return  # every checkpoint damaged: load_latest says so
    done, spent = state["step"], (state.get("trainer") or {}).get("elapsed", 0.0)
    if done >= train_cfg.steps:
        raise ZooError(
            f"'{run_dir}' has trained {done} steps already and --steps is {train_cfg.steps}: "
            f"resume with --steps above {done} to train it further"
        )
    if train_cfg.time is not None and spent >= train_cfg.time:
        raise ZooError(
            f"'{run_dir}' has trained for {spent:.0f} s already and --time is {train_cfg.time:g} "
            f"s: resume with a longer --time to train it further"
        )


def _check_same_run(run_dir: Path, config: dict[str, Any], given: dict[str, Any]) -> None:
    """A resumed run keeps its model, task, data and folder: naming others is an error (naming
    the same ones is harmless)."""

    def path(p: Any) -> str | None:
        return None if p is None else str(Path(p).resolve())

    differs = []
    if given.get("model") not in (None, config.get("model")):
        differs.append(f"the model {given['model']} (it trains {config.get('model')})")
    if given.get("task") not in (None, config.get("task")):
        differs.append(f"--task {given['task']} (its task is {config.get('task')})")
    for key, option, verb, default in (
        ("data", "--data", "trains", "the embedded default"),
        ("val_data", "--val-data", "validates", "the held-out part of its data"),
    ):
        if given.get(key) is not None and path(given[key]) != config.get(key):
            differs.append(f"{option} (it {verb} on {config.get(key) or default})")
    if given.get("out") is not None and path(given["out"]) != path(run_dir):
        differs.append("--out (it stays in its folder)")
    if differs:
        raise ZooError(
            f"a resumed run keeps its model, task, data and folder; drop {'; '.join(differs)}, "
            "or start a new run"
        )
    for key in ("data", "val_data"):
        if config.get(key) and not Path(config[key]).exists():
            raise ZooError(
                f"'{run_dir}' was trained on '{config[key]}', which is not here; put it back "
                "there to resume the run"
            )


def _fingerprints(data: str | None, val_data: str | None) -> dict[str, str]:
    """What the data under the run's paths is now (an embedded data set has no path)."""
    from zoo_core.data.fingerprint import fingerprint

    found = {}
    for key, path in (("data", data), ("val_data", val_data)):
        if path is not None and (value := fingerprint(path)):
            found[key] = value
    return found


def _resume(
    run_dir: Path, overrides: dict, train_options: dict, progress: bool, given: dict[str, Any]
):
    from zoo_core.training import distributed
    from zoo_core.training.config import TrainConfig
    from zoo_core.training.trainer import Trainer

    config = artifacts.read_run_config(run_dir)
    _check_same_run(run_dir, config, given)
    from zoo_core.data.fingerprint import warn_if_changed

    warn_if_changed(config, ("data", "val_data"), "the run goes on with the data as it is now")
    changeable = {"steps", "time", "device", "log_interval", "eval_interval", "eval_batches"}
    fixed = sorted(set(overrides) | (set(train_options) - changeable))
    if fixed:
        raise ZooError(
            f"a resumed run keeps its settings; {', '.join(fixed)} cannot change "
            f"(only {', '.join(sorted(changeable))} can). Start a new run to change them"
        )
    catalog = get_catalog()
    if config.get("model") not in catalog.models:
        raise ZooError(_missing_model_message(config))
    spec = catalog.models[config["model"]]
    cls = model_class(spec)
    model_cfg = _saved_model_config(cls, config)
    task_obj = build_task(config, run_dir)
    train_cfg = _config.from_json(TrainConfig, config["train_config"])
    for key, value in train_options.items():
        setattr(
            train_cfg, key, _config.parse_value(value, _config.field_types(TrainConfig)[key], key)
        )
    _validate_train_config(train_cfg)
    _check_left_to_train(run_dir, train_cfg)
    import torch

    torch.manual_seed(train_cfg.seed)  # a run with no checkpoint yet starts as it first did
    net = cls(model_cfg)
    task_obj.setup(config.get("data"), config.get("val_data"), train_cfg.seed)
    task_obj.bind(model_cfg)
    config["train_config"] = _config.to_json(train_cfg)
    if distributed.is_main():
        artifacts.write_json(run_dir / artifacts.CONFIG_FILE, config)
    # Where a task may write files as it trains (progress samples); rank 0 alone writes.
    task_obj.run_dir = run_dir if distributed.is_main() else None
    trainer = Trainer(
        net, task_obj, train_cfg, run_dir, metadata={"zoo.model": spec.name}, progress=progress
    )
    final = trainer.fit(resume=True)
    return _finish(run_dir, config, spec, net, task_obj, final)
