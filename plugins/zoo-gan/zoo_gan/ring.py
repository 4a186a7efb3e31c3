"""The embedded 2-D data set: a ring of Gaussians (the mode-collapse benchmark of GAN papers).

``modes`` isotropic Gaussians of standard deviation ``std`` centred evenly on a circle of radius
``radius``. Points are drawn on the fly from a seeded ``torch.Generator``, so the data is endless
and a run with the same seed sees the same points.
"""

from __future__ import annotations

import math

import torch

DEFAULT_DATA_NAME = "ring of 8 Gaussians"
MODES = 8
RADIUS = 2.0
STD = 0.02


def centres(modes: int = MODES, radius: float = RADIUS) -> torch.Tensor:
    """The modes' centres ``(modes, 2)``, the first on the positive x axis."""
    angle = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angle.cos(), angle.sin()], 1)).float()


def sample(
    num: int,
    generator: torch.Generator,
    modes: int = MODES,
    radius: float = RADIUS,
    std: float = STD,
) -> torch.Tensor:
    """``num`` points ``(num, 2)``: a uniformly chosen mode plus Gaussian noise."""
    which = torch.randint(modes, (num,), generator=generator)
    noise = torch.randn(num, 2, generator=generator) * std
    return centres(modes, radius)[which] + noise


def nearest_mode(points: torch.Tensor, modes: int = MODES, radius: float = RADIUS):
    """For each point ``(N, 2)``: the index of the nearest centre and the distance to it."""
    distances = torch.cdist(points.float(), centres(modes, radius))  # (N, modes)
    distance, index = distances.min(dim=1)
    return index, distance
