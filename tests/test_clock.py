"""The clock check behind `ticket.date`: kernel status decoding, caching, the visit's date."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from test_visit import FakeAnalyzer, FakeCorpus, FakeFace

import appliance.ticket.clock as clock
from appliance.config import ConfigError, parse
from appliance.runtime.counter import FixedCounter
from appliance.runtime.lookup import Lookup
from appliance.ticket import TicketLayout, compose_no_face


@pytest.mark.parametrize(("state", "status", "synced"), [
    (0, 0x0001, True),  # TIME_OK, PLL on
    (1, 0x2001, True),  # TIME_INS (leap second pending) is still synchronised
    (5, 0x0040, False),  # TIME_ERROR + STA_UNSYNC: a Pi booted without network
    (0, 0x0040, False),  # STA_UNSYNC alone
    (5, 0x0000, False),  # TIME_ERROR alone
    (-1, 0x0000, False),
])
def test_adjtimex_reply_decoding(state, status, synced):
    assert clock.synced_from_adjtimex(state, status) is synced


def test_kernel_probe_answers_on_linux():
    assert clock.kernel_synchronized() in (True, False, None)


def test_timesyncd_flag(tmp_path):
    flag = tmp_path / "timesync" / "synchronized"
    assert clock.timesyncd_synchronized(flag) is None  # timesyncd not running
    flag.parent.mkdir()
    assert clock.timesyncd_synchronized(flag) is False
    flag.touch()
    assert clock.timesyncd_synchronized(flag) is True


def test_the_answer_is_remembered_for_a_minute():
    answers, now = iter([False, True]), [100.0]
    calls = []

    def probe():
        calls.append(now[0])
        return next(answers)

    check = clock.SyncCheck(probe, ttl=60, monotonic=lambda: now[0])
    assert check() is False
    now[0] = 159.9
    assert check() is False and calls == [100.0]
    now[0] = 160.0
    assert check() is True and calls == [100.0, 160.0]


def test_ticket_time_follows_the_policy():
    assert clock.ticket_time("never", lambda: True) is None
    assert isinstance(clock.ticket_time("always", lambda: False), datetime)
    assert clock.ticket_time("auto", lambda: False) is None
    stamp = clock.ticket_time("auto", lambda: True)
    assert stamp is not None and abs((datetime.now() - stamp).total_seconds()) < 5
    assert clock.synchronized_now(lambda: False) is None


def test_date_policy_is_validated():
    assert parse(TicketLayout, {"date": "never"}, "ticket").date == "never"
    with pytest.raises(ConfigError, match=r"ticket\.date"):
        parse(TicketLayout, {"date": "sometimes"}, "ticket")


@pytest.mark.parametrize(("synced", "policy", "dated"), [
    (False, "auto", False), (True, "auto", True), (False, "always", True),
    (True, "never", False)])
def test_the_visit_prints_a_date_only_when_the_clock_is_trusted(monkeypatch, synced, policy,
                                                                dated):
    monkeypatch.setattr(clock, "synchronized", lambda: synced)
    corpus = FakeCorpus()
    lookup = Lookup(FakeAnalyzer(FakeFace(corpus.vectors[0].astype(np.float32))), corpus,
                    layout=TicketLayout(lookalikes=1, show_map=False, date=policy),
                    numbers=FixedCounter(9).take)
    result = lookup.look_up(None)
    assert (result.when is not None) is dated and result.number == 9
    undated = compose_no_face(lookup.layout, reason="no face", number=9, when=None)
    no_face = lookup.no_face_ticket("no face", number=9)
    assert np.array_equal(np.asarray(no_face), np.asarray(undated)) is not dated
