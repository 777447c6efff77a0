"""Fonts for the ticket: DejaVu, bundled here (Bitstream Vera licence, see LICENSE-DejaVu.txt).

Roles, not file names, are asked for, so an installer can swap a face in the config
(`ticket.fonts.title: /path/to/Face.ttf`) and the ticket never depends on fonts installed on
the system::

    >>> title = font("title", 48)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import ImageFont

from appliance.faults import TicketError

HERE = Path(__file__).parent

BUNDLED = {
    "title": "DejaVuSansCondensed-Bold.ttf",  # the installation's name, headings
    "text": "DejaVuSansMono.ttf",  # receipt text: numbers, dates, captions
    "bold": "DejaVuSansMono-Bold.ttf",  # ranks, likeness figures
    "note": "DejaVuSerif-Italic.ttf",  # the privacy line, quiet remarks
}


class FontError(TicketError, ValueError):
    """A configured font that cannot be loaded, named on one line: a `ticket` fault."""


@cache
def font(role: str, size: int, path: str | None = None) -> ImageFont.FreeTypeFont:
    """The font for `role` at `size` px: `path` if given, else the bundled DejaVu face."""
    if role not in BUNDLED:
        raise ValueError(f"unknown font role {role!r} (expected one of {', '.join(BUNDLED)})")
    file = Path(path).expanduser() if path else HERE / BUNDLED[role]
    try:
        return ImageFont.truetype(str(file), max(4, int(size)))
    except OSError as exc:
        raise FontError(f"cannot load font {file} for {role!r}: {exc}") from None
