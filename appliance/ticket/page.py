"""A ticket being composed: full-width 8-bit blocks, sized for the paper, flushed as bands."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from appliance.fonts import font
from appliance.ticket.canvas import BASE_WIDTH, INK, MIN_TEXT, PAPER, stack, static_piece
from appliance.ticket.dither import dither, render
from appliance.ticket.settings import TicketLayout
from appliance.ticket.text import draw_text, text_width, wrap

_BITS = [PAPER if v >= 128 else INK for v in range(256)]  # 8-bit block -> 1-bit band
#: The longest ticket, in mm of paper (8 dots per mm at 203 dpi, whatever the paper's width):
#: with every text bounded a ticket is far shorter (~30-45 cm); past this it is cut.
MAX_TICKET_MM = 1000
DOTS_PER_MM = 8
#: Lines a text prints as at most when the caller does not say (config texts say their own).
MAX_TEXT_LINES = 12


class Page:
    """A ticket being composed: a stack of full-width 8-bit blocks (0 ink / 255 paper)."""

    def __init__(self, width: int, layout: TicketLayout) -> None:
        if width % 8 or width < 128:
            raise ValueError(f"ticket width must be a multiple of 8 and >= 128, got {width}")
        self.width = width
        self.layout = layout
        self.scale = width / BASE_WIDTH
        self.margin = self.px(layout.margin)
        self.inner = width - 2 * self.margin
        self.blocks: list[Image.Image] = []
        self.dither_seconds = 0.0
        self.length_left = MAX_TICKET_MM * DOTS_PER_MM  # dots of paper still allowed

    def px(self, value: float) -> int:
        return max(1, round(value * self.scale))

    def font(self, role: str, size: float) -> ImageFont.FreeTypeFont:
        path = getattr(self.layout.fonts, role) or None
        return font(role, max(MIN_TEXT, self.px(size)), path)

    def block(self, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("L", (self.width, max(0, int(height))), PAPER)
        draw = ImageDraw.Draw(img)
        draw.fontmode = "1"
        self.blocks.append(img)
        return img, draw

    def space(self, height: float) -> None:
        self.block(self.px(height))

    def cached(self, key: tuple[object, ...], draw: Callable[[], object]) -> None:
        """Append the blocks `draw` adds, drawn once per process for this key, width, layout."""

        def render() -> Image.Image:
            mark = len(self.blocks)
            draw()
            piece = stack(self.blocks[mark:], self.width)
            del self.blocks[mark:]
            return piece

        self.blocks.append(static_piece((*key, self.width, self.layout), render))

    def number(self, number: int) -> str:
        return f"N° {number:0{self.layout.number_digits}d}"

    def photo(self, gray: np.ndarray, size: tuple[int, int]) -> Image.Image:
        start = time.perf_counter()
        bits = render(crop_to_aspect(np.asarray(gray, dtype=np.uint8), size), self.layout.tone,
                      size)
        self.dither_seconds += time.perf_counter() - start
        return Image.fromarray(bits)

    def dither_gray(self, gray: np.ndarray) -> Image.Image:
        """Dither an already prepared gray composition (no further tone changes)."""
        start = time.perf_counter()
        tone = self.layout.tone
        bits = dither(gray, tone.method, serpentine=tone.serpentine, bayer_size=tone.bayer_size)
        self.dither_seconds += time.perf_counter() - start
        return Image.fromarray(bits)

    def text(self, text: str, role: str, size: float, *, align: str = "center",
             tracking: float = 0.0, leading: float = 1.25, width: int | None = None,
             max_lines: int = MAX_TEXT_LINES) -> None:
        """Wrapped text across the inner width (or `width`), as its own block, cut after
        `max_lines` lines (ending with an ellipsis)."""
        f = self.font(role, size)
        track = tracking * f.size
        lines = wrap(text, f, width or self.inner, track, max_lines)
        line_height = round(f.size * leading)
        _, draw = self.block(line_height * len(lines))
        for i, line in enumerate(lines):
            w = text_width(line, f, track)
            x = {"left": self.margin, "right": self.width - self.margin - w}.get(
                align, (self.width - w) // 2
            )
            draw_text(draw, (x, i * line_height), line, f, track)

    def rule(self, thickness: float = 1, *, gap: float = 6, dotted: bool = False) -> None:
        t = self.px(thickness) if thickness >= 1 else 1
        g = self.px(gap)
        _, draw = self.block(t + 2 * g)
        if dotted:
            step = self.px(6)
            for x in range(self.margin, self.width - self.margin, step):
                draw.rectangle([x, g, x + max(1, step // 3) - 1, g + t - 1], fill=INK)
        else:
            draw.rectangle([self.margin, g, self.width - self.margin - 1, g + t - 1], fill=INK)

    def flush(self) -> Image.Image | None:
        """The blocks added since the last flush as one mode "1" band; None if there are none
        (or if the ticket reached MAX_TICKET_MM: what is past it is cut off)."""
        blocks, self.blocks = self.blocks, []
        height = min(sum(b.height for b in blocks), self.length_left)
        if height <= 0:
            return None
        self.length_left -= height
        band = stack(blocks, self.width)
        if band.height > height:
            band = band.crop((0, 0, self.width, height))
        return band.point(_BITS, "1")


def crop_to_aspect(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The centred crop of `gray` with the aspect ratio of `size` (width, height)."""
    h, w = gray.shape[:2]
    want = size[0] / size[1]
    if w > h * want + 1:
        keep = max(1, round(h * want))
        return gray[:, (w - keep) // 2:(w - keep) // 2 + keep]
    if h > w / want + 1:
        keep = max(1, round(w / want))
        return gray[(h - keep) // 2:(h - keep) // 2 + keep]
    return gray


def heading(page: Page, text: str) -> None:
    page.text(text.upper(), "bold", 17, tracking=0.25, leading=1.5)


#: What the likeness printed beside a double measures (a machine's closeness, not a person's).
LIKENESS_NOTE = "% alike: how close a face recogniser (dlib) finds the faces, not a human eye"


def likeness_note(page: Page) -> None:
    """The line saying what the likeness measures (drawn once per process and width)."""
    page.cached(("likeness-note",), lambda: page.text(LIKENESS_NOTE, "note", 14, leading=1.3))
