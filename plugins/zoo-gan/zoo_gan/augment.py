"""Differentiable augmentation (Zhao et al., DiffAugment, 2020): what the discriminator of the
image GAN sees of real and fake images alike, so a small data set lasts longer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo_core import ZooError

AUGMENTATIONS = ("translation", "cutout", "color")


def parse_augment(policy: str) -> tuple[str, ...]:
    """The augmentations named in a DiffAugment policy such as "translation,cutout"."""
    names = tuple(n.strip() for n in policy.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ZooError(
            f"unknown augmentation '{unknown[0]}' in augment='{policy}'; use a comma-separated "
            f"list of {', '.join(AUGMENTATIONS)}, or none"
        )
    return names


def diff_augment(images: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al., DiffAugment, 2020) of images ``(B, C, S, S)``
    in [-1, 1], each image drawn its own way from the global random generator:

    - ``translation``: shifted by up to an eighth of its size in each direction, filled with 0;
    - ``cutout``: a square of half its size, anywhere, set to 0;
    - ``color``: brightness, saturation and contrast changed, as the paper does.

    The discriminator sees real and fake images through the same policy (each batch with draws
    of its own), so the augmentations tell it nothing about which is which and the generator is
    not pushed to draw them; gradients flow through them to the generator.
    """
    B, C, H, W = images.shape
    device = images.device
    x = images

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(B, *shape, device=device, dtype=x.dtype)

    if "color" in names:
        x = x + (uniform(1, 1, 1) - 0.5)  # brightness
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (uniform(1, 1, 1) * 2) + mean  # saturation
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * (uniform(1, 1, 1) + 0.5) + mean  # contrast
    if "translation" in names:
        m = max(1, H // 8)
        padded = F.pad(x, (m, m, m, m))  # (B, C, H + 2m, W + 2m), zeros around
        dx = torch.randint(-m, m + 1, (B, 1), device=device)
        dy = torch.randint(-m, m + 1, (B, 1), device=device)
        cols = torch.arange(W, device=device) + m - dx  # (B, W): output column j reads j - dx
        rows = torch.arange(H, device=device) + m - dy  # (B, H)
        x = padded.gather(3, cols[:, None, None, :].expand(B, C, H + 2 * m, W))
        x = x.gather(2, rows[:, None, :, None].expand(B, C, H, W))
    if "cutout" in names:
        half_h, half_w = H // 4, W // 4  # a square of half the image's size
        cy = torch.randint(0, H, (B, 1, 1), device=device)
        cx = torch.randint(0, W, (B, 1, 1), device=device)
        ys = torch.arange(H, device=device)[None, :, None]
        xs = torch.arange(W, device=device)[None, None, :]
        inside = (
            (ys >= cy - half_h) & (ys < cy + half_h) & (xs >= cx - half_w) & (xs < cx + half_w)
        )  # (B, H, W)
        x = x.masked_fill(inside[:, None], 0.0)
    return x
