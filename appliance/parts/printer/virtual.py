"""The virtual printer: each ticket's exact ESC/POS bytes (.bin) and a PNG decoded from them."""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime
from pathlib import Path

from appliance.files import WriteError, atomic_output, atomic_write_bytes, write_error
from appliance.parts.diagnosis import Finding, note, ok
from appliance.parts.printer.encoding import Printable
from appliance.parts.printer.faults import PrinterAbsent, TicketRejected
from appliance.parts.printer.interface import Printer, PrinterStatus, PrintReceipt
from appliance.parts.printer.profile import Paper
from appliance.parts.printer.settings import PrinterSettings
from appliance.paths import cache_dir


class VirtualPrinter(Printer):
    """Writes each ticket's exact ESC/POS bytes (.bin) and a PNG decoded from them."""

    def __init__(self, out_dir: str | Path | None = None, settings: PrinterSettings | None = None,
                 *, keep: int | None = None, paper: Paper | None = None) -> None:
        self.settings = settings or PrinterSettings()
        self.paper = paper or Paper.of(self.settings)
        self.width = self.paper.width
        configured = out_dir or self.settings.virtual.out_dir
        self.out_dir = Path(configured) if configured else cache_dir() / "tickets"
        self.keep = keep or self.settings.virtual.keep
        self._count = 0

    def print_ticket(self, image: Printable, name: str | None = None) -> PrintReceipt:
        from appliance.parts.printer.decode import decode

        started = time.monotonic()
        stream = self._job(image)
        data = stream.job().data  # a ticket that fails to compose leaves no files
        self._count += 1
        stem = name or f"ticket-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-{self._count:04d}"
        bin_path = self.out_dir / f"{stem}.bin"
        png_path = self.out_dir / f"{stem}.png"
        try:  # each file whole or not at all, the error naming it (a full disk: ENOSPC)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(bin_path, data, fsync=False)
            with atomic_output(png_path, fsync=False) as fh:
                decode(data, self.width).image.save(fh, format="PNG", optimize=True)
        except OSError as exc:
            with contextlib.suppress(OSError):
                bin_path.unlink()
            error = exc if isinstance(exc, WriteError) else write_error(self.out_dir, exc)
            raise PrinterAbsent(f"virtual printer: {error.strerror}") from error
        except ValueError as exc:  # the decoder refusing our own bytes would be a bug
            raise TicketRejected(f"virtual printer cannot decode the ticket: {exc}") from None
        self._prune()
        return PrintReceipt(len(data), time.monotonic() - started, 1, (bin_path, png_path),
                            tuple(stream.encode_seconds))

    def _prune(self) -> None:
        tickets = sorted(self.out_dir.glob("ticket-*.bin"), key=lambda p: p.stat().st_mtime)
        for old in tickets[: max(0, len(tickets) - self.keep)]:
            for path in (old, old.with_suffix(".png")):
                with contextlib.suppress(OSError):
                    path.unlink()

    def status(self) -> PrinterStatus:
        return PrinterStatus(online=True, paper="ok")

    def name(self) -> str:
        return f"virtual printer -> {self.out_dir}"

    def diagnose(self) -> list[Finding]:
        return [ok(f"{self.name()}, {self.width} dots wide"),
                note("the virtual printer writes PNG files; set printer.backend for a real one")]
