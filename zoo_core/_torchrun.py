"""torchrun, as ``zoo train --nproc`` starts it: ``python -m zoo_core._torchrun [torchrun args]``.

A rank that stops on a user's mistake leaves its one ``Error:`` line for this launcher (see
``zoo_core.launch``), and torchrun then stops the others. This prints each different line once,
since every rank usually fails the same way, and ends with the first failed rank's exit code,
where torchrun would add a traceback of its own and a box naming the ranks. When that rank was
killed by a signal it said nothing, so that case keeps torchrun's report.
"""

from __future__ import annotations

import logging
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main as torchrun

from zoo_core.launch import rank_errors

# torchrun's log lines that only repeat what the ranks' own line says; the others are kept.
_REPEATS = {
    "torch.distributed.elastic.multiprocessing.api": ("failed (exitcode", "Sending process"),
    "torch.distributed.elastic.agent.server.api": ("Received",),  # "... death signal"
}


def _drop_repeats(record: logging.LogRecord) -> bool:
    starts = _REPEATS.get(record.name, ())
    return not str(record.msg).startswith(starts)


def main(argv: list[str]) -> None:
    for name in _REPEATS:
        logging.getLogger(name).addFilter(_drop_repeats)
    try:
        torchrun(argv)
    except ChildFailedError as exc:
        for line in rank_errors():  # each rank's Error line, once
            print(line, file=sys.stderr)
        _, first = exc.get_first_failure()  # the others were stopped by torchrun after it
        if first.exitcode > 0:
            sys.exit(first.exitcode)
        raise
    except SignalException as exc:  # Ctrl-C: the ranks have saved a checkpoint and stopped
        for line in rank_errors():
            print(line, file=sys.stderr)
        sys.exit(128 + int(exc.sigval))


if __name__ == "__main__":
    main(sys.argv[1:])
