"""Credentials out of what the zoo prints: the userinfo of a URL (``https://user:token@host``)."""

from __future__ import annotations

import re

# The userinfo runs from the scheme to the last '@' before the host's end ('/', '?', '#' or a
# space), as URL parsers read it: a password may itself hold an unescaped '@'.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#@]*(?:@[^/\s?#@]*)*@")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``:
    ``https://user:token@mirror/x`` -> ``https://***@mirror/x``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
