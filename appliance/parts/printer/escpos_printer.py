"""A real printer behind a python-escpos connection: deadlines, status, retries, backoff."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.errors import one_line
from appliance.faults import TicketError
from appliance.parts.diagnosis import Finding
from appliance.parts.printer.deadline import call_with_deadline
from appliance.parts.printer.encoding import Printable, StreamJob, separator
from appliance.parts.printer.faults import (
    REASON_LIMIT,
    FaultEvent,
    FaultHandler,
    PaperOut,
    PrinterAbsent,
    PrinterDisconnected,
    PrinterFault,
    PrinterOffline,
)
from appliance.parts.printer.interface import Printer, PrinterStatus, PrintReceipt
from appliance.parts.printer.profile import Paper
from appliance.parts.printer.settings import PrinterSettings


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
        label: str = "printer",
        on_fault: FaultHandler | None = None,
        sleep: Callable[[float], None] = time.sleep,
        inspect: Callable[[], Finding] | None = None,
        paper: Paper | None = None,
    ) -> None:
        self.settings = settings
        self.paper = paper or Paper.of(settings)
        self._inspect = inspect  # a look without opening (the file backend: opening writes)
        self.width = self.paper.width
        self.label = label  # how messages name this printer
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
            raise PrinterAbsent(f"{self.label}: {one_line(exc, REASON_LIMIT)}") from None
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
        # `_raw` is python-escpos's one way to send bytes it did not encode itself (every
        # connection class implements it; there is no public equivalent in python-escpos 3).
        # tests/test_printer.py fails if a connection class loses it.
        try:
            call_with_deadline(lambda: conn._raw(data), self.settings.write_timeout, "write")
        except PrinterFault:
            raise
        except Exception as exc:
            reason = one_line(exc, REASON_LIMIT)
            raise PrinterDisconnected(f"{self.label}: write failed: {reason}") from None

    def name(self) -> str:
        return self.label

    def diagnose(self) -> list[Finding]:
        if self._inspect is not None and self._conn is None:
            return [self._inspect()]
        return super().diagnose()

    # -- status

    def _query(self, conn: Any, method: str) -> Any:
        """A status reply, or None when this printer cannot report (then not asked again)."""
        if not self._can_report or not hasattr(conn, method) or not can_read(conn):
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
            raise PaperOut(f"{self.label}: out of paper")
        if paper is not None and self._query(conn, "is_online") is False:
            raise PrinterOffline(f"{self.label}: offline (cover open or error)")

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
            except TicketError:  # the ticket itself failed (a band): cut off what was printed
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
                    self._spoiled = bytes(pad) + separator(self.settings)
                raise
        return len(segment)

    def _cut_off(self, conn: Any) -> None:
        """Feed and cut after a ticket abandoned between bands (or on the next ticket)."""
        try:
            self._write(conn, separator(self.settings))
        except PrinterFault:
            self._spoiled = separator(self.settings)

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
            except TicketError as aborted:  # the ticket's fault: never retried
                self._report(aborted, attempt, False, 0.0)
                raise
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

    def _report(self, fault: PrinterFault | TicketError, attempt: int, retry: bool,
                delay: float) -> None:
        if self.on_fault is None:
            return
        event = FaultEvent(fault.kind, str(fault), attempt, retry, delay)
        with contextlib.suppress(Exception):
            self.on_fault(event)


def can_read(conn: Any) -> bool:
    """False for escpos connections that cannot read replies (File: the base `_read` raises).

    python-escpos's status queries (`paper_status`, `is_online`) read through its private
    `_read`, and it offers no public "can this connection answer?": the class's own `_read`
    says so. tests/test_printer.py fails if that stops telling the connections apart.
    """
    read = getattr(type(conn), "_read", None)
    return read is not None and getattr(read, "__qualname__", "") != "Escpos._read"


def _quiet_close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()
