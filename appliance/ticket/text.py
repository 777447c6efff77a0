"""Typesetting without anti-aliasing: advance widths, tracked text, word wrap, fitting sizes."""

from __future__ import annotations

import weakref
from typing import Protocol

from PIL import ImageDraw, ImageFont

from appliance.ticket.canvas import INK


class Page(Protocol):
    """What fitting text needs of a page (`appliance.ticket.page.Page`, which imports this
    module: the page is drawn with this typesetting, not the other way round)."""

    inner: int  # dots between the margins

    def font(self, role: str, size: float) -> ImageFont.FreeTypeFont: ...


def text_width(text: str, f: ImageFont.FreeTypeFont, tracking: float = 0.0) -> int:
    """Advance width of `text` in dots, with `tracking` extra dots between letters."""
    if not text:
        return 0
    if not tracking:
        return round(f.getlength(text))
    return round(sum(_advance(f, c) for c in text) + tracking * (len(text) - 1))


_ADVANCES: weakref.WeakKeyDictionary[ImageFont.FreeTypeFont, dict[str, float]] = (
    weakref.WeakKeyDictionary())


def _advance(f: ImageFont.FreeTypeFont, letter: str) -> float:
    """The advance of one letter in `f`, each letter measured once per font."""
    table = _ADVANCES.setdefault(f, {})
    width = table.get(letter)
    if width is None:
        width = table[letter] = f.getlength(letter)
    return width


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
              f: ImageFont.FreeTypeFont, tracking: float = 0.0, fill: int = INK) -> None:
    x, y = xy
    if not tracking:
        draw.text((x, y), text, font=f, fill=fill)
        return
    for c in text:
        draw.text((x, y), c, font=f, fill=fill)
        x += _advance(f, c) + tracking


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int, tracking: float = 0.0,
         max_lines: int | None = None) -> list[str]:
    """Greedy word wrap to `width` dots; words longer than a line are split (never clipped).

    Linear in the text's length: a candidate line is measured only while it fits (at most a
    line's letters), a long word is cut in one pass over its letters' advances. With
    `max_lines`, wrapping stops there and a cut text ends with an ellipsis.
    """
    lines: list[str] = []
    limit = max_lines if max_lines is not None else len(text) + 1
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            if len(lines) >= limit:
                break
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= width and text_width(candidate, f, tracking) <= width:
                current = candidate  # (a letter is a dot wide at least: longer never fits)
                continue
            if current:
                lines.append(current)
            pieces = _split_word(word, f, width, tracking, limit - len(lines) + 1)
            lines += pieces[:-1]
            current = pieces[-1]
        if len(lines) >= limit:
            break
        lines.append(current)
    if max_lines is not None and len(lines) >= max_lines and _cut(lines, text):
        lines = lines[:max_lines]
        lines[-1] = _with_ellipsis(lines[-1], f, width, tracking)
    return lines


def _split_word(word: str, f: ImageFont.FreeTypeFont, width: int, tracking: float,
                most: int) -> list[str]:
    """`word` cut into pieces that fit `width` (one letter at least each), in one pass; after
    `most` pieces the rest of the word is the last one, unmeasured."""
    pieces: list[str] = []
    start, used = 0, 0.0
    for i, c in enumerate(word):
        advance = _advance(f, c)
        used += advance + (tracking if i > start else 0.0)
        if i > start and round(used) > width:
            pieces.append(word[start:i])
            start, used = i, advance
            if len(pieces) >= most:
                break
    pieces.append(word[start:])
    return pieces


def _cut(lines: list[str], text: str) -> bool:
    """Whether `lines` leave out some of `text`'s letters."""
    return "".join("".join(line.split()) for line in lines) != "".join(text.split())


def _with_ellipsis(line: str, f: ImageFont.FreeTypeFont, width: int, tracking: float) -> str:
    """`line` ending with an ellipsis, shortened until it fits."""
    line = line.rstrip()
    while line and text_width(line + "…", f, tracking) > width:
        line = line[:-1].rstrip()
    return line + "…"


def fit_size(text: str, role: str, page: Page, largest: float, smallest: float,
             tracking: float, max_lines: int) -> float:
    """The largest size (576-dot units) whose wrap of `text` takes at most `max_lines`."""
    size = largest
    while size > smallest:
        f = page.font(role, size)
        if len(wrap(text, f, page.inner, tracking * f.size, max_lines + 1)) <= max_lines:
            longest = max(text_width(w, f, tracking * f.size) for w in text.split() or [""])
            if longest <= page.inner:
                return size
        size -= 2
    return smallest
