"""The parts every ticket shares: the header art, the number-and-date row, the footer."""

from __future__ import annotations

from datetime import datetime

from appliance.ticket.canvas import INK
from appliance.ticket.page import Page
from appliance.ticket.settings import Installation, TicketLayout, text_lines
from appliance.ticket.text import fit_size, text_width

TITLE_LINES = text_lines(Installation, "title")


def header(page: Page, installation: Installation, *, compact: bool = False) -> None:
    """The header art: rules, the installation's title and subtitle (drawn once)."""
    page.cached(("header", installation, compact),
                lambda: _header_art(page, installation, compact=compact))


def number_and_date(page: Page, number: int, when: datetime | None) -> None:
    date = when.strftime(page.layout.date_format) if when is not None else ""
    _meta_row(page, page.number(number), date)
    page.cached(("header-rule",), lambda: page.rule(1, gap=6, dotted=True))


def _header_art(page: Page, installation: Installation, *, compact: bool) -> None:
    page.space(10)
    page.rule(5, gap=0)
    page.space(4)
    page.rule(1, gap=0)
    page.space(18 if not compact else 12)
    title = installation.title.strip().upper() or "SOSIE"
    tracking = 0.16
    largest = 58 if compact else 76
    size = fit_size(title, "title", page, largest, 26, tracking, TITLE_LINES)
    page.text(title, "title", size, tracking=tracking, leading=1.12, max_lines=TITLE_LINES)
    if installation.subtitle.strip():
        page.space(4)
        page.text(installation.subtitle.strip(), "note", 21, leading=1.3,
                  max_lines=text_lines(Installation, "subtitle"))
    page.space(14)
    page.rule(1, gap=0)
    page.space(4)
    page.rule(5, gap=0)
    page.space(8)


def _meta_row(page: Page, left: str, right: str) -> None:
    f = page.font("text", 19)
    line_height = round(f.size * 1.35)
    lw, rw = text_width(left, f), text_width(right, f)
    if lw + rw + page.px(16) <= page.inner:
        _, draw = page.block(line_height)
        draw.text((page.margin, 0), left, font=f, fill=INK)
        draw.text((page.width - page.margin - rw, 0), right, font=f, fill=INK)
    else:
        page.text(left, "text", 19, align="left")
        page.text(right, "text", 19, align="left")


def footer(page: Page, number: int, when: datetime | None) -> None:
    page.cached(("footer-top",), lambda: (page.rule(1, gap=12), page.text(
        page.layout.privacy, "note", 19, leading=1.35,
        max_lines=text_lines(TicketLayout, "privacy")), page.space(8)))
    stamp = page.number(number)
    if when is not None:
        stamp = f"{when:%Y-%m-%d %H:%M:%S} · {stamp}"
    page.text(stamp, "text", 14)
    page.cached(("footer-end",), lambda: (page.space(6), page.rule(5, gap=0), page.space(16)))
