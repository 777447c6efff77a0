"""Config texts are bounded and their layout is linear (issue 22, item 5): a 2,000-character
title is refused at load (and by doctor) on one line; given directly to the layout it is wrapped
in one pass and cut at its printed lines, and no ticket is longer than MAX_TICKET_MM."""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance.config import ConfigError
from appliance.settings import load_settings
from appliance.ticket import compose_no_face, compose_ticket
from appliance.ticket.content import Lookalike, TicketContent
from appliance.ticket.page import DOTS_PER_MM, MAX_TICKET_MM, Page
from appliance.ticket.settings import Installation, TicketLayout
from appliance.ticket.text import wrap

LONG = "Doppelgänger " * 150 + "X" * 50  # 2,000 characters


def config(tmp_path, text: str) -> str:
    path = tmp_path / "sosie.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("key", "limit"), [("installation:\n  title", 80),
                                            ("installation:\n  subtitle", 200),
                                            ("ticket:\n  privacy", 300),
                                            ("ticket:\n  retry_hint", 200)])
def test_long_texts_are_refused_at_load_on_one_line(tmp_path, key, limit):
    path = config(tmp_path, f"{key}: \"{'a' * 2000}\"\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    dotted = key.replace(":\n  ", ".")
    assert "\n" not in message and path in message and f"'{dotted}'" in message
    assert f"2000 characters, expected at most {limit}" in message


def test_texts_with_too_many_lines_are_refused(tmp_path):
    path = config(tmp_path, 'installation:\n  title: "A\\nB\\nC\\nD"\n')
    with pytest.raises(ConfigError, match="4 lines, expected at most 3"):
        load_settings(path)


def test_any_other_string_is_bounded_too(tmp_path):
    path = config(tmp_path, f"printer:\n  profile: \"{'p' * 5000}\"\n")
    with pytest.raises(ConfigError, match="5000 characters, expected at most 4096"):
        load_settings(path)


def test_doctor_refuses_the_long_title_on_one_line(tmp_path):
    from appliance.runtime.doctor import run_doctor

    lines: list[str] = []
    path = config(tmp_path, f'installation:\n  title: "{LONG}"\n')
    assert run_doctor(path, echo=lines.append) == 1
    assert lines[0].split()[:2] == ["PROBLEM", "config"] and "at most 80" in lines[0]
    assert lines[1] == "fix the configuration first; nothing else was checked"


def test_wrapping_a_2000_character_text_is_one_pass_and_cut_at_its_lines():
    from appliance.fonts import font

    f = font("title", 40, None)
    started = time.perf_counter()
    lines = wrap(LONG.upper(), f, 536, 6.4, max_lines=3)
    seconds = time.perf_counter() - started
    assert len(lines) == 3 and lines[-1].endswith("…")
    whole = wrap("X" * 2000, f, 536, 6.4)  # one long word, cut in pieces that fit
    assert "".join(whole) == "X" * 2000 and all(len(line) <= 20 for line in whole)
    assert seconds < 5  # was minutes per ticket: each cut re-measured the rest of the word


def face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (96, 96), dtype=np.uint8)


def test_a_ticket_with_2000_character_texts_stays_within_its_lines():
    installation = Installation(title=LONG, subtitle=LONG)
    layout = TicketLayout(privacy=LONG, retry_hint=LONG)
    content = TicketContent([Lookalike(1, 0, 0.4, face(0))], when=None, corpus_map=None)
    plain = compose_ticket(content, TicketLayout(), Installation(), width=576)
    started = time.perf_counter()
    long = compose_ticket(content, layout, installation, width=576)
    seconds = time.perf_counter() - started
    assert long.height < plain.height + 40 * 20  # 3 title, 4 subtitle, 6 privacy lines more
    no_face = compose_no_face(layout, installation, reason="no face", width=576)
    assert no_face.height < 2000
    assert seconds < 30


def test_no_ticket_is_longer_than_the_maximum(monkeypatch):
    page = Page(576, TicketLayout())
    bands = []
    for _ in range(30):
        page.space(500)
        band = page.flush()
        if band is not None:
            bands.append(band)
    assert sum(b.height for b in bands) == MAX_TICKET_MM * DOTS_PER_MM
