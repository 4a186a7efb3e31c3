"""Image folders: one sub-folder per class holding image files, read with Pillow."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
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


def _decode_many(
    items: list[Any], size: int, channels: int, resize: int | None, resample: str
) -> list[np.ndarray | None]:
    """Decode images in a worker process: a file's path, or an image file's bytes (a data set's
    encoded column); None for one that does not decode."""
    out: list[np.ndarray | None] = []
    for item in items:
        try:
            out.append(
                read_image(
                    io.BytesIO(item) if isinstance(item, bytes) else item,
                    size,
                    channels,
                    resize,
                    resample,
                )
            )
        except ZooError:
            out.append(None)
    return out


class _Done:
    """A result already there, read as a future's is."""

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


class LazyImages:
    """Images ``(N, channels, size, size)`` as uint8 that are decoded only when rows of them are
    read, in ``workers`` processes, so that memory stays flat however many there are.

    ``items`` gives, for a list of indices, what to decode (paths, or encoded bytes). Indexed
    by a tensor, a list or a slice, it returns those rows as a uint8 tensor; ``prefetch`` starts
    decoding rows that are likely to be asked for next (the next training batch), and a request
    for exactly those rows takes them when ready. Decoding is deterministic, so prefetching
    never changes what is read.
    """

    def __init__(
        self,
        items: Callable[[list[int]], list[Any]],
        count: int,
        size: int,
        channels: int,
        workers: int,
        on_error: str = "skip",
        names: Callable[[int], str] | None = None,
        resize: int | None = None,
        resample: str = "bilinear",
    ):
        self.items, self.count, self.size, self.channels = items, count, size, channels
        self.workers, self.on_error = workers, on_error  # 0 workers: decoded in this process
        self.names = names or str
        self.resizing = (resize, resample)  # as read_image takes them
        self.shape = (count, channels, size, size)
        self._pool: Any = None
        self._ahead: tuple[tuple[int, ...], list[Any]] | None = None
        self._warned: set[int] = set()

    def __len__(self) -> int:
        return self.count

    def _submit(self, indices: list[int]) -> list[Any]:
        if self.workers == 0:
            return [
                (
                    indices,
                    _Done(
                        _decode_many(self.items(indices), self.size, self.channels, *self.resizing)
                    ),
                )
            ]
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # The platform's default start method, as torch's DataLoader uses: fork on Linux,
            # so a script without a main guard works; the workers run Pillow and numpy only.
            context = multiprocessing.get_context()
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        step = max(1, -(-len(indices) // self.workers))
        parts = [indices[i : i + step] for i in range(0, len(indices), step)]
        return [
            (
                part,
                self._pool.submit(
                    _decode_many, self.items(part), self.size, self.channels, *self.resizing
                ),
            )
            for part in parts
        ]

    def _collect(self, jobs: list[Any]) -> np.ndarray:
        rows = []
        for part, job in jobs:
            for index, image in zip(part, job.result(), strict=True):
                if image is None:
                    image = self._bad(index)
                rows.append(image)
        if not rows:
            return np.zeros((0, self.channels, self.size, self.size), np.uint8)
        # Laid out as read_images lays them out (pixels, then channels), so that sums over them
        # (the normalisation statistics) add in the same order and give the same bits.
        return np.stack(
            [np.ascontiguousarray(r.transpose(1, 2, 0)).transpose(2, 0, 1) for r in rows]
        )

    def _bad(self, index: int) -> np.ndarray:
        name = self.names(index)
        if self.on_error == "error":
            raise ZooError(
                f"cannot read image '{name}'; fix or remove the file (or --set bad_images=skip)"
            )
        if index not in self._warned and len(self._warned) < _MAX_WARNINGS:
            print(f"zoo: warning: unreadable image '{name}' read as black", file=sys.stderr)
        self._warned.add(index)
        return np.zeros((self.channels, self.size, self.size), np.uint8)

    def prefetch(self, indices: Any) -> None:
        """Start decoding ``indices`` (the rows the next request will likely be for)."""
        if self.workers == 0:
            return
        wanted = tuple(int(i) for i in indices)
        self._ahead = (wanted, self._submit(list(wanted)))

    def __getitem__(self, index: Any) -> Any:
        import torch

        if isinstance(index, slice):
            wanted = tuple(range(*index.indices(self.count)))
        else:
            wanted = tuple(int(i) for i in (index.tolist() if hasattr(index, "tolist") else index))
        if self._ahead is not None and self._ahead[0] == wanted:
            jobs = self._ahead[1]
        else:
            jobs = self._submit(list(wanted))
        self._ahead = None
        return torch.from_numpy(self._collect(jobs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
