"""The whole configuration of the appliance, validated at start: one `AppSettings`.

Each part owns its section's dataclass (`FaceSettings` in faces/analyzer.py, `PrinterSettings` in
printer/settings.py, ...); this module composes them, so a typo or a wrong value anywhere in the
file is reported before anything starts, on one line naming the key, the value and what is
expected.

The user file is the one given with `--config`, else `$SOSIE_CONFIG`, else the first of
`/boot/firmware/sosie.yaml` (editable from any computer on the SD card's FAT partition) and
`/etc/sosie/sosie.yaml` that exists; without one, the packaged defaults apply.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import config
from appliance.config import ConfigError
from appliance.parts.camera import CameraSettings
from appliance.parts.controls import ControlSettings
from appliance.runtime.machine import MachineSettings
from appliance.runtime.service import ServiceSettings

CONFIG_LOCATIONS = (Path("/boot/firmware/sosie.yaml"), Path("/etc/sosie/sosie.yaml"))

#: section -> (module, dataclass) owned by the other parts, imported on demand.
FOREIGN_SECTIONS: dict[str, tuple[str, str]] = {
    "installation": ("appliance.ticket", "Installation"),
    "faces": ("appliance.faces.analyzer", "FaceSettings"),
    "corpus": ("appliance.corpus.settings", "CorpusSettings"),
    "search": ("appliance.search", "SearchSettings"),
    "ticket": ("appliance.ticket", "TicketLayout"),
    "printer": ("appliance.parts.printer", "PrinterSettings"),
    "generator": ("appliance.generator.settings", "GeneratorSettings"),
}


@dataclass(frozen=True)
class AppSettings:
    """Every section, validated. Sections whose part defines no dataclass stay plain dicts."""

    installation: Any = None
    faces: Any = None
    corpus: Any = None
    search: Any = None
    ticket: Any = None
    printer: Any = None
    generator: Any = None
    camera: CameraSettings = field(default_factory=CameraSettings)
    controls: ControlSettings = field(default_factory=ControlSettings)
    machine: MachineSettings = field(default_factory=MachineSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    source: Path | None = None  # the user file, if any

    def replace(self, **changes: Any) -> AppSettings:
        import dataclasses

        return dataclasses.replace(self, **changes)


def default_config_file() -> Path | None:
    """$SOSIE_CONFIG, else the first existing file of CONFIG_LOCATIONS, else None."""
    env = os.environ.get("SOSIE_CONFIG")
    if env:
        return Path(env)
    for path in CONFIG_LOCATIONS:
        if path.is_file():
            return path
    return None


def section_class(name: str) -> type | None:
    """The dataclass of a foreign section, or None when that part does not define one (yet)."""
    module_name, class_name = FOREIGN_SECTIONS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise
    return getattr(module, class_name, None)


def load_settings(config_file: str | Path | None = None, *, search: bool = True) -> AppSettings:
    """Load and validate everything; `search=False` ignores the default locations."""
    path = Path(config_file) if config_file is not None else None
    if path is None and search:
        path = default_config_file()
    raw = config.load(path)
    try:
        values: dict[str, Any] = {}
        for name in FOREIGN_SECTIONS:
            cls = section_class(name)
            values[name] = (config.section(raw, name, cls) if cls is not None
                            else dict(raw.get(name) or {}))
        values["camera"] = config.section(raw, "camera", CameraSettings)
        values["controls"] = config.section(raw, "controls", ControlSettings)
        values["machine"] = config.section(raw, "machine", MachineSettings)
        values["service"] = config.section(raw, "service", ServiceSettings)
    except ConfigError as exc:
        if path is not None and str(path) not in str(exc):
            raise ConfigError(f"{path}: {exc}") from None
        raise
    service = values["service"]
    if service.keep_captures and service.captures_dir is None:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}config key 'service.captures_dir' is required when "
                          "'service.keep_captures' is true")
    return AppSettings(**values, raw=raw, source=path)
