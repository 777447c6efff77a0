"""The ticket streamed band by band: same dots as the one-shot ticket, header on the wire first,
pre-rendered parts equal to fresh drawing, and a ticket that fails half-way is cut off."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np
import pytest
from PIL import Image
from test_printer import FakeConnection, make_fake_printer, random_ticket
from test_ticket import WHEN, content
from test_visit import FakeAnalyzer, FakeCorpus, FakeFace

from appliance.parts.printer import (
    BandEncoder,
    Paper,
    PrinterSettings,
    StreamJob,
    VirtualPrinter,
    encode_ticket,
)
from appliance.parts.printer.decode import decode
from appliance.runtime.lookup import Lookup
from appliance.ticket import (
    Installation,
    Ticket,
    TicketError,
    TicketLayout,
    clear_static,
    compose_no_face,
    compose_ticket,
    ticket_bands,
)

LAYOUTS = [TicketLayout(), TicketLayout(layout="mugshot"), TicketLayout(show_visitor=True),
           TicketLayout(show_map=False, lookalikes=10, show_distance=True)]


def bits(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L")) < 128


class RecordingConnection(FakeConnection):
    """Notes how many bands were composed when each write arrived."""

    def __init__(self, ticket: Ticket | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ticket = ticket
        self.bands_at_write: list[int] = []

    def _raw(self, data: bytes) -> None:
        if self.ticket is not None:
            self.bands_at_write.append(len(self.ticket.band_seconds))
        super()._raw(data)


@pytest.mark.parametrize("width", [384, 512, 576])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["classic", "mugshot", "visitor", "grid"])
def test_streamed_ticket_prints_the_same_dots_as_the_one_shot_ticket(width, layout):
    one_shot = compose_ticket(content(10, visitor=True), layout, width=width)
    ticket = Ticket(ticket_bands(content(10, visitor=True), layout, width=width), width)
    bands = list(ticket)
    assert len(bands) >= 3 and all(b.mode == "1" and b.width == width for b in bands)
    assert np.array_equal(bits(ticket.image()), bits(one_shot))

    connection = RecordingConnection(ticket)
    printer, events = make_fake_printer([connection], check_status=False, width=width)
    fresh = Ticket(ticket_bands(content(10, visitor=True), layout, width=width), width)
    connection.ticket = fresh
    receipt = printer.print_ticket(fresh)
    assert not events and receipt.bytes_sent == len(connection.written)
    assert len(receipt.encode_seconds) == len(bands)
    paper = decode(bytes(connection.written), width)
    assert len(paper.pieces) == 1 and paper.pieces[0].cut == "full"
    assert np.array_equal(bits(paper.pieces[0].image), bits(one_shot))
    # the header went out when only it was composed; the rest followed band by band
    assert connection.bands_at_write[0] == 1
    assert connection.bands_at_write == sorted(connection.bands_at_write)


def test_one_image_and_its_bands_encode_to_the_same_raster():
    ticket = random_ticket(576, 300, seed=3)
    bands = [ticket.crop((0, y, 576, min(300, y + 70))) for y in range(0, 300, 70)]
    settings = PrinterSettings()
    whole, banded = encode_ticket(ticket, settings, 576), encode_ticket(bands, settings, 576)
    assert banded.data.startswith(b"\x1b@") and banded.data.endswith(whole.segments[-1])
    assert np.array_equal(bits(decode(banded.data, 576).image), bits(decode(whole.data, 576).image))


def test_virtual_printer_png_is_the_streamed_ticket(tmp_path):
    ticket = Ticket(ticket_bands(content(5), width=576), 576)
    receipt = VirtualPrinter(tmp_path).print_ticket(ticket)
    png = next(p for p in receipt.files if p.suffix == ".png")
    assert np.array_equal(bits(Image.open(png)), bits(ticket.image()))
    assert np.array_equal(bits(ticket.image()), bits(compose_ticket(content(5))))


def test_retry_after_unplugging_replays_the_composed_bands():
    ticket = Ticket(ticket_bands(content(5), width=576), 576)
    broken, healthy = FakeConnection(fail_after=30_000), FakeConnection()
    printer, events = make_fake_printer([broken, healthy], check_status=False)
    receipt = printer.print_ticket(ticket)
    assert receipt.attempts == 2 and [e.kind for e in events] == ["disconnected"]
    paper = decode(bytes(healthy.written), 576)
    assert paper.pieces[0].cut == "full"  # the spoiled start, padded and cut off
    assert np.array_equal(bits(paper.pieces[-1].image), bits(compose_ticket(content(5))))


def failing_bands(good: list[Image.Image]):
    yield from good
    raise OSError("thumbnail vanished")


def test_a_band_that_fails_after_the_header_was_sent_is_cut_off():
    header = next(iter(Ticket(ticket_bands(content(3), width=576), 576)))
    connection = FakeConnection()
    printer, events = make_fake_printer([connection], check_status=False)
    with pytest.raises(TicketError, match="thumbnail vanished"):
        printer.print_ticket(failing_bands([header]))
    assert [(e.kind, e.will_retry) for e in events] == [("aborted", False)]
    paper = decode(bytes(connection.written), 576)
    assert len(paper.pieces) == 1 and paper.pieces[0].cut == "full"  # fed and cut right away
    assert np.array_equal(bits(paper.pieces[0].image)[: header.height], bits(header))
    assert not bits(paper.pieces[0].image)[header.height:].any()  # nothing but blank feed
    # the next ticket prints clean, after nothing left over
    connection.written.clear()
    printer.print_ticket(header)
    assert len(decode(bytes(connection.written), 576).pieces) == 1


def test_a_ticket_failing_on_its_first_band_sends_nothing(tmp_path):
    connection = FakeConnection()
    printer, events = make_fake_printer([connection], check_status=False)
    with pytest.raises(TicketError):
        printer.print_ticket(failing_bands([]))
    assert connection.written == bytearray() and [e.kind for e in events] == ["aborted"]
    with pytest.raises(TicketError):
        VirtualPrinter(tmp_path).print_ticket(failing_bands([random_ticket(576, 8)]))
    assert not list(tmp_path.iterdir())  # no half ticket on disk either


def test_the_cut_off_is_queued_when_the_printer_is_gone_too():
    header = random_ticket(576, 40, seed=1)
    connection = FakeConnection(fail_after=10**9)
    printer, _ = make_fake_printer([connection], check_status=False)
    connection.fail_after = None

    def bands():
        yield header
        connection.fail_after = len(connection.written)  # unplugged while composing
        raise RuntimeError("layout bug")

    with pytest.raises(TicketError):
        printer.print_ticket(bands())
    connection.fail_after = None
    before = len(connection.written)
    printer.print_ticket(header)
    paper = decode(bytes(connection.written[before:]), 576)
    assert [p.cut for p in paper.pieces] == ["full", "full"]  # the separator, then the ticket


def test_a_broken_ticket_fails_every_later_iteration():
    ticket = Ticket(failing_bands([random_ticket(576, 8)]), 576)
    with pytest.raises(TicketError, match="ticket composition failed: thumbnail vanished"):
        list(ticket)
    with pytest.raises(TicketError, match="thumbnail vanished"):
        ticket.image()


# ---------------------------------------------------------------------------------------------
# Pre-rendered parts


@pytest.mark.parametrize("layout", LAYOUTS[:3], ids=["classic", "mugshot", "visitor"])
def test_cached_parts_give_the_same_pixels_as_fresh_drawing(layout):
    clear_static()
    fresh = compose_ticket(content(5, visitor=True), layout)  # drawn, and remembered
    other = dataclasses.replace(content(5, visitor=True), number=7,
                                when=datetime(2027, 1, 2, 3, 4, 5))
    compose_ticket(other, layout)
    cached = compose_ticket(content(5, visitor=True), layout)
    assert np.array_equal(bits(cached), bits(fresh))
    clear_static()
    assert np.array_equal(bits(compose_ticket(other, layout)),
                          bits(compose_ticket(other, layout)))


def test_cached_header_and_map_follow_installation_width_and_corpus():
    clear_static()
    a, b = Installation(title="Sosie"), Installation(title="Doppelganger", subtitle="")
    first_a = compose_ticket(content(2), installation=a)
    first_b = compose_ticket(content(2), installation=b)
    assert not np.array_equal(bits(first_a)[:200], bits(first_b)[:200])
    moved = content(2)
    moved = dataclasses.replace(moved, corpus_map=dataclasses.replace(
        moved.corpus_map, points=moved.corpus_map.points * 0.5))
    shifted = compose_ticket(moved, installation=a)
    clear_static()
    assert np.array_equal(bits(compose_ticket(moved, installation=a)), bits(shifted))
    assert np.array_equal(bits(compose_ticket(content(2), installation=b)), bits(first_b))
    assert compose_ticket(content(2), width=384).width == 384


# ---------------------------------------------------------------------------------------------
# No date when the clock cannot be trusted


def test_undated_ticket_keeps_its_number_and_loses_only_the_dates():
    dated = compose_ticket(content(3))
    undated = compose_ticket(dataclasses.replace(content(3), when=None))
    again = compose_ticket(dataclasses.replace(content(3), when=None))
    assert np.array_equal(bits(undated), bits(again))
    assert dated.size == undated.size and not np.array_equal(bits(dated), bits(undated))
    renumbered = compose_ticket(dataclasses.replace(content(3), when=None, number=43))
    assert not np.array_equal(bits(renumbered), bits(undated))
    mugshot = TicketLayout(layout="mugshot")
    undated_mugshot = compose_ticket(dataclasses.replace(content(2, visitor=True), when=None),
                                     mugshot)
    assert not np.array_equal(bits(undated_mugshot),
                              bits(compose_ticket(content(2, visitor=True), mugshot)))
    short = compose_no_face(reason="no face", number=3, when=None)
    assert not np.array_equal(bits(short), bits(compose_no_face(reason="no face", number=3,
                                                                 when=WHEN)))


def test_the_first_band_is_the_same_for_every_visitor_and_encoded_once():
    other = dataclasses.replace(content(2), number=99, when=None)
    first = [next(iter(Ticket(ticket_bands(c, width=576), 576))) for c in (content(5), other)]
    assert np.array_equal(bits(first[0]), bits(first[1]))
    warm = BandEncoder(PrinterSettings(), Paper(576, PrinterSettings().profile))
    StreamJob(Ticket(ticket_bands(content(5), width=576), 576), warm).job()
    remembered = StreamJob(Ticket(ticket_bands(other, width=576), 576), warm).job()
    fresh = StreamJob(Ticket(ticket_bands(other, width=576), 576),
                      BandEncoder(PrinterSettings(), Paper(576, PrinterSettings().profile))).job()
    assert remembered.data == fresh.data


def test_the_lookalikes_photos_are_read_only_after_the_header_band():
    class CountingCorpus(FakeCorpus):
        reads = 0

        def thumbnail(self, i):
            CountingCorpus.reads += 1
            return super().thumbnail(i)

    corpus = CountingCorpus()
    lookup = Lookup(FakeAnalyzer(FakeFace(corpus.vectors[2].astype(np.float32))), corpus,
                    layout=TicketLayout(lookalikes=4))
    result = lookup.look_up(None, when=WHEN)
    bands = iter(result.ticket)
    next(bands)
    assert CountingCorpus.reads == 0  # the header art went out first
    next(bands)
    assert CountingCorpus.reads == 4
    assert "thumbnails" in result.ticket.timings
    eager = content(4)
    assert np.array_equal(bits(Ticket(ticket_bands(lambda: eager), 576).image()),
                          bits(compose_ticket(eager)))
