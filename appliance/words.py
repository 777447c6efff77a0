"""Wording shared by messages: counts with the right plural, the appliance's states in words."""

from __future__ import annotations

#: How a state reads after "the appliance is" (the states' values are identifiers).
STATE_PHRASES = {
    "starting": "starting",
    "ready": "ready",
    "capturing": "taking a photo",
    "searching": "searching",
    "printing": "printing",
    "conjuring": "conjuring a double",
    "cooldown": "cooling down",
    "fault": "in a fault",
    "shutting_down": "shutting down",
}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and `noun`, plural unless the count is one: "1 ticket", "2 tickets"."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def state_phrase(state: str) -> str:
    """What follows "the appliance is" for a state's value ("cooldown" -> "cooling down")."""
    return STATE_PHRASES.get(state, state.replace("_", " "))
