"""`sosie ticket`: render a visitor's ticket from a photo through the virtual printer.

    sosie ticket --image PHOTO [--corpus DIR] --out ticket.png [--layout classic|mugshot]
                 [--config FILE] [--lookalikes K] [--width DOTS] [--number N] [--print]
                 [--dither atkinson|floyd-steinberg|bayer|threshold]

The PNG is decoded from the exact ESC/POS bytes a real printer would get (written next to it as
.bin), so installers can design the layout without paper. Without --corpus the demo corpus is
used (built on first use).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from appliance.cli import UsageError
from appliance.dots import DOTS_RULE, dots_accepted
from appliance.files import temporary_folder, write_error

if TYPE_CHECKING:
    from appliance.parts.printer import Paper
    from appliance.settings import AppSettings

def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ticket",
        help="render a ticket for a photo through the virtual printer (a preview PNG)",
        description="Find the photo's lookalikes in a corpus and render the ticket the appliance "
        "would print, through the virtual printer: OUT is decoded from the exact ESC/POS bytes "
        "(saved next to it as .bin).",
    )
    parser.add_argument("--image", required=True, type=Path, metavar="PHOTO",
                        help="the visitor's photo")
    parser.add_argument("--corpus", type=Path, metavar="DIR",
                        help="corpus directory (default: the demo corpus, built on first use)")
    parser.add_argument("--out", required=True, type=Path, metavar="PNG",
                        help="where to write the preview (and its .bin beside it)")
    parser.add_argument("--layout", choices=("classic", "mugshot"),
                        help="ticket layout (default: ticket.layout from the config)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="configuration file overriding the defaults")
    parser.add_argument("--lookalikes", type=int, metavar="K", help="doubles printed (1..10)")
    parser.add_argument("--width", type=int, metavar="DOTS",
                        help=f"paper width in dots: {DOTS_RULE}, e.g. 384 (58 mm paper) or "
                        "576 (80 mm); default: the printer's")
    parser.add_argument("--number", type=int, default=1, metavar="N", help="ticket number")
    parser.add_argument("--dither", choices=("atkinson", "floyd-steinberg", "bayer", "threshold"),
                        help="how photos become dots (default: ticket.tone.method)")
    parser.add_argument("--print", action="store_true", dest="send",
                        help="also print it on the configured printer (printer section)")
    parser.set_defaults(func=run_ticket)


def _settings(args: Any) -> AppSettings:
    """The config file (no default locations) with the command line's overrides."""
    from appliance.config import ConfigError
    from appliance.parts.printer import printer_width
    from appliance.settings import load_settings
    from appliance.ticket import ticket_width

    try:
        settings = load_settings(args.config, search=False)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    layout, printer = settings.ticket, settings.printer
    changes: dict[str, Any] = {}
    if args.layout:
        changes["layout"] = args.layout
    if args.dither:
        changes["tone"] = dataclasses.replace(layout.tone, method=args.dither)
    if args.lookalikes is not None:
        if not 1 <= args.lookalikes <= 10:
            raise UsageError(f"--lookalikes {args.lookalikes}: expected 1 to 10")
        changes["lookalikes"] = args.lookalikes
    if args.width is not None:
        if not dots_accepted(args.width):
            raise UsageError(f"--width {args.width}: expected {DOTS_RULE}")
        printer = dataclasses.replace(printer, width=args.width)
        changes["width"] = None
    layout = dataclasses.replace(layout, **changes)
    try:  # the preview's paper is as wide as the ticket (a profile's width is checked here)
        width = ticket_width(layout, printer_width(printer))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return settings.replace(ticket=layout, printer=dataclasses.replace(printer, width=width))


def run_ticket(args: Any) -> int:
    from appliance.images import ImageError

    if not args.image.is_file():
        raise UsageError(f"--image {args.image}: no such file")
    settings = _settings(args)

    from appliance.corpus import CorpusError, demo_corpus
    from appliance.faults import PartFault
    from appliance.parts.printer import PrinterFault
    from appliance.runtime.appliance import make_appliance

    out = args.out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"sosie ticket: {write_error(out, exc).strerror}", file=sys.stderr)
        return 1
    # the virtual printer writes into a temporary folder beside OUT (removed on any exit, on
    # SIGTERM too), whose two files are renamed into place once both are whole
    with temporary_folder(".sosie-ticket-", out.parent) as tmp:
        try:
            corpus_dir = args.corpus or demo_corpus()
            appliance = make_appliance(settings, corpus_path=corpus_dir, out_dir=Path(tmp),
                                       first_number=args.number)
            appliance.start_search()
            result = appliance.look_up(args.image)
            ticket = result.ticket
            if ticket is None:
                print(f"no face: {result.no_face}; rendering the try-again ticket")
                ticket = appliance.no_face_ticket(result.no_face or "")
            receipt = appliance.printer.print_ticket(ticket, name="ticket")  # type: ignore[call-arg]
        except PartFault as exc:
            print(f"sosie ticket: {exc.reason}", file=sys.stderr)
            return 1
        except PrinterFault as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno:  # writing beside OUT failed
                print(f"sosie ticket: cannot write {out}: {_reason(cause)}", file=sys.stderr)
            else:
                print(f"sosie ticket: {exc}", file=sys.stderr)
            return 1
        except (CorpusError, ImageError) as exc:
            print(f"sosie ticket: {exc}", file=sys.stderr)
            return 1
        finally:
            if "appliance" in locals():
                appliance.close()
        bin_path, png_path = receipt.files
        try:  # renames within one folder: no space needed, both or (almost surely) neither
            os.replace(bin_path, out.with_suffix(".bin"))
            os.replace(png_path, out)
        except OSError as exc:
            print(f"sosie ticket: {write_error(out, exc).strerror}", file=sys.stderr)
            return 1
    status = _send(ticket, settings, appliance.paper) if args.send else 0
    for m in result.matches:
        print(f"N°{m.rank}: face {m.index} ({corpus_dir}), distance {m.distance:.3f}, "
              f"{m.likeness:.0f}% alike")
    if result.matches:
        print("(distance: between dlib face descriptors, under 0.6 the same person to dlib; "
              "alike: 50 % at 0.6 - a face recogniser's measure, not a human judgement)")
    stages = "  ".join(f"{k} {v * 1000:.1f}" for k, v in result.timings.items())
    print(f"ms: {stages}")
    image = ticket if isinstance(ticket, Image.Image) else ticket.image()
    print(f"ticket: {out} ({image.width}x{image.height} dots, {receipt.bytes_sent} bytes "
          f"of ESC/POS in {out.with_suffix('.bin')})")
    return status


def _reason(exc: OSError) -> str:
    return "no space left on device" if exc.errno == errno.ENOSPC else (
        os.strerror(exc.errno) if exc.errno else str(exc))


def _send(ticket: Any, settings: AppSettings, paper: Paper) -> int:
    """Print on the configured printer, reporting each fault as it happens."""
    from appliance.parts.printer import PrinterFault, make_printer

    def report(event: Any) -> None:
        retry = f"; retrying in {event.retry_in:g} s" if event.will_retry else ""
        print(f"printer fault ({event.kind}, attempt {event.attempt}): {event.message}{retry}",
              file=sys.stderr)

    try:
        with make_printer(settings.printer, on_fault=report, paper=paper) as printer:
            receipt = printer.print_ticket(ticket)
    except PrinterFault as exc:
        print(f"sosie ticket: not printed: {exc}", file=sys.stderr)
        return 1
    print(f"printed on the {settings.printer.backend} printer in {receipt.seconds:.1f} s "
          f"({receipt.attempts} attempt(s))")
    return 0
