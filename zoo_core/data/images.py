"""Image folders: one sub-folder per class holding image files, read with Pillow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from zoo_core.data.files import visible_files
from zoo_core.errors import ZooError

# The files read as images: torchvision's ImageFolder list (Pillow reads them all).
IMAGE_EXTENSIONS = tuple(".png .jpg .jpeg .bmp .gif .webp .tif .tiff .ppm .pgm".split())
_KINDS = ", ".join(e[1:] for e in IMAGE_EXTENSIONS)
_MAX_WARNINGS = 20


def image_files(folder: Path) -> list[Path]:
    """The image files (``IMAGE_EXTENSIONS``, any case) at any depth under ``folder``, sorted,
    hidden files and folders left out."""
    return visible_files(folder, IMAGE_EXTENSIONS)


def scan_folder(folder: str | Path, flat: bool = False) -> tuple[list[str], list[Path], list[int]]:
    """Class names (sorted sub-folder names), image files and their class indices. With ``flat``,
    a folder of images and no sub-folders is one class, named ``images``."""
    root = Path(folder)
    if not root.exists():
        raise ZooError(
            f"data path '{folder}' does not exist; give a folder with one sub-folder per class"
        )
    if not root.is_dir():
        raise ZooError(
            f"data path '{folder}' is a file; give a folder with one sub-folder of images per class"
        )
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs and flat and (found := image_files(root)):
        return ["images"], found, [0] * len(found)
    if not class_dirs:
        raise ZooError(
            f"folder '{folder}' has no sub-folders; put each class's images in a sub-folder named "
            "after the class (e.g. data/cat/1.png, data/dog/2.jpg)"
        )
    files: list[Path] = []
    labels: list[int] = []
    for index, class_dir in enumerate(class_dirs):
        found = image_files(class_dir)
        if not found:
            raise ZooError(
                f"class folder '{class_dir}' holds no images ({_KINDS}); add images or remove it"
            )
        files += found
        labels += [index] * len(found)
    return [d.name for d in class_dirs], files, labels


RESAMPLING = ("nearest", "bilinear", "bicubic", "lanczos")


def read_image(
    path: Any, size: int, channels: int, resize: int | None = None, resample: str = "bilinear"
) -> np.ndarray:
    """One image ``(channels, size, size)`` as uint8: cropped to a square around its centre and
    resized; or, with ``resize``, resized so that its shorter side is ``resize`` pixels, then
    cropped to ``size`` around its centre (as `transformers` image processors do). ``path`` is
    a file, or an image already opened with Pillow. Raises ZooError naming the file when Pillow
    cannot read it."""
    from PIL import Image, ImageOps

    method = getattr(Image.Resampling, resample.upper())

    def square(image: Image.Image) -> Image.Image:
        image = ImageOps.exif_transpose(image)
        if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit grey, as PNG has it
            # Pillow's own conversion to 8 bits clips at 255, which turns nearly all of a
            # 16-bit image white; scale its 0-65535 range to 0-255 instead.
            wide = np.asarray(image, dtype=np.float64) / 257.0
            image = Image.fromarray(wide.round().clip(0, 255).astype(np.uint8))  # mode L
        image = image.convert("L" if channels == 1 else "RGB")
        if resize is None:
            return ImageOps.fit(image, (size, size), method)
        short, long = sorted(image.size)
        scaled = max(1, int(resize * long / short))
        width, height = (resize, scaled) if image.width <= image.height else (scaled, resize)
        image = image.resize((width, height), method)
        left, top = (width - size) // 2, (height - size) // 2
        return image.crop((left, top, left + size, top + size))

    try:
        if isinstance(path, Image.Image):
            image = square(path)
        else:
            with Image.open(path) as opened:
                image = square(opened)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ZooError(f"cannot read image '{path}': {exc}") from None
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def read_images(
    files: list[Path],
    labels: list[int],
    size: int,
    channels: int,
    on_error: str = "skip",
    resize: int | None = None,
    resample: str = "bilinear",
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, channels, size, size)`` (uint8) and labels ``(N,)``.

    An unreadable file is skipped with a warning naming it (``on_error="skip"``) or stops the
    read with an error naming it (``on_error="error"``).
    """
    images, kept, skipped = [], [], []
    for path, label in zip(files, labels, strict=True):
        try:
            images.append(read_image(path, size, channels, resize, resample))
        except ZooError as exc:
            if on_error == "error":
                raise ZooError(
                    f"{exc}; fix or remove the file (or --set bad_images=skip)"
                ) from None
            skipped.append(path)
            if len(skipped) <= _MAX_WARNINGS:
                print(f"zoo: warning: skipped unreadable image '{path}'", file=sys.stderr)
            continue
        kept.append(label)
    if len(skipped) > _MAX_WARNINGS:
        print(f"zoo: warning: skipped {len(skipped)} unreadable images in all", file=sys.stderr)
    if not images:
        return np.zeros((0, channels, size, size), np.uint8), np.zeros(0, np.int64)
    return np.stack(images), np.asarray(kept, dtype=np.int64)
