"""The appliance's behaviour as a pure state machine: events in, actions out.

Nothing here touches hardware, the clock or threads. The service (`appliance.runtime.service`) feeds
events (a press, a finished capture, an expired timer, ...) to `Machine.handle`, which returns
the actions to carry out (capture, search, print, start a timer, show a pattern, ...). Each
visit and each timer carries a token; events about a visit or timer that is no longer current
(a late capture after a timeout, a timer that was cancelled) are ignored, so a slow or hung
device can never push the machine into the wrong state.

    starting --Started--> ready --Press--> capturing --Captured--> searching --Found--> printing
        |                   ^                   |                     |  NoFace            |
    StartFailed             |               (fails)               (fails)   |   Printed  Conjuring
        v                   |                   v                     v     v     |        v
    fault(kind) --Timer--> Probe --ProbeOk------+                 cooldown <------+-- conjuring
                                                                    --Timer--> ready   Printed

`conjuring` (`ticket.conjure: after`): the visitor's ticket is out and their conjured double
is being searched for, then printed, still within the print stage's timer.

CorpusCheckFailed (the corpus's background check found a bad row): from any state but a
corpus fault, straight to fault(corpus), a visit in progress ended without its ticket; the
recovery is the corpus fault's (Probe reopens and checks the corpus).

Any state --Shutdown--> shutting_down (terminal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from appliance.faults import Fault
from appliance.runtime.events import (
    COOLDOWN_TIMER,
    RETRY_TIMER,
    STAGE_TIMER,
    Action,
    Blink,
    CancelTimer,
    Capture,
    Captured,
    CaptureFailed,
    Conjuring,
    CorpusCheckFailed,
    EndVisit,
    Event,
    Found,
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
    Stop,
    TimerExpired,
)
from appliance.runtime.settings import MachineSettings
from appliance.runtime.states import BUSY_STATES, State


@dataclass
class Counters:
    presses: int = 0
    presses_ignored: int = 0
    visits: int = 0
    tickets_printed: int = 0
    no_face: int = 0
    faults: int = 0


class Machine:
    """The appliance's state; `handle(event)` returns the actions to perform, in order."""

    def __init__(self, settings: MachineSettings | None = None) -> None:
        self.settings = settings or MachineSettings()
        self.state = State.STARTING
        self.fault: Fault | None = None
        self.last_fault: tuple[Fault, str] | None = None
        self.counters = Counters()
        self.visit = 0  # token of the current visit (0 = none yet)
        self._timers: dict[str, int] = {}
        self._next_token = 0
        self._retries = 0

    @property
    def timers(self) -> Mapping[str, int]:
        """The timers running: name -> the token their expiry must carry (read-only)."""
        return MappingProxyType(self._timers)

    # -- helpers -------------------------------------------------------------------------------

    def _timer(self, name: str, seconds: float) -> StartTimer:
        self._next_token += 1
        self._timers[name] = self._next_token
        return StartTimer(name, seconds, self._next_token)

    def _cancel(self, name: str) -> list[Action]:
        return [CancelTimer(name)] if self._timers.pop(name, None) is not None else []

    def _enter(self, state: State, fault: Fault | None = None) -> Show:
        self.state = state
        self.fault = fault
        return Show(state, fault)

    def _to_fault(self, fault: Fault, reason: str) -> list[Action]:
        self.counters.faults += 1
        self.last_fault = (fault, reason)
        self._retries = 0
        actions: list[Action] = [*self._cancel(STAGE_TIMER), *self._cancel(COOLDOWN_TIMER)]
        if self.state in BUSY_STATES:
            actions.append(EndVisit(self.visit, f"fault: {fault.value}"))
        actions.append(self._enter(State.FAULT, fault))
        actions.append(self._timer(RETRY_TIMER, self._retry_delay()))
        return actions

    def _retry_delay(self) -> float:
        s = self.settings
        return min(s.retry_seconds * (2 ** min(self._retries, 16)), s.retry_max_seconds)

    def _stage(self, state: State, seconds: float, action: Action) -> list[Action]:
        """Enter a busy stage: the previous stage's timer (if any) gives way to this one's."""
        return [*self._cancel(STAGE_TIMER), self._enter(state),
                self._timer(STAGE_TIMER, seconds), action]

    def _cooldown(self, outcome: str) -> list[Action]:
        actions: list[Action] = [*self._cancel(STAGE_TIMER), EndVisit(self.visit, outcome)]
        actions.append(self._enter(State.COOLDOWN))
        actions.append(self._timer(COOLDOWN_TIMER, self.settings.cooldown_seconds))
        return actions

    def _current(self, visit: int) -> bool:
        return visit == self.visit

    # -- the transition function ---------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Apply `event`; return the actions to carry out (possibly none)."""
        if self.state is State.SHUTTING_DOWN:
            return []
        if isinstance(event, Shutdown):
            actions: list[Action] = []
            for name in list(self._timers):
                actions += self._cancel(name)
            if self.state in BUSY_STATES:
                actions.append(EndVisit(self.visit, "shutdown"))
            return [*actions, self._enter(State.SHUTTING_DOWN), Stop(event.poweroff)]
        if isinstance(event, Press):
            return self._press(event)
        if isinstance(event, CorpusCheckFailed):
            return self._corpus_check_failed(event)
        if isinstance(event, TimerExpired):
            if self._timers.get(event.name) != event.token:
                return []  # cancelled or superseded
            del self._timers[event.name]
            return self._timer_expired(event.name)
        handler = _HANDLERS.get((self.state, type(event)))
        return handler(self, event) if handler else []

    def _press(self, event: Press) -> list[Action]:
        self.counters.presses += 1
        if self.state is not State.READY:
            self.counters.presses_ignored += 1
            return []
        self.visit += 1
        self.counters.visits += 1
        return self._stage(State.CAPTURING, self.settings.capture_timeout, Capture(self.visit))

    def _corpus_check_failed(self, event: CorpusCheckFailed) -> list[Action]:
        """A fault at once, whatever the state (starting: the start job's late Started is then
        ignored; busy: the visit ends here and its search's late answer is ignored, so no ticket
        comes from unchecked rows). Already in that part's fault: only the reason is newer (the
        probe's answer decides the recovery)."""
        if self.state is State.FAULT and self.fault is event.part:
            self.last_fault = (event.part, event.reason)
            return []
        return self._to_fault(event.part, event.reason)

    def _timer_expired(self, name: str) -> list[Action]:
        if name == COOLDOWN_TIMER and self.state is State.COOLDOWN:
            return [self._enter(State.READY)]
        if name == RETRY_TIMER and self.state is State.FAULT:
            assert self.fault is not None
            return [Probe(self.fault)]
        if name == STAGE_TIMER and self.state in BUSY_STATES:
            fault, stage = {
                State.CAPTURING: (Fault.CAMERA, "capture"),
                State.SEARCHING: (Fault.CORPUS, "search"),
                State.PRINTING: (Fault.PRINTER, "print"),
                State.CONJURING: (Fault.PRINTER, "print of the conjured double"),
            }[self.state]
            return self._to_fault(fault, f"{stage} timed out")
        return []

    # -- per-state handlers ----------------------------------------------------------------------

    def _started(self, event: Started) -> list[Action]:
        return [self._enter(State.READY)]

    def _start_failed(self, event: StartFailed) -> list[Action]:
        return self._to_fault(event.fault, event.reason)

    def _captured(self, event: Captured) -> list[Action]:
        if not self._current(event.visit):
            return []
        return self._stage(
            State.SEARCHING, self.settings.search_timeout, Search(event.visit, event.frame)
        )

    def _capture_failed(self, event: CaptureFailed) -> list[Action]:
        if not self._current(event.visit):
            return []
        return self._to_fault(event.part, event.reason)

    def _found(self, event: Found) -> list[Action]:
        if not self._current(event.visit):
            return []
        return self._stage(
            State.PRINTING, self.settings.print_timeout, PrintTicket(event.visit, event.result)
        )

    def _no_face(self, event: NoFace) -> list[Action]:
        if not self._current(event.visit):
            return []
        self.counters.no_face += 1
        if self.settings.no_face == "ticket":
            return self._stage(
                State.PRINTING, self.settings.print_timeout, PrintNoFace(event.visit, event.reason)
            )
        blink = Blink("no_face", self.settings.no_face_blink_seconds)
        return [*self._cooldown("no face"), blink]

    def _search_failed(self, event: SearchFailed) -> list[Action]:
        if not self._current(event.visit):
            return []
        return self._to_fault(event.part, event.reason)

    def _printed(self, event: Printed) -> list[Action]:
        if not self._current(event.visit):
            return []
        self.counters.tickets_printed += 1
        return self._cooldown("printed")

    def _conjuring(self, event: Conjuring) -> list[Action]:
        if not self._current(event.visit):
            return []
        return [self._enter(State.CONJURING)]  # the print stage's timer keeps running

    def _print_failed(self, event: PrintFailed) -> list[Action]:
        if not self._current(event.visit):
            return []
        return self._to_fault(event.part, event.reason)

    def _probe_ok(self, event: ProbeOk) -> list[Action]:
        if event.fault is not self.fault:
            return []
        self._retries = 0
        self._cancel(RETRY_TIMER)
        return [self._enter(State.READY)]

    def _probe_failed(self, event: ProbeFailed) -> list[Action]:
        self._retries += 1
        self.last_fault = (event.fault, event.reason)
        actions: list[Action] = []
        if event.fault is not self.fault:  # another part failed while recovering
            actions.append(self._enter(State.FAULT, event.fault))
        return [*actions, self._timer(RETRY_TIMER, self._retry_delay())]


_HANDLERS: dict[tuple[State, type], Any] = {
    (State.STARTING, Started): Machine._started,
    (State.STARTING, StartFailed): Machine._start_failed,
    (State.CAPTURING, Captured): Machine._captured,
    (State.CAPTURING, CaptureFailed): Machine._capture_failed,
    (State.SEARCHING, Found): Machine._found,
    (State.SEARCHING, NoFace): Machine._no_face,
    (State.SEARCHING, SearchFailed): Machine._search_failed,
    (State.PRINTING, Printed): Machine._printed,
    (State.PRINTING, PrintFailed): Machine._print_failed,
    (State.PRINTING, Conjuring): Machine._conjuring,
    (State.CONJURING, Printed): Machine._printed,
    (State.CONJURING, PrintFailed): Machine._print_failed,
    (State.FAULT, ProbeOk): Machine._probe_ok,
    (State.FAULT, ProbeFailed): Machine._probe_failed,
}
