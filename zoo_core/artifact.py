"""A trained model with what it needs, loaded from a run folder or a Hub repo: :class:`Artifact`.

``load`` and ``load_local`` build one; ``train`` returns one; ``run_info`` describes a run
without building its model; ``push`` publishes a run folder once it is known to load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core import _config, artifacts, hub, importers
from zoo_core.catalog import (
    build_model,
    count_parameters,
    get_model_spec,
    model_class,
    parameters_of,
)
from zoo_core.data.fingerprint import warn_if_changed
from zoo_core.errors import ZooError
from zoo_core.inference import (
    EvalOptions,
    PictureOptions,
    PredictOptions,
    SamplingOptions,
    TranslateOptions,
)
from zoo_core.plugins import get_catalog
from zoo_core.registry import ModelSpec
from zoo_core.runconfig import (
    RunConfig,
    build_task,
    distribution_name,
    missing_message,
    saved_model_config,
)
from zoo_core.training import run as training_run
from zoo_core.training.checkpoint import newest_state
from zoo_core.training.trainer import pick_device

if TYPE_CHECKING:
    from torch import nn

    from zoo_core.tasks.base import Task
    from zoo_core.tokenizers.base import Tokenizer


@dataclass
class Artifact:
    """A trained model with what it needs: its task (and tokenizer) and the config it came from."""

    path: Path
    config: RunConfig
    spec: ModelSpec
    model: nn.Module
    task: Task
    # Loaded from a Hub repo: its config is a stranger's, and no path it names is ever read.
    from_hub: bool = False

    @property
    def tokenizer(self) -> Tokenizer | None:
        return self.task.tokenizer

    def __repr__(self) -> str:
        parameters = count_parameters(self.model)
        return (
            f"Artifact('{self.path}', model='{self.spec.name}', task='{self.config.task}', "
            f"parameters={parameters:,})"
        )

    @property
    def generate_options(self) -> type[SamplingOptions] | type[PictureOptions]:
        """What :meth:`generate` takes: :class:`SamplingOptions` for a model that writes text,
        :class:`PictureOptions` for one that draws samples."""
        kind = self.task.generate_options
        if kind is None:
            raise ZooError(f"task '{self.config.task}' does not generate")
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
                    f"task '{self.config.task}' draws samples: it takes no prompt and streams "
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
                f"task '{self.config.task}' draws no pictures; generate() gives its text"
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
                    f"{what}() for task '{self.config.task}' takes {kind.__name__}, not "
                    f"{type(options).__name__}"
                )
            return options
        try:
            return kind(**keywords)
        except TypeError as exc:
            reason = str(exc).partition("() ")[2] or str(exc)
            raise ZooError(
                f"{what}() for task '{self.config.task}' {reason}; its options are "
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
                f"{what}() for task '{self.config.task}': {exc}; its options are {', '.join(names)}"
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
            raise ZooError(f"task '{self.config.task}' is not a classifier; nothing to predict")
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

    def translate(
        self, texts: str | Iterable[str], options: TranslateOptions | None = None, **keywords: Any
    ) -> str | list[str]:
        """A sequence-to-sequence model's target text for a source text (a list of them for a
        list): greedy decoding, or beam search with ``beam`` > 1. ``options`` is a
        :class:`TranslateOptions`, or its fields are given as keywords:
        ``translate("jump twice", beam=4, length_penalty=0.6)``."""
        if not hasattr(self.task, "translate"):
            raise ZooError(f"task '{self.config.task}' does not translate; it is not seq2seq")
        options = self._options(TranslateOptions, "translate", options, keywords)
        one = isinstance(texts, str)
        items = [texts] if one else list(texts)
        out = self.task.translate(self.model, items, **dataclasses.asdict(options))
        return out[0] if one else out

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
        if data is None and self.from_hub:
            _check_no_recorded_data(self.config)
        elif data is None:  # the data of its training, read again from where it was
            key = "val_data" if self.config.val_data else "data"
            warn_if_changed(
                {key: getattr(self.config, key)},
                self.config.data_fingerprints,
                "the metrics are of the data as it is now",
            )
        self.task.setup_eval(data)
        return self.task.evaluate(self.model, options.batch_size, **options.task)

    def push_to_hub(self, repo_id: str, **options: Any) -> hub.PushResult:
        """Upload this artifact to Hub repo ``repo_id`` (created if needed), as ``zoo push`` does:
        the files of the folder it was loaded from, with a model card written for the repo.
        ``options`` are :func:`push`'s (``private``, ``revision``, ``message``,
        ``include_checkpoints``, ``token``, ``allow_unfinished``, ``force``). Returns a
        ``zoo_core.hub.PushResult`` (``commit_url``, ``files``, ``removed``...)."""
        import torch  # here, not above: `zoo list` imports no torch

        saved, _ = artifacts.state_from_file(self.path / artifacts.WEIGHTS_FILE, self.model)
        current = self.model.state_dict()
        if saved.keys() != current.keys() or any(
            not torch.equal(saved[k], current[k].detach().cpu()) for k in saved
        ):
            raise ZooError(
                f"this artifact's weights differ from those in '{self.path}', and a push uploads "
                "that folder's files; train or resume a run to change a model's weights"
            )
        return push(self.path, repo_id, **options)


# -- loading ---------------------------------------------------------------------------------------
def load_local(
    folder: str | Path,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
    *,
    from_hub: bool = False,
) -> Artifact:
    """Load a run folder (or a downloaded Hub snapshot) into an :class:`Artifact`.

    ``overrides`` change config fields that keep the weights' shapes (``dropout=0``).
    ``from_hub``: the folder is a Hub snapshot, whose config names no path to read here.
    """
    folder = Path(folder)
    config = RunConfig.read(folder)
    catalog = get_catalog()
    if config.model not in catalog.models:
        raise ZooError(missing_message(config))
    spec = catalog.models[config.model]
    cls = model_class(spec)
    model_cfg = saved_model_config(cls, config)
    if overrides:
        unknown = sorted(set(overrides) - set(_config.field_types(cls.config_class)))
        if unknown:
            raise ZooError(f"model '{spec.name}' config has no field {', '.join(unknown)}")
        try:
            model_cfg = dataclasses.replace(model_cfg, **overrides)
        except (TypeError, ValueError) as exc:
            raise ZooError(f"model '{spec.name}' config: {exc}") from None
    if not (folder / artifacts.WEIGHTS_FILE).exists() and not config.finished:
        raise ZooError(
            f"'{folder}' has no weights yet: its training stopped before the first checkpoint. "
            f"Continue it with: zoo train --resume {folder}"
        )
    # Checked against the weights' header before it takes memory: a config may ask for sizes
    # no machine holds.
    model = artifacts.load_model(lambda: cls(model_cfg), folder / artifacts.WEIGHTS_FILE)
    model.eval()
    if device != "cpu":
        model.to(pick_device(device))
    task = build_task(config, folder, model_cfg, from_hub=from_hub)
    return Artifact(folder, config, spec, model, task, from_hub=from_hub)


def load(source: str | Path, device: str = "cpu", revision: str | None = None) -> Artifact:
    """Load a model from a run folder, or from the Hub (``hf:org/name@rev`` or ``org/name``)."""
    path = Path(source)
    if path.is_dir():
        return load_local(path, device)
    return load_local(pulled(source, revision), device, from_hub=True)


def _names_a_path(value: Any) -> bool:
    """Whether ``value`` (a string of a repo's config) could name a file or folder here, where
    an embedded data set's name ("pydoc-topics", "shapes") does not."""
    if not isinstance(value, str):
        return False
    if value.startswith(("/", ".", "~")) or "/" in value or os.sep in value:
        return True
    try:
        return Path(value).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return True


def _check_no_recorded_data(config: RunConfig) -> None:
    """For a model of a Hub repo evaluated without data: one line asking for data, unless it
    was trained on its task's embedded default (no data path, no path in its task's state)."""
    recorded = [config.data, config.val_data, *config.task_state.values()]
    if config.data is not None or config.val_data is not None or any(map(_names_a_path, recorded)):
        raise ZooError(
            "this model came from a Hub repo and was trained on data of its own, and the zoo "
            "reads no path a repo's config names; give the data to evaluate on with --data"
        )


def pulled(source: str | Path, revision: str | None = None) -> Path:
    """The local snapshot of Hub repo ``source``; one line when it names no folder and no repo."""
    text = str(source)
    first = text.split("/", 1)[0]
    if not text.startswith("hf:") and text.count("/") == 1 and Path(first).is_dir():
        # Anyone can create a Hub repo named after a folder ('runs/foo'): a mistyped run folder
        # must not download and load a stranger's model.
        raise ZooError(
            f"'{source}' is not a run folder: it does not exist, though '{first}' is a folder "
            f"here; check the name (ls {first}), or write hf:{text} for the Hub repo"
        )
    if text.startswith("hf:") or (text.count("/") == 1 and not text.startswith((".", "/"))):
        return importers.pull(text, revision=revision)
    raise ZooError(f"'{source}' is neither a run folder nor a Hub repo id (org/name)")


def load_pretrained(
    spec: ModelSpec, pretrained: str | bool = True, device: str = "cpu", **overrides: Any
) -> Artifact:
    """Download (or reuse) the named weights ``spec`` declares, checked against their sha256.

    ``overrides`` change config fields that leave the weights' shapes alone (``dropout=0``).
    """
    if not spec.pretrained:
        raise ZooError(
            f"model '{spec.name}' declares no pretrained weights; train it (`zoo train {spec.name}`) "
            "or load a run folder or Hub repo with zoo_core.load"
        )
    name = next(iter(spec.pretrained)) if pretrained is True else str(pretrained)
    if name not in spec.pretrained:
        raise ZooError(
            f"model '{spec.name}' has no pretrained weights '{name}'; it has: "
            f"{', '.join(spec.pretrained)} (see `zoo list --pretrained`)"
        )
    weights = spec.pretrained[name]
    what = f"pretrained weights '{name}' of model '{spec.name}' ({weights.repo}@{weights.revision})"
    folder = importers.pull(
        weights.repo, revision=weights.revision, sha256=weights.sha256, what=what
    )
    artifact = load_local(folder, device, overrides, from_hub=True)
    if artifact.spec.model != spec.model:
        raise ZooError(f"{what} are for model '{artifact.spec.name}', not '{spec.name}'")
    return artifact


def create_model(name: str, pretrained: str | bool | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model from its default config, with config fields overridden.

    ``pretrained`` loads named weights the spec declares (``True`` for the first one).
    """
    if pretrained:
        return load_pretrained(get_model_spec(name), pretrained, **overrides).model
    return build_model(name, **overrides)


# -- what a run is ---------------------------------------------------------------------------------
def run_info(source: str | Path) -> dict[str, Any]:
    """Everything `zoo info RUN` shows of a trained model (a run folder or a Hub repo): its model,
    task, data, how far it trained, its last metrics and configs. Needs no plugin but for the
    parameter count."""
    folder = Path(source)
    local = folder.is_dir()  # a run folder here, which --resume can continue
    if not local:
        folder = pulled(source)
    config = RunConfig.read(folder)
    log = artifacts.read_metrics(folder)
    # A log or config from a repo may hold anything where a number belongs: only numbers count.
    steps = max((r["step"] for r in log if _count(r.get("step")) is not None), default=0)
    seconds = max(
        (r["elapsed"] for r in log if _seconds(r.get("elapsed")) is not None), default=None
    )
    newest = newest_state(folder / artifacts.CHECKPOINTS_DIR)  # where a resume would go on
    if newest is not None and (newest["step"] > steps or not config.finished):
        # It saved after its last log line; or it is unfinished, and what counts is the step a
        # resume goes on from, not a log line written after the last checkpoint.
        steps = newest["step"]
        seconds = (newest.get("trainer") or {}).get("elapsed", seconds)
    elif not config.finished and not (folder / artifacts.WEIGHTS_FILE).exists():
        steps, seconds = 0, None  # stopped before its first checkpoint: no weights of any step
    parameters = None
    catalog = get_catalog()
    if config.model in catalog.models:
        cls = model_class(catalog.models[config.model])
        weights = folder / artifacts.WEIGHTS_FILE
        # Another version of the plugin, or a config that builds no model (a damaged or hostile
        # one): everything else can still be shown. Built on meta alone, no bigger than the
        # weights file says (a config of a million layers is not built for minutes).
        with contextlib.suppress(ZooError, *artifacts.BUILD_ERRORS):
            stored = len(artifacts.read_header(weights)) if weights.is_file() else 1000
            with artifacts.bounded_build(stored, str(weights)):
                parameters = parameters_of(cls, saved_model_config(cls, config), real_build=False)
    return {
        "source": str(source),
        "folder": str(folder),
        "model": config.model,
        "plugin": config.plugin,
        "distribution": distribution_name(config.distribution),  # only a name to install
        "task": config.task,
        "tokenizer": config.tokenizer,
        "data": config.data_name,  # a path, an embedded data set's name, or None: generated
        "val_data": config.val_data_name,
        "steps": steps,
        "planned_steps": _count(config.train_config.get("steps")),
        "seconds": seconds,
        "finished": config.finished,
        "local": local,
        "metrics": config.metrics or {},
        "parameters": parameters,
        "model_config": config.model_config,
        "train_config": config.train_config,
        "zoo_version": config.zoo_version,
        "origin": config.origin,  # the weights it was converted or started from
    }


def _count(value: Any) -> int | None:
    """``value`` if it is a whole number of steps, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds(value: Any) -> float | None:
    """``value`` if it is a number of seconds, else None."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return value if ok and math.isfinite(value) and value >= 0 else None


# -- training and publishing -----------------------------------------------------------------------
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
    init: str | Path | None = None,
    **train_options: Any,
) -> tuple[Artifact, dict[str, Any]]:
    """Train a registered model (or resume a run folder); return the artifact and final metrics.

    ``overrides`` set model config fields, task options (``tokenizer``, ``seq_len``) or training
    settings by name, typed by their dataclasses; ``train_options`` (``steps``, ``time``,
    ``batch_size``, ``lr``, ``seed``, ``device``...) are training settings. ``None`` values are
    ignored. ``init`` starts from the weights of a run folder or a Hub repo (a zoo model, or one
    in the ``transformers`` layout an installed importer reads) instead of random ones.
    """
    start = None
    if init is not None:
        folder = Path(init)
        start = (folder if folder.is_dir() else pulled(init), str(init))
    done = training_run.train(
        model,
        task=task,
        data=data,
        val_data=val_data,
        out=out,
        resume=resume,
        overrides=overrides,
        progress=progress,
        init=start,
        **train_options,
    )
    artifact = Artifact(done.folder, done.config, done.spec, done.model, done.task)
    return artifact, done.metrics


def push(
    run: str | Path, repo_id: str, *, allow_unfinished: bool = False, **options: Any
) -> hub.PushResult:
    """Upload a run folder to a Hub repo, as :func:`zoo_core.hub.push` does, once it is known to
    be finished (unless ``allow_unfinished``) and to load as it is."""

    def check(folder: Path) -> None:
        info = run_info(folder)
        if not info["finished"] and not allow_unfinished:
            planned = f" of {info['planned_steps']:,}" if info["planned_steps"] else ""
            raise ZooError(
                f"'{run}' is unfinished (trained {info['steps']:,}{planned} steps, no final "
                f"metrics): finish it with `zoo train --resume {run}`, or push it as it is with "
                "--allow-unfinished"
            )
        try:
            load_local(folder)  # the files its config names, weights that fit its model
        except ZooError as exc:
            raise ZooError(f"cannot push '{run}': {exc}") from None

    return hub.push(run, repo_id, check=check, **options)
