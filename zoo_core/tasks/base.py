"""What a task is: it owns its data, its loss, its metrics and its inference.

The Trainer knows nothing about models or data; it asks the task. The contract, in the order the
Trainer uses it:

1. ``setup(data, val_data, seed)`` reads the data (or the embedded default) and fits what must be
   learned from the training split (a tokenizer, normalisation statistics). ``state()`` returns
   that as JSON, saved in config.json; a task built with ``state=`` is ready for inference.
2. ``model_config()`` says what the model needs from the data (``vocab_size``, ``num_classes``).
   ``bind(model_config)`` lets the task read the model's settings (a context length).
3. ``train_batch(batch_size, generator)`` draws one batch, on the CPU, from the Trainer's seeded
   generator, so a resumed run sees the same batches.
4. ``configure_optimizers(model, config)`` returns named optimizers (one AdamW by default; a GAN
   returns two). ``wrap_model(model, wrap)`` says what ``training_step`` is handed (the model
   wrapped for several processes). ``training_step(model, batch)`` yields ``(optimizer name, loss)`` pairs: for each,
   the Trainer runs backward, clips, steps that optimizer and its schedule. A GAN yields the
   discriminator's loss, then the generator's.
5. ``after_step(model, step)`` runs after every step (a weight average, say).
6. ``evaluate(model, batch_size, limit)`` returns metrics on the validation split, ``val_*`` keys.
7. ``save_extras(run_dir)`` writes task-made files into the run folder at the end (a confusion
   matrix). Those named in ``pictures`` are shown on the model card and pushed with the model. While training, ``self.run_dir`` is the run folder (None on ranks that do not write),
   for files a task writes as it goes (a GAN's samples).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from zoo_core.catalog import resolve_class
from zoo_core.data.hf import is_hub
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo_core.tokenizers.base import Tokenizer
    from zoo_core.training.config import TrainConfig


def trained_on(path: str) -> str:
    """``path``, the data a saved task was trained on, if it is still here for evaluating on (a
    Hub data set, ``hf:...``, is fetched again at its recorded commit)."""
    if is_hub(path):
        return path
    if not Path(path).exists():
        raise ZooError(
            f"this model was trained on '{path}', which is not here; give the data to evaluate "
            "on with --data"
        )
    return path


@dataclasses.dataclass
class NoOptions:
    """A task without options."""


class Task:
    """Base class of every task; see the module docstring for the Trainer's contract."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    # The metric that sums up a run (`zoo compare` ranks runs by it), and whether lower is better.
    metric: ClassVar[str] = "val_loss"
    lower_is_better: ClassVar[bool] = True
    # The option (of Options) that sets how long an example is, when ``evaluate`` also takes it
    # as a keyword to evaluate at other lengths (`zoo compare --eval-lengths`); None: no length.
    length_option: ClassVar[str | None] = None
    # What one training example is called in throughput figures ("tokens", "samples").
    unit: ClassVar[str] = "samples"
    # Pictures the task writes into the run folder, with their captions: the model card shows
    # them, and `zoo push` uploads them beside the model.
    pictures: ClassVar[dict[str, str]] = {}
    # The Hub's pipeline tag (and the model card's task type), where one fits.
    pipeline_tag: ClassVar[str | None] = None
    # What a model card suggests trying first ({source}: the run folder or repo).
    try_command: ClassVar[str] = "zoo eval {source}"
    # The kind of model the task trains (a Protocol of zoo_core.protocols), which the contract
    # checks hold every model registered for the task to; None: the checks ask nothing more.
    model_protocol: ClassVar[type | None] = None
    # What Artifact.generate takes for this task (zoo_core.inference.SamplingOptions for text,
    # PictureOptions for samples); None: the task does not generate.
    generate_options: ClassVar[type | None] = None
    # The run folder while training (set by zoo_core.train), else None.
    run_dir: Path | None = None

    def __init__(
        self,
        options: Any = None,
        *,
        state: dict[str, Any] | None = None,
        tokenizer: Tokenizer | None = None,
    ):
        self.options = options if options is not None else self.Options()
        self.tokenizer = tokenizer
        self.load_state(state or {})

    # -- data ----------------------------------------------------------------------------------
    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        """Read training and validation data; fit what the training split teaches."""
        raise NotImplementedError

    def setup_eval(self, data: str | None) -> None:
        """Read evaluation data for a trained task (the default split's validation part if None)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """JSON-ready state learned from the data, restored by ``load_state``."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state`` returned."""

    def adopt(self, other: Task) -> None:
        """Keep what ``other`` (the task of the weights a run starts from, ``--init``) learned
        that those weights depend on, such as an image classifier's preprocessing. Called
        before ``setup``; the default keeps nothing."""

    def model_config(self) -> dict[str, Any]:
        """Model config fields the data decides (applied where the model's config has them)."""
        return {}

    def bind(self, model_config: Any) -> None:
        """Read settings of the model about to be trained (called before the first batch), or
        of the model a saved task was loaded with; refuse sizes the two do not agree on."""

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Any:
        """One training batch of CPU tensors drawn with ``generator``."""
        raise NotImplementedError

    def units(self, batch: Any) -> int:
        """How many ``unit``s a batch holds (for throughput)."""
        first = batch[0] if isinstance(batch, list | tuple) else batch
        return int(first.numel() if self.unit == "tokens" else first.shape[0])

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
        """Named optimizers: one AdamW, weight decay on matrices and embeddings only."""
        from zoo_core.training.optim import adamw  # here: torch, which zoo list and zoo pull skip

        return {"model": adamw(model.parameters(), config)}

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The training loss of one batch (used by the default ``training_step``)."""
        raise NotImplementedError

    def training_step(self, model: nn.Module, batch: Any) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(optimizer name, loss)``; the Trainer steps that optimizer after each."""
        yield "model", self.loss(model, batch)

    def wrap_model(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module]) -> Any:
        """What ``training_step`` is handed: ``wrap(model)``, the model as the Trainer trains it
        (in DistributedDataParallel under torchrun, sharded with ``parallel=fsdp``, compiled with
        ``compile``). A task whose ``training_step`` calls sub-modules itself wraps each of them
        instead (a GAN's two players), so that their gradients are averaged across processes."""
        return wrap(model)

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after every optimisation step."""

    def save_extras(self, run_dir: Path) -> None:
        """Write task-made files (plots, sample grids) into the run folder after training."""

    # -- evaluation and inference --------------------------------------------------------------
    def evaluate(self, model: nn.Module, batch_size: int, limit: int | None = None) -> dict:
        """Metrics on the validation data (``limit`` batches at most; all of it when None)."""
        raise NotImplementedError

    def example_batch(self, model_config: Any, batch_size: int = 2) -> Any:
        """A small random batch that fits ``model_config``, for the contract tests."""
        raise NotImplementedError

    def outputs(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The model's outputs on a batch, compared before and after a save/load round trip."""
        raise NotImplementedError

    def describe_data(self) -> str:
        """One line saying what the task trains on (for the summary and the model card)."""
        return ""


def task_class(name: str) -> type[Task]:
    """The :class:`Task` subclass registered as ``name`` (imports the task's code)."""
    spec = get_catalog().get("task", name)
    return resolve_class(spec.task, f"task '{spec.name}' of plugin '{spec.plugin}'", Task)
