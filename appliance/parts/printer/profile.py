"""python-escpos, imported lazily (it creates a capabilities cache directory on import), and
the paper width its printer profiles give.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

from appliance.config import ConfigError
from appliance.parts.printer.settings import PrinterSettings
from appliance.paths import cache_dir

DEFAULT_WIDTH = 576


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


@dataclass(frozen=True)
class Paper:
    """The paper, settled once from the config and handed to the printer and the ticket."""

    width: int  # dots per line
    profile: str  # the python-escpos profile that encodes for it

    @classmethod
    def of(cls, settings: PrinterSettings) -> Paper:
        """`printer.width`, else the profile's width, else 576 dots."""
        return cls(printer_width(settings), settings.profile)


def with_width(esc: Any, width: int) -> Any:
    """Give an escpos printer object its own profile copy with the paper width set."""
    data = copy.deepcopy(esc.profile.profile_data)
    data.setdefault("media", {}).setdefault("width", {})["pixels"] = width
    esc.profile.profile_data = data
    return esc
