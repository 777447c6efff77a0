"""The service streams the ticket: the first byte reaches the printer only once the outcome is
known (never a speculative header), and a ticket that fails half-way is cut off and reported."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from test_printer import FakeConnection
from test_visit import FakeAnalyzer, FakeCorpus, FakeFace, FakeNoFace

from appliance.parts.camera import FileCamera
from appliance.parts.controls import VirtualControls
from appliance.parts.printer import EscposPrinter
from appliance.parts.printer.decode import decode
from appliance.runtime.appliance import Appliance
from appliance.runtime.lookup import Lookup
from appliance.runtime.machine import Machine
from appliance.runtime.service import Service
from appliance.runtime.states import State
from appliance.settings import load_settings
from appliance.ticket import Page


class TimedConnection(FakeConnection):
    def __init__(self) -> None:
        super().__init__()
        self.first_write: float | None = None

    def _raw(self, data: bytes) -> None:
        if self.first_write is None:
            self.first_write = time.perf_counter()
        super()._raw(data)


class SlowAnalyzer(FakeAnalyzer):
    """Takes a while, and notes when its answer was known."""

    def analyze(self, image):
        time.sleep(0.15)
        self.answered = time.perf_counter()
        return super().analyze(image)


def run_one_visit(outcome, tmp_path, monkeypatch, **layout):
    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path))
    settings = load_settings(search=False)
    settings = settings.replace(
        machine=dataclasses.replace(settings.machine, cooldown_seconds=0.0),
        ticket=dataclasses.replace(settings.ticket, **layout))
    connection = TimedConnection()
    printer = EscposPrinter(dataclasses.replace(settings.printer, backend="file",
                                                check_status=False, retries=0),
                            lambda: connection)
    backend = Appliance(settings, camera=FileCamera(np.zeros((48, 64, 3), np.uint8)),
                               printer=printer)
    corpus, analyzer = FakeCorpus(), SlowAnalyzer(outcome)
    backend.analyzer, backend.corpus = analyzer, corpus
    backend.lookup = Lookup(analyzer, corpus, layout=settings.ticket, width=printer.width)
    records = []
    service = Service(Machine(settings.machine), backend, VirtualControls(), settings.service,
                      on_visit=records.append)
    thread = threading.Thread(target=service.run, kwargs={"install_signals": False})
    thread.start()
    try:
        assert service.wait_for(lambda s: s.state is State.READY, 30), service.status()
        service.press("test")
        assert service.wait_for(lambda s: bool(records), 30), service.status()
    finally:
        service.shutdown()
        thread.join(30)
    return records[0], analyzer, connection, service


@pytest.mark.parametrize("found", [True, False])
def test_nothing_is_printed_before_the_outcome_is_known(found, tmp_path, monkeypatch):
    corpus = FakeCorpus()
    outcome = FakeFace(corpus.vectors[4].astype(np.float32)) if found else FakeNoFace("no face")
    record, analyzer, connection, _ = run_one_visit(outcome, tmp_path, monkeypatch,
                                                    lookalikes=3)
    assert record.outcome == "printed"
    assert connection.first_write is not None and connection.first_write > analyzer.answered
    paper = decode(bytes(connection.written), 576)
    assert len(paper.pieces) == 1 and paper.pieces[0].cut == "full"
    assert (paper.pieces[0].image.height > 1200) is found  # the full ticket or the short one


def test_the_tickets_stage_times_are_in_the_visit_record_and_the_status(tmp_path, monkeypatch):
    """Recorded once, by the service: what `sosie status` shows is what the bench reads."""
    corpus = FakeCorpus()
    face = FakeFace(corpus.vectors[4].astype(np.float32))
    record, _, _, service = run_one_visit(face, tmp_path, monkeypatch, lookalikes=3)
    stages = ("first band: compose", "first band: encode", "rest: thumbnails", "rest: layout",
              "rest: dither", "rest: encode")
    assert all(record.timings[stage] >= 0 for stage in stages)
    assert record.timings["rest: dither"] > 0 and record.timings["first band: encode"] > 0
    shown = service.status()["last_visit"]["ms"]
    assert all(shown[stage] == round(1000 * record.timings[stage], 1) for stage in stages)
    assert record.timings["print"] >= record.timings["first band: compose"]


def test_a_ticket_failing_half_way_is_cut_off_and_reported(tmp_path, monkeypatch):
    def broken_photo(page, gray, size):  # the first photo: the band after the header
        raise MemoryError("no room for the photo")

    monkeypatch.setattr(Page, "photo", broken_photo)
    corpus = FakeCorpus()
    face = FakeFace(corpus.vectors[4].astype(np.float32))
    record, _, connection, service = run_one_visit(face, tmp_path, monkeypatch, lookalikes=3)
    assert record.outcome == "fault: ticket"  # the ticket's own fault, not the printer's
    fault = service.status()["last_fault"]
    assert fault["part"] == "ticket" and "no room for the photo" in fault["reason"]
    paper = decode(bytes(connection.written), 576)  # the header, fed and cut off at once
    assert len(paper.pieces) == 1 and paper.pieces[0].cut == "full"
    assert 100 < paper.pieces[0].image.height < 600
