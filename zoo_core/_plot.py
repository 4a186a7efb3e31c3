"""Small line charts drawn with Pillow (no plotting library needed), for ``zoo compare``."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

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
        _save(image, path)
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
    _save(image, path)


def _save(image: Image.Image, path: str | Path) -> None:
    from zoo_core.artifacts import atomic_write

    atomic_write(path, lambda p: image.save(p, format="PNG"))
