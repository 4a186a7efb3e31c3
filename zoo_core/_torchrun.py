"""torchrun, as ``zoo train --nproc`` starts it: ``python -m zoo_core._torchrun [torchrun args]``.

A rank that exits with an error has already said why on stderr (one ``Error:`` line for a
user's mistake), and torchrun then stops the others. torchrun would add a traceback of its own
and a box naming the ranks; this ends with the first failed rank's exit code instead. When that
rank was killed by a signal it printed nothing, so that case keeps torchrun's report.
"""

from __future__ import annotations

import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main as torchrun


def main(argv: list[str]) -> None:
    try:
        torchrun(argv)
    except ChildFailedError as exc:
        _, first = exc.get_first_failure()  # the others were stopped by torchrun after it
        if first.exitcode > 0:
            sys.exit(first.exitcode)
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
