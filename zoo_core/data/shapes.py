"""The embedded image data set: coloured shapes on varied backgrounds, generated from a seed.

Each image holds one shape of a random size, position, rotation, aspect and colour (light on a
dark background or dark on a light one), on a two-colour gradient with noise and a few distractors
(thin lines and small dots). The shape's kind is the class. Everything is drawn with array operations on a 2x supersampled grid (antialiased
edges), so thousands of images take a second or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo_core.artifacts import new_folder
from zoo_core.errors import ZooError

DEFAULT_DATA_NAME = "shapes"
CLASSES = ("circle", "ring", "square", "triangle", "star", "cross", "crescent", "heart")
DEFAULT_NUM = 8000
DEFAULT_SIZE = 32
_SUPERSAMPLE = 2
_CHUNK = 500


def _shape_masks(labels: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Inside-masks ``(N, S, S)`` of each image's shape, in unit coordinates (radius about 1)."""
    r = np.hypot(x, y)
    a = np.arctan2(y, x)
    sector = 2 * np.pi
    masks = {
        "circle": lambda i: r[i] < 0.9,
        "ring": lambda i: (r[i] < 1.0) & (r[i] > 0.55),
        "square": lambda i: np.maximum(np.abs(x[i]), np.abs(y[i])) < 0.72,
        # A regular polygon: the distance along the nearest side's normal is below the apothem.
        "triangle": lambda i: r[i] * np.cos(np.mod(a[i], sector / 3) - np.pi / 3) < 0.5,
        # Five points: the radius limit goes linearly from 0.42 (between points) to 1.0 (a tip).
        "star": lambda i: r[i] < 0.42 + 0.58 * np.abs(np.mod(a[i] / (sector / 5), 1.0) - 0.5) * 2,
        "cross": lambda i: (
            ((np.abs(x[i]) < 0.28) & (np.abs(y[i]) < 0.95))
            | ((np.abs(y[i]) < 0.28) & (np.abs(x[i]) < 0.95))
        ),
        "crescent": lambda i: (r[i] < 1.0) & (np.hypot(x[i] - 0.5, y[i]) > 0.78),
        # The classic heart curve, scaled to the unit disc: (X^2 + Y^2 - 1)^3 - X^2 Y^3 < 0.
        "heart": lambda i: (
            ((1.15 * x[i]) ** 2 + (1.15 * -y[i] + 0.15) ** 2 - 1) ** 3
            - (1.15 * x[i]) ** 2 * (1.15 * -y[i] + 0.15) ** 3
            < 0
        ),
    }
    out = np.zeros(x.shape, dtype=bool)
    for k, name in enumerate(CLASSES):
        idx = np.nonzero(labels == k)[0]
        if len(idx):
            out[idx] = masks[name](idx)
    return out


def _draw(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Images ``(N, size, size, 3)`` as floats in [0, 1], one shape of class ``labels[i]`` each."""
    n, s = len(labels), size * _SUPERSAMPLE
    grid = (np.arange(s, dtype=np.float32) + 0.5) / _SUPERSAMPLE  # pixel units of the output
    u, v = grid[None, None, :], grid[None, :, None]  # x along columns, y along rows

    def per_image(values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32)[:, None, None]

    # Each pixel shows its top layer: 0 the background, 1-5 distractors, 6 the shape.
    top = np.zeros((n, s, s), dtype=np.int8)  # (N, S, S)
    palette = rng.random((n, 7, 3), dtype=np.float32)  # (N, layer, RGB)
    # A light shape on a dark background or a dark one on a light background, any hues.
    light = rng.random((n, 1)) < 0.5
    palette[:, 6] = np.where(light, rng.uniform(0.55, 1.0, (n, 3)), rng.uniform(0.0, 0.45, (n, 3)))

    # Distractors under the shape: up to two thin lines across the image, up to three small dots.
    layer = 1
    for _ in range(2):
        on = per_image(rng.random(n) < 0.5).astype(bool)
        psi = rng.uniform(0, np.pi, n)
        px, py = per_image(rng.uniform(0, size, n)), per_image(rng.uniform(0, size, n))
        dist = np.abs(per_image(np.cos(psi)) * (v - py) - per_image(np.sin(psi)) * (u - px))
        top[(dist < 0.5) & on] = layer
        layer += 1
    for _ in range(3):
        on = per_image(rng.random(n) < 0.5).astype(bool)
        px, py = per_image(rng.uniform(0, size, n)), per_image(rng.uniform(0, size, n))
        radius = per_image(rng.uniform(0.8, 1.8, n))
        top[((u - px) ** 2 + (v - py) ** 2 < radius**2) & on] = layer
        layer += 1

    # The shape: radius 25-42% of the image, anywhere it fits, any rotation, a mild stretch.
    radius = rng.uniform(0.25, 0.42, n) * size
    cx = per_image(rng.uniform(radius, size - radius))
    cy = per_image(rng.uniform(radius, size - radius))
    theta = rng.uniform(0, 2 * np.pi, n)
    stretch = per_image(rng.uniform(0.85, 1.15, n))
    dx, dy = (u - cx) / per_image(radius), (v - cy) / per_image(radius)
    cos, sin = per_image(np.cos(theta)), per_image(np.sin(theta))
    x = (cos * dx + sin * dy) * stretch
    y = (cos * dy - sin * dx) / stretch
    top[_shape_masks(labels, x, y)] = 6

    # Background: a gradient between two colours on the other side of the shape's brightness.
    c1 = np.where(light, rng.uniform(0.0, 0.45, (n, 3)), rng.uniform(0.55, 1.0, (n, 3)))
    c2 = np.where(light, rng.uniform(0.0, 0.45, (n, 3)), rng.uniform(0.55, 1.0, (n, 3)))
    c1, c2 = c1.astype(np.float32), c2.astype(np.float32)
    phi = rng.uniform(0, 2 * np.pi, n)
    cphi, sphi = np.cos(phi), np.sin(phi)
    low = np.minimum(cphi, 0) + np.minimum(sphi, 0)  # the projection's range over the image
    span = np.abs(cphi) + np.abs(sphi)
    t = ((u * per_image(cphi) + v * per_image(sphi)) / size - per_image(low)) / per_image(span)
    palette[:, 0] = c1
    img = palette[np.arange(n)[:, None, None], top]  # (N, S, S, 3)
    background = top == 0
    img += (background * t)[..., None] * (c2 - c1)[:, None, None, :]

    # Antialias by averaging each 2x2 block of the supersampled grid, then add sensor noise.
    img = 0.25 * (img[:, 0::2, 0::2] + img[:, 1::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 1::2])
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    img += noise * per_image(rng.uniform(0.02, 0.07, n))[..., None]
    return np.clip(img, 0.0, 1.0)


def generate(
    num: int = DEFAULT_NUM, seed: int = 0, size: int = DEFAULT_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` images ``(num, 3, size, size)`` as uint8 and their labels ``(num,)`` (int64).

    The classes are balanced and shuffled; the same ``seed`` gives the same images.
    """
    if num < 1:
        raise ZooError(f"the number of images must be at least 1, not {num}")
    if size < 8:
        raise ZooError(f"the image size must be at least 8, not {size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num) % len(CLASSES)).astype(np.int64)
    images = np.empty((num, 3, size, size), dtype=np.uint8)
    for start in range(0, num, _CHUNK):
        chunk = _draw(labels[start : start + _CHUNK], size, rng)  # (n, size, size, 3)
        images[start : start + _CHUNK] = (
            np.round(chunk * 255).astype(np.uint8).transpose(0, 3, 1, 2)
        )
    return images, labels


def write_folder(
    out: str | Path, num: int = DEFAULT_NUM, seed: int = 0, size: int = DEFAULT_SIZE
) -> Path:
    """Write the data set as an image folder: one sub-folder of PNGs per class.

    The folder appears complete or not at all (it is written beside ``out`` and renamed).
    """
    from PIL import Image

    if num < len(CLASSES):  # an empty class folder is not a data set the zoo reads
        raise ZooError(
            f"the number of images must be at least {len(CLASSES)}, one per class, not {num}"
        )
    with new_folder(out) as tmp:
        images, labels = generate(num, seed, size)
        for name in CLASSES:
            (tmp / name).mkdir()
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            path = tmp / CLASSES[label] / f"{i:06d}.png"
            Image.fromarray(image.transpose(1, 2, 0)).save(path)
    return Path(out)
