"""The `Printer` interface every backend implements, and what it reports back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.parts.diagnosis import Finding, ok, problem
from appliance.parts.printer.encoding import BandEncoder, Printable, StreamJob
from appliance.parts.printer.faults import PrinterFault
from appliance.parts.printer.profile import Paper
from appliance.parts.printer.settings import PrinterSettings


@dataclass(frozen=True)
class PrinterStatus:
    online: bool | None  # None: the printer cannot tell
    paper: Literal["ok", "low", "out", "unknown"]


@dataclass(frozen=True)
class PrintReceipt:
    bytes_sent: int
    seconds: float
    attempts: int
    files: tuple[Path, ...] = ()
    encode_seconds: tuple[float, ...] = ()  # python-escpos encoding time of each band


class Printer(ABC):
    """Prints 1-bit tickets; raises only `PrinterFault` subclasses, or `TicketError`
    (appliance.faults) when the ticket itself could not be composed."""

    width: int  # dots per line: `paper.width`
    paper: Paper
    settings: PrinterSettings
    _encoder: BandEncoder | None = None

    def _job(self, ticket: Printable) -> StreamJob:
        """The ticket's segments, encoded lazily (one python-escpos encoder per printer)."""
        if self._encoder is None:
            self._encoder = BandEncoder(self.settings, self.paper)
        return StreamJob(ticket, self._encoder)

    @abstractmethod
    def print_ticket(self, image: Printable) -> PrintReceipt:
        """Print `image` (mode "1", at most `width` dots wide; or its bands) and cut."""

    def status(self) -> PrinterStatus:
        """What the printer says about itself (never blocks longer than the status timeout)."""
        return PrinterStatus(online=None, paper="unknown")

    def name(self) -> str:
        """The printer in a few words, for messages ("USB printer 04b8:0202")."""
        return f"{self.settings.backend} printer"

    def diagnose(self) -> list[Finding]:
        """Whether it can print now: its status in plain words (`sosie doctor`, start-up)."""
        try:
            status = self.status()
        except PrinterFault as exc:
            return [problem(f"{exc} (is it switched on and plugged in?)")]
        if status.paper == "out":
            return [problem(f"{self.name()}: out of paper")]
        if status.online is False:
            return [problem(f"{self.name()}: offline (cover open or error)")]
        return [ok(f"{self.name()}, {self.width} dots wide, paper {status.paper}")]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
