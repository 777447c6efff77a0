"""The `Printer` interface every backend implements, and what it reports back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.parts.printer.encoding import BandEncoder, Printable, StreamJob
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
    """Prints 1-bit tickets; raises only `PrinterFault` subclasses."""

    width: int
    settings: PrinterSettings
    _encoder: BandEncoder | None = None

    def _job(self, ticket: Printable) -> StreamJob:
        """The ticket's segments, encoded lazily (one python-escpos encoder per printer)."""
        if self._encoder is None:
            self._encoder = BandEncoder(self.settings, self.width)
        return StreamJob(ticket, self._encoder)

    @abstractmethod
    def print_ticket(self, image: Printable) -> PrintReceipt:
        """Print `image` (mode "1", at most `width` dots wide; or its bands) and cut."""

    def status(self) -> PrinterStatus:
        """What the printer says about itself (never blocks longer than the status timeout)."""
        return PrinterStatus(online=None, paper="unknown")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
