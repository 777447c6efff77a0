"""The service loop: turns the state machine's actions into I/O and I/O results into events.

One loop thread owns the `Machine`, the timers and the LED; one worker thread does the slow
device work (start-up, capture, search, print, recovery probes) through a `Backend`, one job at
a time, and posts the outcome back as an event. Presses from the button, the keyboard, the
control socket or the presence trigger are events too, so they can arrive at any moment.
The loop pings systemd's watchdog only while the worker is not stuck, so a hung device gets the
service restarted instead of leaving a dead appliance on the wall.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from appliance.config import setting
from appliance.parts.controls import Controls
from appliance.runtime import systemd
from appliance.runtime.machine import (
    Action,
    Blink,
    CancelTimer,
    Capture,
    Captured,
    CaptureFailed,
    EndVisit,
    Event,
    Fault,
    Found,
    Machine,
    NoFace,
    Press,
    Printed,
    PrintFailed,
    PrintNoFace,
    PrintTicket,
    Probe,
    ProbeFailed,
    ProbeOk,
    Search,
    SearchFailed,
    Show,
    Shutdown,
    Started,
    StartFailed,
    StartTimer,
    State,
    Stop,
    TimerExpired,
    press_refusal,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSettings:
    """Config section `service`."""

    socket: Path | None = None  # control socket; default $RUNTIME_DIRECTORY or /run/sosie
    keep_captures: bool = False  # opt-in: keep visitors' photos (GDPR notice needed!)
    captures_dir: Path | None = None  # where kept photos go (required with keep_captures)
    stuck_seconds: float = setting(120.0, min=5, max=3600)  # worker busy longer: stop watchdog
    start_seconds: float = setting(900.0, min=5, max=7200)  # the same for start-up/recovery
    stop_timeout: float = setting(15.0, min=0, max=300)  # wait this long for a ticket in progress
    poweroff_command: list[str] = field(default_factory=lambda: ["systemctl", "poweroff"])


class PartFault(Exception):
    """A part of the appliance failed: which one, and why (one line)."""

    def __init__(self, fault: Fault, reason: str) -> None:
        super().__init__(f"{fault.value}: {reason}")
        self.fault = fault
        self.reason = reason


@dataclass
class Outcome:
    """What the backend's lookup produced: a ticket to print, or why there is none."""

    ticket: Any = None  # PIL "1" image or its bands (a lazy Ticket); None: no face found
    no_face: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """The devices behind the machine. Methods raise PartFault (or any exception) on failure."""

    def start(self) -> None: ...  # load models, open + warm the corpus, open camera and printer
    def capture(self) -> Any: ...
    def lookup(self, frame: Any) -> Outcome: ...
    def print_ticket(self, ticket: Any) -> None: ...
    def print_no_face(self, reason: str) -> None: ...
    def probe(self, fault: Fault) -> None: ...  # recover the part or raise
    def describe(self) -> dict[str, Any]: ...  # facts for `sosie status`
    def close(self) -> None: ...


@dataclass(frozen=True)
class PressAnswer:
    """Whether a press started a visit; if not, why (`press_refusal`)."""

    taken: bool
    state: State  # when the press arrived
    reason: str | None = None


@dataclass
class PressRequest:
    """A press whose sender waits for the answer (the control socket's `press`)."""

    press: Press
    done: threading.Event = field(default_factory=threading.Event)
    answer: PressAnswer | None = None


@dataclass
class VisitRecord:
    visit: int
    outcome: str = ""
    started: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Service:
    """Run the machine against a backend and controls until stopped."""

    def __init__(
        self,
        machine: Machine,
        backend: Backend,
        controls: Controls,
        settings: ServiceSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_visit: Callable[[VisitRecord], None] | None = None,
        on_state: Callable[[State, Fault | None], None] | None = None,
    ) -> None:
        self.machine = machine
        self.backend = backend
        self.controls = controls
        self.settings = settings or ServiceSettings()
        self.clock = clock
        self.on_visit = on_visit
        self.on_state = on_state
        self.events: queue.Queue[Event] = queue.Queue()
        self._timers: list[tuple[float, int, str]] = []  # (deadline, token, name) heap
        self._jobs: queue.Queue[tuple[Callable[[], None], float] | None] = queue.Queue()
        self._job_started: float | None = None
        self._job_limit = self.settings.stuck_seconds
        self._worker = threading.Thread(target=self._work, name="sosie-worker", daemon=True)
        self._stopped = threading.Event()
        self._poweroff = False
        self._started_at = clock()
        self._last_fault_at: float | None = None
        self._visit: VisitRecord | None = None
        self.last_visit: VisitRecord | None = None
        self.state_changed = threading.Condition()
        self._ready_sent = False
        self._health: list[Callable[[], str | None]] = [self._worker_problem]
        controls.on_press = self.press
        controls.on_shutdown = lambda: self.shutdown(poweroff=True)

    # -- inputs (any thread) -------------------------------------------------------------------

    def press(self, source: str = "button") -> None:
        self.events.put(Press(source))

    def press_and_wait(self, source: str, timeout: float = 2.0) -> PressAnswer:
        """Press, and wait until the loop has taken or ignored it (and why)."""
        request = PressRequest(Press(source))
        self.events.put(request)
        if not request.done.wait(timeout):
            return PressAnswer(False, self.machine.state, "the service is not answering")
        assert request.answer is not None
        return request.answer

    def watch(self, problem: Callable[[], str | None]) -> None:
        """Make the watchdog pings depend on `problem()` returning None (e.g. the socket)."""
        self._health.append(problem)

    def shutdown(self, poweroff: bool = False) -> None:
        self.events.put(Shutdown(poweroff))

    @property
    def state(self) -> State:
        return self.machine.state

    def wait_for(self, predicate: Callable[[Service], bool], timeout: float | None = None) -> bool:
        """Block until `predicate(self)` holds after some event (tests, demo, soak)."""
        with self.state_changed:
            return self.state_changed.wait_for(lambda: predicate(self), timeout)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> int:
        """Start, serve until a Shutdown event, clean up. Returns an exit status."""
        restore = self._install_signals() if install_signals else []
        self._worker.start()
        watchdog = systemd.watchdog_interval()
        next_ping = self.clock()
        self._apply([Show(State.STARTING)])
        self._submit(self._start_job, long=True)
        try:
            while not self._stopped.is_set():
                now = self.clock()
                if watchdog is not None and now >= next_ping:
                    problem = self.problem()
                    if problem is None:
                        systemd.watchdog()
                    else:
                        log.error("%s: letting the watchdog restart the service", problem)
                    next_ping = now + watchdog
                timeout = self._next_wakeup(now, next_ping if watchdog else None)
                try:
                    event = self.events.get(timeout=timeout)
                except queue.Empty:
                    event = None
                if isinstance(event, PressRequest):
                    self._handle_press(event)
                elif event is not None:
                    self._handle(event)
                    event = None  # a Captured event holds the visitor's photo: let it go
                self._fire_due_timers()
        finally:
            for sig, handler in restore:
                signal.signal(sig, handler)
            self._finish()
        return 0

    def _next_wakeup(self, now: float, ping: float | None) -> float:
        deadlines = [d for d, _, _ in self._timers[:1]]
        if ping is not None:
            deadlines.append(ping)
        if not deadlines:
            return 1.0
        return max(0.0, min(min(deadlines) - now, 1.0))

    def _fire_due_timers(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, token, name = heapq.heappop(self._timers)
            self._handle(TimerExpired(name, token))

    def problem(self) -> str | None:
        """The first reason not to vouch for the service to the watchdog, or None."""
        for check in self._health:
            try:
                problem = check()
            except Exception as exc:
                problem = f"health check failed: {_one_line(exc)}"
            if problem is not None:
                return problem
        return None

    def _handle_press(self, request: PressRequest) -> None:
        before = self.machine.state
        self._handle(request.press)
        refusal = press_refusal(before)
        request.answer = PressAnswer(refusal is None, before, refusal)
        request.done.set()

    def _handle(self, event: Event) -> None:
        before = self.machine.state
        actions = self.machine.handle(event)
        if isinstance(event, Press) and not actions:
            log.info("press (%s) ignored while %s", event.source, before.value)
        self._apply(actions)
        with self.state_changed:
            self.state_changed.notify_all()

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                self._do(action)
            except Exception:  # an LED or log failure must not stop the appliance
                log.exception("action %s failed", type(action).__name__)

    def _do(self, action: Action) -> None:
        if isinstance(action, Show):
            self._show(action)
        elif isinstance(action, StartTimer):
            heapq.heappush(self._timers, (self.clock() + action.seconds, action.token, action.name))
        elif isinstance(action, CancelTimer):
            pass  # the machine ignores the stale token when it fires
        elif isinstance(action, Blink):
            self.controls.signal(action.signal, action.seconds)
        elif isinstance(action, Capture):
            self._visit = VisitRecord(action.visit, started=self.clock())
            self._submit(lambda v=action.visit: self._capture_job(v))
        elif isinstance(action, Search):
            self._submit(lambda v=action.visit, f=action.frame: self._search_job(v, f))
        elif isinstance(action, PrintTicket):
            self._submit(lambda v=action.visit, r=action.result: self._print_job(v, r))
        elif isinstance(action, PrintNoFace):
            self._submit(lambda v=action.visit, r=action.reason: self._print_no_face_job(v, r))
        elif isinstance(action, EndVisit):
            self._end_visit(action)
        elif isinstance(action, Probe):
            self._submit(lambda f=action.fault: self._probe_job(f), long=True)
        elif isinstance(action, Stop):
            self._poweroff = action.poweroff
            self._stopped.set()

    def _show(self, action: Show) -> None:
        state, fault = action.state, action.fault
        if state is State.FAULT:
            self._last_fault_at = self.clock()
            reason = self.machine.last_fault[1] if self.machine.last_fault else ""
            log.warning("fault (%s): %s", fault.value if fault else "?", reason)
            systemd.status(f"fault ({fault.value if fault else '?'}): {reason}")
        else:
            log.info("state: %s", state.value)
            if state is State.READY:
                systemd.status(f"ready; {self.machine.counters.tickets_printed} tickets printed")
        self.controls.show(state, fault)
        if state is State.READY and not self._ready_sent:
            self._ready_sent = True
            systemd.ready("ready")
        if self.on_state is not None:
            self.on_state(state, fault)

    def _end_visit(self, action: EndVisit) -> None:
        record = self._visit
        self._visit = None
        if record is None or record.visit != action.visit:
            return
        record.outcome = action.outcome
        record.timings["total"] = self.clock() - record.started
        self.last_visit = record
        log.info("visit %d: %s in %.0f ms", record.visit, record.outcome,
                 1000 * record.timings["total"])
        if self.on_visit is not None:
            self.on_visit(record)

    # -- worker ----------------------------------------------------------------------------------

    def _submit(self, job: Callable[[], None], long: bool = False) -> None:
        """Queue device work; `long` jobs (start-up, recovery) may take `start_seconds`."""
        limit = self.settings.start_seconds if long else self.settings.stuck_seconds
        self._jobs.put((job, limit))

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, self._job_limit = item
            del item
            self._job_started = self.clock()
            try:
                job()
            except Exception:  # jobs post their own failures; this is a last resort
                log.exception("worker job failed")
            finally:
                self._job_started = None
                del job

    def _worker_problem(self) -> str | None:
        started = self._job_started
        if started is None or self.clock() - started < self._job_limit:
            return None
        return f"a device has been busy for over {self._job_limit:.0f} s"

    def _start_job(self) -> None:
        try:
            self.backend.start()
        except PartFault as exc:
            self.events.put(StartFailed(exc.fault, exc.reason))
            return
        except Exception as exc:
            log.exception("start-up failed")
            self.events.put(StartFailed(Fault.CORPUS, _one_line(exc)))
            return
        self.events.put(Started())

    def _capture_job(self, visit: int) -> None:
        start = self.clock()
        try:
            frame = self.backend.capture()
        except Exception as exc:
            self.events.put(CaptureFailed(visit, _one_line(exc)))
            return
        self._timing(visit, "capture", self.clock() - start)
        self.events.put(Captured(visit, frame))

    def _search_job(self, visit: int, frame: Any) -> None:
        try:
            outcome = self.backend.lookup(frame)
        except Exception as exc:
            log.exception("search failed")
            self.events.put(SearchFailed(visit, _one_line(exc)))
            return
        finally:
            del frame
        record = self._visit
        if record is not None and record.visit == visit:
            record.timings.update(outcome.timings)
            record.details.update(outcome.details)
        if outcome.ticket is None:
            self.events.put(NoFace(visit, outcome.no_face or "no face found"))
        else:
            self.events.put(Found(visit, outcome.ticket))

    def _print_job(self, visit: int, ticket: Any) -> None:
        self._print(visit, lambda: self.backend.print_ticket(ticket))

    def _print_no_face_job(self, visit: int, reason: str) -> None:
        self._print(visit, lambda: self.backend.print_no_face(reason))

    def _print(self, visit: int, do: Callable[[], None]) -> None:
        start = self.clock()
        try:
            do()
        except Exception as exc:
            self.events.put(PrintFailed(visit, _one_line(exc)))
            return
        self._timing(visit, "print", self.clock() - start)
        self.events.put(Printed(visit))

    def _probe_job(self, fault: Fault) -> None:
        try:
            self.backend.probe(fault)
        except PartFault as exc:
            self.events.put(ProbeFailed(exc.fault, exc.reason))
            return
        except Exception as exc:
            self.events.put(ProbeFailed(fault, _one_line(exc)))
            return
        self.events.put(ProbeOk(fault))

    def _timing(self, visit: int, stage: str, seconds: float) -> None:
        record = self._visit
        if record is not None and record.visit == visit:
            record.timings[stage] = seconds

    # -- status and shutdown -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What `sosie status` shows."""
        m = self.machine
        c = m.counters
        now = self.clock()
        reply: dict[str, Any] = {
            "ok": True,
            "state": m.state.value,
            "fault": m.fault.value if m.fault else None,
            "tickets_printed": c.tickets_printed,
            "visits": c.visits,
            "presses": c.presses,
            "presses_ignored": c.presses_ignored,
            "no_face": c.no_face,
            "faults": c.faults,
            "last_fault": None,
            "uptime_seconds": round(now - self._started_at, 1),
        }
        if m.last_fault is not None:
            kind, reason = m.last_fault
            ago = now - self._last_fault_at if self._last_fault_at is not None else None
            reply["last_fault"] = {"part": kind.value, "reason": reason,
                                   "seconds_ago": None if ago is None else round(ago, 1)}
        if self.last_visit is not None:
            v = self.last_visit
            reply["last_visit"] = {"outcome": v.outcome,
                                   "ms": {k: round(1000 * t, 1) for k, t in v.timings.items()}}
        with contextlib.suppress(Exception):
            reply.update(self.backend.describe())
        return reply

    def handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """The control socket's commands."""
        command = request.get("command")
        if command == "status":
            return self.status()
        if command == "press":
            answer = self.press_and_wait("socket")
            return {"ok": True, "state": answer.state.value, "taken": answer.taken,
                    "accepted": answer.taken, "reason": answer.reason}
        return {"ok": False, "error": f"unknown command {command!r} (known: status, press)"}

    def _install_signals(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        previous = []
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous.append((sig, signal.getsignal(sig)))
            signal.signal(sig, self._on_signal)
        return previous

    def _on_signal(self, signum: int, frame: Any) -> None:
        # queue.put may need a lock the interrupted main thread holds: post from another thread
        log.info("received %s: stopping", signal.Signals(signum).name)
        threading.Thread(target=self.shutdown, daemon=True).start()

    def _finish(self) -> None:
        systemd.stopping()
        # drop jobs not yet begun, let a ticket in progress finish, then stop the worker
        with contextlib.suppress(queue.Empty):
            while True:
                self._jobs.get_nowait()
        self._jobs.put(None)
        self._worker.join(self.settings.stop_timeout)
        if self._worker.is_alive():
            log.warning("a device did not finish within %.0f s; stopping anyway",
                        self.settings.stop_timeout)
        with contextlib.suppress(Exception):
            self.backend.close()
        with contextlib.suppress(Exception):
            self.controls.close()
        with self.state_changed:
            self.state_changed.notify_all()
        if self._poweroff and self.settings.poweroff_command:
            log.warning("powering off: %s", " ".join(self.settings.poweroff_command))
            try:
                subprocess.run(self.settings.poweroff_command, check=False, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                log.error("power-off command failed: %s", exc)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PartFault):
        return exc.reason
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first or type(exc).__name__
