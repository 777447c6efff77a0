"""Which LED pattern shows which state: each state its own, distinct by colour on an RGB LED and
by rhythm on a single LED, so an installer can read the state from across the room; and the
short signals (`Blink` actions). The controls show the pattern the service gives them.
"""

from __future__ import annotations

from appliance.faults import Fault
from appliance.parts.controls import (
    AMBER,
    BLUE,
    CYAN,
    GREEN,
    MAGENTA,
    ORANGE,
    RED,
    VIOLET,
    WHITE,
    Pattern,
)
from appliance.runtime.states import State

PATTERNS: dict[tuple[State, Fault | None], Pattern] = {
    (State.STARTING, None): Pattern("pulse", WHITE, 1.0, 1.0),
    (State.READY, None): Pattern("solid", GREEN),
    (State.CAPTURING, None): Pattern("blink", WHITE, 0.05, 0.05),
    (State.SEARCHING, None): Pattern("blink", CYAN, 0.15, 0.15),
    (State.PRINTING, None): Pattern("blink", BLUE, 0.4, 0.4),
    (State.CONJURING, None): Pattern("pulse", VIOLET, 0.3, 0.3),
    (State.COOLDOWN, None): Pattern("pulse", AMBER, 0.5, 0.5),
    (State.FAULT, Fault.CAMERA): Pattern("blink", RED, 0.2, 1.8),
    (State.FAULT, Fault.PRINTER): Pattern("blink", MAGENTA, 1.0, 1.0),
    (State.FAULT, Fault.CORPUS): Pattern("blink", ORANGE, 1.8, 0.2),
    (State.FAULT, Fault.MODELS): Pattern("blink", ORANGE, 0.2, 0.2),
    (State.FAULT, Fault.TICKET): Pattern("blink", MAGENTA, 0.2, 0.6),
    (State.SHUTTING_DOWN, None): Pattern("pulse", RED, 0.2, 0.2),
}
SIGNALS: dict[str, Pattern] = {"no_face": Pattern("blink", RED, 0.15, 0.15)}


def pattern_for(state: State, fault: Fault | None = None) -> Pattern:
    return PATTERNS[(state, fault if state is State.FAULT else None)]
