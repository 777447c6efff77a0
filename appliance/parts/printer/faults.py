"""Printing problems as typed one-line faults, and the events reported for each attempt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

REASON_LIMIT = 160  # characters of a device's own error text quoted in a fault


class PrinterFault(Exception):
    """A printing problem, described on one line; `kind` names it for the state machine."""

    kind = "fault"
    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class PrinterAbsent(PrinterFault):
    """No printer at the configured address (not plugged in, switched off, wrong ids)."""

    kind = "absent"


class PrinterDisconnected(PrinterFault):
    """The connection failed while sending (unplugged mid-ticket, link error)."""

    kind = "disconnected"


class PrinterTimeout(PrinterFault):
    """The printer stopped answering: a call did not return within its deadline."""

    kind = "timeout"


class PaperOut(PrinterFault):
    """The printer reports no paper."""

    kind = "paper-out"


class PrinterOffline(PrinterFault):
    """The printer reports itself offline (cover open, paper out, error state)."""

    kind = "offline"


class TicketRejected(PrinterFault):
    """The ticket cannot be printed as given (wrong mode or wider than the paper)."""

    kind = "rejected"
    retryable = False


@dataclass(frozen=True)
class FaultEvent:
    """One failed attempt, as reported to `on_fault`."""

    kind: str
    message: str
    attempt: int  # 1-based
    will_retry: bool
    retry_in: float  # seconds until the next attempt (0 if none)


FaultHandler = Callable[[FaultEvent], None]

