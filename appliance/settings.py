"""The whole configuration of the appliance, validated at start: one typed `AppSettings`.

Each part owns its section's dataclass (`FaceSettings` in faces/settings.py, `PrinterSettings`
in parts/printer/settings.py, ...); this module composes them, read by `appliance.config`, so a
typo or a wrong value anywhere in the file is reported before anything starts, on one line
naming the key, the value and what is expected.

The user file is the one given with `--config`, else `$SOSIE_CONFIG`, else the first of
`/boot/firmware/sosie.yaml` (editable from any computer on the SD card's FAT partition) and
`/etc/sosie/sosie.yaml` that exists; without one, the packaged defaults apply.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import config
from appliance.config import ConfigError
from appliance.corpus.settings import CorpusSettings
from appliance.faces.settings import FaceSettings
from appliance.generator.settings import GeneratorSettings
from appliance.parts.printer.settings import PrinterSettings
from appliance.parts.settings import CameraSettings, ControlSettings
from appliance.runtime.settings import MachineSettings, ServiceSettings
from appliance.search.settings import SearchSettings
from appliance.ticket.settings import Installation, TicketLayout, privacy_line

CONFIG_LOCATIONS = (Path("/boot/firmware/sosie.yaml"), Path("/etc/sosie/sosie.yaml"))


@dataclass(frozen=True)
class AppSettings:
    """Every section, validated, each as its part's own dataclass."""

    installation: Installation = field(default_factory=Installation)
    faces: FaceSettings = field(default_factory=FaceSettings)
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    ticket: TicketLayout = field(default_factory=TicketLayout)
    printer: PrinterSettings = field(default_factory=PrinterSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    controls: ControlSettings = field(default_factory=ControlSettings)
    machine: MachineSettings = field(default_factory=MachineSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    source: Path | None = None  # the user file, if any

    def replace(self, **changes: Any) -> AppSettings:
        return dataclasses.replace(self, **changes)


#: config section -> the dataclass that checks it (every field of AppSettings but raw/source).
SECTIONS: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(AppSettings) if f.name not in ("raw", "source")
}


def default_config_file() -> Path | None:
    """$SOSIE_CONFIG, else the first existing file of CONFIG_LOCATIONS, else None."""
    env = os.environ.get("SOSIE_CONFIG")
    if env:
        return Path(env)
    for path in CONFIG_LOCATIONS:
        if path.is_file():
            return path
    return None


def load_settings(config_file: str | Path | None = None, *, search: bool = True) -> AppSettings:
    """Load and validate everything; `search=False` ignores the default locations."""
    path = Path(config_file) if config_file is not None else None
    if path is None and search:
        path = default_config_file()
    raw = config.load(path)
    try:
        values = {name: config.section(raw, name, cls) for name, cls in SECTIONS.items()}
    except ConfigError as exc:
        if path is not None and str(path) not in str(exc):
            raise ConfigError(f"{path}: {exc}") from None
        raise
    service = values["service"]
    if service.keep_captures and service.captures_dir is None:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}config key 'service.captures_dir' is required when "
                          "'service.keep_captures' is true")
    ticket = values["ticket"]  # the ticket never says "nothing kept" while photos are kept
    values["ticket"] = dataclasses.replace(
        ticket, privacy=privacy_line(ticket.privacy, service.keep_captures))
    return AppSettings(**values, raw=raw, source=path)
