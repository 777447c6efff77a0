"""Ink and paper: the ticket's dot values, its 576-dot base width, stacking blocks, and the
pieces that do not depend on the visitor, drawn once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PIL import Image

BASE_WIDTH = 576
INK, PAPER = 0, 255
MIN_TEXT = 11  # dots: smaller letters do not survive thermal paper
STATIC_LIMIT = 64  # cached pieces kept (a few per layout and paper width)
_static: dict[tuple[object, ...], Image.Image] = {}


def static_piece(key: tuple[object, ...], draw: Callable[[], Image.Image]) -> Image.Image:
    """The image `draw` makes for `key`, drawn on first use; callers must not draw on it."""
    piece = _static.get(key)
    if piece is None:
        piece = draw()
        if len(_static) >= STATIC_LIMIT:
            _static.pop(next(iter(_static)))
        _static[key] = piece
    return piece


def clear_static() -> None:
    """Forget every pre-rendered piece (tests; a changed font file)."""
    _static.clear()


def stack(blocks: Iterable[Image.Image], width: int, mode: str = "L") -> Image.Image:
    """`blocks` one under the other, as one image `width` wide."""
    blocks = list(blocks)
    canvas = Image.new(mode, (width, sum(b.height for b in blocks)), PAPER if mode == "L" else 1)
    y = 0
    for b in blocks:
        canvas.paste(b, (0, y))
        y += b.height
    return canvas
