"""Measures of generated images that need no download: how varied they are, how close their
colours come to the real images', and an Inception-Score-like score from any classifier's
probabilities."""

from __future__ import annotations

import math

import torch


def diversity(images: torch.Tensor, groups: torch.Tensor | None, per_group: int = 64) -> float:
    """The mean absolute pixel difference (0-1) between two images of one group, over up to
    ``per_group`` images of each group that has two or more (all images are one group when
    ``groups`` is None); averaged over the groups."""
    groups = torch.zeros(len(images), dtype=torch.long) if groups is None else groups.cpu()
    means = []
    for g in groups.unique():
        x = images[groups == g][:per_group].float().flatten(1) / 255  # (M, C * S * S)
        if len(x) < 2:
            continue
        distances = torch.cdist(x, x, p=1) / x.shape[1]  # (M, M), zeros on the diagonal
        means.append(distances.sum() / (len(x) * (len(x) - 1)))
    return torch.stack(means).mean().item() if means else 0.0


def class_score(probs: torch.Tensor) -> float:
    """exp(mean KL(p(y|x) || p(y))) of class probabilities ``(N, K)``: from 1 to K."""
    log_p = probs.clamp_min(1e-12).log()  # (N, K)
    log_marginal = probs.mean(0).clamp_min(1e-12).log()  # (K,)
    return math.exp((probs * (log_p - log_marginal)).sum(1).mean().item())


def colour_gap(fake: torch.Tensor, real: torch.Tensor) -> float:
    """The mean absolute difference (0-1) of the per-channel means and standard deviations of
    two sets of uint8 images ``(N, C, S, S)``."""

    def stats(x: torch.Tensor) -> torch.Tensor:
        pixels = x.float().div(255).transpose(0, 1).flatten(1)  # (C, N * S * S)
        return torch.cat([pixels.mean(1), pixels.std(1)])

    return (stats(fake) - stats(real)).abs().mean().item()
