"""The state machine's vocabulary: the events it is fed and the actions it returns.

A leaf beside the machine (`appliance.runtime.machine`): the service loop and the device jobs
speak in these words without importing the machine itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance.faults import Fault
from appliance.runtime.states import State

if TYPE_CHECKING:  # the machine only carries them: it never looks inside
    from appliance.parts.camera import Frame
    from appliance.runtime.lookup import VisitResult


# ---------------------------------------------------------------------------------------------
# Events (in)


@dataclass(frozen=True)
class Started:
    """Models loaded, corpus opened (its rows checked on a thread: `CorpusCheckFailed`),
    camera and printer open."""


@dataclass(frozen=True)
class StartFailed:
    fault: Fault
    reason: str


@dataclass(frozen=True)
class Press:
    source: str = "button"


@dataclass(frozen=True)
class Captured:
    visit: int
    frame: Frame = field(repr=False)


@dataclass(frozen=True)
class CaptureFailed:
    visit: int
    reason: str
    part: Fault = Fault.CAMERA


@dataclass(frozen=True)
class Found:
    """The search produced a ticket to print."""

    visit: int
    result: VisitResult = field(repr=False)


@dataclass(frozen=True)
class NoFace:
    visit: int
    reason: str = "no face found"


@dataclass(frozen=True)
class SearchFailed:
    visit: int
    reason: str
    part: Fault = Fault.CORPUS  # or MODELS (the face models), TICKET (a font), CAMERA (the frame)


@dataclass(frozen=True)
class CorpusCheckFailed:
    """The corpus's background check (its passes over every row, left by start-up to a
    thread) found a problem: a fault at once, whatever the machine is doing."""

    reason: str
    part: Fault = Fault.CORPUS


@dataclass(frozen=True)
class Printed:
    visit: int


@dataclass(frozen=True)
class Conjuring:
    """The visit's ticket is printed; its conjured double is being made (then printed)."""

    visit: int


@dataclass(frozen=True)
class PrintFailed:
    visit: int
    reason: str
    part: Fault = Fault.PRINTER  # or TICKET: the ticket itself could not be composed


@dataclass(frozen=True)
class TimerExpired:
    name: str
    token: int


@dataclass(frozen=True)
class ProbeOk:
    fault: Fault


@dataclass(frozen=True)
class ProbeFailed:
    fault: Fault
    reason: str


@dataclass(frozen=True)
class Shutdown:
    """Stop the service; `poweroff` also powers the machine down (hold-to-shutdown button)."""

    poweroff: bool = False


Event = (
    Started | StartFailed | Press | Captured | CaptureFailed | Found | NoFace | SearchFailed
    | CorpusCheckFailed | Printed | Conjuring | PrintFailed | TimerExpired | ProbeOk
    | ProbeFailed | Shutdown
)

# ---------------------------------------------------------------------------------------------
# Actions (out)


@dataclass(frozen=True)
class Show:
    """Show the state on the LED (the controls pick the pattern)."""

    state: State
    fault: Fault | None = None


@dataclass(frozen=True)
class Blink:
    """A short signal over the current pattern (e.g. 'no face found')."""

    signal: str
    seconds: float


@dataclass(frozen=True)
class Capture:
    visit: int


@dataclass(frozen=True)
class Search:
    visit: int
    frame: Frame = field(repr=False)


@dataclass(frozen=True)
class PrintTicket:
    visit: int
    result: VisitResult = field(repr=False)


@dataclass(frozen=True)
class PrintNoFace:
    visit: int
    reason: str


@dataclass(frozen=True)
class EndVisit:
    """The visit is over: drop everything held about the visitor."""

    visit: int
    outcome: str


@dataclass(frozen=True)
class StartTimer:
    name: str
    seconds: float
    token: int


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class Probe:
    """Try to recover from a fault (reopen the camera, printer or corpus)."""

    fault: Fault


@dataclass(frozen=True)
class Stop:
    poweroff: bool = False


Action = (
    Show | Blink | Capture | Search | PrintTicket | PrintNoFace | EndVisit | StartTimer
    | CancelTimer | Probe | Stop
)

STAGE_TIMER = "stage"
COOLDOWN_TIMER = "cooldown"
RETRY_TIMER = "retry"
