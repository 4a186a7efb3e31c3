"""How much context a language model uses: its validation loss at each position of the window
(``zoo eval RUN --per-position``) and its *effective context*.

The effective context is our own, simpler relative of Transformer-XL's RECL (Dai et al. 2019,
§4.3): the first position ``p`` after which more context lowers the loss by less than
``tolerance`` (1%), that is, no later position's loss is below ``(1 - tolerance)`` times ``p``'s,
on the curve smoothed over positions ``p - p/4`` to ``p + p/4`` (one position's mean loss over a
validation text varies by more than 1% from its neighbours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo_core.errors import ZooError
from zoo_core.plot import line_chart

TOLERANCE = 0.01


def smooth(losses: list[float]) -> list[float]:
    """Each position's loss as the mean over positions ``p - p/4 .. p + p/4`` (1-based), cut to
    the window: exact where the curve is steep (the first positions), averaged where it is flat."""
    out = []
    for p in range(1, len(losses) + 1):
        lo, hi = max(1, p - p // 4), min(len(losses), p + p // 4)
        out.append(sum(losses[lo - 1 : hi]) / (hi - lo + 1))
    return out


def effective_context(losses: list[float], tolerance: float = TOLERANCE) -> int:
    """The first position (1-based: tokens read) whose smoothed loss no later position's improves
    on by ``tolerance`` or more, relative to it."""
    if not losses:
        raise ZooError("no losses: the window is empty")
    losses = smooth(losses)
    best_after = float("inf")
    lowest_later = [0.0] * len(losses)  # the lowest loss at any later position
    for i in range(len(losses) - 1, -1, -1):
        lowest_later[i] = best_after
        best_after = min(best_after, losses[i])
    for i, loss in enumerate(losses):
        if lowest_later[i] >= (1 - tolerance) * loss:
            return i + 1
    return len(losses)  # unreachable: the last position has nothing after it


def per_position(artifact: Any, batch_size: int = 32, seq_len: int | None = None) -> dict[str, Any]:
    """The loss at each position of ``artifact``'s validation text (a loaded run of a task that
    measures it, such as ``lm``), with its effective context."""
    task = artifact.task
    measure = getattr(task, "loss_by_position", None)  # a task's optional measurement
    if measure is None:
        raise ZooError(
            f"task '{task.name}' has no loss by position; --per-position measures language "
            "models (task lm)"
        )
    losses = measure(artifact.model, batch_size, seq_len)
    return {
        "seq_len": len(losses),
        "loss_by_position": losses,
        "effective_context": effective_context(losses),
        "tolerance": TOLERANCE,
    }


def plot(series: dict[str, list[float]], path: str | Path, title: str) -> None:
    """Loss against position (log scale), one line per model; the x axis is tokens read."""
    longest = max((len(v) for v in series.values()), default=1)
    ticks = [float(2**k) for k in range(longest.bit_length()) if 2**k <= longest]
    line_chart(
        {name: [(float(i + 1), y) for i, y in enumerate(v)] for name, v in series.items()},
        path,
        title=title,
        xlabel="position in the window (tokens read)",
        ylabel="validation loss",
        log_x=True,
        x_ticks=ticks,
    )
