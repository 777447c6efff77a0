"""Typesetting without anti-aliasing: advance widths, tracked text, word wrap, fitting sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import ImageDraw, ImageFont

from appliance.ticket.canvas import INK

if TYPE_CHECKING:
    from appliance.ticket.page import Page


def text_width(text: str, f: ImageFont.FreeTypeFont, tracking: float = 0.0) -> int:
    """Advance width of `text` in dots, with `tracking` extra dots between letters."""
    if not text:
        return 0
    if not tracking:
        return round(f.getlength(text))
    return round(sum(f.getlength(c) for c in text) + tracking * (len(text) - 1))


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
              f: ImageFont.FreeTypeFont, tracking: float = 0.0, fill: int = INK) -> None:
    x, y = xy
    if not tracking:
        draw.text((x, y), text, font=f, fill=fill)
        return
    for c in text:
        draw.text((x, y), c, font=f, fill=fill)
        x += f.getlength(c) + tracking


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int, tracking: float = 0.0) -> list[str]:
    """Greedy word wrap to `width` dots; words longer than a line are split (never clipped)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if text_width(candidate, f, tracking) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while len(word) > 1 and text_width(word, f, tracking) > width:
                cut = _fitting_prefix(word, f, width, tracking)
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def _fitting_prefix(word: str, f: ImageFont.FreeTypeFont, width: int, tracking: float) -> int:
    """How many leading letters of `word` fit in `width` (at least one)."""
    used = 0.0
    for i, c in enumerate(word):
        used += f.getlength(c) + (tracking if i else 0.0)
        if i and round(used) > width:
            return i
    return len(word)


def fit_size(text: str, role: str, page: Page, largest: float, smallest: float,
             tracking: float, max_lines: int) -> float:
    """The largest size (576-dot units) whose wrap of `text` takes at most `max_lines`."""
    size = largest
    while size > smallest:
        f = page.font(role, size)
        if len(wrap(text, f, page.inner, tracking * f.size)) <= max_lines:
            longest = max(text_width(w, f, tracking * f.size) for w in text.split() or [""])
            if longest <= page.inner:
                return size
        size -= 2
    return smallest
