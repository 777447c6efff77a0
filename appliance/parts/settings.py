"""The camera's and the controls' config sections (`camera`, `controls`): a leaf, so that
`appliance.settings` composes them without loading the parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from appliance.config import setting

#: A GPIO pin: a BCM number or a name gpiozero knows ("GPIO17", "BOARD11").
Pin = int | str


@dataclass(frozen=True)
class CameraSettings:
    """Config section `camera`."""

    backend: Literal["auto", "picamera2", "opencv", "file"] = "auto"
    device: int | str = 0  # OpenCV: camera index or /dev/videoN path
    source: Path | None = None  # file backend: an image file or a folder of images
    width: int = setting(640, min=64, max=8192)
    height: int = setting(480, min=48, max=8192)
    warmup_frames: int = setting(5, min=0, max=200)
    settle_seconds: float = setting(1.0, min=0, max=30)  # auto-exposure settle after opening
    rotate: Literal[0, 90, 180, 270] = 0  # clockwise, for a camera mounted sideways
    mirror: bool = False


@dataclass(frozen=True)
class PresenceSettings:
    """Config `controls.presence`."""

    enabled: bool = False
    fps: float = setting(2.0, min=0.1, max=30)
    steady_seconds: float = setting(1.5, min=0, max=60)
    cooldown_seconds: float = setting(20.0, min=0, max=3600)
    min_face_fraction: float = setting(0.12, min=0, max=1)  # face width / frame width


@dataclass(frozen=True)
class ControlSettings:
    """Button, LED and presence trigger (config section `controls`)."""

    backend: Literal["auto", "gpio", "virtual"] = "auto"
    button_pin: Pin = 17
    pull_up: bool = True
    bounce_seconds: float = setting(0.05, min=0, max=2)
    shutdown_pin: Pin | None = None
    shutdown_hold_seconds: float = setting(5.0, min=0.5, max=60)
    led: Literal["none", "single", "pwm", "rgb"] = "pwm"
    led_pin: Pin = 18
    rgb_pins: tuple[Pin, Pin, Pin] = (22, 23, 24)
    led_active_high: bool = True
    presence: PresenceSettings = field(default_factory=PresenceSettings)
