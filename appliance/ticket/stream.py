"""The ticket as bands, header first, composed as the printer asks for them; whole tickets."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from PIL import Image

from appliance.errors import one_line
from appliance.faults import TicketError
from appliance.replay import Replay
from appliance.ticket.canvas import BASE_WIDTH, stack
from appliance.ticket.classic import classic_parts
from appliance.ticket.content import TicketContent
from appliance.ticket.header_footer import footer, header, number_and_date
from appliance.ticket.mugshot import mugshot_part
from appliance.ticket.page import Page
from appliance.ticket.settings import Installation, TicketLayout, text_lines


class Ticket(Replay[Image.Image]):
    """A ticket composed lazily, band by band (header first), for streaming to the printer.

    Iterating yields the bands (mode "1", full width), composing each when it is first asked
    for; a second iteration replays the composed ones (a printer's retry: the one replay buffer
    of a ticket). A band that failed to compose fails every iteration from there on, as a
    `TicketError`: the ticket's own fault, never the printer's.
    """

    def __init__(self, bands: Iterable[Image.Image], width: int,
                 timings: dict[str, float] | None = None) -> None:
        super().__init__(_composition_errors(bands))
        self.width = width
        self.timings = timings if timings is not None else {}

    @property
    def band_seconds(self) -> list[float]:
        """Composing time of each band so far."""
        return self.item_seconds

    def image(self) -> Image.Image:
        """The whole ticket as one mode "1" image (composes what is left)."""
        return stack(self, self.width, "1")


def _composition_errors(bands: Iterable[Image.Image]) -> Iterator[Image.Image]:
    try:
        yield from bands
    except TicketError:
        raise
    except Exception as exc:
        raise TicketError(f"ticket composition failed: {one_line(exc)}") from exc


def ticket_width(layout: TicketLayout, paper_width: int | None) -> int:
    """The ticket's width in dots: `ticket.width`, else the paper's (else 576)."""
    return layout.width or paper_width or BASE_WIDTH


ContentSource = TicketContent | Callable[[], TicketContent]


def ticket_bands(content: ContentSource, layout: TicketLayout | None = None,
                 installation: Installation | None = None, *, width: int | None = None,
                 timings: dict[str, float] | None = None) -> Iterator[Image.Image]:
    """The visitor's ticket as mode "1" bands, top to bottom, each composed when asked for.

    The first band is the header art, the same for every visitor; `content` may be a function,
    called only after that band is out (reading the lookalikes' photos then costs nothing
    before the printer's first byte). `timings`, if given, accumulates "dither" (photos) and
    "layout" (everything else, including a `content` function), seconds.
    """
    layout = layout or TicketLayout()
    installation = installation or Installation()
    if isinstance(content, TicketContent):
        _check_content(content)
    page = Page(ticket_width(layout, width), layout)
    return _banded(page, _parts(page, content, installation), timings)


def visitor_ticket(content: ContentSource, layout: TicketLayout | None = None,
                   installation: Installation | None = None, *, width: int | None = None,
                   timings: dict[str, float] | None = None) -> Ticket:
    """The visitor's lazy `Ticket` (the bands of `ticket_bands`, `ticket_width` dots wide),
    whose `timings` are the ones given (filled as its bands are composed)."""
    timings = timings if timings is not None else {}
    bands = ticket_bands(content, layout, installation, width=width, timings=timings)
    return Ticket(bands, ticket_width(layout or TicketLayout(), width), timings)


def _check_content(content: TicketContent) -> None:
    if not content.lookalikes:
        raise ValueError("a ticket needs at least one lookalike")


def _fitted(content: TicketContent, layout: TicketLayout) -> TicketContent:
    """`content` with at most `layout.lookalikes` doubles (and as many on the map)."""
    _check_content(content)
    matches = list(content.lookalikes)[: layout.lookalikes]
    corpus_map = content.corpus_map
    if corpus_map is not None:
        corpus_map = dataclasses.replace(corpus_map,
                                         lookalikes=corpus_map.lookalikes[: len(matches)])
    return dataclasses.replace(content, lookalikes=matches, corpus_map=corpus_map)


def _banded(page: Page, parts: Iterator[None], timings: dict[str, float] | None
            ) -> Iterator[Image.Image]:
    """Run `parts` (which yield at band boundaries) and yield the page's bands."""
    start = time.perf_counter()
    for _ in parts:
        band = page.flush()
        _record(timings, start, page)
        if band is not None:
            yield band
        start = time.perf_counter()


def _parts(page: Page, source: ContentSource, installation: Installation) -> Iterator[None]:
    """The whole ticket; yields at each band boundary."""
    mugshot = page.layout.layout == "mugshot"
    header(page, installation, compact=mugshot)
    yield  # the same for every visitor: no work before the first byte
    content = _fitted(source() if callable(source) else source, page.layout)
    number_and_date(page, content.number, content.when)
    page.space(8 if mugshot else 6)
    yield
    if mugshot:
        mugshot_part(page, content, installation)
        yield
    else:
        yield from classic_parts(page, content)
    footer(page, content.number, content.when)
    yield


def compose_ticket(content: TicketContent, layout: TicketLayout | None = None,
                   installation: Installation | None = None, *, width: int | None = None,
                   timings: dict[str, float] | None = None) -> Image.Image:
    """The visitor's whole ticket as one PIL mode "1" image: the bands of `ticket_bands`."""
    bands = ticket_bands(content, layout, installation, width=width, timings=timings)
    return stack(bands, ticket_width(layout or TicketLayout(), width), "1")


def compose_no_face(layout: TicketLayout | None = None, installation: Installation | None = None,
                    *, reason: str = "", number: int = 1, when: datetime | None = None,
                    width: int | None = None) -> Image.Image:
    """A short ticket saying no face was found, and how to try again (no date if `when` is None)."""
    layout = layout or TicketLayout()
    installation = installation or Installation()
    page = Page(ticket_width(layout, width), layout)
    header(page, installation, compact=True)
    number_and_date(page, number, when)
    page.cached(("no-face-head",), lambda: (page.space(22), page.text(
        "NO FACE FOUND", "title", 44, tracking=0.12), page.space(8)))
    if reason:
        reason = reason.strip().rstrip(".")
        page.text(reason[:1].upper() + reason[1:] + ".", "note", 19)
        page.space(8)
    page.cached(("no-face-hint",), lambda: (page.text(
        layout.retry_hint, "text", 18, leading=1.35,
        max_lines=text_lines(TicketLayout, "retry_hint")), page.space(14)))
    footer(page, number, when)
    return page.flush() or Image.new("1", (page.width, 0))


def _record(timings: dict[str, float] | None, start: float, page: Page) -> None:
    """Add the time since `start` to `timings`: the page's dither time, the rest as layout."""
    if timings is None:
        return
    total = time.perf_counter() - start
    timings["dither"] = timings.get("dither", 0.0) + page.dither_seconds
    timings["layout"] = timings.get("layout", 0.0) + total - page.dither_seconds
    page.dither_seconds = 0.0
