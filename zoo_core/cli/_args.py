"""Option values the commands share a syntax for: ``--set key=value`` and number lists."""

from __future__ import annotations

from zoo_core.errors import ZooError


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``("lr=0.1", "seq_len=64")`` as ``{"lr": "0.1", "seq_len": "64"}``; one line if malformed."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ZooError(f"--set takes key=value, not {item!r}")
        out[key.strip()] = value.strip()
    return out


def numbers(text: str | None, kind: type, option: str) -> list | None:
    """``"64,128"`` as ``[64, 128]`` (of ``kind``); None for None; one line naming ``option``
    if a value is no number."""
    if text is None:
        return None
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ZooError(f"{option} takes comma-separated numbers, not {text!r}") from None
