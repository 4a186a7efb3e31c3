"""Every picture the zoo draws, with Pillow (no plotting library needed): line charts for
``zoo compare``, confusion matrices, grids of images and scatter plots of 2-D points.

Pillow and torch are imported inside the functions: the tasks that import this module are listed
by ``zoo list``, which must stay free of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from zoo_core.artifacts import atomic_write
from zoo_core.errors import ZooError

if TYPE_CHECKING:
    import torch
    from PIL import Image

# Colour-blind friendly (Okabe-Ito), then darker shades.
COLOURS = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
    (120, 60, 20),
    (90, 90, 160),
    (60, 120, 60),
]

Series = dict[str, list[tuple[float, float]]]  # label -> (x, y) points


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
        marks = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
        marks = [v for v in marks if low <= v <= high]
        if len(marks) >= 3:
            return marks
        log = False  # a narrow range: evenly spaced values read better
    if high == low:
        return [low]
    raw = (high - low) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    start = math.ceil(low / step) * step
    return [start + i * step for i in range(int((high - start) / step + 1e-9) + 1)]


def _label(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def line_chart(
    series: Series,
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    log_y: bool = False,
    y_range: tuple[float, float] | None = None,
    x_ticks: list[float] | None = None,
    size: tuple[int, int] = (840, 440),
) -> None:
    """Write a PNG with one line (and dots) per series; points with a None y are skipped."""
    from PIL import Image, ImageDraw, ImageFont

    series = {
        k: [(x, y) for x, y in v if y is not None and math.isfinite(y)] for k, v in series.items()
    }
    points = [p for v in series.values() for p in v]
    width, height = size
    left, right, top, bottom = 64, 300, 44, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((left, 10), title, fill="black", font=font)
    if not points:
        draw.text((left, height // 2), "no data", fill="black", font=font)
        save(image, path)
        return
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    if log_y:
        ys = [y for y in ys if y > 0] or [1.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range is not None else (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = (x0 / 2, x0 * 2) if log_x else (x0 - 1, x1 + 1)
    if y1 == y0:
        y0, y1 = (y0 / 2, y0 * 2) if log_y else (y0 - 0.5, y1 + 0.5)

    def tx(x: float) -> float:
        f = (
            (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            if log_x
            else (x - x0) / (x1 - x0)
        )
        return left + f * (width - left - right)

    def ty(y: float) -> float:
        if log_y:
            y = max(y, y0)
            f = (math.log(y) - math.log(y0)) / (math.log(y1) - math.log(y0))
        else:
            f = (y - y0) / (y1 - y0)
        return height - bottom - f * (height - top - bottom)

    # Axes, grid and ticks.
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for y in _ticks(y0, y1, log_y):
        draw.line([left, ty(y), width - right, ty(y)], fill=(225, 225, 225))
        draw.text((4, ty(y) - 6), _label(y), fill="black", font=font)
    for x in x_ticks if x_ticks is not None else _ticks(x0, x1, log_x):
        if x0 <= x <= x1:
            draw.line([tx(x), height - bottom, tx(x), height - bottom + 4], fill="black")
            draw.text((tx(x) - 8, height - bottom + 6), _label(x), fill="black", font=font)
    draw.text(
        ((left + width - right) // 2 - 3 * len(xlabel), height - 20),
        xlabel,
        fill="black",
        font=font,
    )
    draw.text((4, top - 14), ylabel, fill="black", font=font)
    # Lines and the legend.
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        xy = [(tx(x), ty(y)) for x, y in sorted(pts) if not (log_y and y <= 0)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        if len(xy) <= 30:
            for px, py in xy:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        ly = top + 4 + 16 * i
        draw.line([width - right + 10, ly + 6, width - right + 30, ly + 6], fill=colour, width=3)
        draw.text((width - right + 36, ly), name[:46], fill="black", font=font)
    save(image, path)


# File extensions that pictures are written as, and Pillow's name for each format.
PICTURE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def picture_format(path: str | Path) -> str:
    """Pillow's name for the picture format that ``path``'s extension names (``.png``: PNG)."""
    image_format = PICTURE_FORMATS.get(Path(path).suffix.lower())
    if image_format is None:
        raise ZooError(
            f"cannot tell a picture format from '{Path(path).name}': end the file name in "
            + ", ".join(sorted(PICTURE_FORMATS))
        )
    return image_format


def save(image: Image.Image, path: str | Path, image_format: str = "PNG") -> None:
    """Write a PIL image atomically: a reader never sees half a picture."""
    atomic_write(path, lambda p: image.save(p, format=image_format))


def draw_confusion(confusion: list[list[int]], classes: list[str]) -> Image.Image:
    """A PIL image of a confusion matrix: rows true classes, columns predictions, counts in cells,
    each cell shaded by its share of the row."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    K, cell = len(classes), 34
    label_w = max(text_size(c)[0] for c in classes) + 12
    title_h = 32  # two lines of legend above the column labels
    left, top = label_w + 16, title_h + label_w + 4
    width = max(left + K * cell + 10, text_size("columns: predicted")[0] + 10)
    image = Image.new("RGB", (width, top + K * cell + 10), "white")
    draw = ImageDraw.Draw(image)
    draw.text((4, 2), "rows: true class", fill="black", font=font)
    draw.text((4, 14), "columns: predicted", fill="black", font=font)
    for k, name in enumerate(classes):
        w, h = text_size(name)
        draw.text((left - w - 6, top + k * cell + (cell - h) // 2), name, fill="black", font=font)
        column = Image.new("RGB", (w + 2, h + 4), "white")  # the column label, turned upright
        ImageDraw.Draw(column).text((0, 0), name, fill="black", font=font)
        column = column.rotate(90, expand=True)
        image.paste(column, (left + k * cell + (cell - column.width) // 2, top - column.height - 6))
    for t, row in enumerate(confusion):
        total = max(1, sum(row))
        for p, count in enumerate(row):
            share = count / total
            shade = (int(255 - 215 * share), int(255 - 165 * share), 255)  # white to blue
            x0, y0 = left + p * cell, top + t * cell
            draw.rectangle(
                (x0, y0, x0 + cell - 1, y0 + cell - 1), fill=shade, outline=(200, 200, 200)
            )
            w, h = text_size(str(count))
            draw.text(
                (x0 + (cell - w) // 2, y0 + (cell - h) // 2),
                str(count),
                fill="white" if share > 0.6 else "black",
                font=font,
            )
    return image


def image_grid(images: torch.Tensor, min_cell: int = 64) -> Image.Image:
    """A PIL image of uint8 images ``(N, C, S, S)`` in a near-square grid, each scaled up
    (nearest neighbour) to at least ``min_cell`` pixels."""
    from PIL import Image

    n, C, S, _ = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    scale = max(1, min_cell // S)
    cell, pad = S * scale, 2
    grid = Image.new("RGB", (cols * (cell + pad) + pad, rows * (cell + pad) + pad), (128, 128, 128))
    for i, image in enumerate(images):
        array = image.permute(1, 2, 0).numpy()  # (S, S, C)
        tile = Image.fromarray(array[..., 0] if C == 1 else array).convert("RGB")
        tile = tile.resize((cell, cell), Image.Resampling.NEAREST)
        grid.paste(tile, (pad + (i % cols) * (cell + pad), pad + (i // cols) * (cell + pad)))
    return grid


def draw_points(
    points: torch.Tensor, centres: torch.Tensor, near: float, radius: float, size: int = 512
) -> Image.Image:
    """A PIL scatter plot: points in blue, circles of radius ``near`` around the modes in red."""
    from PIL import Image, ImageDraw

    limit = 1.5 * radius
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)

    def pixel(x: float, y: float) -> tuple[float, float]:
        return (x + limit) / (2 * limit) * (size - 1), (limit - y) / (2 * limit) * (size - 1)

    cx, cy = pixel(0, 0)
    draw.line((0, cy, size, cy), fill=(225, 225, 225))  # the axes
    draw.line((cx, 0, cx, size), fill=(225, 225, 225))
    r = max(near / (2 * limit) * (size - 1), 2)
    for x, y in centres.tolist():
        px, py = pixel(x, y)
        draw.ellipse((px - r, py - r, px + r, py + r), outline=(220, 60, 60))
    inside = points.isfinite().all(1) & (points.abs() <= limit).all(1)
    for x, y in points[inside].tolist():
        px, py = pixel(x, y)
        draw.rectangle((px - 1, py - 1, px + 1, py + 1), fill=(30, 90, 200))
    draw.text(
        (6, 4), f"{len(points)} samples ({len(points) - int(inside.sum())} outside)", fill="black"
    )
    return image
