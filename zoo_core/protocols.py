"""What the zoo expects of a model, one ``typing.Protocol`` per kind of model a built-in task trains.

A task names the kind it trains in ``Task.model_protocol``; ``zoo_core.testing`` checks every
registered model against the kind of each task it registers for. Each Protocol holds only what
is required (``isinstance(model, LanguageModel)`` checks the members are there); what a model may
declare beyond it is listed in ``OPTIONAL`` and read through the accessor of the same name below,
so that the name, its type and its default when absent live here and nowhere else.
docs/hooks.md ("What the zoo expects of a model") describes each of them for plugin authors.

Nothing here imports torch at run time: tasks and ``zoo list`` alike may import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "OPTIONAL",
    "AdversarialPair",
    "ImageClassifier",
    "LanguageModel",
    "SequenceClassifier",
    "Seq2SeqModel",
    "blocks",
    "channels_last",
    "context_length",
    "forward_step",
    "generator_ema",
    "in_channels",
    "keep_ema",
    "max_context",
    "members",
    "num_classes",
]


@runtime_checkable
class LanguageModel(Protocol):
    """Next-token prediction: the tasks ``lm``, ``copy``, ``parity`` and the other synthetic ones."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)`` for token ids ``(B, T)`` (a LongTensor)."""
        ...


@runtime_checkable
class SequenceClassifier(Protocol):
    """One label per sequence of tokens: the task ``sequence-classification``."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for ids ``(B, T)`` and a mask ``(B, T)``, True on
        real tokens and False on padding."""
        ...


@runtime_checkable
class ImageClassifier(Protocol):
    """One label per image: the task ``image-classification``."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for normalised images
        ``(B, in_channels, image_size, image_size)``."""
        ...


@runtime_checkable
class AdversarialPair(Protocol):
    """A generator and a discriminator trained against each other: ``image-generation``, ``toy-2d``.

    The task draws latents ``(B, latent_dim)``, calls ``generator(z)`` (``generator(z, labels)``
    when the model is class-conditional) for samples, and ``discriminator(samples)`` for one
    "real" logit per sample ``(B,)`` (``(B, 1 + num_classes)`` when conditional: the "real" logit,
    then the class logits). Each player gets its own optimizer.
    """

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int


@runtime_checkable
class Seq2SeqModel(Protocol):
    """A source sequence in, a target sequence out: the task ``seq2seq``.

    Ids are the task's: 0 is padding, 1 starts a target, 2 ends one. ``memory`` and ``state``
    are the model's own: tensors, or tuples, lists or dicts of them (other values are carried
    as they are), each with the batch as its first dimension, so that beam search can pick and
    repeat rows of them.
    """

    def forward(
        self, source: torch.Tensor, source_mask: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``(B, T, target_vocab_size)`` of the next target token at every position, for
        source ids ``(B, S)``, a mask ``(B, S)`` (True on real tokens) and target ids ``(B, T)``
        that start with the start token (teacher forcing)."""
        ...

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor) -> Any:
        """The source read once for decoding: the ``memory`` ``decode_step`` attends to."""
        ...

    def decode_step(
        self, target: torch.Tensor, memory: Any, source_mask: torch.Tensor, state: Any
    ) -> tuple[torch.Tensor, Any]:
        """Continue after the target tokens ``state`` holds (None to start): logits
        ``(B, T, target_vocab_size)`` of target ids ``(B, T)``, and the new state (a key/value
        cache, an LSTM's ``(h, c)``)."""
        ...


# What a model may declare beyond its Protocol, per kind; each name is also the accessor below.
OPTIONAL: dict[type, tuple[str, ...]] = {
    LanguageModel: ("max_context", "context_length", "forward_step", "blocks"),
    SequenceClassifier: ("max_context", "context_length", "blocks"),
    ImageClassifier: ("in_channels", "channels_last", "blocks"),
    AdversarialPair: ("num_classes", "keep_ema", "generator_ema", "channels_last"),
    Seq2SeqModel: (),
}


def members(protocol: type) -> list[str]:
    """The required members of one of the Protocols above, sorted."""
    names = set(vars(protocol).get("__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return sorted(names)


# -- the optional attributes, one accessor each --------------------------------------------------
def max_context(model_or_config: Any) -> int | None:
    """The longest input, in tokens, that a token model (or its config) declares it reads;
    None, also when absent, means any length."""
    return getattr(model_or_config, "max_context", None)


def context_length(config: Any) -> int | None:
    """The window a token model's config trains on by default (the task's ``seq_len`` or
    ``max_len`` when not set); None, also when absent, leaves it to the task."""
    return getattr(config, "context_length", None)


def forward_step(
    model: Any,
) -> Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]] | None:
    """A language model's ``forward_step(ids, state) -> (logits, state)``, which continues after
    the tokens its state holds (None to start); None when absent, and generation then runs
    ``forward`` over the whole window for every new token."""
    return getattr(model, "forward_step", None)


def blocks(model: Any) -> list[nn.Module]:
    """The model's repeated blocks, in the order its forward runs them (a transformer's layers, a
    ResNet's stages): FSDP shards each as one unit, and activation checkpointing recomputes each
    in backward. Empty, also when absent: the model is one unit and is not recomputed."""
    return list(getattr(model, "blocks", None) or ())


def channels_last(model: Any) -> bool:
    """Whether the Trainer moves the model to channels-last memory (faster convolutions);
    False when absent."""
    return bool(getattr(model, "channels_last", False))


def in_channels(config: Any) -> int:
    """The image channels an image classifier's config declares (1 grey, 3 RGB); 3 when absent."""
    return int(getattr(config, "in_channels", 3))


def num_classes(model: Any) -> int:
    """The classes an adversarial pair is conditioned on; 0, also when absent, is unconditional."""
    return int(getattr(model, "num_classes", 0) or 0)


def keep_ema(config: Any) -> bool:
    """Whether an adversarial pair's config asks for an averaged generator (the task sets it from
    its ``ema`` option); False when absent, and a task asked for ``ema`` then refuses the model."""
    return bool(getattr(config, "keep_ema", False))


def generator_ema(model: Any) -> nn.Module | None:
    """An adversarial pair's weight-averaged copy of its generator, which the task updates after
    each step and samples from; None when absent (sampling uses ``generator``)."""
    return getattr(model, "generator_ema", None)
