"""How a file or input is named to a person: on a terminal, a page, in a result or a download name."""

from __future__ import annotations

from pathlib import Path

# Bidirectional controls: a right-to-left override makes "clip\u202egnp.mp4" display as "clip4pm.png".
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """Text as it may be shown on a terminal or page: control characters (escape sequences) as '?',
    bidirectional controls removed."""
    return "".join("?" if (ord(c) < 32 or 127 <= ord(c) < 160) else c for c in text if c not in BIDI_CONTROLS)


def display_name(path: str | Path) -> str:
    """A file's name as it may be shown to a person: printable, and cut to a sane length."""
    clean = printable(Path(path).name or str(path))
    return clean if len(clean) <= 120 else clean[:80] + "…" + clean[-30:]
