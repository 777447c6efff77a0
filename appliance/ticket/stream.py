"""The ticket as bands, header first, composed as the printer asks for them; whole tickets."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from PIL import Image

from appliance.ticket.canvas import BASE_WIDTH, stack
from appliance.ticket.classic import _classic_parts
from appliance.ticket.content import Installation, TicketContent, TicketLayout
from appliance.ticket.header_footer import _footer, _number_and_date, _title
from appliance.ticket.mugshot import _mugshot
from appliance.ticket.page import Page


class Ticket:
    """A ticket composed lazily, band by band (header first), for streaming to the printer.

    Iterating yields the bands (mode "1", full width), composing each when it is first asked
    for; a second iteration replays the composed ones (a printer's retry). A band that failed
    to compose fails every iteration from there on: a ticket is never silently cut short.
    """

    def __init__(self, bands: Iterator[Image.Image], width: int,
                 timings: dict[str, float] | None = None) -> None:
        self.width = width
        self.timings = timings if timings is not None else {}
        self.band_seconds: list[float] = []  # composing time of each band
        self._source: Iterator[Image.Image] | None = bands
        self._bands: list[Image.Image] = []
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[Image.Image]:
        i = 0
        while i < len(self._bands) or self._more():
            yield self._bands[i]
            i += 1

    def _more(self) -> bool:
        """Compose the next band; False when the ticket is complete."""
        if self._error is not None:
            raise self._error
        if self._source is None:
            return False
        start = time.perf_counter()
        try:
            self._bands.append(next(self._source))
        except StopIteration:
            self._source = None
            return False
        except Exception as exc:
            self._source, self._error = None, exc
            raise
        self.band_seconds.append(time.perf_counter() - start)
        return True

    def image(self) -> Image.Image:
        """The whole ticket as one mode "1" image (composes what is left)."""
        return stack(self, self.width, "1")


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
    page = Page(layout.width or width or BASE_WIDTH, layout)
    return _banded(page, _parts(page, content, installation), timings)


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
    _title(page, installation, compact=mugshot)
    yield  # the same for every visitor: no work before the first byte
    content = _fitted(source() if callable(source) else source, page.layout)
    _number_and_date(page, content.number, content.when)
    page.space(8 if mugshot else 6)
    yield
    if mugshot:
        _mugshot(page, content, installation)
        yield
    else:
        yield from _classic_parts(page, content)
    _footer(page, content.number, content.when)
    yield


def compose_ticket(content: TicketContent, layout: TicketLayout | None = None,
                   installation: Installation | None = None, *, width: int | None = None,
                   timings: dict[str, float] | None = None) -> Image.Image:
    """The visitor's whole ticket as one PIL mode "1" image: the bands of `ticket_bands`."""
    bands = ticket_bands(content, layout, installation, width=width, timings=timings)
    return stack(bands, (layout and layout.width) or width or BASE_WIDTH, "1")


def compose_no_face(layout: TicketLayout | None = None, installation: Installation | None = None,
                    *, reason: str = "", number: int = 1, when: datetime | None = None,
                    width: int | None = None) -> Image.Image:
    """A short ticket saying no face was found, and how to try again (no date if `when` is None)."""
    layout = layout or TicketLayout()
    installation = installation or Installation()
    page = Page(layout.width or width or BASE_WIDTH, layout)
    _title(page, installation, compact=True)
    _number_and_date(page, number, when)
    page.cached(("no-face-head",), lambda: (page.space(22), page.text(
        "NO FACE FOUND", "title", 44, tracking=0.12), page.space(8)))
    if reason:
        reason = reason.strip().rstrip(".")
        page.text(reason[:1].upper() + reason[1:] + ".", "note", 19)
        page.space(8)
    page.cached(("no-face-hint",), lambda: (page.text(layout.retry_hint, "text", 18,
                                                      leading=1.35), page.space(14)))
    _footer(page, number, when)
    return page.flush() or Image.new("1", (page.width, 0))


def _record(timings: dict[str, float] | None, start: float, page: Page) -> None:
    """Add the time since `start` to `timings`: the page's dither time, the rest as layout."""
    if timings is None:
        return
    total = time.perf_counter() - start
    timings["dither"] = timings.get("dither", 0.0) + page.dither_seconds
    timings["layout"] = timings.get("layout", 0.0) + total - page.dither_seconds
    page.dither_seconds = 0.0
