"""End to end: a mock GPIO button press through the real faces, search and ticket code to the
virtual printer; the printed PNG is checked against the composed ticket and the lookalikes
against a brute-force search of the corpus with an independently computed descriptor."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin
from PIL import Image

from appliance.parts.camera import FileCamera, fit_inside
from appliance.parts.controls import GpioControls
from appliance.parts.settings import ControlSettings
from appliance.runtime.appliance import Appliance
from appliance.runtime.machine import Machine
from appliance.runtime.service import Service
from appliance.runtime.states import State
from appliance.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 3000, seed=7)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return fit_inside(data.astronaut(), 640, 480)


@pytest.fixture
def pins():
    previous = Device.pin_factory
    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = previous


class SpyPrinter:
    """The virtual printer, remembering what it was asked to print."""

    def __init__(self, out_dir: Path, settings) -> None:
        from appliance.parts.printer import VirtualPrinter

        self.inner = VirtualPrinter(out_dir, settings)
        self.width, self.paper = self.inner.width, self.inner.paper
        self.out_dir = self.inner.out_dir
        self.images: list[Image.Image] = []
        self.receipts = []

    def print_ticket(self, ticket):
        receipt = self.inner.print_ticket(ticket)  # a lazy Ticket streams its bands
        self.images.append(ticket.image() if hasattr(ticket, "image") else ticket.copy())
        self.receipts.append(receipt)
        return receipt

    def diagnose(self):
        return self.inner.diagnose()

    def close(self):
        self.inner.close()


def run_session(settings, camera, printer, corpus_dir, presses, controls, spy=None, after=None):
    backend = Appliance(settings, camera=camera, printer=printer, corpus_path=corpus_dir)
    records = []
    service = Service(Machine(settings.machine), backend, controls, settings.service,
                      on_visit=records.append)
    thread = threading.Thread(target=service.run, kwargs={"install_signals": False})
    thread.start()
    try:
        assert service.wait_for(lambda s: s.state is State.READY, 300), service.status()
        if spy is not None:
            spy(backend)
        for n in range(1, presses + 1):
            controls_press(controls)
            assert service.wait_for(lambda s, n=n: len(records) >= n, 120), service.status()
            assert service.wait_for(lambda s: s.state is State.READY, 30)
        if after is not None:
            after(service)
    finally:
        service.shutdown()
        thread.join(30)
    return service, backend, records


def controls_press(controls):
    if isinstance(controls, GpioControls):
        pin = controls.button.pin
        pin.drive_low()  # fires when_pressed synchronously
        pin.drive_high()
    else:
        controls.press("test")


def quick(settings):
    return settings.replace(machine=settings.machine.__class__(cooldown_seconds=0.0))


def test_button_to_ticket(pins, tmp_path, corpus_dir, photo):
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.parts.printer.decode import decode

    settings = quick(load_settings(search=False))
    printer = SpyPrinter(tmp_path / "tickets", settings.printer)
    controls = GpioControls(ControlSettings(backend="gpio", button_pin=17, led="rgb"))
    results = []

    def spy(backend):
        run = backend.lookup.look_up

        def recording_run(image, **kw):
            result = run(image, **kw)
            results.append(result)
            return result

        backend.lookup.look_up = recording_run

    service, backend, records = run_session(settings, FileCamera(photo), printer, corpus_dir,
                                            2, controls, spy)
    assert [r.outcome for r in records] == ["printed", "printed"]
    assert service.machine.counters.tickets_printed == 2
    assert len(printer.images) == 2 and len(results) == 2

    # the PNG on disk is exactly the composed ticket, decoded back from the ESC/POS bytes
    receipt = printer.receipts[0]
    png = next(p for p in receipt.files if p.suffix == ".png")
    binary = next(p for p in receipt.files if p.suffix == ".bin")
    composed = np.asarray(printer.images[0].convert("L")) < 128
    printed = np.asarray(Image.open(png).convert("L")) < 128
    assert printed.shape[1] == printer.width
    assert np.array_equal(printed[: composed.shape[0], : composed.shape[1]], composed)
    assert not printed[composed.shape[0]:].any()
    paper = decode(binary.read_bytes(), printer.width)
    assert np.array_equal(np.asarray(paper.image.convert("L")) < 128, printed)

    # the lookalikes are the brute-force nearest rows for an independently computed descriptor
    face = FaceAnalyzer(settings.faces).analyze(photo)
    q = np.asarray(face.descriptor, np.float64)
    vectors = np.asarray(backend.corpus.vectors, np.float64)
    d = np.sqrt(((vectors - q) ** 2).sum(axis=1))
    k = len(results[0].matches)
    assert k == settings.ticket.lookalikes
    order = np.lexsort((np.arange(len(d)), d))[:k]
    assert [m.index for m in results[0].matches] == order.tolist()
    assert np.allclose([m.distance for m in results[0].matches], d[order], atol=2e-3)
    # same photo, same bits: both visits found the same faces, with consecutive numbers
    assert [m.index for m in results[1].matches] == order.tolist()
    assert results[1].number == results[0].number + 1


def test_no_face_press_prints_the_short_ticket(pins, tmp_path, corpus_dir):
    settings = quick(load_settings(search=False))
    printer = SpyPrinter(tmp_path / "tickets", settings.printer)
    controls = GpioControls(ControlSettings(backend="gpio", button_pin=17))
    blank = np.full((480, 640, 3), 90, np.uint8)
    service, _, records = run_session(settings, FileCamera(blank), printer, corpus_dir, 1,
                                      controls)
    assert [r.outcome for r in records] == ["printed"]
    assert service.machine.counters.no_face == 1
    ticket = printer.images[0]
    assert ticket.mode == "1" and ticket.width == printer.width
    assert ticket.height < 1200  # the short ticket, not a full one


def test_visitor_photo_and_face_are_dropped_after_the_visit(tmp_path, corpus_dir, photo):
    from appliance.parts.controls import VirtualControls

    settings = quick(load_settings(search=False))
    refs: list[weakref.ref] = []

    class WatchedCamera(FileCamera):
        def capture(self):
            frame = super().capture()
            refs.append(weakref.ref(frame))
            return frame

    def spy(backend):
        analyze = backend.analyzer.analyze

        def watched(image):
            face = analyze(image)
            refs.append(weakref.ref(face))
            return face

        backend.analyzer.analyze = watched

    def check(service):  # the service is still running, ready for the next visitor
        gc.collect()
        assert len(refs) == 4
        assert all(r() is None for r in refs), "the visitor's photo or face outlived the visit"

    printer = SpyPrinter(tmp_path / "t", settings.printer)
    run_session(settings, WatchedCamera(photo), printer, corpus_dir, 2, VirtualControls(), spy,
                check)


def test_the_demo_visitor_finds_a_generated_double(tmp_path, photo):
    from appliance.corpus import demo_corpus
    from appliance.parts.controls import VirtualControls

    settings = quick(load_settings(search=False))
    printer = SpyPrinter(tmp_path / "t", settings.printer)
    results = []

    def spy(backend):
        run = backend.lookup.look_up
        backend.lookup.look_up = lambda image, **kw: results.append(run(image, **kw)) or \
            results[-1]

    _, backend, records = run_session(settings, FileCamera(photo), printer, demo_corpus(), 1,
                                      VirtualControls(), spy)
    assert [r.outcome for r in records] == ["printed"]
    best = results[0].matches[0]
    assert backend.corpus.source(best.index).startswith("dcgan:")  # a face that does not exist
    assert best.distance > 0.3  # not herself: the demo corpus holds no photo of her
    assert all(m.distance >= best.distance for m in results[0].matches[1:])
