"""Presence trigger: start a visit when a face has been in view steadily for a while.

The camera is watched at a low frame rate (only while the appliance is ready). A face seen in
every look for `steady_seconds` fires one visit; after that the trigger rests for
`cooldown_seconds` and also waits until the face has left the frame, so one person standing still
is not printed twice. `PresenceTrigger` is pure (the caller passes the time); `watch()` runs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from appliance.parts.controls import PresenceSettings

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


def watch(
    trigger: PresenceTrigger,
    grab: Callable[[], Any],
    detect: Callable[[Any], list],
    fire: Callable[[], None],
    active: Callable[[], bool],
    stop: threading.Event,
    clock: Callable[[], float],
) -> None:
    """Loop until `stop`: while `active()`, grab a frame, look for a face, maybe `fire()`."""
    period = 1.0 / trigger.settings.fps
    while not stop.wait(period):
        if not active():
            trigger.reset()
            continue
        try:
            frame = grab()
            seen = face_seen(detect, frame, trigger.settings.min_face_fraction)
        except Exception as exc:  # a lost camera is the visit path's business
            log.debug("presence: %s", exc)
            trigger.reset()
            continue
        del frame
        if trigger.observe(seen, clock()):
            fire()
