"""The classic layout's middle: the closest double large, the next ones in a grid, the map."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from PIL import Image, ImageDraw

from appliance.ticket.canvas import INK, PAPER
from appliance.ticket.content import Lookalike, TicketContent
from appliance.ticket.corpus_map import map_part
from appliance.ticket.page import Page, heading, likeness_note
from appliance.ticket.text import draw_text, text_width


def _likeness_bar(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], share: float,
                  page: Page) -> None:
    """A bar of ticks, filled up to `share` (0..1): reads like a gauge, prints clean."""
    x0, y0, x1, y1 = box
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=INK, width=1)
    inner_x0, inner_x1 = x0 + 3, x1 - 4
    filled = inner_x0 + round((inner_x1 - inner_x0) * max(0.0, min(1.0, share)))
    step = max(3, page.px(5))
    for x in range(inner_x0, filled, step):
        draw.rectangle([x, y0 + 3, min(x + step - 2, filled), y1 - 4], fill=INK)


def _caption(page: Page, match: Lookalike, x: int, width: int, draw: ImageDraw.ImageDraw,
             y: int, *, big: bool) -> int:
    """Rank, likeness bar and percentage in one line at (x, y); returns the height used."""
    rank_font = page.font("bold", 30 if big else 21)
    pct_font = page.font("bold", 30 if big else 21)
    rank = f"N°{match.rank}"
    pct = f"{match.likeness:.0f}%"
    rw, pw = text_width(rank, rank_font), text_width(pct, pct_font)
    height = round(rank_font.size * 1.25)
    gap = page.px(10 if big else 6)
    bar_width = width - rw - pw - 2 * gap
    draw.text((x, y), rank, font=rank_font, fill=INK)
    draw.text((x + width - pw, y), pct, font=pct_font, fill=INK)
    if bar_width >= page.px(24):
        bar_h = max(8, round(rank_font.size * 0.55))
        top = y + (round(rank_font.size * 1.1) - bar_h) // 2
        _likeness_bar(draw, (x + rw + gap, top, x + rw + gap + bar_width, top + bar_h),
                      match.likeness / 100, page)
    lines = 0
    if page.layout.show_distance:
        small = page.font("text", 15 if big else 13)
        draw.text((x, y + height), f"distance {match.distance:.3f}", font=small, fill=INK)
        lines = round(small.size * 1.3)
    return height + lines


def _framed(photo: Image.Image, page: Page) -> Image.Image:
    """The photo inside a thin frame with a white gap, like a print mounted on card."""
    gap, line = page.px(4), 1 if page.width < 500 else 2
    w, h = photo.size
    framed = Image.new("L", (w + 2 * (gap + line), h + 2 * (gap + line)), PAPER)
    draw = ImageDraw.Draw(framed)
    draw.rectangle([0, 0, framed.width - 1, framed.height - 1], outline=INK, width=line)
    framed.paste(photo.convert("L"), (gap + line, gap + line))
    return framed


def _hero(page: Page, content: TicketContent) -> None:
    best = content.lookalikes[0]
    visitor = content.visitor_face if page.layout.show_visitor else None
    frame_extra = 2 * (page.px(4) + (1 if page.width < 500 else 2))
    if visitor is None:
        page.cached(("hero-head",), lambda: (heading(page, "your closest double"),
                                              page.space(4)))
        side = page.inner - frame_extra
        framed = _framed(page.photo(best.thumbnail, (side, side)), page)
        img, draw = page.block(framed.height + page.px(12))
        img.paste(framed, (page.margin, 0))
        page.space(2)
        img, draw = page.block(page.px(44))
        _caption(page, best, page.margin, page.inner, draw, 0, big=True)
        likeness_note(page)
        return
    gap = page.px(16)
    cell = (page.inner - gap) // 2
    side = cell - frame_extra
    f = page.font("bold", 17)
    labels = [("you", visitor), (f"your double  N°{best.rank}", best.thumbnail)]
    img, draw = page.block(round(f.size * 1.5) + side + frame_extra + page.px(10))
    for i, (label, face) in enumerate(labels):
        x = page.margin + i * (cell + gap)
        draw_text(draw, (x, 0), label.upper(), f, 0.2 * f.size)
        img.paste(_framed(page.photo(face, (side, side)), page), (x, round(f.size * 1.5)))
    img, draw = page.block(page.px(44))
    _caption(page, best, page.margin, page.inner, draw, 0, big=True)
    likeness_note(page)


def _grid(page: Page, others: Sequence[Lookalike]) -> Iterator[None]:
    """The other doubles in rows; yields after each row (a band)."""
    if not others:
        return
    columns = page.layout.columns or (2 if page.width < 480 or len(others) in (1, 2, 4) else 3)
    page.cached(("grid-head",), lambda: (page.rule(1, gap=10, dotted=True),
                                         heading(page, "and then"), page.space(4)))
    gap = page.px(14)
    cell = (page.inner - gap * (columns - 1)) // columns
    frame_extra = 2 * (page.px(4) + (1 if page.width < 500 else 2))
    side = cell - frame_extra
    caption_h = round(page.font("bold", 21).size * 1.25) + (
        round(page.font("text", 13).size * 1.3) if page.layout.show_distance else 0
    )
    for row_start in range(0, len(others), columns):
        row = others[row_start:row_start + columns]
        img, draw = page.block(side + frame_extra + page.px(6) + caption_h + page.px(14))
        offset = (columns - len(row)) * (cell + gap) // 2  # a short last row is centred
        for i, match in enumerate(row):
            x = page.margin + offset + i * (cell + gap)
            img.paste(_framed(page.photo(match.thumbnail, (side, side)), page), (x, 0))
            _caption(page, match, x, cell, draw, side + frame_extra + page.px(6), big=False)
        yield


def classic_parts(page: Page, content: TicketContent) -> Iterator[None]:
    _hero(page, content)
    yield
    yield from _grid(page, content.lookalikes[1:])
    if page.layout.show_map and content.corpus_map is not None:
        map_part(page, content.corpus_map)
        yield
