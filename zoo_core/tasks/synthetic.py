"""Synthetic sequence tasks that need long-range memory, generated on the fly from a seed.

Any model that maps ids ``(B, T)`` to logits ``(B, T, V)`` (every ``lm`` model) does them: it reads
a question and predicts the answer tokens, the only positions the loss and the metrics look at.
``val_accuracy`` is the fraction of examples whose whole answer is right (exact match),
``val_token_accuracy`` the fraction of answer tokens.

Each task has a size, ``length``, and a difficulty knob (``knob`` below). ``evaluate`` takes
another ``length`` to test length generalisation: a model trained at one length (or, with
``min_length``, at every length from ``min_length`` to ``length``) is scored at others. Training batches are new examples every step; validation examples are fixed by the seed.
The generators live in :mod:`zoo_core.data.synthetic`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import protocols
from zoo_core.data import synthetic
from zoo_core.errors import ZooError
from zoo_core.tasks.base import Task
from zoo_core.tasks.lm import logits_of

_VAL_SEED = 1_000_003  # validation examples come from their own stream, never the training one
# What options may ask for at most (a saved run's as well as a user's): far beyond any sensible
# problem, and a validation set that fits in memory (2**26 int64 tokens: 512 MiB).
MAX_LENGTH = 2**16
MAX_VOCAB = 2**16
MAX_VAL_TOKENS = 2**26


@dataclass
class SyntheticOptions:
    length: int = 16  # the size of a problem (see each task); evaluate() takes others
    vocab_size: int = 8  # data symbols (the model's vocabulary adds 3 reserved ids)
    val_size: int = 512  # validation examples per evaluated length
    min_length: int | None = None  # train on lengths min_length..length (one per batch)

    def __post_init__(self):
        for name, limit in (
            ("length", MAX_LENGTH),
            ("vocab_size", MAX_VOCAB),
            ("val_size", MAX_VAL_TOKENS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value > limit:
                raise ValueError(
                    f"{name} must be a whole number of at most {limit:,}, not {value!r}"
                )


@dataclass
class CopyOptions(SyntheticOptions):
    delay: int = 0  # blanks between the sequence and the delimiter: the distance to bridge


@dataclass
class SelectiveCopyOptions(SyntheticOptions):
    length: int = 32  # positions among which the marked symbols hide
    num_marked: int = 4  # symbols to copy


@dataclass
class RecallOptions(SyntheticOptions):
    length: int = 8  # key-value pairs before the query (at most vocab_size: keys are distinct)
    vocab_size: int = 16


@dataclass
class ParityOptions(SyntheticOptions):
    length: int = 16  # bits
    vocab_size: int = 2  # bits are the first two symbols


@dataclass
class InductionOptions(SyntheticOptions):
    length: int = 32  # random symbols before the repeated query symbol
    vocab_size: int = 16


@dataclass
class MQAROptions(SyntheticOptions):
    length: int = 16  # key-value pairs, each queried once (at most vocab_size // 2)
    vocab_size: int = 128  # keys are the first half, values the second


@dataclass
class RepeatedOptions(SyntheticOptions):
    length: int = 16  # distinct random symbols, then the same again (at most vocab_size)
    vocab_size: int = 128


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # ids (B, T), targets (B, T), mask (B, T)


class SyntheticTask(Task):
    """One question, one answer per sequence; see the module docstring."""

    Options: ClassVar[type] = SyntheticOptions
    metric = "val_accuracy"
    lower_is_better = False
    length_option = "length"
    unit = "tokens"
    knob: ClassVar[str] = "length"  # the option that sets how hard it is
    min_vocab: ClassVar[int] = 1
    model_protocol = protocols.LanguageModel  # any `lm` model can learn these

    def load_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state.get("seed", 0))
        self._val: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    # -- data ----------------------------------------------------------------------------------
    def _generate(self, n: int, length: int, generator: torch.Generator):
        """``(seq, answer)`` of ``n`` examples; see :mod:`zoo_core.data.synthetic`."""
        raise NotImplementedError

    def check_length(self, length: int) -> None:
        """A clear error when ``length`` makes no valid example with these options."""
        if length < 1:
            raise ZooError(f"{self.name}: length must be at least 1, not {length}")

    def sequence_length(self, length: int | None = None) -> int:
        """Tokens a model reads for one example of ``length`` (question and answer but the last)."""
        length = self.options.length if length is None else length
        check_size(length, self.options.val_size)
        seq, _ = self._generate(1, length, torch.Generator().manual_seed(0))
        return seq.size(1) - 1

    def _check_options(self) -> None:
        if self.options.vocab_size < self.min_vocab:
            raise ZooError(
                f"{self.name}: vocab_size must be at least {self.min_vocab}, "
                f"not {self.options.vocab_size}"
            )
        if self.options.val_size < 1:
            raise ZooError(f"{self.name}: val_size must be at least 1")
        self.check_length(self.options.length)
        low = self.options.min_length
        if low is not None:
            if low > self.options.length:
                raise ZooError(
                    f"{self.name}: min_length {low} is more than length {self.options.length}"
                )
            self.check_length(low)

    def setup(self, data: str | None, val_data: str | None = None, seed: int = 0) -> None:
        if data is not None or val_data is not None:
            raise ZooError(
                f"task '{self.name}' generates its data; it takes no --data or --val-data"
            )
        self._check_options()
        self.seed = seed
        self._val = {}

    def setup_eval(self, data: str | None) -> None:
        if data is not None:
            raise ZooError(f"task '{self.name}' generates its data; evaluate it without --data")

    def model_config(self) -> dict[str, Any]:
        return {"vocab_size": synthetic.FIRST_SYMBOL + self.options.vocab_size}

    def _check_model(self, model_config: Any, length: int) -> None:
        vocab = getattr(model_config, "vocab_size", None)
        needed = synthetic.FIRST_SYMBOL + self.options.vocab_size
        if vocab is not None and vocab < needed:
            raise ZooError(f"{self.name} needs vocab_size >= {needed}; the model has {vocab}")
        context = protocols.context_length(model_config)
        tokens = self.sequence_length(length)
        if context and getattr(model_config, "pos_encoding", "") == "learned" and tokens > context:
            raise ZooError(
                f"{self.name} at length {length} reads {tokens} tokens, more than the learned "
                f"positions of context_length {context}; raise context_length"
            )

    def bind(self, model_config: Any) -> None:
        self._check_options()  # a loaded task's options were read, not set up
        self._check_model(model_config, self.options.length)

    def _batch(self, seq: torch.Tensor, answer: torch.Tensor) -> Batch:
        return seq[:, :-1], seq[:, 1:], answer[:, 1:]

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        length = self.options.length
        if self.options.min_length is not None:  # one length per batch, so no padding
            length = int(
                torch.randint(self.options.min_length, length + 1, (1,), generator=generator)
            )
        return self._batch(*self._generate(batch_size, length, generator))

    def describe_data(self) -> str:
        return (
            f"generated {self.name} sequences, length {self.options.length}, "
            f"{self.knob} {getattr(self.options, self.knob)}, seed {self.seed}"
        )

    # -- loss and metrics ----------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y, mask = batch
        logits = logits_of(model, x, "length")  # (B, T, V)
        return F.cross_entropy(logits[mask].float(), y[mask])  # answer positions only

    def validation_set(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed validation examples at ``length`` (the same for the same seed)."""
        if length not in self._val:
            check_size(length, self.options.val_size)
            self.check_length(length)
            g = torch.Generator().manual_seed(self.seed * _VAL_SEED + _VAL_SEED + length)
            self._val[length] = self._generate(self.options.val_size, length, g)
        return self._val[length]

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, batch_size: int, limit: int | None = None, length: int | None = None
    ) -> dict[str, float]:
        """Answer loss, exact-match and token accuracy at ``length`` (default: the trained one)."""
        length = self.options.length if length is None else length
        tokens = self.sequence_length(length)
        context = protocols.max_context(model)
        if context is not None and tokens > context:
            raise ZooError(
                f"this model reads at most {context} tokens; {self.name} at length {length} "
                f"needs {tokens}"
            )
        seq, answer = self.validation_set(length)
        if limit is not None:
            seq, answer = seq[: limit * batch_size], answer[: limit * batch_size]
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        loss, exact, right, count = 0.0, 0, 0, 0
        for i in range(0, len(seq), batch_size):
            x, y, mask = (
                t.to(device)
                for t in self._batch(seq[i : i + batch_size], answer[i : i + batch_size])
            )
            logits = model(x)  # (B, T, V)
            loss += F.cross_entropy(logits[mask].float(), y[mask], reduction="sum").item()
            scores = score(logits, y, mask)
            exact += scores["exact"]
            right += scores["right"]
            count += scores["tokens"]
        model.train(was_training)
        n = len(seq)
        return {
            "val_loss": loss / count,
            "val_accuracy": exact / n,
            "val_token_accuracy": right / count,
        }

    def example_batch(self, model_config: Any, batch_size: int = 2) -> Batch:
        small = dataclasses.replace(self.options, length=self.example_length())
        task = type(self)(small)
        return task.train_batch(batch_size, torch.Generator().manual_seed(0))

    def example_length(self) -> int:
        """A short valid length for the contract tests."""
        return 4

    def outputs(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch[0])


def check_size(length: int, val_size: int) -> None:
    """One line when problems of ``length`` (or ``val_size`` of them) would not fit in memory."""
    if length > MAX_LENGTH:
        raise ZooError(f"length {length:,} is beyond the limit of {MAX_LENGTH:,}")
    if length * val_size > MAX_VAL_TOKENS:
        raise ZooError(
            f"{val_size:,} validation examples of length {length:,} are beyond the limit of "
            f"{MAX_VAL_TOKENS:,} tokens; set a smaller val_size"
        )


def score(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> dict[str, int]:
    """Greedy predictions of ``logits`` (B, T, V) against ``targets`` (B, T) on ``mask``:
    examples entirely right (``exact``), answer tokens right (``right``) and answer tokens."""
    correct = (logits.argmax(dim=-1) == targets) | ~mask  # (B, T): True off the answer
    return {
        "exact": int(correct.all(dim=1).sum()),
        "right": int((correct & mask).sum()),
        "tokens": int(mask.sum()),
    }


class Copy(SyntheticTask):
    name = "copy"
    Options = CopyOptions
    knob = "delay"

    def check_length(self, length: int) -> None:
        super().check_length(length)
        if self.options.delay < 0:
            raise ZooError(f"copy: delay must be >= 0, not {self.options.delay}")

    def _generate(self, n, length, generator):
        return synthetic.copy(n, length, self.options.vocab_size, generator, self.options.delay)


class SelectiveCopy(SyntheticTask):
    name = "selective-copy"
    Options = SelectiveCopyOptions
    knob = "num_marked"

    def check_length(self, length: int) -> None:
        marked = self.options.num_marked
        if marked < 1 or length < marked:
            raise ZooError(
                f"selective-copy: num_marked ({marked}) must be at least 1 and at most the "
                f"length ({length})"
            )

    def _generate(self, n, length, generator):
        return synthetic.selective_copy(
            n, length, self.options.vocab_size, generator, self.options.num_marked
        )

    def example_length(self) -> int:
        return max(4, self.options.num_marked)


class AssociativeRecall(SyntheticTask):
    name = "associative-recall"
    Options = RecallOptions
    knob = "length"  # the number of key-value pairs

    def check_length(self, length: int) -> None:
        if not 1 <= length <= self.options.vocab_size:
            raise ZooError(
                f"associative-recall: length (key-value pairs) must be between 1 and vocab_size "
                f"({self.options.vocab_size}), since keys are distinct; not {length}"
            )

    def _generate(self, n, length, generator):
        return synthetic.associative_recall(n, length, self.options.vocab_size, generator)

    def example_length(self) -> int:
        return min(4, self.options.vocab_size)


class Parity(SyntheticTask):
    name = "parity"
    Options = ParityOptions
    knob = "length"
    min_vocab = 2

    def _generate(self, n, length, generator):
        return synthetic.parity(n, length, self.options.vocab_size, generator)


class Induction(SyntheticTask):
    name = "induction"
    Options = InductionOptions
    knob = "vocab_size"  # more symbols: a bigger table of what follows what
    min_vocab = 2

    def check_length(self, length: int) -> None:
        if length < 2:
            raise ZooError(f"induction: length must be at least 2, not {length}")

    def _generate(self, n, length, generator):
        return synthetic.induction(n, length, self.options.vocab_size, generator)


class MultiQueryRecall(SyntheticTask):
    """Zoology's MQAR: every query's value is scored, so each example gives ``length`` answers."""

    name = "mqar"
    Options = MQAROptions
    knob = "length"  # the number of key-value pairs
    min_vocab = 2

    def check_length(self, length: int) -> None:
        if not 1 <= length <= self.options.vocab_size // 2:
            raise ZooError(
                f"mqar: length (key-value pairs) must be between 1 and vocab_size // 2 "
                f"({self.options.vocab_size // 2}), since keys are distinct; not {length}"
            )

    def _generate(self, n, length, generator):
        return synthetic.mqar(n, length, self.options.vocab_size, generator)


class RepeatedTokens(SyntheticTask):
    """Repeated random tokens: every predictable token of the repeat is scored (induction)."""

    name = "repeated-tokens"
    Options = RepeatedOptions
    knob = "length"

    def check_length(self, length: int) -> None:
        if not 2 <= length <= self.options.vocab_size:
            raise ZooError(
                f"repeated-tokens: length must be between 2 and vocab_size "
                f"({self.options.vocab_size}), since the symbols are distinct; not {length}"
            )

    def _generate(self, n, length, generator):
        return synthetic.repeated_tokens(n, length, self.options.vocab_size, generator)
