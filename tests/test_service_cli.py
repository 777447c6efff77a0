"""`sosie run/demo/doctor/status/press` and the real backend's start-up and recovery."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from PIL import Image

from appliance.cli import main
from appliance.cli.service import format_status
from appliance.faults import Fault, PartFault
from appliance.parts.controls import VirtualControls
from appliance.runtime.control import ControlHandler
from appliance.runtime.machine import Machine, MachineSettings
from appliance.runtime.service import Service
from appliance.runtime.states import State
from appliance.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS: dict[Path, Path] = {}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 1500, seed=5)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def write_config(path: Path, corpus: Path, photo: Path, tickets: Path, extra: str = "") -> Path:
    """A config for the tests; the corpus is passed with --corpus / corpus_path (see CORPUS)."""
    CORPUS[path] = corpus
    path.write_text(
        f"camera: {{source: '{photo}'}}\n"
        f"printer: {{backend: virtual, virtual: {{out_dir: '{tickets}'}}}}\n"
        "controls: {backend: virtual}\n"
        "machine: {cooldown_seconds: 0.2}\n" + extra
    )
    return path


# ---------------------------------------------------------------------------------------------
# status formatting and the socket commands


def test_format_status_in_plain_words():
    text = format_status({
        "state": "fault", "fault": "printer", "uptime_seconds": 93784, "tickets_printed": 12,
        "visits": 15, "no_face": 2, "presses_ignored": 7,
        "last_fault": {"part": "printer", "reason": "out of paper", "seconds_ago": 65},
        "corpus_faces": 200000, "corpus": "/srv/sosie/corpus", "kernel": "neon",
        "last_visit": {"outcome": "printed", "ms": {"capture": 1, "search": 12.3, "total": 420}},
    })
    assert "state:            fault (printer)" in text
    assert "uptime:           1 d 2 h 3 min" in text
    assert "presses ignored:  7 (while busy)" in text
    assert "last fault:       printer: out of paper, 1 min 5 s ago" in text
    assert "200000 faces" in text and "neon kernel" in text
    assert "printed in 420 ms (capture 1, search 12)" in text


class SlowBackend:
    def __init__(self):
        self.gate = threading.Event()

    def start(self):
        pass

    def capture(self):
        self.gate.wait(10)
        return "frame"

    def look_up(self, frame):
        from appliance.runtime.lookup import VisitResult

        return VisitResult("t")

    def print_visit(self, result):
        pass

    def print_no_face(self, reason):
        pass

    def probe(self, fault):
        pass

    def facts(self):
        return {}

    def close(self):
        pass


def test_status_and_press_commands(tmp_path, capsys):
    from appliance.runtime.control_socket import ControlServer

    backend = SlowBackend()
    service = Service(Machine(MachineSettings(cooldown_seconds=0)), backend, VirtualControls())
    path = tmp_path / "control.sock"
    server = ControlServer(path, ControlHandler(service.status, service.press_and_wait))
    server.start()
    thread = threading.Thread(target=service.run, kwargs={"install_signals": False})
    thread.start()
    try:
        assert service.wait_for(lambda s: s.state is State.READY, 5)
        assert main(["status", "--socket", str(path)]) == 0
        assert "state:            ready" in capsys.readouterr().out
        assert main(["press", "--socket", str(path)]) == 0
        assert capsys.readouterr().out.strip() == "pressed"
        assert service.wait_for(lambda s: s.state is State.CAPTURING, 5)
        assert main(["press", "--socket", str(path)]) == 1
        assert "ignored: the appliance is taking a photo" in capsys.readouterr().out
        backend.gate.set()
        assert service.wait_for(lambda s: s.machine.counters.tickets_printed == 1, 5)
        assert main(["status", "--json", "--socket", str(path)]) == 0
        assert '"presses_ignored": 1' in capsys.readouterr().out
    finally:
        backend.gate.set()
        service.shutdown()
        thread.join(10)
        server.close()


def test_status_without_a_service_is_one_line(tmp_path, capsys):
    assert main(["status", "--socket", str(tmp_path / "none.sock")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no running sosie service" in err


# ---------------------------------------------------------------------------------------------
# the real backend


def test_backend_start_failures_name_the_part(tmp_path, corpus_dir, astronaut_png):
    from appliance.runtime.appliance import make_appliance

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "missing-corpus", astronaut_png,
                       tmp_path / "t")
    backend = make_appliance(load_settings(cfg), corpus_path=CORPUS[cfg])
    with pytest.raises(PartFault) as info:
        backend.start()
    assert info.value.fault is Fault.CORPUS and "corpus" in info.value.reason

    cfg = write_config(tmp_path / "c.yaml", corpus_dir, tmp_path / "no-photo.jpg", tmp_path / "t")
    backend = make_appliance(load_settings(cfg), corpus_path=CORPUS[cfg])
    with pytest.raises(PartFault) as info:
        backend.start()
    assert info.value.fault is Fault.CAMERA and "does not exist" in info.value.reason
    # face models that cannot be loaded are the models' fault, not the corpus's
    cfg.write_text(cfg.read_text() + f"faces: {{landmarks_model: '{tmp_path / 'no.dat'}'}}\n")
    with pytest.raises(PartFault) as info:
        make_appliance(load_settings(cfg), corpus_path=CORPUS[cfg]).start()
    assert info.value.fault is Fault.MODELS and "no.dat" in info.value.reason
    cfg = write_config(tmp_path / "c.yaml", corpus_dir, tmp_path / "no-photo.jpg", tmp_path / "t")
    # the photo appears (camera plugged in): the recovery probe finishes the start-up
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "no-photo.jpg")
    backend.probe(Fault.CAMERA)
    assert backend.facts()["corpus_faces"] == 1500
    backend.close()


def test_backend_printer_fault_at_start(tmp_path, corpus_dir, astronaut_png):
    from appliance.parts.printer import Printer, PrinterAbsent, VirtualPrinter
    from appliance.runtime.appliance import Appliance

    class Unplugged(VirtualPrinter):
        def status(self):
            raise PrinterAbsent("usb printer 04b8:0202: not found")

        diagnose = Printer.diagnose  # as a real printer answers: from its status

    cfg = write_config(tmp_path / "c.yaml", corpus_dir, astronaut_png, tmp_path / "t")
    backend = Appliance(load_settings(cfg), printer=Unplugged(tmp_path / "t"),
                        corpus_path=corpus_dir)
    with pytest.raises(PartFault) as info:
        backend.start()
    assert info.value.fault is Fault.PRINTER and "not found" in info.value.reason
    backend.close()


# ---------------------------------------------------------------------------------------------
# sosie demo


def test_demo_interactive_keyboard(tmp_path, corpus_dir):
    from appliance.runtime.demo import Demo

    lines: list[str] = []
    demo = Demo(load_settings(search=False), image=None, out_dir=tmp_path / "t",
                echo=lines.append, corpus_path=corpus_dir)
    keys = io.StringIO("\nq\n")
    assert demo.run(None, stdin=keys) == 0
    text = "\n".join(lines)
    assert "press Enter for a visit" in text
    assert len(demo.tickets) == 1 and demo.tickets[0].exists()
    assert f"1 ticket in {tmp_path / 't'}" in text


def test_demo_command_without_a_terminal_makes_one_ticket(tmp_path, corpus_dir, capsys,
                                                          monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    out = tmp_path / "tickets"
    assert main(["demo", "--corpus", str(corpus_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 1 and str(pngs[0]) in printed


def test_demo_bad_arguments(tmp_path, capsys):
    assert main(["demo", "--presses", "-1"]) == 2
    assert main(["demo", "--image", str(tmp_path / "nope.jpg")]) == 2
    assert "no such file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# sosie doctor


def test_doctor_all_fine(tmp_path, corpus_dir, astronaut_png):
    from appliance.runtime.doctor import run_doctor

    cfg = write_config(tmp_path / "c.yaml", corpus_dir, astronaut_png, tmp_path / "t")
    cfg.write_text(cfg.read_text().replace("controls: {backend: virtual}",
                                           "controls: {backend: gpio, led: rgb}"))
    lines: list[str] = []
    status = run_doctor(cfg, socket=tmp_path / "none.sock", corpus=corpus_dir,
                        echo=lines.append, pin_factory=MockFactory(pin_class=MockPWMPin))
    text = "\n".join(lines)
    assert status == 0, text
    assert "PROBLEM" not in text
    for part in ("config", "models", "corpus", "camera", "printer", "pins", "privacy"):
        assert any(line.split()[1] == part for line in lines if line.split()[0] == "ok"), part
    assert "face(s) in view right now" in text


def test_doctor_reports_problems_in_plain_words(tmp_path, corpus_dir):
    from appliance.runtime.doctor import run_doctor

    dark = tmp_path / "dark.png"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(dark)
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "no-corpus", dark, tmp_path / "t",
                       extra="")
    cfg.write_text(cfg.read_text().replace(
        "controls: {backend: virtual}", "controls: {backend: gpio, button_pin: 18, led_pin: 18}"))
    lines: list[str] = []
    assert run_doctor(cfg, socket=tmp_path / "none.sock", corpus=tmp_path / "no-corpus",
                      echo=lines.append, pin_factory=MockFactory()) == 1
    problems = [line for line in lines if line.lstrip().startswith("PROBLEM")]
    assert any("pins" in line for line in problems)
    text = "\n".join(problems)
    assert "corpus" in text
    assert "almost black" in text
    assert "pin 18 is used twice: button and LED" in text
    assert lines[-1] == f"{len(problems)} problem(s) found"


def test_doctor_bad_config_stops_early(tmp_path):
    from appliance.runtime.doctor import run_doctor

    cfg = tmp_path / "c.yaml"
    cfg.write_text("machine: {cooldown_seconds: soon}\n")
    lines: list[str] = []
    assert run_doctor(cfg, echo=lines.append) == 1
    assert "machine.cooldown_seconds' = 'soon': expected a number" in lines[0]


# ---------------------------------------------------------------------------------------------
# sosie run, as systemd starts it


def test_sosie_run_as_a_systemd_service(tmp_path, corpus_dir, astronaut_png):
    notify_path = tmp_path / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(1)
    runtime = tmp_path / "run"
    runtime.mkdir()
    tickets = tmp_path / "tickets"
    cfg = write_config(tmp_path / "sosie.yaml", corpus_dir, astronaut_png, tickets)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "RUNTIME_DIRECTORY": str(runtime),
           "WATCHDOG_USEC": "2000000", "SOSIE_CACHE": str(tmp_path / "cache")}
    env.pop("WATCHDOG_PID", None)
    env.pop("SOSIE_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(cfg),
                             "--corpus", str(corpus_dir)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    messages: list[str] = []
    done = threading.Event()

    def listen() -> None:  # as systemd does: read every notification as it comes
        while not done.is_set():
            try:
                messages.append(notify.recv(4096).decode())
            except (TimeoutError, OSError):
                continue

    listener = threading.Thread(target=listen, daemon=True)  # a failed assert must not hang
    listener.start()
    try:
        deadline = time.monotonic() + 120
        while not any("READY=1" in m for m in messages) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        assert any("READY=1" in m for m in messages)
        assert "STATUS=starting" in messages[0]  # READY=1 as soon as the loop runs
        # the appliance is ready when its status line says so (models, corpus, camera, printer)
        while not any("STATUS=ready" in m for m in messages) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        assert any("STATUS=ready" in m for m in messages), messages
        sock = runtime / "control.sock"
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        cli = [sys.executable, "-m", "appliance"]
        out = subprocess.run([*cli, "press", "--wait"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "visit over: printed" in out.stdout
        out = subprocess.run([*cli, "status"], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert "tickets printed:  1" in out.stdout
        assert len(list(tickets.glob("*.png"))) == 1
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("sosie run did not stop on SIGTERM: " + proc.communicate()[1].decode())
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(1.5)  # the last datagrams
    done.set()
    listener.join(5)
    notify.close()
    text = "\n".join(messages)
    assert "WATCHDOG=1" in text and "STOPPING=1" in text
    assert not (runtime / "control.sock").exists()
