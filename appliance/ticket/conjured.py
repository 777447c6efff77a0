"""The second, short ticket of `ticket.conjure: after`: the visitor's conjured double.

The face is the generator's own 64x64 image (upscaled to `face_side` dots and dithered like
every photo on the ticket), under a heading, with its likeness (dlib's descriptor distance, not
a human judgement) and how it compares with the corpus's nearest face. Nothing of the visitor is
printed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from appliance.likeness import likeness
from appliance.ticket.page import Page
from appliance.ticket.settings import TicketLayout
from appliance.ticket.stream import ticket_width

FACE_SIDE = 400  # dots at 576 wide, scales with the width (never wider than the margins allow)


def face_side(width: int, layout: TicketLayout | None = None) -> int:
    """The side in dots of the conjured face on a ticket `width` dots wide."""
    page = Page(width, layout or TicketLayout())
    return min(page.inner, page.px(FACE_SIDE))


def compose_conjured(face: np.ndarray, distance: float, *, nearest: float | None = None,
                     corpus_count: int = 0, seconds: float = 0.0, number: int | None = None,
                     layout: TicketLayout | None = None, width: int | None = None) -> Image.Image:
    """A mode "1" ticket showing the conjured `face` (RGB or gray uint8) and its likeness,
    `ticket_width(layout, width)` dots wide."""
    layout = layout or TicketLayout()
    page = Page(ticket_width(layout, width), layout)
    gray = np.asarray(Image.fromarray(np.asarray(face, np.uint8)).convert("L"))
    page.space(14)
    page.rule(1, gap=0)
    page.space(14)
    page.text("YOUR CONJURED DOUBLE", "bold", 19, tracking=0.2, leading=1.4)
    page.text("a face that did not exist a minute ago", "note", 18)
    page.space(10)
    side = face_side(page.width, layout)
    image, _ = page.block(side)
    image.paste(page.photo(gray, (side, side)).convert("L"), ((page.width - side) // 2, 0))
    page.space(10)
    page.text(f"{likeness(distance):.0f} % alike", "title", 38, tracking=0.05)
    page.text("to a face recogniser (dlib), not a human eye", "note", 15)
    if nearest is not None and corpus_count:
        compare = (f"closer to you than any of the {corpus_count:,} faces searched"
                   if distance < nearest else
                   f"the nearest of the {corpus_count:,} faces searched stays closer")
        page.text(compare, "text", 17, leading=1.35)
    if seconds:
        page.text(f"made in {seconds:.0f} s by searching a face generator", "text", 15)
    if number is not None:
        page.space(6)
        page.text(page.number(number), "text", 15)
    page.space(10)
    page.text(layout.privacy, "note", 15, leading=1.3)
    page.space(24)
    return page.flush() or Image.new("1", (page.width, 0))
