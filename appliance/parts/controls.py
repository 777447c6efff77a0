"""The visitor's side of the appliance: a push button and a status LED (gpiozero), or a virtual
stand-in without GPIO (keyboard in the demo, `sosie press` on the control socket).

The LED shows the `Pattern` it is given (off, solid, blink or pulse, a colour and a rhythm); which
pattern means which state is the service's business (`appliance.runtime.patterns`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from appliance.errors import one_line
from appliance.parts.settings import ControlSettings

log = logging.getLogger(__name__)

Color = tuple[float, float, float]


@dataclass(frozen=True)
class Pattern:
    """How the LED shows a state: off, solid, blink or pulse (fade) with a colour and rhythm."""

    kind: Literal["off", "solid", "blink", "pulse"]
    color: Color = (1.0, 1.0, 1.0)
    on: float = 0.0
    off: float = 0.0


WHITE, GREEN, CYAN, BLUE = (1.0, 1.0, 1.0), (0.0, 1.0, 0.0), (0.0, 0.8, 1.0), (0.0, 0.0, 1.0)
AMBER, RED, MAGENTA, ORANGE = (1.0, 0.5, 0.0), (1.0, 0.0, 0.0), (1.0, 0.0, 1.0), (1.0, 0.25, 0.0)
VIOLET = (0.5, 0.0, 1.0)

OFF = Pattern("off", (0.0, 0.0, 0.0))


class Controls:
    """Button + LED. Callbacks `on_press(source)` and `on_shutdown()` are set by the service."""

    name = "controls"

    def __init__(self) -> None:
        self.on_press: Callable[[str], None] | None = None
        self.on_shutdown: Callable[[], None] | None = None
        self.pattern: Pattern = OFF
        self._signal_gen = 0
        self._lock = threading.Lock()

    # -- inputs --------------------------------------------------------------------------------

    def press(self, source: str = "virtual") -> None:
        """A press from anywhere (button, keyboard, control socket, presence trigger)."""
        if self.on_press is not None:
            self.on_press(source)

    def request_shutdown(self) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()

    # -- outputs -------------------------------------------------------------------------------

    def show(self, pattern: Pattern) -> None:
        """Show `pattern` until told otherwise."""
        with self._lock:
            self._signal_gen += 1
            self.pattern = pattern
            self._apply(self.pattern)

    def signal(self, pattern: Pattern, seconds: float) -> None:
        """Play `pattern` for `seconds` (e.g. 'no face found'), then the one shown before."""
        with self._lock:
            self._signal_gen += 1
            gen = self._signal_gen
            self._apply(pattern)
        timer = threading.Timer(seconds, self._end_signal, args=(gen,))
        timer.daemon = True
        timer.start()

    def _end_signal(self, gen: int) -> None:
        with self._lock:
            if gen == self._signal_gen:
                self._apply(self.pattern)

    def _apply(self, pattern: Pattern) -> None:
        """Drive the hardware (no-op for the virtual backend)."""

    def close(self) -> None:
        with self._lock:
            self._signal_gen += 1
            self._apply(OFF)


class VirtualControls(Controls):
    """No GPIO: presses come from `press()` (keyboard, control socket); patterns are recorded."""

    name = "virtual"

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[Pattern] = []

    def _apply(self, pattern: Pattern) -> None:
        self.shown.append(pattern)


class GpioControls(Controls):
    """gpiozero Button (+ optional hold-to-shutdown) and an LED, PWMLED or RGBLED."""

    name = "gpio"

    def __init__(self, settings: ControlSettings, pin_factory: Any = None) -> None:
        from gpiozero import LED, PWMLED, RGBLED, Button

        super().__init__()
        self.settings = s = settings
        self._devices: list[Any] = []
        same_pin = s.shutdown_pin is not None and str(s.shutdown_pin) == str(s.button_pin)
        button_options = dict(
            pull_up=s.pull_up,
            bounce_time=s.bounce_seconds or None,
            hold_time=s.shutdown_hold_seconds,
            pin_factory=pin_factory,
        )
        try:
            self.button = Button(s.button_pin, **button_options)
            self._devices.append(self.button)
            self.button.when_pressed = lambda: self.press("button")
            self.shutdown_button = None
            if same_pin:
                self.button.when_held = self.request_shutdown
            elif s.shutdown_pin is not None:
                self.shutdown_button = Button(s.shutdown_pin, **button_options)
                self._devices.append(self.shutdown_button)
                self.shutdown_button.when_held = self.request_shutdown
            self.led: Any = None
            if s.led == "single":
                self.led = LED(s.led_pin, active_high=s.led_active_high, pin_factory=pin_factory)
            elif s.led == "pwm":
                self.led = PWMLED(s.led_pin, active_high=s.led_active_high,
                                  pin_factory=pin_factory)
            elif s.led == "rgb":
                r, g, b = s.rgb_pins
                self.led = RGBLED(r, g, b, active_high=s.led_active_high, pwm=True,
                                  pin_factory=pin_factory)
            if self.led is not None:
                self._devices.append(self.led)
        except Exception:
            self._close_devices()
            raise

    def _apply(self, pattern: Pattern) -> None:
        led = self.led
        if led is None:
            return
        kind = pattern.kind
        if self.settings.led == "rgb":
            if kind == "off":
                led.off()
            elif kind == "solid":
                led.color = pattern.color
            elif kind == "blink":
                led.blink(pattern.on, pattern.off, on_color=pattern.color)
            else:
                led.pulse(pattern.on, pattern.off, on_color=pattern.color)
        elif kind == "off":
            led.off()
        elif kind == "solid":
            led.on()
        elif kind == "pulse" and self.settings.led == "pwm":
            led.pulse(pattern.on, pattern.off)
        else:  # blink, or pulse on a plain on/off LED
            led.blink(pattern.on, pattern.off)

    def _close_devices(self) -> None:
        for device in reversed(self._devices):
            try:
                device.close()
            except Exception as exc:  # closing must never stop a shutdown
                log.debug("closing %s: %s", device, exc)
        self._devices.clear()

    def close(self) -> None:
        super().close()
        self._close_devices()


class ControlsError(RuntimeError):
    """The configured controls cannot be used (no GPIO, pin busy, ...)."""


def make_controls(settings: ControlSettings, pin_factory: Any = None) -> Controls:
    """The configured backend; `auto` uses GPIO where there is one and virtual elsewhere."""
    if settings.backend == "virtual":
        return VirtualControls()
    try:
        with warnings.catch_warnings():
            if settings.backend == "auto":  # gpiozero warns for each pin library it tries
                warnings.simplefilter("ignore")
            return GpioControls(settings, pin_factory=pin_factory)
    except Exception as exc:
        if settings.backend == "gpio":
            raise ControlsError(f"controls: cannot use GPIO pins: {one_line(exc)}") from None
        log.warning("no usable GPIO (%s): using the virtual button", one_line(exc))
        return VirtualControls()
