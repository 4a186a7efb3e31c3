"""The one exception a user can cause: the CLI prints its message as one line and exits non-zero.

:func:`printable` makes a string of someone else's (a Hub repo's config) safe to print.
"""

from __future__ import annotations

import re

# Terminal escape sequences, removed whole so no stray "[31m" is left behind: CSI (colours,
# cursor moves), OSC (window titles, hyperlinks; ended by BEL or ST, or by nothing), and the
# two-byte ones; in their 7-bit (ESC ...) and 8-bit (C1) forms.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# What is left that a terminal acts on or that hides text: C0 and C1 controls, DEL, and the
# bidirectional overrides that reorder what is shown. Line breaks and tabs become spaces.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"[\t\n\r\u2028\u2029]+")


class ZooError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


def printable(text: object, limit: int | None = 200) -> str:
    """``text`` as a string safe to show on a terminal: escape sequences and control characters
    removed, line breaks made spaces, and at most ``limit`` characters (None: no limit)."""
    text = _CONTROLS.sub("", _BREAKS.sub(" ", _ESCAPES.sub("", str(text))))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
