"""The service loop with a scripted backend: visits, faults, recovery, socket, systemd, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from appliance.faults import Fault, PartFault
from appliance.parts.controls import VirtualControls
from appliance.runtime import systemd
from appliance.runtime.control import ControlHandler
from appliance.runtime.control_socket import ControlError, ControlServer, request
from appliance.runtime.lookup import Held, VisitResult
from appliance.runtime.machine import Machine, MachineSettings
from appliance.runtime.patterns import PATTERNS
from appliance.runtime.service import Service, ServiceSettings
from appliance.runtime.states import State


class FakeBackend:
    """Scripted devices: each list holds outcomes to use in turn (then the default)."""

    def __init__(self):
        self.start_faults: list[PartFault] = []
        self.capture_script: list = []
        self.lookup_script: list = []
        self.print_script: list = []
        self.probe_script: list = []
        self.printed: list = []
        self.captures = 0
        self.probes: list[Fault] = []
        self.closed = False
        self.capture_delay = 0.0
        self.conjuring = threading.Event()
        self.conjuring.set()
        self.started = threading.Event()  # start() holds until it is set
        self.started.set()

    @staticmethod
    def _next(script, default):
        item = script.pop(0) if script else default
        if isinstance(item, BaseException):
            raise item
        return item

    def start(self):
        self.started.wait(10)
        if self.start_faults:
            raise self.start_faults.pop(0)

    def capture(self):
        self.captures += 1
        if self.capture_delay:
            time.sleep(self.capture_delay)
        return self._next(self.capture_script, f"frame{self.captures}")

    def look_up(self, frame):
        return self._next(self.lookup_script, VisitResult(f"ticket for {frame}",
                                                          timings={"search": 0.001}))

    def print_visit(self, result):
        self._next(self.print_script, None)
        self.printed.append(result.ticket)

    def print_double(self, result, spent):
        self.conjuring.wait(5)  # held until the test has looked at the LED
        result.descriptor.take()
        self._next(self.print_script, None)
        self.printed.append(f"double of {result.ticket}")

    def print_no_face(self, reason):
        self._next(self.print_script, None)
        self.printed.append(f"no face: {reason}")

    def probe(self, fault):
        self.probes.append(fault)
        self._next(self.probe_script, None)

    def facts(self):
        return {"corpus_faces": 42}

    def close(self):
        self.closed = True


FAST = MachineSettings(cooldown_seconds=0.05, retry_seconds=0.05, retry_max_seconds=0.2,
                       capture_timeout=2, search_timeout=2, print_timeout=2)


class Running:
    """A service running in a background thread for the duration of a test."""

    def __init__(self, backend=None, machine_settings=FAST, settings=None):
        self.backend = backend or FakeBackend()
        self.controls = VirtualControls()
        self.visits = []
        self.service = Service(Machine(machine_settings), self.backend, self.controls,
                               settings or ServiceSettings(), on_visit=self.visits.append)
        self.thread = threading.Thread(target=self.service.run, kwargs={"install_signals": False})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.service.shutdown()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def wait(self, predicate, timeout=5):
        assert self.service.wait_for(predicate, timeout), self.service.status()

    def wait_state(self, state, timeout=5):
        self.wait(lambda s: s.state is state, timeout)


def test_press_to_ticket_and_back_to_ready():
    with Running() as r:
        r.wait_state(State.READY)
        r.controls.press("button")
        r.wait(lambda s: s.machine.counters.tickets_printed == 1)
        r.wait_state(State.READY)
        assert r.backend.printed == ["ticket for frame1"]
        assert [v.outcome for v in r.visits] == ["printed"]
        assert {"capture", "search", "print", "total"} <= set(r.visits[0].timings)
        shown = [p for p in r.controls.shown]
        for state in (State.STARTING, State.READY, State.CAPTURING, State.SEARCHING,
                      State.PRINTING, State.COOLDOWN):
            assert PATTERNS[(state, None)] in shown
    assert r.backend.closed
    assert r.service.state is State.SHUTTING_DOWN


def test_the_led_says_conjuring_while_the_double_is_made_and_presses_are_busy():
    """ticket.conjure: after (the lookup kept the descriptor): the ticket prints, then the
    machine is told the double is being conjured: its own LED pattern, presses refused."""
    import numpy as np

    backend = FakeBackend()
    backend.conjuring.clear()
    backend.lookup_script = [VisitResult("ticket", descriptor=Held(np.zeros(128, np.float32)))]
    with Running(backend) as r:
        r.wait_state(State.READY)
        r.controls.press("button")
        r.wait_state(State.CONJURING)
        assert r.controls.pattern == PATTERNS[(State.CONJURING, None)]
        assert r.controls.pattern != PATTERNS[(State.PRINTING, None)]
        answer = r.service.press_and_wait("button")
        assert not answer.taken and answer.state is State.CONJURING and answer.reason == "busy"
        assert backend.printed == ["ticket"]
        backend.conjuring.set()
        r.wait_state(State.READY)
        assert backend.printed == ["ticket", "double of ticket"]
        assert r.service.machine.counters.tickets_printed == 1
        assert [v.outcome for v in r.visits] == ["printed"]


def test_presses_while_busy_are_ignored():
    backend = FakeBackend()
    backend.capture_delay = 0.3
    with Running(backend) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait_state(State.CAPTURING)
        for _ in range(5):
            r.service.press()
        r.wait(lambda s: s.machine.counters.tickets_printed == 1)
        r.wait_state(State.READY)
        c = r.service.machine.counters
        assert (c.presses, c.presses_ignored, c.visits) == (6, 5, 1)
        assert backend.captures == 1


def test_no_face_prints_the_short_ticket():
    backend = FakeBackend()
    backend.lookup_script = [VisitResult(None, no_face="no face found — try again")]
    with Running(backend) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait(lambda s: s.machine.counters.tickets_printed == 1)
        assert backend.printed == ["no face: no face found — try again"]
        assert r.service.machine.counters.no_face == 1


def test_camera_lost_then_back():
    backend = FakeBackend()
    backend.capture_script = [OSError("camera unplugged")]
    backend.probe_script = [PartFault(Fault.CAMERA, "still unplugged")]
    with Running(backend) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait(lambda s: s.machine.counters.faults == 1)
        r.wait_state(State.READY)  # fault, failed probe, successful probe, ready
        assert backend.probes == [Fault.CAMERA, Fault.CAMERA]
        status = r.service.status()
        assert status["last_fault"]["part"] == "camera"
        assert status["last_fault"]["reason"] == "still unplugged"
        assert status["faults"] == 1
        assert PATTERNS[(State.FAULT, Fault.CAMERA)] in r.controls.shown
        r.service.press()  # works again
        r.wait(lambda s: s.machine.counters.tickets_printed == 1)


def test_printer_fault_recovers_by_itself():
    backend = FakeBackend()
    backend.print_script = [PartFault(Fault.PRINTER, "out of paper")]
    with Running(backend) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait(lambda s: s.machine.last_fault is not None)
        r.wait_state(State.READY)
        assert r.service.machine.last_fault == (Fault.PRINTER, "out of paper")
        assert backend.probes == [Fault.PRINTER]
        assert r.visits[0].outcome == "fault: printer"


def test_start_failure_retries_until_the_part_is_there():
    backend = FakeBackend()
    backend.start_faults = [PartFault(Fault.CORPUS, "corpus not found at /data/corpus")]
    with Running(backend) as r:
        r.wait_state(State.READY)
        assert backend.probes == [Fault.CORPUS]
        assert r.service.status()["last_fault"]["reason"] == "corpus not found at /data/corpus"


def test_hung_capture_times_out_into_a_camera_fault():
    backend = FakeBackend()
    backend.capture_delay = 1.0
    settings = MachineSettings(cooldown_seconds=0, retry_seconds=5, capture_timeout=0.2)
    with Running(backend, settings) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait_state(State.FAULT)
        assert r.service.machine.last_fault == (Fault.CAMERA, "capture timed out")
        time.sleep(1.0)  # the late frame arrives and is ignored
        assert r.service.state is State.FAULT
        assert backend.printed == []


def test_search_crash_is_a_corpus_fault_not_a_crash():
    backend = FakeBackend()
    backend.lookup_script = [RuntimeError("boom\nsecond line")]
    with Running(backend) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait(lambda s: s.machine.counters.faults == 1)
        assert r.service.machine.last_fault == (Fault.CORPUS, "boom")
        r.wait_state(State.READY)


def test_status_and_press_over_the_control_socket(tmp_path):
    path = tmp_path / "run" / "control.sock"
    with Running() as r:
        server = ControlServer(path, ControlHandler(r.service.status, r.service.press_and_wait))
        server.start()
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            r.wait_state(State.READY)
            reply = request(path, "press")
            assert reply == {"ok": True, "state": "ready", "taken": True, "accepted": True,
                             "reason": None}
            r.wait(lambda s: s.machine.counters.tickets_printed == 1)
            status = request(path, "status")
            assert status["tickets_printed"] == 1 and status["presses"] == 1
            assert status["corpus_faces"] == 42 and status["uptime_seconds"] >= 0
            assert set(status["last_visit"]["ms"]) >= {"capture", "print", "total"}
            with pytest.raises(ControlError, match="answered 'fly' with an error: unknown"):
                request(path, "fly")
        finally:
            server.close()
        assert not path.exists()


def test_control_socket_rejects_garbage_and_survives(tmp_path):
    path = tmp_path / "c.sock"
    server = ControlServer(path, lambda req: {"ok": True, "echo": req["command"]})
    server.start()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            s.sendall(b"not json\n[1]\n" + json.dumps({"command": "x"}).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            lines = s.makefile("rb").read().splitlines()
        replies = [json.loads(x) for x in lines]
        assert replies[0] == {"ok": False, "error": "not a JSON object"}
        assert replies[1]["ok"] is False
        assert replies[2] == {"ok": True, "echo": "x"}
    finally:
        server.close()


def test_control_socket_stale_file_is_replaced_and_live_one_is_refused(tmp_path):
    path = tmp_path / "c.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    first = ControlServer(path, lambda req: {"ok": True})
    first.start()
    try:
        with pytest.raises(ControlError, match="already running"):
            ControlServer(path, lambda req: {"ok": True}).start()
    finally:
        first.close()
    with pytest.raises(ControlError, match="no running sosie service"):
        request(path, "status")


def test_control_socket_path_that_is_a_file(tmp_path):
    path = tmp_path / "c.sock"
    path.write_text("x")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(path, lambda req: {}).start()


# ---------------------------------------------------------------------------------------------
# systemd


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock, until, timeout=5):
    messages = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.05)
    while time.monotonic() < deadline:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if until(messages):
            break
    return messages


def test_notify_outside_systemd_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_notify_abstract_socket(monkeypatch):
    name = f"sosie-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert systemd.ready("warm")
        assert sock.recv(100) == b"READY=1\nSTATUS=warm"
    finally:
        sock.close()


def test_notify_never_blocks_on_a_full_queue(tmp_path, monkeypatch):
    path = tmp_path / "deaf"
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    deaf.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    queue_length = Path("/proc/sys/net/unix/max_dgram_qlen")
    sends = min(1000, int(queue_length.read_text()) if queue_length.exists() else 10) + 5
    results: list[bool] = []
    sender = threading.Thread(target=lambda: results.extend(
        systemd.watchdog() for _ in range(sends)), daemon=True)
    try:
        sender.start()
        sender.join(sends * systemd.SEND_SECONDS + 5)
        assert not sender.is_alive(), "sd_notify blocked the service loop"
        assert results[0] is True and results[-1] is False  # the queue filled up: dropped
    finally:
        deaf.close()


def test_watchdog_interval(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert systemd.watchdog_interval() is None


def test_service_notifies_ready_watchdog_and_stopping(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with Running() as r:
        r.wait_state(State.READY)
        msgs = received(notify_socket, lambda m: sum("WATCHDOG=1" in x for x in m) >= 3)
    msgs += received(notify_socket, lambda m: any("STOPPING=1" in x for x in m))
    text = "\n".join(msgs)
    assert "READY=1" in text and text.count("WATCHDOG=1") >= 3 and "STOPPING=1" in text
    assert text.index("READY=1") < text.index("STOPPING=1")


def statuses(messages):
    return [line[len("STATUS="):] for m in messages for line in m.splitlines()
            if line.startswith("STATUS=")]


def test_a_fault_at_start_up_is_reported_ready_and_watched_then_cleared(notify_socket,
                                                                         monkeypatch):
    """No corpus at boot: systemd hears READY=1 (the unit must not sit in "activating" until
    TimeoutStartSec kills it), the pings go on, STATUS and the LED name the fault until the
    retried probe finds the corpus."""
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    missing = "no corpus in /srv/sosie/corpus: run `sosie build` again"
    backend = FakeBackend()
    backend.start_faults = [PartFault(Fault.CORPUS, missing)]
    backend.probe_script = [PartFault(Fault.CORPUS, missing) for _ in range(10_000)]
    with Running(backend) as r:
        r.wait(lambda s: len(backend.probes) >= 2)  # faulted, and retried
        msgs = received(notify_socket, lambda m: sum("WATCHDOG=1" in x for x in m) >= 3)
        assert r.service.state is State.FAULT
        text = "\n".join(msgs)
        assert "READY=1" in text and text.count("WATCHDOG=1") >= 3
        assert f"fault (corpus): {missing}; retrying" in statuses(msgs)
        assert r.controls.shown[-1] == PATTERNS[(State.FAULT, Fault.CORPUS)]
        backend.probe_script.clear()  # the installer copies the corpus in
        r.wait(lambda s: r.controls.shown[-1] == PATTERNS[(State.READY, None)])
        msgs += received(notify_socket, lambda m: "ready; 0 tickets printed" in statuses(m))
    assert statuses(msgs)[-1] == "ready; 0 tickets printed"
    assert "\n".join(msgs).count("READY=1") == 1


def test_ready_is_sent_while_the_parts_are_still_starting(notify_socket):
    backend = FakeBackend()
    backend.started.clear()  # models and corpus still loading
    with Running(backend) as r:
        msgs = received(notify_socket, lambda m: any("READY=1" in x for x in m))
        assert r.service.state is State.STARTING
        assert any(line.startswith("starting") for line in statuses(msgs)), msgs
        backend.started.set()
        r.wait_state(State.READY)


def test_watchdog_stops_when_a_device_hangs(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    backend = FakeBackend()
    backend.capture_delay = 8
    settings = ServiceSettings(stuck_seconds=5, stop_timeout=0)
    machine = MachineSettings(capture_timeout=60)
    with Running(backend, machine, settings) as r:
        r.wait_state(State.READY)
        r.service.press()
        r.wait_state(State.CAPTURING)
        received(notify_socket, lambda m: False, timeout=5.2)  # drain the healthy pings
        late = received(notify_socket, lambda m: False, timeout=1.5)
        assert not any("WATCHDOG=1" in m for m in late), late


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_watchdog_stops_when_the_control_socket_dies(notify_socket, monkeypatch, tmp_path):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    server = ControlServer(tmp_path / "c.sock", lambda req: {"ok": True})
    with Running() as r:
        server.start()
        r.service.watch(server.problem)
        r.wait_state(State.READY)
        assert received(notify_socket, lambda m: sum("WATCHDOG=1" in x for x in m) >= 2)
        assert server.problem() is None

        def broken(self):  # an error the accepting loop does not expect: its thread dies
            raise RuntimeError("accept broke")

        with monkeypatch.context() as patch:
            patch.setattr(socket.socket, "accept", broken)
            deadline = time.monotonic() + 3
            while server.problem() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        assert server.problem() == "the control socket's thread has died"
        received(notify_socket, lambda m: False, timeout=0.3)  # a ping already under way
        late = received(notify_socket, lambda m: False, timeout=1.0)
        assert not any("WATCHDOG=1" in m for m in late), late
    server.close()


def test_sigterm_stops_cleanly(notify_socket):
    backend = FakeBackend()
    service = Service(Machine(FAST), backend, VirtualControls())
    threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
    before = signal.getsignal(signal.SIGTERM)
    assert service.run() == 0  # in the main thread, with signal handlers
    assert service.state is State.SHUTTING_DOWN and backend.closed
    assert signal.getsignal(signal.SIGTERM) == before


def test_hold_to_shutdown_powers_off(tmp_path):
    marker = tmp_path / "powered-off"
    settings = ServiceSettings(poweroff_command=["touch", str(marker)])
    with Running(settings=settings) as r:
        r.wait_state(State.READY)
        r.controls.request_shutdown()
        r.thread.join(5)
    assert marker.exists()


def test_presence_trigger_starts_a_visit_while_ready():
    import numpy as np
    from gpiozero.pins.mock import MockFactory

    from appliance.runtime.presence import PresenceSensor, PresenceSettings

    class Glancing(FakeBackend):  # the appliance's look for the presence trigger
        def glance(self):
            return np.zeros((48, 64, 3), np.uint8)

        def faces_in(self, frame):
            return [(0, 0, 40, 40)]  # a face filling most of the frame

    backend = Glancing()
    presence = PresenceSettings(enabled=True, fps=20, steady_seconds=0.1, cooldown_seconds=60)

    with Running(backend) as r:
        sensor = PresenceSensor(presence, backend.glance, backend.faces_in,
                                lambda: r.service.state is State.READY, pin_factory=MockFactory())
        sensor.when_activated = lambda: r.service.press("presence")
        try:
            r.wait(lambda s: s.machine.counters.tickets_printed == 1)
            time.sleep(0.5)  # the same person still in view: no second visit
            assert r.service.machine.counters.visits == 1
        finally:
            sensor.close()
        assert sensor.closed


def test_a_long_start_up_keeps_the_watchdog_fed(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "100000")

    class SlowStart(FakeBackend):
        def start(self):
            time.sleep(6)  # e.g. building the demo corpus on first use

    settings = ServiceSettings(stuck_seconds=5, start_seconds=60, stop_timeout=0)
    with Running(SlowStart(), FAST, settings) as r:
        received(notify_socket, lambda m: False, timeout=5.2)
        late = received(notify_socket, lambda m: False, timeout=0.6)
        assert any("WATCHDOG=1" in m for m in late), "start-up is not a hung device"
        r.wait_state(State.READY, 10)


def test_the_ticket_number_is_synced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    """A power cut right after a ticket keeps a whole number (old or new), never an empty
    file: the new one is on the card before the rename; an unwritable place is no error."""
    from appliance.runtime.counter import TicketCounter

    path = tmp_path / "ticket-number"
    counter = TicketCounter(path)
    counter.save(41)
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (steps.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (steps.append("replace"), real_replace(a, b))[1])
    counter.save(42)
    assert steps[:2] == ["fsync", "replace"]
    assert counter.next() == 42 and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    monkeypatch.undo()
    unwritable = TicketCounter(path / "ticket-number")  # its folder is a file
    unwritable.save(43)  # logged, not raised
    assert unwritable.next() == 43 and TicketCounter(unwritable.path).next() == 1
    assert counter.next() == 42 and TicketCounter(path).next() == 42


def test_the_visit_counter_is_the_one_owner_of_ticket_numbers(tmp_path):
    """Numbers are taken from the counter (the lookup has none of its own) and kept across a
    restart only once a ticket is out; a fixed counter (sosie ticket --number) never saves."""
    from appliance.runtime.counter import FixedCounter, TicketCounter

    counter = TicketCounter(tmp_path / "ticket-number")
    assert [counter.take(), counter.take()] == [1, 2] and counter.next() == 3
    assert TicketCounter(counter.path).next() == 1  # nothing printed yet: nothing kept
    counter.save()
    assert TicketCounter(counter.path).take() == 3
    fixed = FixedCounter(41)
    assert [fixed.take(), fixed.take()] == [41, 42]
    fixed.save()
    assert fixed.path == Path(os.devnull)


def test_a_probe_keeps_the_start_up_seconds_of_parts_already_loaded(tmp_path: Path) -> None:
    """After a fault, `probe` starts the appliance again: the models and corpus already loaded
    are skipped, and `sosie status` keeps the seconds they really took (not 0.0)."""
    from types import SimpleNamespace

    import numpy as np

    from appliance.parts.camera import FileCamera
    from appliance.runtime.appliance import Appliance
    from appliance.runtime.counter import TicketCounter
    from appliance.settings import AppSettings

    ticks = iter(range(1000))
    printer = SimpleNamespace(paper=None, diagnose=list, close=lambda: None)  # nothing wrong
    appliance = Appliance(AppSettings(), printer=printer,  # type: ignore[arg-type]
                          camera=FileCamera(np.zeros((8, 8, 3), np.uint8)),
                          counter=TicketCounter(tmp_path / "n"), clock=lambda: float(next(ticks)))
    appliance.analyzer, appliance.lookup = object(), object()  # loaded at start-up
    appliance.startup_seconds.update(models=24.0, corpus=3.0)
    appliance.probe(Fault.CAMERA)
    assert appliance.startup_seconds["models"] == 24.0
    assert appliance.startup_seconds["corpus"] == 3.0
    assert appliance.startup_seconds["camera"] == 1.0  # it did open again
