"""The default optimizer and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from zoo_core.training.config import TrainConfig


def adamw(
    params: Iterable[torch.nn.Parameter], config: TrainConfig, lr: float | None = None
) -> torch.optim.AdamW:
    """AdamW with weight decay on tensors of two or more dimensions only (not biases, norms).

    Fused on CUDA, where it is one kernel instead of many.
    """
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=config.lr if lr is None else lr,
        betas=(config.beta1, config.beta2),
        fused=fused or None,
    )


def lr_factor(progress: float, step: int, config: TrainConfig) -> float:
    """Linear warmup over ``config.warmup`` steps, then cosine decay to ``min_lr_ratio``.

    ``progress`` runs from 0 to 1 over the run (by steps, or by the clock with ``--time``).
    """
    if config.warmup and step < config.warmup:
        return (step + 1) / config.warmup
    progress = min(max(progress, 0.0), 1.0)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine
