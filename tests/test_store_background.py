"""Start-up leaves the passes over every row to a thread (`Corpus.check_in_background`): the
service is ready without reading the corpus, and the first search waits for the checks and
refuses a damaged corpus (a NaN row, a thumbnail index past its pack); the service shows such
a corpus as a corpus fault as soon as the check finds it, before any press."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from service_helpers import next_press_prints, running
from test_visit import FakeAnalyzer, FakeFace

from appliance.corpus import Corpus, CorpusError
from appliance.corpus import format as fmt
from appliance.faults import Fault, PartFault
from appliance.runtime.lookup import Lookup
from appliance.ticket import TicketLayout


@pytest.fixture
def held_check(monkeypatch):
    """The background check (`check_in_background` runs the public `warm` on its thread:
    every read and every check) waits for the returned event before it reads anything."""
    gate, started = threading.Event(), threading.Event()
    real = Corpus.warm

    def held(self):
        started.set()
        assert gate.wait(30)
        real(self)

    monkeypatch.setattr(Corpus, "warm", held)
    yield gate, started
    gate.set()


def put_nan(path, row: int) -> None:
    vectors = np.memmap(path / fmt.DESCRIPTORS, "<f2", mode="r+").reshape(-1, 128)
    vectors[row, 17] = np.nan
    vectors.flush()


def lookup_of(corpus: Corpus, row: int, scanner=None) -> Lookup:
    face = FakeFace(np.asarray(corpus.vectors[row], np.float32))
    return Lookup(FakeAnalyzer(face), corpus, scanner, TicketLayout(lookalikes=3), width=384)


def test_the_first_search_waits_for_the_background_check(corpus_copy, held_check):
    gate, started = held_check
    corpus = Corpus.open(corpus_copy, defer_checks=True)
    corpus.check_in_background()  # returns with its reads held
    scanner = corpus.scanner(wait=False)
    assert started.wait(10)
    lookup = lookup_of(corpus, 42, scanner)
    results: list = []
    visit = threading.Thread(target=lambda: results.append(lookup.look_up(None)))
    visit.start()
    visit.join(0.5)
    assert visit.is_alive() and not results  # the search waits for the rows' check
    assert corpus.check_state() == "checking" and corpus.check_seconds is None
    gate.set()
    visit.join(30)
    assert results[0].matches[0].index == 42 and results[0].matches[0].distance < 1e-3
    assert corpus.check_state() == "ok" and corpus.check_seconds > 0
    corpus.close()


def test_a_nan_row_found_in_the_background_is_a_corpus_fault_at_the_first_search(corpus_copy,
                                                                                  caplog):
    put_nan(corpus_copy, 123)
    corpus = Corpus.open(corpus_copy, defer_checks=True)  # opening reads no row
    assert corpus.check_state() == "not started"
    corpus.check_in_background()
    for _ in range(3000):  # the thread's end, within 30 s
        if corpus.check_seconds is not None:
            break
        time.sleep(0.01)
    # in the log and `sosie status` at once, before any visitor
    assert "corpus check failed" in caplog.text and "hold NaN" in caplog.text
    assert "descriptors.f16: 1 row(s) hold NaN" in corpus.check_state()
    lookup = lookup_of(corpus, 7, corpus.scanner(wait=False))
    with pytest.raises(PartFault) as caught:
        lookup.look_up(None)
    assert caught.value.fault is Fault.CORPUS
    assert "descriptors.f16: 1 row(s) hold NaN or infinity" in str(caught.value)
    with pytest.raises(CorpusError, match="hold NaN"):  # every later search too
        corpus.check_rows()
    with pytest.raises(CorpusError, match="hold NaN"):  # and a scanner made afterwards
        corpus.scanner()
    corpus.close()


def test_a_thumbnail_row_past_the_pack_is_refused_on_read_and_by_the_check(corpus_copy):
    index = np.fromfile(corpus_copy / fmt.THUMBS_INDEX, "<u8").reshape(-1, 2)
    pack_bytes = (corpus_copy / fmt.THUMBS_PACK).stat().st_size
    index[9] = (pack_bytes - 10, 11)  # one byte past the end
    index.tofile(corpus_copy / fmt.THUMBS_INDEX)
    with pytest.raises(CorpusError, match=r"thumbs\.idx: row 9 points past the end"):
        Corpus.open(corpus_copy)  # the default: checked on open
    corpus = Corpus.open(corpus_copy, defer_checks=True)
    assert corpus.thumbnail(8).shape == (256, 256)
    with pytest.raises(CorpusError, match=r"thumbs\.idx: row 9 points past the end"):
        corpus.thumbnail(9)  # the row's own bounds, whatever the check has done yet
    corpus.check_in_background()
    with pytest.raises(CorpusError, match=r"thumbs\.idx: row 9 points past the end"):
        corpus.check_rows()
    corpus.close()


def test_the_appliance_is_ready_before_the_corpus_is_read(corpus_copy, held_check, tmp_path):
    from appliance.cli.service import format_status
    from appliance.parts.printer import VirtualPrinter
    from appliance.runtime.appliance import Appliance
    from appliance.runtime.counter import FixedCounter
    from appliance.settings import load_settings

    gate, started = held_check
    settings = load_settings(search=False)
    settings = settings.replace(ticket=dataclasses.replace(settings.ticket, lookalikes=3))
    parts = Appliance(settings, corpus_path=corpus_copy, counter=FixedCounter(1),
                      printer=VirtualPrinter(tmp_path / "tickets", settings.printer))
    parts.start_search()  # models and corpus: returns while the corpus's reads are held
    assert started.wait(10) and not gate.is_set() and parts.lookup is not None
    facts = parts.facts()
    assert facts["corpus_check"] == "checking" and facts["corpus_check_seconds"] is None
    assert "corpus check:     checking" in format_status({"state": "ready", **facts})
    gate.set()
    parts.corpus.check_rows()
    assert parts.facts()["corpus_check"] == "ok"
    assert "corpus check" not in format_status({"state": "ready", **parts.facts()})
    parts.corpus.close()


def test_sketch_tails_are_checked_in_the_background_when_deferred(corpus_copy):
    tails = np.fromfile(corpus_copy / fmt.SKETCH_TAILS, "<f4")
    tails[11] = -1.0
    tails.tofile(corpus_copy / fmt.SKETCH_TAILS)
    with Corpus.open(corpus_copy) as corpus, pytest.raises(CorpusError, match="finite norms"):
        corpus.sketch()  # the default: checked when the sketch is read
    corpus = Corpus.open(corpus_copy, defer_checks=True)
    scanner = corpus.scanner(wait=False)  # reads no tail
    assert scanner is not None
    corpus.check_in_background()
    with pytest.raises(CorpusError, match=r"sketch_tails\.f32: expected 300 finite norms >= 0"):
        corpus.check_rows()
    assert "finite norms" in corpus.check_state()
    corpus.close()


class Watched:
    """A corpus that counts the reads of its 2-D coordinates."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus, self.reads = corpus, 0

    def __getattr__(self, name: str):
        return getattr(self.corpus, name)

    @property
    def coords2d(self) -> np.ndarray:
        self.reads += 1
        return self.corpus.coords2d


def test_the_map_sample_is_read_for_the_first_map_not_at_start(corpus_copy):
    corpus = Corpus.open(corpus_copy, defer_checks=True)
    corpus.check_in_background()
    watched = Watched(corpus)
    layout = TicketLayout(lookalikes=3, show_map=True, map_points=50)
    lookup = Lookup(FakeAnalyzer(FakeFace(np.asarray(corpus.vectors[3], np.float32))), watched,
                    corpus.scanner(wait=False), layout, width=384)
    assert watched.reads == 0  # making the visit pipeline reads no coordinate
    result = lookup.look_up(None)
    assert result.matches[0].index == 3 and watched.reads > 0
    corpus.close()


def test_a_damaged_corpus_is_a_corpus_fault_before_any_press(corpus_copy, synthetic_corpus,
                                                              tmp_path, monkeypatch):
    """`sosie run` over a corpus with a NaN row: the service shows the corpus fault (LED,
    status) as soon as the background check finds it, without a press; the retries reopen
    the corpus and keep the fault (never ready over it) until the row is repaired."""
    from skimage import data

    from appliance.cli.service import format_status
    from appliance.parts.camera import FileCamera, fit_inside
    from appliance.parts.controls import VirtualControls
    from appliance.parts.printer import VirtualPrinter
    from appliance.runtime import appliance as appliance_module
    from appliance.runtime.appliance import Appliance
    from appliance.runtime.counter import FixedCounter
    from appliance.runtime.machine import Machine, MachineSettings
    from appliance.runtime.patterns import pattern_for
    from appliance.runtime.service import Service
    from appliance.runtime.states import State
    from appliance.settings import load_settings

    opened = []
    real_open = appliance_module.open_corpus
    monkeypatch.setattr(appliance_module, "open_corpus",
                        lambda path, faces: (opened.append(path), real_open(path, faces))[1])
    put_nan(corpus_copy, 123)
    settings = load_settings(search=False)
    settings = settings.replace(
        ticket=dataclasses.replace(settings.ticket, lookalikes=3),
        machine=MachineSettings(cooldown_seconds=0, retry_seconds=0.1, retry_max_seconds=0.2))
    parts = Appliance(settings, camera=FileCamera(fit_inside(data.astronaut(), 640, 480)),
                      corpus_path=corpus_copy, counter=FixedCounter(1),
                      printer=VirtualPrinter(tmp_path / "tickets", settings.printer))
    controls, states = VirtualControls(), []
    service = Service(Machine(settings.machine), parts, controls, settings.service,
                      on_state=lambda state, fault: states.append((state, fault)))
    with running(service):
        assert service.wait_for(lambda s: s.state is State.FAULT, 300), service.status()
        status = service.status()
        assert status["fault"] == "corpus" and status["presses"] == status["visits"] == 0
        reason = status["last_fault"]["reason"]
        assert reason.startswith("corpus check: ")
        assert "descriptors.f16: 1 row(s) hold NaN" in reason
        fault_led = pattern_for(State.FAULT, Fault.CORPUS)  # shown just after the state
        assert service.wait_for(lambda s: fault_led in controls.shown, 10), controls.shown
        assert "state:            fault (corpus)" in format_status(status)
        # each retry reopens the corpus and waits for its check: still a fault, never ready
        assert service.wait_for(lambda s: len(opened) >= 3, 60), service.status()
        assert service.state is State.FAULT and service.machine.counters.faults == 1
        # (start-up may say ready before the background check finds the row: after the
        # fault, never again while the row is damaged)
        first_fault = next(i for i, (state, _) in enumerate(states) if state is State.FAULT)
        assert all(state is not State.READY for state, _ in states[first_fault:])
        repaired = shutil.copyfile(synthetic_corpus / fmt.DESCRIPTORS, tmp_path / fmt.DESCRIPTORS)
        os.replace(repaired, corpus_copy / fmt.DESCRIPTORS)  # a new file: the maps keep the old one
        assert service.wait_for(lambda s: s.state is State.READY, 60), service.status()
        assert service.status()["corpus_check"] == "ok"
        assert next_press_prints(service, controls)  # and the next visitor gets their ticket


CLOSE_DURING_CHECK = """
import sys, threading, time
from appliance import _scan
from appliance.corpus import Corpus

in_pass, real = threading.Event(), _scan.count_nonfinite

def slow_pass(vectors):  # the row pass, on the corpus's own map, held while close() runs
    in_pass.set()
    time.sleep(0.5)
    return real(vectors)

_scan.count_nonfinite = slow_pass
corpus = Corpus.open(sys.argv[1], defer_checks=True)
corpus.check_in_background()
assert in_pass.wait(30)
corpus.close()
alive = [t.name for t in threading.enumerate() if t.name == "corpus-check"]
assert not alive, "close() returned with the check still reading"
print("state:", corpus.check_state())
del corpus
"""


def test_closing_a_corpus_stops_and_joins_its_check(corpus_copy):
    """A corpus closed (a corpus fault's reopen, shutdown) while its check reads its maps: close
    waits for the thread, so nothing reads a closed corpus (in a child: a crash is an exit)."""
    done = subprocess.run([sys.executable, "-c", CLOSE_DURING_CHECK, str(corpus_copy)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "state: ok" in done.stdout  # the pass in progress finished; nothing was logged
    assert "Traceback" not in done.stderr


def test_a_search_waits_for_the_check_no_longer_than_its_deadline(corpus_copy, held_check,
                                                                   monkeypatch):
    from appliance.runtime import lookup as lookup_module

    gate, started = held_check
    corpus = Corpus.open(corpus_copy, defer_checks=True)
    corpus.check_in_background()
    assert started.wait(10)
    with pytest.raises(CorpusError, match=r"its check has not finished after 0\.2 s"):
        corpus.check_rows(timeout=0.2)
    monkeypatch.setattr(lookup_module, "CHECK_WAIT_SECONDS", 0.2)
    with pytest.raises(PartFault) as caught:  # a visitor's search: a corpus fault, not a hang
        lookup_of(corpus, 5, corpus.scanner(wait=False)).look_up(None)
    assert caught.value.fault is Fault.CORPUS and "has not finished" in str(caught.value)
    gate.set()
    corpus.check_rows(timeout=30)  # the check over: the deadline no longer matters
    assert corpus.check_state() == "ok"
    corpus.close()


def test_a_failure_inside_the_check_is_one_line_not_a_traceback(corpus_copy, caplog, monkeypatch):
    """An unexpected error in the checking thread and one in the report it makes are logged on
    one line each and raised by the next search; none reaches threading's excepthook."""
    hooked: list = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)

    def broken(self):
        raise RuntimeError("a bug in the check")

    def report(problem):
        raise KeyError("a bug in the report")

    monkeypatch.setattr(Corpus, "warm", broken)
    corpus = Corpus.open(corpus_copy, defer_checks=True)
    corpus.check_in_background(report)
    with pytest.raises(CorpusError, match="RuntimeError: a bug in the check"):
        corpus.check_rows(timeout=30)
    assert "corpus check failed" in caplog.text and "a bug in the report" in caplog.text
    assert not hooked
    corpus.close()
