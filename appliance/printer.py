"""Thermal receipt printers: one `Printer` interface over python-escpos connections.

What is printed is encoded by python-escpos itself (`Dummy` printer with the configured profile:
`ESC @`, raster `GS v 0` fragments, feed and cut), then sent through a connection (`usb`,
`serial`, `network`, `file`) in chunks. A ticket is one image or an iterable of bands (a lazy
`appliance.ticket.Ticket`): each band is encoded and written as soon as it is composed, so the
printer starts on the header while the photos below are still being dithered. Every connection
call runs in a worker thread with a deadline, so a printer that stops answering cannot block the
appliance. Failures become typed `PrinterFault`s, reported as `FaultEvent`s to `on_fault` and
retried with backoff; only the last fault is raised, and nothing else ever is. A ticket whose
later band cannot be composed is fed and cut off (`TicketAborted`): never half a ticket run into
the next. The `virtual` backend writes the exact byte stream (.bin) and a PNG decoded from it::

    >>> printer = make_printer(section(config, "printer", PrinterSettings))
    >>> printer.print_ticket(ticket_image)          # PIL mode "1", printer.width dots wide
    >>> printer.print_ticket(ticket)                # or bands, top to bottom
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from appliance.config import ConfigError, check_dots, setting
from appliance.paths import cache_dir

DEFAULT_WIDTH = 576

# ---------------------------------------------------------------------------------------------
# Settings (config section `printer`)


@dataclass(frozen=True)
class UsbSettings:
    vendor_id: int = setting(0x04B8, min=0, max=0xFFFF)  # e.g. 0x04b8 Epson
    product_id: int = setting(0x0202, min=0, max=0xFFFF)  # e.g. 0x0202 TM-T20/T88
    in_ep: int = setting(0x82, min=0, max=0xFF)  # bulk IN endpoint (status replies)
    out_ep: int = setting(0x01, min=0, max=0xFF)  # bulk OUT endpoint


@dataclass(frozen=True)
class SerialSettings:
    device: str = "/dev/ttyUSB0"
    baudrate: int = setting(115200, min=1200, max=4_000_000)
    dsrdtr: bool = True  # hardware flow control (False: RTS/CTS)
    xonxoff: bool = False  # software flow control


@dataclass(frozen=True)
class NetworkSettings:
    host: str = "192.168.1.100"
    port: int = setting(9100, min=1, max=65535)


@dataclass(frozen=True)
class FileSettings:
    device: str = "/dev/usb/lp0"  # a device node (usblp) or any file


@dataclass(frozen=True)
class VirtualSettings:
    out_dir: str = ""  # where .bin + .png land; empty: <cache>/tickets
    keep: int = setting(100, min=1)  # newest tickets kept there


@dataclass(frozen=True)
class PrinterSettings:
    """Where and how tickets are printed (config section `printer`)."""

    backend: Literal["virtual", "usb", "serial", "network", "file"] = "virtual"
    profile: str = "TM-T20II"  # python-escpos printer profile (capabilities, paper width)
    width: int | None = setting(None, min=128, max=4096)  # dots per line; overrides the profile
    fragment_height: int = setting(960, min=8, max=4096)  # raster rows per GS v 0 command
    cut: Literal["full", "partial", "none"] = "full"
    check_status: bool = True  # ask for paper/online status where the printer can answer
    connect_timeout: float = setting(5.0, min=0.1)  # seconds to open the connection
    write_timeout: float = setting(10.0, min=0.1)  # seconds per chunk written
    status_timeout: float = setting(1.5, min=0.1)  # seconds for a status reply
    chunk_bytes: int = setting(4096, min=64)  # bytes per write
    retries: int = setting(3, min=0, max=100)  # further attempts after a fault
    backoff: float = setting(1.0, min=0.0)  # seconds before the first retry, doubling
    backoff_max: float = setting(15.0, min=0.0)
    usb: UsbSettings = field(default_factory=UsbSettings)
    serial: SerialSettings = field(default_factory=SerialSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    file: FileSettings = field(default_factory=FileSettings)
    virtual: VirtualSettings = field(default_factory=VirtualSettings)

    def __post_init__(self) -> None:
        check_dots("printer.width", self.width)


# ---------------------------------------------------------------------------------------------
# Faults


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


class TicketAborted(PrinterFault):
    """A band of the ticket could not be composed; what was printed of it was cut off."""

    kind = "aborted"
    retryable = False


@dataclass(frozen=True)
class FaultEvent:
    """One failed attempt, as reported to `on_fault`."""

    kind: str
    message: str
    attempt: int  # 1-based
    will_retry: bool
    retry_in: float  # seconds until the next attempt (0 if none)


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


Printable = Image.Image | Iterable[Image.Image]  # one image, or bands top to bottom


FaultHandler = Callable[[FaultEvent], None]

# ---------------------------------------------------------------------------------------------
# python-escpos, imported lazily (it creates a capabilities cache directory on import)


def escpos_module() -> Any:
    """`escpos.printer`, with its capabilities cache kept under our cache dir."""
    if "ESCPOS_CAPABILITIES_PICKLE_DIR" not in os.environ:
        pickle_dir = cache_dir() / "escpos"
        pickle_dir.mkdir(parents=True, exist_ok=True)
        os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] = str(pickle_dir)
    import escpos.printer

    return escpos.printer


def profile_width(profile: str) -> int | None:
    """Dots per line of a python-escpos profile, or None when the profile does not say."""
    escpos_module()
    from escpos.capabilities import CAPABILITIES

    data = CAPABILITIES["profiles"].get(profile)
    if data is None:
        known = ", ".join(sorted(CAPABILITIES["profiles"]))
        raise ConfigError(f"config key 'printer.profile' = {profile!r}: expected one of {known}")
    pixels = data.get("media", {}).get("width", {}).get("pixels")
    return pixels if isinstance(pixels, int) else None


def printer_width(settings: PrinterSettings) -> int:
    """The ticket width in dots: `printer.width`, else the profile's, else 576."""
    width = settings.width or profile_width(settings.profile) or DEFAULT_WIDTH
    if width % 8:
        raise ConfigError(f"config key 'printer.width' = {width}: expected a multiple of 8")
    return width


def _with_width(esc: Any, width: int) -> Any:
    """Give an escpos printer object its own profile copy with the paper width set."""
    data = copy.deepcopy(esc.profile.profile_data)
    data.setdefault("media", {}).setdefault("width", {})["pixels"] = width
    esc.profile.profile_data = data
    return esc


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

    def __init__(self, settings: PrinterSettings, width: int) -> None:
        self.settings = settings
        self.width = width
        self._dummy = _with_width(escpos_module().Dummy(profile=settings.profile), width)
        self._known: dict[tuple[object, ...], list[bytes]] = {}

    def _emit(self, command: Callable[[Any], None]) -> list[bytes]:
        self._dummy.clear()
        try:
            command(self._dummy)
        except PrinterFault:
            raise
        except Exception as exc:  # escpos refusing something: a fault, never a crash
            raise TicketRejected(f"cannot encode the ticket: {_reason(exc)}") from None
        return list(self._dummy._output_list)

    def init(self) -> list[bytes]:
        return self._emit(lambda d: d.hw("INIT"))

    def band(self, image: Image.Image) -> list[bytes]:
        """The raster segments (`GS v 0` header + rows, per fragment) of one band."""
        _check_band(image, self.width)
        key = (image.size, hashlib.blake2b(image.tobytes(), digest_size=16).digest())
        segments = self._known.pop(key, None)
        if segments is None:
            segments = self._emit(lambda d: d.image(
                image, impl="bitImageRaster", fragment_height=self.settings.fragment_height))
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
    segments, then the cut. Segments already encoded are kept, so a retry replays them before
    composing further. A band that cannot be composed raises `TicketAborted`.
    """

    def __init__(self, ticket: Printable, encoder: BandEncoder) -> None:
        self.encoder = encoder
        self._bands: Iterator[Image.Image] | None = iter(
            [ticket] if isinstance(ticket, Image.Image) else ticket)
        self._segments: list[tuple[bytes, bool]] = []
        self.encode_seconds: list[float] = []

    def __iter__(self) -> Iterator[tuple[bytes, bool]]:
        i = 0
        while i < len(self._segments) or self._more():
            if i < len(self._segments):
                yield self._segments[i]
                i += 1

    def _more(self) -> bool:
        """Compose and encode the next band (or the cut); False when the ticket is complete."""
        if self._bands is None:
            return False
        band = self._next_band()
        start = time.perf_counter()
        if band is None:
            self._bands = None
            if not self.encode_seconds:
                raise TicketRejected("ticket image is empty")
            self._add(self.encoder.end(), raster=False)
            return True
        if isinstance(band, Image.Image) and band.height == 0:
            return True
        raster = self.encoder.band(band)
        if not self._segments:
            self._add(self.encoder.init(), raster=False)
        self._add(raster, raster=True)
        self.encode_seconds.append(time.perf_counter() - start)
        return True

    def _next_band(self) -> Image.Image | None:
        assert self._bands is not None
        try:
            return next(self._bands)
        except StopIteration:
            return None
        except Exception as exc:
            self._bands = None
            raise TicketAborted(f"ticket composition failed: {_reason(exc)}") from exc

    def _add(self, segments: list[bytes], *, raster: bool) -> None:
        self._segments.extend((segment, raster) for segment in segments)

    def job(self) -> Job:
        """Every segment, encoding the rest of the ticket."""
        segments = list(self)
        return Job(tuple(s for s, _ in segments), tuple(r for _, r in segments))


def encode_ticket(image: Printable, settings: PrinterSettings, width: int) -> Job:
    """Encode a mode "1" ticket (or its bands) with python-escpos: init, raster fragments, cut."""
    return StreamJob(image, BandEncoder(settings, width)).job()


def _separator(settings: PrinterSettings) -> bytes:
    """Bytes that reset the printer and cut off a spoiled, half-printed ticket."""
    dummy = escpos_module().Dummy(profile=settings.profile)
    dummy.hw("INIT")
    dummy.cut()
    return dummy.output


# ---------------------------------------------------------------------------------------------
# Calls with deadlines


def call_with_deadline(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `fn` in a daemon thread; its result, its exception, or PrinterTimeout after `timeout`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"printer: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise PrinterTimeout(f"printer did not answer ({what}) within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------------------------------------
# The interface


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


class EscposPrinter(Printer):
    """A real printer behind a python-escpos connection, with deadlines, retries and backoff.

    `connect` returns an unopened escpos printer object (anything with `open`, `_raw`, `close`;
    `paper_status`/`is_online` are used when the device can answer).
    """

    def __init__(
        self,
        settings: PrinterSettings,
        connect: Callable[[], Any],
        *,
        describe: str = "printer",
        on_fault: FaultHandler | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.width = printer_width(settings)
        self.describe = describe
        self.on_fault = on_fault
        self._connect = connect
        self._sleep = sleep
        self._conn: Any = None
        self._can_report = settings.check_status
        self._spoiled = b""  # bytes to send first after a ticket was cut short

    # -- connection

    def _open(self) -> Any:
        if self._conn is not None:
            return self._conn

        def opener() -> Any:
            conn = self._connect()
            conn.open()
            return conn

        try:
            self._conn = call_with_deadline(opener, self.settings.connect_timeout, "open")
        except PrinterFault:
            raise
        except Exception as exc:
            raise PrinterAbsent(f"{self.describe}: {_reason(exc)}") from None
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            call_with_deadline(conn.close, self.settings.connect_timeout, "close")

    def _drop(self) -> None:
        """Forget a broken connection without waiting for it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            threading.Thread(target=_quiet_close, args=(conn,), daemon=True).start()

    def _write(self, conn: Any, data: bytes) -> None:
        try:
            call_with_deadline(lambda: conn._raw(data), self.settings.write_timeout, "write")
        except PrinterFault:
            raise
        except Exception as exc:
            raise PrinterDisconnected(f"{self.describe}: write failed: {_reason(exc)}") from None

    # -- status

    def _query(self, conn: Any, method: str) -> Any:
        """A status reply, or None when this printer cannot report (then not asked again)."""
        if not self._can_report or not hasattr(conn, method) or not _can_read(conn):
            return None
        try:
            return call_with_deadline(getattr(conn, method), self.settings.status_timeout, method)
        except Exception:
            self._can_report = False
            return None

    def status(self) -> PrinterStatus:
        conn = self._open()
        paper = self._query(conn, "paper_status")
        online = self._query(conn, "is_online")
        names = {2: "ok", 1: "low", 0: "out"}
        return PrinterStatus(online=online, paper=names.get(paper, "unknown"))

    def _check_ready(self, conn: Any) -> None:
        paper = self._query(conn, "paper_status")
        if paper == 0:
            raise PaperOut(f"{self.describe}: out of paper")
        if paper is not None and self._query(conn, "is_online") is False:
            raise PrinterOffline(f"{self.describe}: offline (cover open or error)")

    # -- printing

    def _send(self, conn: Any, job: StreamJob) -> int:
        """Write the job's segments as they are encoded; returns the bytes sent."""
        if self._spoiled:
            self._write(conn, self._spoiled)
            self._spoiled = b""
        sent = 0
        segments = iter(job)
        while True:
            try:
                segment, is_raster = next(segments)
            except StopIteration:
                return sent
            except PrinterFault:  # the ticket itself failed (a band): cut off what was printed
                if sent:
                    self._cut_off(conn)
                raise
            sent += self._send_segment(conn, segment, is_raster, sent)

    def _send_segment(self, conn: Any, segment: bytes, is_raster: bool, sent: int) -> int:
        size = self.settings.chunk_bytes
        for start in range(0, len(segment), size):
            try:
                self._write(conn, segment[start:start + size])
            except PrinterFault:
                if sent or start:
                    # Complete the interrupted raster with blank rows (NUL bytes are ignored
                    # outside an image), then reset and cut the spoiled part off.
                    pad = len(segment) - start if is_raster else 0
                    self._spoiled = bytes(pad) + _separator(self.settings)
                raise
        return len(segment)

    def _cut_off(self, conn: Any) -> None:
        """Feed and cut after a ticket abandoned between bands (or on the next ticket)."""
        try:
            self._write(conn, _separator(self.settings))
        except PrinterFault:
            self._spoiled = _separator(self.settings)

    def print_ticket(self, image: Printable) -> PrintReceipt:
        job = self._job(image)
        started = time.monotonic()
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                conn = self._open()
                if self.settings.check_status:
                    self._check_ready(conn)
                sent = self._send(conn, job)
                return PrintReceipt(sent, time.monotonic() - started, attempt,
                                    encode_seconds=tuple(job.encode_seconds))
            except PrinterFault as fault:
                if fault.retryable:
                    self._drop()
                retry = attempt < attempts and fault.retryable
                delay = min(self.settings.backoff * 2 ** (attempt - 1), self.settings.backoff_max)
                self._report(fault, attempt, retry, delay if retry else 0.0)
                if not retry:
                    raise
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _report(self, fault: PrinterFault, attempt: int, retry: bool, delay: float) -> None:
        if self.on_fault is None:
            return
        event = FaultEvent(fault.kind, str(fault), attempt, retry, delay)
        with contextlib.suppress(Exception):
            self.on_fault(event)


def _can_read(conn: Any) -> bool:
    """False for escpos connections that cannot read replies (File: the base `_read` raises)."""
    read = getattr(type(conn), "_read", None)
    return read is not None and getattr(read, "__qualname__", "") != "Escpos._read"


def _quiet_close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


class VirtualPrinter(Printer):
    """Writes each ticket's exact ESC/POS bytes (.bin) and a PNG decoded from them."""

    def __init__(self, out_dir: str | Path | None = None, settings: PrinterSettings | None = None,
                 *, keep: int | None = None) -> None:
        self.settings = settings or PrinterSettings()
        self.width = printer_width(self.settings)
        configured = out_dir or self.settings.virtual.out_dir
        self.out_dir = Path(configured) if configured else cache_dir() / "tickets"
        self.keep = keep or self.settings.virtual.keep
        self._count = 0

    def print_ticket(self, image: Printable, name: str | None = None) -> PrintReceipt:
        from appliance.escpos_decode import decode

        started = time.monotonic()
        stream = self._job(image)
        data = stream.job().data  # a ticket that fails to compose leaves no files
        self._count += 1
        stem = name or f"ticket-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-{self._count:04d}"
        bin_path = self.out_dir / f"{stem}.bin"
        png_path = self.out_dir / f"{stem}.png"
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            bin_path.write_bytes(data)
            decode(data, self.width).image.save(png_path, optimize=True)
        except OSError as exc:
            raise PrinterAbsent(
                f"virtual printer cannot write to {self.out_dir}: {exc.strerror or exc}"
            ) from None
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


# ---------------------------------------------------------------------------------------------
# Construction from config


def _connector(settings: PrinterSettings, width: int) -> tuple[Callable[[], Any], str]:
    s = settings
    if s.backend == "usb":
        u = s.usb
        describe = f"USB printer {u.vendor_id:04x}:{u.product_id:04x}"

        def usb() -> Any:
            esc = escpos_module().Usb(
                idVendor=u.vendor_id, idProduct=u.product_id,
                timeout=int(s.write_timeout * 1000), in_ep=u.in_ep, out_ep=u.out_ep,
                profile=s.profile,
            )
            return _with_width(esc, width)

        return usb, describe
    if s.backend == "serial":
        r = s.serial

        def serial() -> Any:
            esc = escpos_module().Serial(
                devfile=r.device, baudrate=r.baudrate, timeout=s.write_timeout,
                dsrdtr=r.dsrdtr, xonxoff=r.xonxoff, profile=s.profile,
            )
            return _with_width(esc, width)

        return serial, f"serial printer {r.device}"
    if s.backend == "network":
        n = s.network

        def network() -> Any:
            esc = escpos_module().Network(
                host=n.host, port=n.port, timeout=s.connect_timeout, profile=s.profile
            )
            return _with_width(esc, width)

        return network, f"network printer {n.host}:{n.port}"
    if s.backend == "file":
        f = s.file

        def file() -> Any:
            if f.device.startswith("/dev/") and not Path(f.device).exists():
                raise FileNotFoundError(f"no such device {f.device} (printer unplugged?)")
            esc = escpos_module().File(devfile=f.device, auto_flush=True, profile=s.profile)
            return _with_width(esc, width)

        return file, f"printer device {f.device}"
    raise ConfigError(
        f"config key 'printer.backend' = {s.backend!r}: expected one of "
        "'virtual', 'usb', 'serial', 'network', 'file'"
    )


def make_printer(settings: PrinterSettings, *, on_fault: FaultHandler | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> Printer:
    """The printer `settings` describe. Nothing is opened until the first ticket or status."""
    if settings.backend == "virtual":
        return VirtualPrinter(settings=settings)
    width = printer_width(settings)
    connect, describe = _connector(settings, width)
    return EscposPrinter(settings, connect, describe=describe, on_fault=on_fault, sleep=sleep)
