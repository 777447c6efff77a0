"""One fault model: each part fails at its own boundary and the machine names that part.

A font broken at lookup time is the ticket's fault (recovered by checking the fonts again), not
the corpus's: the corpus is opened once and never reopened for it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from service_helpers import next_press_prints, running

from appliance.faults import Fault, PartFault, TicketError
from appliance.fonts import HERE as FONTS_DIR
from appliance.fonts import FontError
from appliance.parts.camera import FileCamera, fit_inside
from appliance.parts.controls import VirtualControls
from appliance.parts.printer import VirtualPrinter
from appliance.runtime import appliance as appliance_module
from appliance.runtime.appliance import Appliance
from appliance.runtime.counter import FixedCounter
from appliance.runtime.machine import Machine, MachineSettings
from appliance.runtime.service import Service
from appliance.runtime.states import State
from appliance.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 400, seed=3)


def test_font_error_is_the_one_ticket_error():
    assert issubclass(FontError, TicketError) and issubclass(TicketError, PartFault)
    error = FontError("cannot load font /x.ttf for 'title': broken")
    assert error.fault is Fault.TICKET and str(error) == error.reason


def test_broken_font_at_lookup_is_a_ticket_fault_without_corpus_reopen(
        tmp_path, corpus_dir, monkeypatch):
    from skimage import data

    opened = []
    real_open = appliance_module.open_corpus

    def counting_open(path, face_settings):
        opened.append(path)
        return real_open(path, face_settings)

    monkeypatch.setattr(appliance_module, "open_corpus", counting_open)
    title = tmp_path / "Title.ttf"
    title.write_bytes(b"not a font at all")  # found broken only when a ticket is composed
    settings = load_settings(search=False)
    fonts = dataclasses.replace(settings.ticket.fonts, title=str(title))
    settings = settings.replace(
        ticket=dataclasses.replace(settings.ticket, fonts=fonts),
        machine=MachineSettings(cooldown_seconds=0, retry_seconds=0.2, retry_max_seconds=0.4))
    camera = FileCamera(fit_inside(data.astronaut(), 640, 480))
    parts = Appliance(settings, camera=camera, corpus_path=corpus_dir,
                      printer=VirtualPrinter(tmp_path / "tickets", settings.printer),
                      counter=FixedCounter(1))
    controls = VirtualControls()
    service = Service(Machine(settings.machine), parts, controls, settings.service)
    with running(service):
        assert service.wait_for(lambda s: s.state is State.READY, 300), service.status()
        corpus = parts.corpus
        controls.press("test")
        assert service.wait_for(lambda s: s.state is State.FAULT, 120), service.status()
        assert service.machine.fault is Fault.TICKET
        part, reason = service.machine.last_fault
        assert part is Fault.TICKET and "Title.ttf" in reason
        # the retries check the fonts again (still broken): the fault stays the ticket's
        assert service.wait_for(lambda s: s.machine.counters.faults == 1
                                and service.worker.problem() is None, 5)
        shutil.copyfile(FONTS_DIR / "DejaVuSansCondensed-Bold.ttf", title)  # repaired
        assert service.wait_for(lambda s: s.state is State.READY, 30), service.status()
        assert parts.corpus is corpus and len(opened) == 1  # never reopened for a font
        assert service.machine.counters.tickets_printed == 0
        assert next_press_prints(service, controls)  # and the next visitor gets their ticket


def test_each_part_fails_at_its_own_boundary(corpus_dir):
    from appliance.runtime.lookup import Lookup
    from appliance.ticket import TicketLayout

    class Corpus:
        count, coords2d, pca = 10, None, None

    class BrokenScanner:
        def topk(self, q, k):
            raise OSError("Input/output error")

    class BrokenAnalyzer:
        def analyze(self, image):
            raise RuntimeError("dlib: bad model")

    class Face:
        descriptor = np.zeros(128, np.float32)
        timings = MappingProxyType({})

    class Analyzer:
        def analyze(self, image):
            return Face()

    photo = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(PartFault) as models:
        Lookup(BrokenAnalyzer(), Corpus(), BrokenScanner(), TicketLayout()).look_up(photo)
    assert models.value.fault is Fault.MODELS and "bad model" in models.value.reason
    with pytest.raises(PartFault) as corpus:
        Lookup(Analyzer(), Corpus(), BrokenScanner(), TicketLayout()).look_up(photo)
    assert corpus.value.fault is Fault.CORPUS and "Input/output" in corpus.value.reason
