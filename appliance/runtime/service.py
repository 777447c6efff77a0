"""The service loop: turns the state machine's actions into I/O and I/O results into events.

One loop thread owns the `Machine`, the `Timers` and the LED; one `Worker` thread does the slow
device work (`DeviceJobs`: start-up, capture, search, print, recovery probes) through the
appliance's `Parts`, one job at a time, and posts each outcome back as an event. Presses from
the button, the keyboard, the control socket or the presence trigger are events too, so they
can arrive at any moment. The loop pings systemd's watchdog only while every health check
passes (the worker is not stuck on a device, the control socket accepts), so a hung part gets
the service restarted instead of leaving a dead appliance on the wall.

systemd hears READY=1 as soon as the loop runs, whatever the appliance's state: starting, ready
or a fault being retried are states of the appliance, shown by the LED, `sosie status` and the
STATUS= line (`status_line`), not reasons to hold the unit in "activating" until
TimeoutStartSec= kills it (and the LED and the control socket with it).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import one_line
from appliance.faults import Fault
from appliance.parts.controls import Controls
from appliance.runtime import systemd
from appliance.runtime.events import (
    Action,
    Blink,
    CancelTimer,
    Capture,
    EndVisit,
    Event,
    Press,
    PrintNoFace,
    PrintTicket,
    Probe,
    Search,
    Show,
    Shutdown,
    StartTimer,
    Stop,
)
from appliance.runtime.jobs import DeviceJobs, Parts
from appliance.runtime.machine import Machine
from appliance.runtime.patterns import SIGNALS, pattern_for
from appliance.runtime.settings import ServiceSettings
from appliance.runtime.states import State, press_refusal
from appliance.runtime.timers import Timers
from appliance.runtime.visits import VisitLog, VisitRecord
from appliance.runtime.worker import Worker
from appliance.words import plural

__all__ = ["PressAnswer", "Service", "ServiceSettings", "VisitRecord", "status_line"]

log = logging.getLogger(__name__)


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


def status_line(machine: Machine) -> str:
    """systemd's STATUS= for the machine as it is: the part at fault and why, or its state."""
    state = machine.state
    if state is State.STARTING:
        return "starting: loading the face models, opening the corpus, camera and printer"
    if state is State.FAULT:
        part = machine.fault.value if machine.fault else "?"
        reason = machine.last_fault[1] if machine.last_fault else ""
        return f"fault ({part}): {reason}; retrying"
    if state is State.SHUTTING_DOWN:
        return "shutting down"
    return f"{state.value}; {plural(machine.counters.tickets_printed, 'ticket')} printed"


class Service:
    """Run the machine against the appliance's parts and controls until stopped."""

    def __init__(
        self,
        machine: Machine,
        parts: Parts,
        controls: Controls,
        settings: ServiceSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_visit: Callable[[VisitRecord], None] | None = None,
        on_state: Callable[[State, Fault | None], None] | None = None,
    ) -> None:
        self.machine = machine
        self.parts = parts
        self.controls = controls
        self.settings = settings or ServiceSettings()
        self.clock = clock
        self.on_state = on_state
        self.visits = VisitLog(clock, on_visit)
        self.events: queue.Queue[Event | PressRequest] = queue.Queue()
        self.timers = Timers(clock)
        self.worker = Worker(clock)
        self.jobs = DeviceJobs(parts, self.events.put, clock, self.visits.timing, self.visits.found)
        self.state_changed = threading.Condition()
        self.started_at = clock()
        self.last_fault_at: float | None = None
        self._stopped = threading.Event()
        self._poweroff = False
        self._status_sent: str | None = None  # the last STATUS= systemd heard
        self.watchdog = systemd.Watchdog(clock)
        self.watchdog.watch(self.worker.problem)
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

    def shutdown(self, poweroff: bool = False) -> None:
        self.events.put(Shutdown(poweroff))

    def watch(self, problem: Callable[[], str | None]) -> None:
        """Make the watchdog pings depend on `problem()` returning None (e.g. the socket)."""
        self.watchdog.watch(problem)

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def last_visit(self) -> VisitRecord | None:
        return self.visits.last

    def status(self) -> dict[str, Any]:
        """A snapshot of the service for `sosie status` (JSON-ready): state, counters, the last
        fault and visit, and what the parts say about themselves."""
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
            "uptime_seconds": round(now - self.started_at, 1),
        }
        if m.last_fault is not None:
            kind, reason = m.last_fault
            at = self.last_fault_at
            reply["last_fault"] = {"part": kind.value, "reason": reason,
                                   "seconds_ago": None if at is None else round(now - at, 1)}
        visit = self.last_visit
        if visit is not None:
            reply["last_visit"] = {"outcome": visit.outcome,
                                   "ms": {k: round(1000 * t, 1) for k, t in visit.timings.items()}}
            if visit.matches:
                reply["last_visit"]["best_distance"] = round(visit.matches[0].distance, 4)
        with contextlib.suppress(Exception):
            reply.update(self.parts.facts())
        return reply

    def wait_for(self, predicate: Callable[[Service], bool], timeout: float | None = None) -> bool:
        """Block until `predicate(self)` holds after some event (tests, demo, soak)."""
        with self.state_changed:
            return self.state_changed.wait_for(lambda: predicate(self), timeout)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> int:
        """Start, serve until a Shutdown event, clean up. Returns an exit status."""
        restore = install_stop_signals(self._on_signal) if install_signals else []
        self.worker.start()
        self._apply([Show(State.STARTING)])
        self.worker.submit(self.jobs.start, self.settings.start_seconds)
        self._status_sent = status_line(self.machine)
        systemd.ready(self._status_sent)  # the loop runs: started, whatever the parts do
        try:
            while not self._stopped.is_set():
                self.watchdog.tick()
                try:
                    event = self.events.get(timeout=self._wait())
                except queue.Empty:
                    event = None
                if isinstance(event, PressRequest):
                    self._handle_press(event)
                elif event is not None:
                    self._handle(event)
                event = None  # a Captured event holds the visitor's photo: let it go
                for expired in self.timers.due():
                    self._handle(expired)
        finally:
            for sig, handler in restore:
                signal.signal(sig, handler)
            self._finish()
        return 0

    def problem(self) -> str | None:
        """The first reason not to vouch for the service to the watchdog, or None."""
        return self.watchdog.problem()

    def _wait(self) -> float:
        deadlines = [d for d in (self.timers.next_deadline(), self.watchdog.next_deadline())
                     if d is not None]
        if not deadlines:
            return 1.0
        return max(0.0, min(min(deadlines) - self.clock(), 1.0))

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
        self._report_status()
        with self.state_changed:
            self.state_changed.notify_all()

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                self._do(action)
            except Exception:  # an LED or log failure must not stop the appliance
                log.exception("action %s failed", type(action).__name__)

    def _do(self, action: Action) -> None:
        jobs, work, stuck = self.jobs, self.worker.submit, self.settings.stuck_seconds
        if isinstance(action, Show):
            self._show(action)
        elif isinstance(action, StartTimer):
            self.timers.start(action.name, action.seconds, action.token)
        elif isinstance(action, CancelTimer):
            pass  # the machine ignores the stale token when it fires
        elif isinstance(action, Blink):
            self.controls.signal(SIGNALS[action.signal], action.seconds)
        elif isinstance(action, Capture):
            self.visits.begin(action.visit)
            work(lambda v=action.visit: jobs.capture(v), stuck)
        elif isinstance(action, Search):
            work(lambda v=action.visit, f=action.frame: jobs.search(v, f), stuck)
        elif isinstance(action, PrintTicket):
            work(lambda v=action.visit, r=action.result: jobs.print_visit(v, r), stuck)
        elif isinstance(action, PrintNoFace):
            work(lambda v=action.visit, r=action.reason: jobs.print_no_face(v, r), stuck)
        elif isinstance(action, EndVisit):
            self.visits.end(action.visit, action.outcome)
        elif isinstance(action, Probe):
            work(lambda f=action.fault: jobs.probe(f), self.settings.start_seconds)
        elif isinstance(action, Stop):
            self._poweroff = action.poweroff
            self._stopped.set()

    def _report_status(self) -> None:
        """Tell systemd the machine's status line when it changed (a fault, its new reason on a
        failed retry, the recovery)."""
        line = status_line(self.machine)
        if line != self._status_sent:
            self._status_sent = line
            systemd.status(line)

    def _show(self, action: Show) -> None:
        state, fault = action.state, action.fault
        if state is State.FAULT:
            self.last_fault_at = self.clock()
            reason = self.machine.last_fault[1] if self.machine.last_fault else ""
            log.warning("fault (%s): %s", fault.value if fault else "?", reason)
        else:
            log.info("state: %s", state.value)
        self.controls.show(pattern_for(state, fault))
        if self.on_state is not None:
            self.on_state(state, fault)

    # -- signals and shutdown --------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        # queue.put may need a lock the interrupted main thread holds: post from another thread
        log.info("received %s: stopping", signal.Signals(signum).name)
        threading.Thread(target=self.shutdown, daemon=True).start()

    def _finish(self) -> None:
        systemd.stopping()
        # drop jobs not yet begun, let a ticket in progress finish, then stop
        if not self.worker.stop(self.settings.stop_timeout):
            log.warning("a device did not finish within %.0f s; stopping anyway",
                        self.settings.stop_timeout)
        for part in (self.parts, self.controls):
            try:
                part.close()
            except Exception as exc:
                log.warning("closing %s: %s", type(part).__name__, one_line(exc))
        with self.state_changed:
            self.state_changed.notify_all()
        if self._poweroff and self.settings.poweroff_command:
            power_off(self.settings.poweroff_command)


def install_stop_signals(handler: Callable[[int, Any], None]) -> list[tuple[int, Any]]:
    """SIGTERM, SIGINT and SIGHUP to `handler` (main thread only); the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return []
    previous = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous.append((sig, signal.getsignal(sig)))
        signal.signal(sig, handler)
    return previous


def power_off(command: list[str]) -> None:
    """Run the installer's power-off command (the hold-to-shutdown button)."""
    log.warning("powering off: %s", " ".join(command))
    try:
        subprocess.run(command, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("power-off command failed: %s", exc)
