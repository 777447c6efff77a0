"""Printers: exact bytes through the virtual printer, clean faults from every backend."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from appliance.config import ConfigError, load, parse, section
from appliance.parts.printer import (
    EscposPrinter,
    FaultEvent,
    PaperOut,
    PrinterAbsent,
    PrinterDisconnected,
    PrinterFault,
    PrinterSettings,
    PrinterTimeout,
    TicketRejected,
    VirtualPrinter,
    encode_ticket,
    make_printer,
    printer_width,
)
from appliance.parts.printer.decode import DecodeError, decode


def random_ticket(width: int = 576, height: int = 1500, seed: int = 0) -> Image.Image:
    ink = np.random.default_rng(seed).random((height, width)) < 0.3
    return Image.fromarray(~ink)


def fast(**overrides) -> PrinterSettings:
    base = {"connect_timeout": 5.0, "write_timeout": 2.0, "status_timeout": 1.0, "retries": 2,
            "backoff": 0.01, "backoff_max": 0.02}
    base.update(overrides)
    return parse(PrinterSettings, base, "printer")


def test_defaults_yaml_section_parses():
    settings = section(load(), "printer", PrinterSettings)
    assert settings.backend == "virtual" and printer_width(settings) == 576


@pytest.mark.parametrize(("profile", "width"), [("TM-T88V", 512), ("POS-5890", 384),
                                                ("TM-T20II", 576), ("default", 576)])
def test_width_from_escpos_profile(profile, width):
    assert printer_width(PrinterSettings(profile=profile)) == width
    assert printer_width(PrinterSettings(profile=profile, width=384)) == 384


def test_unknown_profile_and_bad_width_are_config_errors():
    with pytest.raises(ConfigError, match=r"printer\.profile"):
        printer_width(PrinterSettings(profile="No Such Printer"))
    with pytest.raises(ConfigError, match="multiple of 8"):
        printer_width(PrinterSettings(width=500))


@pytest.mark.parametrize(("height", "fragment"), [(1, 960), (959, 960), (2000, 960), (700, 64)])
def test_virtual_printer_png_equals_ticket_bit_for_bit(tmp_path, height, fragment):
    ticket = random_ticket(height=height, seed=height)
    printer = VirtualPrinter(tmp_path, PrinterSettings(fragment_height=fragment))
    receipt = printer.print_ticket(ticket)
    bin_path, png_path = receipt.files
    data = bin_path.read_bytes()
    assert receipt.bytes_sent == len(data)
    assert data.count(b"\x1dv0") == -(-height // fragment)  # one GS v 0 per fragment
    png = Image.open(png_path)
    assert png.mode == "1" and png.size == ticket.size
    assert np.array_equal(np.asarray(png), np.asarray(ticket))
    paper = decode(data, 576)
    assert [p.cut for p in paper.pieces] == ["full"] and paper.pieces[0].trailing_feed > 0


def test_virtual_printer_narrow_paper_and_pruning(tmp_path):
    settings = PrinterSettings(profile="POS-5890", cut="partial")
    printer = VirtualPrinter(tmp_path, settings, keep=2)
    for seed in range(4):
        printer.print_ticket(random_ticket(384, 100, seed))
    assert len(list(tmp_path.glob("*.bin"))) == 2 and len(list(tmp_path.glob("*.png"))) == 2
    with pytest.raises(TicketRejected, match="384"):
        printer.print_ticket(random_ticket(576, 10))
    with pytest.raises(TicketRejected, match="mode"):
        printer.print_ticket(Image.new("L", (384, 10)))


def test_virtual_printer_unwritable_dir_is_a_fault(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PrinterAbsent, match="cannot write"):
        VirtualPrinter(blocker / "sub").print_ticket(random_ticket(576, 8))


def test_decoder_reads_text_feeds_cuts_and_rejects_garbage():
    paper = decode(b"\x1b@\x1ba\x01Hello\n\x1bd\x02\x1dV\x01AB\n\x1dVA\x10")
    assert [p.cut for p in paper.pieces] == ["partial", "full"]
    assert paper.text_lines == 2 and paper.pieces[0].trailing_feed == 60
    assert paper.pieces[1].trailing_feed == 16
    first = ~np.asarray(paper.pieces[0].image)
    assert first.any()  # the text left ink
    with pytest.raises(DecodeError, match="byte 2"):
        decode(b"\x1b@\x1b\xff")
    with pytest.raises(DecodeError, match="truncated"):
        decode(b"\x1dv0\x00\x02\x00\x05\x00abc")


# ---------------------------------------------------------------------------------------------
# Backends without hardware


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"backend": "usb", "usb": {"vendor_id": 0x1234, "product_id": 0x5678}},
         r"USB printer 1234:5678"),
        ({"backend": "serial", "serial": {"device": "/dev/ttyNOPRINTER"}},
         r"serial printer /dev/ttyNOPRINTER"),
        ({"backend": "file", "file": {"device": "/dev/usb/lp9"}}, r"/dev/usb/lp9"),
        ({"backend": "file", "file": {"device": "/nonexistent-dir/lp0"}}, r"/nonexistent-dir"),
    ],
)
def test_each_backend_fails_cleanly_without_hardware(config, pattern):
    events: list[FaultEvent] = []
    # a generous open deadline: a loaded CI machine must not turn "absent" into "timeout"
    printer = make_printer(fast(connect_timeout=10.0, **config), on_fault=events.append,
                           sleep=lambda s: None)
    with pytest.raises(PrinterAbsent, match=pattern) as caught:
        printer.print_ticket(random_ticket(576, 16))
    message = str(caught.value)
    assert "\n" not in message and "AssertionError" not in message
    assert [e.attempt for e in events] == [1, 2, 3]
    assert [e.will_retry for e in events] == [True, True, False]
    assert all(e.kind == "absent" for e in events)


def test_network_backend_refused_and_working(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = make_printer(fast(backend="network", network={"host": "127.0.0.1", "port": port}),
                           sleep=lambda s: None)
    with pytest.raises(PrinterAbsent, match=f"network printer 127.0.0.1:{port}"):
        refused.print_ticket(random_ticket(576, 8))

    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = server.getsockname()
    ticket = random_ticket(576, 300, seed=7)
    printer = make_printer(fast(backend="network", network={"host": host, "port": port}))
    receipt = printer.print_ticket(ticket)
    printer.close()
    thread.join(5)
    server.close()
    paper = decode(bytes(received), 576)
    assert receipt.attempts == 1 and paper.status_queries == 1  # asked once, got no answer
    assert receipt.bytes_sent == len(received) - 3  # DLE EOT n
    assert np.array_equal(np.asarray(paper.image), np.asarray(ticket))


def fifo_reader(path, seconds: float = 60) -> tuple[bytearray, threading.Thread]:
    """Read what one writer writes to the FIFO at `path` (its read end is open on return)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # open now: a writer finds a reader
    received = bytearray()

    def read() -> None:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:  # a writer, no data yet
                    time.sleep(0.005)
                    continue
                if chunk:
                    received.extend(chunk)
                elif received:  # the writer has closed
                    return
                else:  # no writer yet
                    time.sleep(0.005)
        finally:
            os.close(fd)

    thread = threading.Thread(target=read)
    thread.start()
    return received, thread


def test_file_backend_writes_the_same_bytes_as_the_virtual_printer(tmp_path):
    target = tmp_path / "lp0"
    os.mkfifo(target)  # a device that is not a regular file, as /dev/usb/lp0 is
    received, reader = fifo_reader(target)
    settings = fast(backend="file", file={"device": str(target)})
    ticket = random_ticket(576, 200, seed=3)
    with make_printer(settings) as printer:
        printer.print_ticket(ticket)
    reader.join(10)
    assert bytes(received) == encode_ticket(ticket, settings, 576).data


def test_file_backend_never_overwrites_a_regular_file(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("an installer's notes\n")
    link = tmp_path / "lp0"
    link.symlink_to(precious)
    for device in (precious, link):
        settings = fast(backend="file", retries=0, file={"device": str(device)})
        printer = make_printer(settings)
        assert [f.level for f in printer.diagnose()] == ["problem"]
        assert "allow_regular_file" in printer.diagnose()[0].message
        with pytest.raises(PrinterAbsent, match="is a regular file, not a printer"):
            printer.print_ticket(random_ticket(576, 40))
        assert precious.read_text() == "an installer's notes\n"
    with pytest.raises(PrinterAbsent, match="no such device"):  # and nothing is created
        make_printer(fast(backend="file", retries=0,
                          file={"device": str(tmp_path / "none")})).print_ticket(
            random_ticket(576, 40))
    assert not (tmp_path / "none").exists()


def test_file_backend_appends_to_a_regular_file_only_when_allowed(tmp_path):
    target = tmp_path / "tickets.bin"
    target.write_bytes(b"earlier ")
    settings = fast(backend="file", file={"device": str(target), "allow_regular_file": True})
    ticket = random_ticket(576, 40, seed=1)
    printer = make_printer(settings)
    assert [f.level for f in printer.diagnose()] == ["ok"]
    printer.print_ticket(ticket)
    printer.close()
    assert target.read_bytes() == b"earlier " + encode_ticket(ticket, settings, 576).data


def test_escpos_connections_still_have_the_private_raw_write_we_use():
    """python-escpos has no public way to send bytes it did not encode: `_raw` is used (see
    EscposPrinter._write). This fails if a python-escpos release drops it."""
    from appliance.parts.printer import escpos_module

    module = escpos_module()
    for name in ("Usb", "Serial", "Network", "File"):
        assert callable(getattr(getattr(module, name), "_raw", None)), name
    # status replies are read with `_read`: the connections that answer override it
    from appliance.parts.printer.escpos_printer import can_read

    assert [name for name in ("Usb", "Serial", "Network", "File")
            if can_read(object.__new__(getattr(module, name)))] == ["Usb", "Serial", "Network"]


# ---------------------------------------------------------------------------------------------
# Fault injection


class FakeConnection:
    """An escpos-like connection that fails after `fail_after` bytes by raising or stalling."""

    def __init__(self, *, fail_after: int | None = None, stall: bool = False, paper: int = 2,
                 status_stalls: bool = False) -> None:
        self.written = bytearray()
        self.fail_after = fail_after
        self.stall = stall
        self.paper = paper
        self.status_stalls = status_stalls
        self.release = threading.Event()
        self.closed = False

    def open(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self.release.set()

    def _raw(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.written) + len(data) > self.fail_after:
            if self.stall:
                self.release.wait(30)
                return
            raise OSError(5, "Input/output error (unplugged)")
        self.written.extend(data)

    def _read(self) -> bytes:  # marks it as able to answer status queries
        return b""

    def paper_status(self) -> int:
        if self.status_stalls:
            self.release.wait(30)
        return self.paper

    def is_online(self) -> bool:
        return True


def make_fake_printer(connections, **overrides):
    events: list[FaultEvent] = []
    pool = iter(connections)
    settings = fast(**overrides)
    printer = EscposPrinter(settings, lambda: next(pool), label="fake printer",
                            on_fault=events.append)
    return printer, events


def test_unplugged_mid_ticket_retries_then_prints_after_a_separator():
    ticket = random_ticket(576, 2000, seed=11)
    broken = FakeConnection(fail_after=50_000)
    healthy = FakeConnection()
    printer, events = make_fake_printer([broken, healthy])
    receipt = printer.print_ticket(ticket)
    assert receipt.attempts == 2
    assert [(e.kind, e.attempt, e.will_retry) for e in events] == [("disconnected", 1, True)]
    assert "Input/output error" in events[0].message
    # the healthy printer first completes the cut-short raster with blank rows, resets, cuts
    paper = decode(bytes(healthy.written), 576)
    assert len(paper.pieces) == 2 and paper.pieces[0].cut == "full"
    assert not (~np.asarray(paper.pieces[0].image)).any()  # the padding is blank
    assert np.array_equal(np.asarray(paper.pieces[1].image), np.asarray(ticket))


def test_stalled_write_ends_in_a_timeout_fault_within_the_deadline():
    connections = [FakeConnection(fail_after=10_000, stall=True) for _ in range(3)]
    printer, events = make_fake_printer(connections, write_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(PrinterTimeout, match=r"write.*0.3 s"):
        printer.print_ticket(random_ticket(576, 1000))
    elapsed = time.monotonic() - started
    # 3 attempts x 0.3 s write deadline + backoffs, with slack for a loaded machine
    assert elapsed < 3 * 0.3 + 0.05 + 2.0
    assert [e.kind for e in events] == ["timeout"] * 3 and not events[-1].will_retry


def test_paper_out_is_reported_and_recovers_when_paper_is_back():
    empty = FakeConnection(paper=0)
    refilled = FakeConnection(paper=2)
    printer, events = make_fake_printer([empty, refilled])
    receipt = printer.print_ticket(random_ticket(576, 50))
    assert receipt.attempts == 2 and [e.kind for e in events] == ["paper-out"]
    assert not empty.written.count(b"\x1dv0")


def test_printer_that_cannot_report_status_still_prints():
    silent = FakeConnection(status_stalls=True)
    printer, events = make_fake_printer([silent])
    receipt = printer.print_ticket(random_ticket(576, 50))
    assert receipt.attempts == 1 and events == []
    assert printer.status().paper == "unknown"  # not asked again after the silence


def test_faults_are_exceptions_of_one_family_with_one_line_messages():
    for cls in (PrinterAbsent, PrinterDisconnected, PrinterTimeout, PaperOut, TicketRejected):
        fault = cls("line one\nline two")
        assert isinstance(fault, PrinterFault) and str(fault) == "line one line two"
