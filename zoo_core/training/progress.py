"""Training progress: a rich progress bar on a terminal, plain lines in logs."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from zoo_core.artifacts import format_metric


def _fmt(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k} {format_metric(v)}" for k, v in metrics.items())


class Progress:
    """Shows step, loss, throughput and ETA; evaluation results as lines above the bar."""

    def __init__(
        self,
        steps: int,
        seconds: float | None,
        unit: str,
        enabled: bool = True,
        start_step: int = 0,
        title: str | None = None,
    ):
        self.enabled = enabled
        self.title = title
        self.unit = unit
        self.steps = steps
        self.seconds = seconds
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self._next_line = 0.0
        self._bar = None
        if self.live:
            total = steps if seconds is None else None
            self._bar = RichProgress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._bar.add_task("train", total=total, completed=start_step, info="")

    def __enter__(self) -> Progress:
        if self.enabled and self.title:  # what trains and where, before the first step
            self.console.print(self.title, highlight=False, soft_wrap=True)
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def update(
        self, step: int, losses: dict[str, float], throughput: float, elapsed: float
    ) -> None:
        if not self.enabled:
            return
        loss = " ".join(
            ("loss" if k == "model" else f"loss_{k}") + f" {v:.4f}" for k, v in losses.items()
        )
        info = f"{loss} | {throughput:,.0f} {self.unit}/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=info)
            return
        # In a log: a line at most every 10% of the run.
        done = step / self.steps if self.seconds is None else elapsed / self.seconds
        if done >= self._next_line or step == self.steps:
            self._next_line = done + 0.1
            total = f"/{self.steps}" if self.seconds is None else ""
            print(f"step {step}{total} | {info} | {elapsed:.0f}s", file=sys.stderr, flush=True)

    def note(self, metrics: dict[str, Any]) -> None:
        if self.enabled:
            self.console.print(f"  eval: {_fmt(metrics)}", highlight=False)
