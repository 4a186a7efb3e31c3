"""What inference takes: one options dataclass for each way a trained model is used.

``zoo generate``, ``zoo predict`` and ``zoo eval`` fill these from their options and hand them to
:class:`zoo_core.Artifact`, as a Python user may, so both give the same result for the same seed.
A task says which generation options it takes with its ``generate_options`` class attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zoo_core.errors import ZooError

__all__ = [
    "EvalOptions",
    "PictureOptions",
    "PredictOptions",
    "SamplingOptions",
    "TranslateOptions",
]


@dataclass(frozen=True)
class SamplingOptions:
    """How a language model samples text after a prompt. The task checks the values when it
    samples, so that its own ``generate`` and this say the same about a bad one."""

    length: int = 300  # new tokens
    temperature: float = 0.8  # 0: greedy decoding
    top_k: int | None = None  # sample among the k likeliest tokens (None or 0: all)
    top_p: float | None = None  # sample among the likeliest tokens holding this mass
    stop: str | None = None  # stop once this text is generated (it is left out)
    seed: int | None = None  # None: a fresh seed, torch's global generator untouched
    use_cache: bool = True  # False: recompute the whole prefix every token


@dataclass(frozen=True)
class PictureOptions:
    """How a generative model draws samples (images, or 2-D points)."""

    num: int = 64  # samples
    seed: int | None = None
    label: str | None = None  # the class of a class-conditional model's samples; None: each


@dataclass(frozen=True)
class TranslateOptions:
    """How a sequence-to-sequence model writes a target for each source. The task checks the
    values when it decodes."""

    beam: int = 1  # 1: greedy decoding; more: beam search with this many hypotheses
    length_penalty: float = 0.6  # GNMT's alpha: beam scores over ((5 + length) / 6) ** alpha
    max_length: int | None = None  # target tokens at most; None: the task's max_target_len
    use_cache: bool = True  # False: recompute the whole target prefix every token


@dataclass(frozen=True)
class PredictOptions:
    """How a classifier reports on its inputs."""

    top_k: int = 5  # classes shown per input, likeliest first
    on_error: str = "raise"  # an unreadable input raises, or with "report" is named in its place

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "report"):
            raise ZooError(f"on_error must be 'raise' or 'report', not {self.on_error!r}")


@dataclass(frozen=True)
class EvalOptions:
    """How a trained model is scored on its validation data (or other data)."""

    batch_size: int = 32
    # The task's own settings, e.g. {"seq_len": 512} scores a language model on longer windows.
    task: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ZooError(f"the batch size must be a whole number, not {self.batch_size!r}")
        if self.batch_size < 1:
            raise ZooError(f"the batch size must be at least 1, not {self.batch_size}")
