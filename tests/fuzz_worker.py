"""A worker for the fuzz tests: runs many untrusted inputs through the zoo in one process.

Started as ``python tests/fuzz_worker.py LIMIT_BYTES``: it caps its own address space at
``LIMIT_BYTES`` (``RLIMIT_AS``), imports the zoo once, then reads one case a line of JSON on
stdin and answers each with one line of JSON on its protocol stream (its original stdout, which
the zoo's own printing never reaches):

    {"target": "load", "path": "/tmp/.../run"}
    -> {"outcome": "ok" | "zoo_error" | "failure", "detail": "...", "where": "..."}

``ok`` is a result, ``zoo_error`` a ZooError (for a command: exit 1 with one ``Error:`` line),
``failure`` anything else: another exception, a traceback, a command that exits otherwise or
prints more than one line of error. The parent (tests/test_fuzz.py) enforces a time limit per
case and starts a new worker when one dies.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

_ROOTS = ("zoo_core", "zoo_lstm", "zoo_transformer", "zoo_resnet", "zoo_gan")


def _where(tb: Any) -> str:
    """Where an exception came from: the innermost frame of the zoo's code, then the frame that
    raised it (in a library the zoo called), so that two failures from one place compare equal."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return "?"
    ours = [f for f in frames if any(f"/{root}/" in f.filename for root in _ROOTS)]

    def short(frame: traceback.FrameSummary) -> str:
        parts = Path(frame.filename).parts
        for i, part in enumerate(parts):
            if part in _ROOTS or part == "site-packages":
                return "/".join(parts[i + (part == "site-packages") :]) + f":{frame.lineno}"
        return f"{Path(frame.filename).name}:{frame.lineno}"

    last = frames[-1]
    if ours and ours[-1] is not last:
        return f"{short(ours[-1])} ({ours[-1].name}) -> {short(last)}"
    return f"{short(last)} ({last.name})"


def _failure(exc: BaseException) -> dict[str, Any]:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    return {
        "outcome": "failure",
        "detail": f"{type(exc).__name__}: {message}",
        "where": _where(exc.__traceback__),
        "traceback": "".join(lines)[-4000:],
    }


def _call(target: str, case: dict[str, Any]) -> Any:
    """Run one case's target in process; its return value is thrown away."""
    path = case["path"]
    if target == "load":
        import zoo_core

        return zoo_core.load(path)
    if target == "run_info":
        from zoo_core.artifact import run_info

        return json.dumps(run_info(path), default=str)
    if target == "evaluate":
        import zoo_core

        return zoo_core.load(path).evaluate(case.get("data"), batch_size=4)
    if target == "read_text":
        from zoo_core.data.text import read_text

        return read_text(path)
    if target == "read_labelled":
        from zoo_core.data.labelled import read_labelled

        return read_labelled(path)
    if target == "read_images":
        from zoo_core.data.images import read_images, scan_folder

        _, files, labels = scan_folder(path, flat=True)
        return read_images(files, labels, case.get("size", 8), case.get("channels", 3), "error")
    if target == "read_image":
        from zoo_core.data.images import read_image

        return read_image(path, case.get("size", 8), case.get("channels", 3))
    # The harness's own checks: faults the worker must report as failures.
    if target == "_raise":
        raise KeyError(path)
    if target == "_die":
        os._exit(3)
    if target == "_hang":
        time.sleep(3600)
    if target == "_allocate":
        return bytearray(resource.getrlimit(resource.RLIMIT_AS)[0])
    raise ValueError(f"unknown target {target!r}")


def _run_cli(args: list[str]) -> dict[str, Any]:
    """A ``zoo`` command through click's runner: exit 0, or exit 1 with one ``Error:`` line."""
    from click.testing import CliRunner

    from zoo_core.cli import cli

    result = CliRunner().invoke(cli, args, prog_name="zoo")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return _failure(result.exception)
    errors = result.stderr.strip().splitlines()
    if result.exit_code == 0:
        return {"outcome": "ok", "detail": ""}
    bad = (
        result.exit_code != 1
        or "Traceback" in result.stderr
        or len(errors) != 1
        or not errors[0].startswith("Error: ")
    )
    if bad:
        shown = " | ".join(errors[-3:])[:300]
        return {
            "outcome": "failure",
            "detail": f"exit {result.exit_code}, stderr: {shown}",
            "where": f"zoo {args[0]}",
        }
    return {"outcome": "zoo_error", "detail": errors[0][:300]}


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    from zoo_core.errors import ZooError

    target = case["target"]
    try:
        if target == "cli":
            return _run_cli(case["args"])
        _call(target, case)
    except ZooError as exc:
        text = str(exc)
        if not text or "\n" in text.strip():
            return {"outcome": "failure", "detail": f"ZooError not one line: {text[:300]!r}"}
        return {"outcome": "zoo_error", "detail": text[:300]}
    except BaseException as exc:  # anything else is what the fuzzing looks for
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _failure(exc)
    return {"outcome": "ok", "detail": ""}


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The protocol keeps the real stdout; whatever the zoo prints goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import zoo_core.cli  # noqa: F401 (imported once, before the first case is timed)
    import zoo_core.data.images  # noqa: F401
    import zoo_core.data.labelled  # noqa: F401

    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case = json.loads(line)
        answer = run_case(case)
        protocol.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
