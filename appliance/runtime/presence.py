"""Presence trigger: start a visit when a face has been in view steadily for a while.

The camera is watched at a low frame rate (only while the appliance is ready). A face seen in
every look for `steady_seconds` fires one visit; after that the trigger rests for
`cooldown_seconds` and also waits until the face has left the frame, so one person standing still
is not printed twice. `PresenceTrigger` is pure (the caller passes the time); `PresenceSensor`
runs it as a gpiozero input device, polled.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

from gpiozero import PolledInternalDevice

from appliance.parts.settings import PresenceSettings

log = logging.getLogger(__name__)


class PresenceTrigger:
    """`observe(seen, now)` returns True exactly when a visit should start."""

    def __init__(self, settings: PresenceSettings) -> None:
        self.settings = settings
        self._since: float | None = None  # when the face was first seen, this streak
        self._rest_until = float("-inf")
        self._need_absence = False

    def observe(self, seen: bool, now: float) -> bool:
        if not seen:
            self._since = None
            self._need_absence = False
            return False
        if self._need_absence or now < self._rest_until:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        if now - self._since >= self.settings.steady_seconds:
            self._since = None
            self._rest_until = now + self.settings.cooldown_seconds
            self._need_absence = True
            return True
        return False

    def reset(self) -> None:
        """Forget the current streak (e.g. a visit started by the button)."""
        self._since = None


def face_seen(detect: Callable[[Any], list], frame: Any, min_fraction: float) -> bool:
    """Whether `detect(frame)` finds a face at least `min_fraction` of the frame wide."""
    width = frame.shape[1]
    for det in detect(frame):
        box = getattr(det, "box", det)
        if (box[2] - box[0]) >= min_fraction * width:
            return True
    return False


class PresenceSensor(PolledInternalDevice):
    """The presence trigger as a gpiozero input device, polled like its internal devices
    (`PolledInternalDevice`): `fps` times a second while `armed()` (the appliance is ready), a
    look through the camera (`grab`) for a face (`detect`); `is_active` exactly at the look
    that fires a visit, so `when_activated` is called once per visit (assign it to start
    polling; `close()` stops). A lost camera is the visit path's business: it reads inactive.
    """

    def __init__(self, settings: PresenceSettings, grab: Callable[[], Any],
                 detect: Callable[[Any], list], armed: Callable[[], bool], *,
                 clock: Callable[[], float] = time.monotonic, pin_factory: Any = None) -> None:
        self.trigger = PresenceTrigger(settings)
        self._grab, self._detect, self._armed, self._clock = grab, detect, armed, clock
        super().__init__(event_delay=1.0 / settings.fps, pin_factory=pin_factory)

    @property
    def value(self) -> int:
        """1 when this look fires a visit, else 0 (each read is one look)."""
        if not self._armed():
            self.trigger.reset()
            return 0
        try:
            frame = self._grab()
            seen = face_seen(self._detect, frame, self.trigger.settings.min_face_fraction)
        except Exception as exc:
            log.debug("presence: %s", exc)
            self.trigger.reset()
            return 0
        del frame
        return int(self.trigger.observe(seen, self._clock()))


def presence_sensor(settings: PresenceSettings, grab: Callable[[], Any],
                    detect: Callable[[Any], list], armed: Callable[[], bool],
                    fire: Callable[[], None]) -> PresenceSensor:
    """A polling `PresenceSensor` that calls `fire()` for each visit; gpiozero's own pin factory
    times its events, a mock one where there is no GPIO (it only reads the clock)."""
    try:
        with warnings.catch_warnings():  # gpiozero warns for each pin library it tries
            warnings.simplefilter("ignore")
            sensor = PresenceSensor(settings, grab, detect, armed)
    except Exception as exc:  # no pin library on this machine: the clock is all it needs
        from gpiozero.pins.mock import MockFactory

        log.debug("presence: no GPIO pin factory (%s): timing with a mock one", exc)
        sensor = PresenceSensor(settings, grab, detect, armed, pin_factory=MockFactory())
    sensor.when_activated = fire
    return sensor
