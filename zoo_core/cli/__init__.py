"""The ``zoo`` command: parse, call the Python API, print. No logic of its own lives here.

Each command group has its module; :mod:`zoo_core.cli._output` is how all of them print.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from zoo_core._version import __version__
from zoo_core.cli import (
    _output,
    catalog,
    compare,
    data,
    hub,
    inference,
    plugins,
    study,
    train,
)
from zoo_core.errors import ZooError
from zoo_core.plugins import add_commands

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns a user's mistake (a ZooError) into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            # Only a loaded trainer can have raised TrainingInterrupted: don't import torch to ask.
            trainer = sys.modules.get("zoo_core.training.trainer")
            interrupted = trainer is not None and isinstance(exc, trainer.TrainingInterrupted)
            _output.fail(str(exc), exc.exit_code if interrupted else 1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo", message="%(prog)s %(version)s")
def cli() -> None:
    """A plugin-based model zoo for PyTorch: list, train, evaluate and sample models."""


for _module in (catalog, train, inference, hub, plugins, data, compare, study):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Entry point of the ``zoo`` console script."""
    try:
        add_commands(cli)
    except ZooError as exc:  # ZOO_STRICT_PLUGINS=1 and a broken plugin
        _output.fail(str(exc))
    try:
        cli(prog_name="zoo")
    except SystemExit as exc:
        if "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # A rank under torchrun, its work done and its process group destroyed, leaves at
            # once. Tearing down the interpreter could destroy tensors still held by gloo's
            # worker threads, which now and then aborts the process (SIGABRT) while rank 0 is
            # still writing the run, and torchrun then kills rank 0 too.
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
