"""The printer the config describes: a python-escpos connection per backend, or virtual."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from appliance.config import ConfigError
from appliance.parts.printer.device_file import inspect as inspect_device
from appliance.parts.printer.device_file import open_device
from appliance.parts.printer.escpos_printer import EscposPrinter
from appliance.parts.printer.faults import FaultHandler
from appliance.parts.printer.interface import Printer
from appliance.parts.printer.profile import Paper, escpos_module, with_width
from appliance.parts.printer.settings import FileSettings, PrinterSettings
from appliance.parts.printer.virtual import VirtualPrinter


def _connector(settings: PrinterSettings, width: int) -> tuple[Callable[[], Any], str]:
    s = settings
    if s.backend == "usb":
        u = s.usb
        label = f"USB printer {u.vendor_id:04x}:{u.product_id:04x}"

        def usb() -> Any:
            esc = escpos_module().Usb(
                idVendor=u.vendor_id, idProduct=u.product_id,
                timeout=int(s.write_timeout * 1000), in_ep=u.in_ep, out_ep=u.out_ep,
                profile=s.profile,
            )
            return with_width(esc, width)

        return usb, label
    if s.backend == "serial":
        r = s.serial

        def serial() -> Any:
            esc = escpos_module().Serial(
                devfile=r.device, baudrate=r.baudrate, timeout=s.write_timeout,
                dsrdtr=r.dsrdtr, xonxoff=r.xonxoff, profile=s.profile,
            )
            return with_width(esc, width)

        return serial, f"serial printer {r.device}"
    if s.backend == "network":
        n = s.network

        def network() -> Any:
            esc = escpos_module().Network(
                host=n.host, port=n.port, timeout=s.connect_timeout, profile=s.profile
            )
            return with_width(esc, width)

        return network, f"network printer {n.host}:{n.port}"
    if s.backend == "file":
        f = s.file

        def file() -> Any:
            return with_width(device_file_class()(f, profile=s.profile), width)

        return file, f"printer device {f.device}"
    raise ConfigError(
        f"config key 'printer.backend' = {s.backend!r}: expected one of "
        "'virtual', 'usb', 'serial', 'network', 'file'"
    )


@functools.cache
def device_file_class() -> type:
    """python-escpos's `File` printer, opened by `open_device` (checked, never truncated)."""

    class DeviceFile(escpos_module().File):  # type: ignore[misc, name-defined]
        def __init__(self, settings: FileSettings, **kwargs: Any) -> None:
            super().__init__(devfile=settings.device, auto_flush=True, **kwargs)
            self.file_settings = settings

        def open(self, raise_not_found: bool = True) -> None:
            self.device = open_device(self.file_settings)

    return DeviceFile


def make_printer(settings: PrinterSettings, *, on_fault: FaultHandler | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 paper: Paper | None = None) -> Printer:
    """The printer `settings` describe. Nothing is opened until the first ticket or status."""
    paper = paper or Paper.of(settings)
    if settings.backend == "virtual":
        return VirtualPrinter(settings=settings, paper=paper)
    connect, label = _connector(settings, paper.width)
    inspect = (lambda: inspect_device(settings.file)) if settings.backend == "file" else None
    return EscposPrinter(settings, connect, label=label, on_fault=on_fault, sleep=sleep,
                         inspect=inspect, paper=paper)
