"""Ticket layout: widths, k = 1..10, wrapping, nothing printed past the paper's edges."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import ConfigError, load, parse, section
from appliance.fonts import FontError, font
from appliance.ticket import (
    NO_FACE_TEXT,
    CorpusMap,
    Installation,
    Lookalike,
    TicketContent,
    TicketLayout,
    compose_no_face,
    compose_ticket,
    crop_to_aspect,
    simple_text_ticket,
    text_width,
    wrap,
)

WHEN = datetime(2026, 11, 22, 1, 23, 45)
EDGE = 4  # dots at each side of the paper that must stay blank (printers cannot reach them)


def face_like(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    oval = ((x - 0.5) / 0.35) ** 2 + ((y - 0.5) / 0.45) ** 2 < 1
    img = 40 + 150 * oval + 30 * np.sin(7 * x + seed) + rng.normal(0, 10, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def content(k: int, *, visitor: bool = False, with_map: bool = True) -> TicketContent:
    matches = [Lookalike(r, 100 + r, 0.3 + 0.05 * r, face_like(r)) for r in range(1, k + 1)]
    rng = np.random.default_rng(5)
    points = rng.normal(size=(800, 2))
    corpus_map = CorpusMap(points, 200_000, (0.2, -0.1), tuple(map(tuple, points[:k])))
    return TicketContent(matches, 42, WHEN, face_like(99) if visitor else None,
                         corpus_map if with_map else None)


def ink(image) -> np.ndarray:
    return ~np.asarray(image)


def assert_printable(image, width: int) -> None:
    assert image.mode == "1" and image.width == width and image.height > 0
    printed = ink(image)
    assert not printed[:, :EDGE].any() and not printed[:, -EDGE:].any(), "ink at the edge"


@pytest.mark.parametrize("width", [384, 512, 576])
@pytest.mark.parametrize("layout", ["classic", "mugshot"])
def test_each_layout_at_each_paper_width(width, layout):
    ticket = compose_ticket(content(5, visitor=True), TicketLayout(layout=layout), width=width)
    assert_printable(ticket, width)
    assert_printable(compose_no_face(reason="no face in the photo", width=width), width)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 10), width=st.sampled_from([384, 512, 576]),
       show_visitor=st.booleans(), columns=st.integers(0, 4))
def test_any_k_fits_the_paper(k, width, show_visitor, columns):
    layout = TicketLayout(lookalikes=10, show_visitor=show_visitor, columns=columns)
    assert_printable(compose_ticket(content(k, visitor=True), layout, width=width), width)


def test_more_lookalikes_make_a_longer_ticket_and_k_caps_them():
    heights = [compose_ticket(content(k), TicketLayout(lookalikes=10)).height
               for k in (1, 2, 5, 10)]
    assert heights == sorted(heights) and heights[0] < heights[-1]
    capped = compose_ticket(content(10), TicketLayout(lookalikes=3))
    exact = compose_ticket(content(3), TicketLayout(lookalikes=3))
    assert np.array_equal(np.asarray(capped), np.asarray(exact))


def test_visitor_face_is_not_printed_unless_asked():
    without = compose_ticket(content(3, visitor=False))
    given_but_off = compose_ticket(content(3, visitor=True))
    assert np.array_equal(np.asarray(without), np.asarray(given_but_off))
    shown = compose_ticket(content(3, visitor=True), TicketLayout(show_visitor=True))
    assert not np.array_equal(np.asarray(shown)[: without.height], np.asarray(without))


def test_map_can_be_left_out():
    with_map = compose_ticket(content(3))
    without = compose_ticket(content(3), TicketLayout(show_map=False))
    no_data = compose_ticket(content(3, with_map=False))
    assert without.height < with_map.height
    assert np.array_equal(np.asarray(without), np.asarray(no_data))


def test_composition_is_deterministic_and_timed():
    timings: dict[str, float] = {}
    first = compose_ticket(content(4), timings=timings)
    second = compose_ticket(content(4))
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert timings["dither"] > 0 and timings["layout"] > 0


@pytest.mark.parametrize("width", [384, 576])
def test_long_titles_wrap_instead_of_overflowing(width):
    short = compose_ticket(content(1), installation=Installation(title="Sosie"), width=width)
    title = "The Museum of Faces That Never Existed And Never Will Be"  # within the 80 letters
    long = compose_ticket(content(1), installation=Installation(title=title, subtitle=title * 3),
                          width=width)
    assert_printable(long, width)
    assert long.height > short.height + 60
    one_word = "Doppelgängerausstellungseröffnungsfeierlichkeiten" * 2
    assert_printable(compose_ticket(content(1), installation=Installation(title=one_word),
                                    width=width), width)


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzÄé  \n")),
                    max_size=200),
       width=st.integers(30, 500), size=st.integers(8, 60), tracking=st.floats(0, 10))
def test_wrap_never_exceeds_the_width_and_keeps_every_letter(text, width, size, tracking):
    f = font("text", size)
    lines = wrap(text, f, width, tracking)
    for line in lines:
        assert text_width(line, f, tracking) <= width or len(line) == 1
    assert "".join("".join(lines).split()) == "".join(text.split())


def test_no_face_ticket_says_so_and_is_short():
    ticket = compose_no_face(reason="face too small", number=7, when=WHEN)
    assert_printable(ticket, 576)
    assert ticket.height < compose_ticket(content(1)).height


def test_settings_from_config():
    layout = section(load(), "ticket", TicketLayout)
    assert layout == TicketLayout()
    assert section(load(), "installation", Installation).title == "Sosie"
    with pytest.raises(ConfigError, match=r"ticket\.layout"):
        parse(TicketLayout, {"layout": "polaroid"}, "ticket")
    with pytest.raises(ConfigError, match=r"ticket\.lookalikes"):
        parse(TicketLayout, {"lookalikes": 11}, "ticket")
    with pytest.raises(ValueError, match="multiple of 8"):
        compose_ticket(content(1), width=500)
    with pytest.raises(ValueError, match="at least one"):
        compose_ticket(TicketContent([]))


def test_configured_font_that_does_not_exist_is_named(tmp_path):
    layout = parse(TicketLayout, {"fonts": {"title": str(tmp_path / "nope.ttf")}}, "ticket")
    with pytest.raises(FontError, match=r"nope\.ttf"):
        compose_ticket(content(1), layout)


def test_non_square_thumbnails_are_cropped_not_squashed():
    tall = np.zeros((120, 60), np.uint8)
    tall[:, 20:40] = 255  # a white band in the middle third
    cropped = crop_to_aspect(tall, (50, 50))
    assert cropped.shape == (60, 60) and cropped[:, 20:40].min() == 255
    assert crop_to_aspect(tall.T, (50, 50)).shape == (60, 60)
    matches = [Lookalike(1, 0, 0.4, tall)]
    assert_printable(compose_ticket(TicketContent(matches), width=384), 384)


@pytest.mark.parametrize("width", [384, 576])
def test_plain_fallback_ticket_centres_each_line_on_the_paper(width):
    """The ticket printed when the composed one fails: one band of ink per line, each centred,
    nothing at the edges."""
    ticket = simple_text_ticket(NO_FACE_TEXT, width)
    assert_printable(ticket, width)
    printed = ink(ticket)
    rows = printed.any(axis=1)
    starts = np.flatnonzero(rows[1:] & ~rows[:-1]) + 1  # where each line's ink begins
    assert len(starts) == len(NO_FACE_TEXT)
    for line in np.split(printed, starts[1:]):
        columns = np.flatnonzero(line.any(axis=0))
        left, right = columns[0], width - 1 - columns[-1]
        assert abs(left - right) <= 2 + width // 100, (left, right)
    assert simple_text_ticket(NO_FACE_TEXT[:1], width).height < ticket.height
