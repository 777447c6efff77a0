"""Where and how tickets are printed: config section `printer` and one part per connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from appliance.config import check_dots, setting
from appliance.dots import MAX_DOTS, MIN_DOTS


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
    device: str = "/dev/usb/lp0"  # a character device (usblp) or a FIFO
    allow_regular_file: bool = False  # the installer's opt-in: append tickets to a plain file


@dataclass(frozen=True)
class VirtualSettings:
    out_dir: str = ""  # where .bin + .png land; empty: <cache>/tickets
    keep: int = setting(100, min=1, max=100_000)  # newest tickets kept there


@dataclass(frozen=True)
class PrinterSettings:
    """Where and how tickets are printed (config section `printer`)."""

    backend: Literal["virtual", "usb", "serial", "network", "file"] = "virtual"
    profile: str = "TM-T20II"  # python-escpos printer profile (capabilities, paper width)
    # dots per line (appliance.dots); overrides the profile
    width: int | None = setting(None, min=MIN_DOTS, max=MAX_DOTS)
    fragment_height: int = setting(960, min=8, max=4096)  # raster rows per GS v 0 command
    cut: Literal["full", "partial", "none"] = "full"
    check_status: bool = True  # ask for paper/online status where the printer can answer
    connect_timeout: float = setting(5.0, min=0.1, max=120.0)  # seconds to open the connection
    write_timeout: float = setting(10.0, min=0.1, max=300.0)  # seconds per chunk written
    status_timeout: float = setting(1.5, min=0.1, max=60.0)  # seconds for a status reply
    chunk_bytes: int = setting(4096, min=64, max=1 << 20)  # bytes per write
    retries: int = setting(3, min=0, max=100)  # further attempts after a fault
    backoff: float = setting(1.0, min=0.0, max=600.0)  # seconds before the first retry, doubling
    backoff_max: float = setting(15.0, min=0.0, max=3600.0)
    usb: UsbSettings = field(default_factory=UsbSettings)
    serial: SerialSettings = field(default_factory=SerialSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    file: FileSettings = field(default_factory=FileSettings)
    virtual: VirtualSettings = field(default_factory=VirtualSettings)

    def __post_init__(self) -> None:
        check_dots("printer.width", self.width)
