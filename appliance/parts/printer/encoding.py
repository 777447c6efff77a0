"""ESC/POS bytes encoded by python-escpos's `Dummy` printer, band by band as they come."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from appliance.errors import one_line
from appliance.faults import TicketError
from appliance.parts.printer.faults import (
    REASON_LIMIT,
    PrinterFault,
    TicketRejected,
)
from appliance.parts.printer.profile import Paper, escpos_module, with_width
from appliance.parts.printer.settings import PrinterSettings
from appliance.replay import replayable

Printable = Image.Image | Iterable[Image.Image]  # one image, or bands top to bottom


@dataclass(frozen=True)
class Job:
    """An encoded ticket: the byte segments python-escpos emitted, in order."""

    segments: tuple[bytes, ...]
    raster: tuple[bool, ...]  # which segments are GS v 0 images (header + rows)

    @property
    def data(self) -> bytes:
        return b"".join(self.segments)


class BandEncoder:
    """python-escpos encoding, one band at a time, on one reused `Dummy` printer.

    The encoding of recent bands is remembered by their dots, so the parts of a ticket that are
    the same for every visitor (the header art) are encoded once.
    """

    REMEMBERED = 16  # bands

    def __init__(self, settings: PrinterSettings, paper: Paper) -> None:
        self.settings = settings
        self.width = paper.width
        self._dummy = with_width(escpos_module().Dummy(profile=paper.profile), paper.width)
        self._known: dict[tuple[object, ...], list[bytes]] = {}

    def _emit(self, command: Callable[[Any], None]) -> list[bytes]:
        self._dummy.clear()
        try:
            command(self._dummy)
        except PrinterFault:
            raise
        except Exception as exc:  # escpos refusing something: a fault, never a crash
            reason = one_line(exc, REASON_LIMIT)
            raise TicketRejected(f"cannot encode the ticket: {reason}") from None
        # One segment per command (public `Dummy.output`), so a raster fragment is one segment
        # whose unsent rest can be padded with NULs if the printer fails mid-way.
        output = self._dummy.output
        return [output] if output else []

    def init(self) -> list[bytes]:
        return self._emit(lambda d: d.hw("INIT"))

    def band(self, image: Image.Image) -> list[bytes]:
        """The raster segments (`GS v 0` header + rows, per fragment) of one band."""
        _check_band(image, self.width)
        key = (image.size, hashlib.blake2b(image.tobytes(), digest_size=16).digest())
        segments = self._known.pop(key, None)
        if segments is None:
            segments = []
            rows = self.settings.fragment_height
            for top in range(0, image.height, rows):  # one GS v 0 command per fragment
                fragment = image if image.height <= rows else image.crop(
                    (0, top, image.width, min(image.height, top + rows)))
                segments += self._emit(lambda d, f=fragment: d.image(
                    f, impl="bitImageRaster", fragment_height=rows))
        self._known[key] = segments  # newest last
        if len(self._known) > self.REMEMBERED:
            self._known.pop(next(iter(self._known)))
        return segments

    def end(self) -> list[bytes]:
        cut = self.settings.cut
        if cut == "none":
            return []
        return self._emit(lambda d: d.cut(mode="PART" if cut == "partial" else "FULL"))


def _check_band(image: Image.Image, width: int) -> None:
    if not isinstance(image, Image.Image):
        raise TicketRejected(f"a ticket band must be a PIL image, got {type(image).__name__}")
    if image.mode != "1":
        raise TicketRejected(f"ticket image must be mode '1' (1 bit), got mode {image.mode!r}")
    if image.width > width or image.width % 8:
        raise TicketRejected(
            f"ticket is {image.width} dots wide; expected a multiple of 8 up to {width}"
        )


class StreamJob:
    """A ticket's ESC/POS segments, encoded band by band as they are asked for.

    Iterating yields (bytes, is_raster): INIT once the first band is encoded, each band's raster
    segments, then the cut. Each iteration (a retry) reads the ticket's bands again: a `Ticket`
    replays the bands it has composed (the one replay buffer; any other one-shot iterable is
    wrapped in a `Replay`), and the encoder remembers recent bands' bytes. A band that cannot
    be composed raises `TicketError` (appliance.faults).
    """

    def __init__(self, ticket: Printable, encoder: BandEncoder) -> None:
        self.encoder = encoder
        self.bands: Iterable[Image.Image] = (
            [ticket] if isinstance(ticket, Image.Image) else replayable(ticket))
        self.encode_seconds: list[float] = []  # of each band, in the latest iteration

    def __iter__(self) -> Iterator[tuple[bytes, bool]]:
        self.encode_seconds = []
        bands = iter(self.bands)
        while (band := _next_band(bands)) is not None:
            if isinstance(band, Image.Image) and band.height == 0:
                continue
            start = time.perf_counter()
            raster = self.encoder.band(band)
            first = not self.encode_seconds
            self.encode_seconds.append(time.perf_counter() - start)
            if first:
                yield from ((segment, False) for segment in self.encoder.init())
            yield from ((segment, True) for segment in raster)
        if not self.encode_seconds:
            raise TicketRejected("ticket image is empty")
        yield from ((segment, False) for segment in self.encoder.end())

    def job(self) -> Job:
        """Every segment, encoding the rest of the ticket."""
        segments = list(self)
        return Job(tuple(s for s, _ in segments), tuple(r for _, r in segments))


def _next_band(bands: Iterator[Image.Image]) -> Image.Image | None:
    try:
        return next(bands)
    except StopIteration:
        return None
    except Exception as exc:
        raise TicketError(f"ticket cut off: {one_line(exc, REASON_LIMIT)}") from exc


def encode_ticket(image: Printable, settings: PrinterSettings, width: int) -> Job:
    """Encode a mode "1" ticket (or its bands) with python-escpos: init, raster fragments, cut."""
    return StreamJob(image, BandEncoder(settings, Paper(width, settings.profile))).job()


def separator(settings: PrinterSettings) -> bytes:
    """Bytes that reset the printer and cut off a spoiled, half-printed ticket."""
    dummy = escpos_module().Dummy(profile=settings.profile)
    dummy.hw("INIT")
    dummy.cut()
    return dummy.output
