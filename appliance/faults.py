"""The parts that can fail, and the one exception that names the part at fault.

A leaf module (it imports nothing of the appliance): the fonts, the ticket, the printer, the
jobs and the machine all speak of faults in these words.
"""

from __future__ import annotations

from enum import Enum


class Fault(Enum):
    """The part at fault, each with its own LED pattern and recovery probe."""

    CAMERA = "camera"
    PRINTER = "printer"
    CORPUS = "corpus"  # the corpus files or the search over them
    MODELS = "models"  # the face models (detector, landmarks, descriptor)
    TICKET = "ticket"  # composing the ticket (layout, fonts, dithering): not the printer's


class PartFault(Exception):
    """A part of the appliance failed: which one, and why (one line)."""

    def __init__(self, fault: Fault, reason: str) -> None:
        super().__init__(f"{fault.value}: {reason}")
        self.fault = fault
        self.reason = reason


class TicketError(PartFault):
    """The ticket itself could not be composed (layout, font, thumbnail, dithering): the
    ticket's fault, never the printer's, and retrying cannot help. The one ticket error from
    where it happens (a font, a band) through the printer (which cuts off what it printed of
    that ticket) to the machine (a `ticket` fault)."""

    kind = "aborted"  # the printer's FaultEvent kind
    retryable = False

    def __init__(self, reason: str) -> None:
        reason = " ".join(str(reason).split())
        super().__init__(Fault.TICKET, reason)
        self.args = (reason,)  # shown as the reason alone

    def __str__(self) -> str:
        return self.reason
