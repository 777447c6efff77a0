"""Thermal receipt printers: one `Printer` interface over python-escpos connections.

What is printed is encoded by python-escpos itself (`Dummy` printer with the configured profile:
`ESC @`, raster `GS v 0` fragments, feed and cut), then sent through a connection (`usb`,
`serial`, `network`, `file`) in chunks. A ticket is one image or an iterable of bands (a lazy
`appliance.ticket.Ticket`): each band is encoded and written as soon as it is composed, so the
printer starts on the header while the photos below are still being dithered. Every connection
call runs in a worker thread with a deadline, so a printer that stops answering cannot block the
appliance. Failures become typed `PrinterFault`s, reported as `FaultEvent`s to `on_fault` and
retried with backoff; only the last fault is raised, and nothing else ever is. A ticket whose
later band cannot be composed is fed and cut off (the ticket's `TicketError`, appliance.faults,
raised on): never half a ticket run into the next. The `virtual` backend writes the exact byte
stream (.bin) and a PNG decoded from it::

    >>> printer = make_printer(section(config, "printer", PrinterSettings))
    >>> printer.print_ticket(ticket_image)          # PIL mode "1", printer.width dots wide
    >>> printer.print_ticket(ticket)                # or bands, top to bottom

One module per concern: `settings` (config section `printer`), `faults`, `profile` (python-escpos
and paper widths), `encoding` (ESC/POS bytes, band by band), `deadline`, `interface` (`Printer`),
`escpos_printer`, `virtual` and `backends` (`make_printer`). Everything public is importable
from here.
"""

from appliance.parts.printer.backends import make_printer
from appliance.parts.printer.deadline import call_with_deadline
from appliance.parts.printer.encoding import BandEncoder, Job, Printable, StreamJob, encode_ticket
from appliance.parts.printer.escpos_printer import EscposPrinter
from appliance.parts.printer.faults import (
    FaultEvent,
    FaultHandler,
    PaperOut,
    PrinterAbsent,
    PrinterDisconnected,
    PrinterFault,
    PrinterOffline,
    PrinterTimeout,
    TicketRejected,
)
from appliance.parts.printer.interface import Printer, PrinterStatus, PrintReceipt
from appliance.parts.printer.profile import (
    DEFAULT_WIDTH,
    Paper,
    escpos_module,
    printer_width,
    profile_width,
)
from appliance.parts.printer.settings import (
    FileSettings,
    NetworkSettings,
    PrinterSettings,
    SerialSettings,
    UsbSettings,
    VirtualSettings,
)
from appliance.parts.printer.virtual import VirtualPrinter

__all__ = [
    "DEFAULT_WIDTH",
    "BandEncoder",
    "EscposPrinter",
    "FaultEvent",
    "FaultHandler",
    "FileSettings",
    "Job",
    "NetworkSettings",
    "Paper",
    "PaperOut",
    "PrintReceipt",
    "Printable",
    "Printer",
    "PrinterAbsent",
    "PrinterDisconnected",
    "PrinterFault",
    "PrinterOffline",
    "PrinterSettings",
    "PrinterStatus",
    "PrinterTimeout",
    "SerialSettings",
    "StreamJob",
    "TicketRejected",
    "UsbSettings",
    "VirtualPrinter",
    "VirtualSettings",
    "call_with_deadline",
    "encode_ticket",
    "escpos_module",
    "make_printer",
    "printer_width",
    "profile_width",
]
