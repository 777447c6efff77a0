"""The printer the config describes: a python-escpos connection per backend, or virtual."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import ConfigError
from appliance.parts.printer.escpos_printer import EscposPrinter
from appliance.parts.printer.faults import FaultHandler
from appliance.parts.printer.interface import Printer
from appliance.parts.printer.profile import _with_width, escpos_module, printer_width
from appliance.parts.printer.settings import PrinterSettings
from appliance.parts.printer.virtual import VirtualPrinter


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
