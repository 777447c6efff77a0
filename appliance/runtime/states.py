"""The appliance's states, as the machine, the LED patterns and `sosie status` name them.

A leaf module (it imports nothing of the appliance).
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    STARTING = "starting"
    READY = "ready"
    CAPTURING = "capturing"
    SEARCHING = "searching"
    PRINTING = "printing"
    CONJURING = "conjuring"  # the visitor's double, after their ticket (ticket.conjure: after)
    COOLDOWN = "cooldown"
    FAULT = "fault"
    SHUTTING_DOWN = "shutting_down"


BUSY_STATES = frozenset({State.CAPTURING, State.SEARCHING, State.PRINTING, State.CONJURING})


def press_refusal(state: State) -> str | None:
    """Why a press in `state` is ignored ("busy", "cooldown", "fault", ...), None if taken."""
    if state is State.READY:
        return None
    if state in BUSY_STATES:
        return "busy"
    return {State.SHUTTING_DOWN: "shutting down"}.get(state, state.value)
