"""The GPIO pins of the button, LED and shutdown button, diagnosed: clashes, the pin library
gpiozero can (or cannot) use and why, a button stuck pressed. `sosie doctor` lists it.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance.errors import one_line
from appliance.parts.controls import GpioControls
from appliance.parts.diagnosis import Finding, Level, note, ok, problem
from appliance.parts.settings import ControlSettings


def diagnose_pins(c: ControlSettings, pin_factory: Any = None) -> list[Finding]:
    """The button, LED and shutdown pins; opens them as the service would, then closes them
    (only call it when no running service holds them)."""
    findings: list[Finding] = []
    used: dict[str, str] = {}
    wanted = [("button", c.button_pin)]
    if c.shutdown_pin is not None and str(c.shutdown_pin) != str(c.button_pin):
        wanted.append(("shutdown button", c.shutdown_pin))
    if c.led in ("single", "pwm"):
        wanted.append(("LED", c.led_pin))
    elif c.led == "rgb":
        wanted += [(f"LED {n}", p) for n, p in zip("RGB", c.rgb_pins, strict=True)]
    clash = False
    for role, pin in wanted:
        key = str(pin)
        if key in used:
            findings.append(problem(f"pin {pin} is used twice: {used[key]} and {role}"))
            clash = True
        used[key] = role
    if c.backend == "virtual":
        return [*findings, note("controls.backend is virtual: no GPIO is used")]
    if clash:
        return findings
    try:
        with warnings.catch_warnings(record=True) as caught:  # gpiozero warns per pin library
            warnings.simplefilter("always")
            controls = GpioControls(c, pin_factory=pin_factory)
    except Exception as exc:
        # `auto` on a Pi means the installer wired a button: its GPIO failing is a problem too.
        level: Level = "problem" if c.backend == "gpio" or on_raspberry_pi() else "note"
        extra = "" if c.backend == "gpio" else " (the virtual button will be used)"
        fallbacks = [str(w.message) for w in caught
                     if type(w.message).__name__ == "PinFactoryFallback"]
        if type(exc).__name__ == "BadPinFactory":
            return [Finding(level, pin_library_problem(fallbacks) + extra)]
        return [Finding(level, f"cannot use GPIO: {gpio_words(exc)}{extra}")]
    try:
        pressed = controls.button.is_pressed
        factory = type(controls.button.pin_factory).__name__
    finally:
        controls.close()
    desc = ", ".join(f"{role} {pin}" for role, pin in wanted)
    findings.append(ok(f"{desc} (BCM numbering)"))
    if factory == "NativeFactory":
        findings.append(note("gpiozero fell back to its limited built-in pin driver (no "
                             f"fading LED, polled button): {INSTALL_PIN_LIBRARY}"))
    if pressed:
        findings.append(problem(f"the button on pin {c.button_pin} reads as pressed right now: "
                                "stuck, or wired to the wrong rail (see controls.pull_up)"))
    return findings


GPIO_WORDS = {
    "BadPinFactory": "no GPIO on this machine (not a Raspberry Pi, or no lgpio/RPi.GPIO)",
    "PinPWMUnsupported": "these pins cannot fade (PWM): set controls.led to single",
    "GPIOPinInUse": "a pin is already in use by another program or device",
    "PinInvalidPin": "a pin number does not exist on this board",
    "PinFixedPull": "this pin has a fixed pull-up (GPIO 2/3): set controls.pull_up accordingly",
}


# gpiozero's pin libraries, preferred first (module name as imported).
PIN_LIBRARIES = ("lgpio", "RPi.GPIO", "pigpio")
INSTALL_PIN_LIBRARY = ("install lgpio into sosie's Python (`pip install lgpio`; on Raspberry Pi "
                       "OS `sudo apt install python3-lgpio`; the SD image has it)")


def installed_pin_libraries() -> list[str]:
    """The pin libraries gpiozero could use that are installed (found, not imported)."""
    found = []
    for module in PIN_LIBRARIES:
        try:
            if importlib.util.find_spec(module) is not None:
                found.append(module)
        except (ImportError, ValueError):
            continue
    return found


def on_raspberry_pi() -> bool:
    """A Raspberry Pi (device tree model), or at least a board with GPIO character devices."""
    try:
        if "raspberry pi" in Path("/proc/device-tree/model").read_text(errors="ignore").lower():
            return True
    except OSError:
        pass
    return any(Path("/dev").glob("gpiochip*"))


def pin_library_problem(fallbacks: Sequence[str]) -> str:
    """One line on why gpiozero found no pin factory, from its 'Falling back from X: why' notes."""
    installed = installed_pin_libraries()
    if not installed:
        if not on_raspberry_pi():
            return ("no GPIO on this machine (not a Raspberry Pi, and no pin library: lgpio "
                    "or RPi.GPIO)")
        return f"no GPIO pin library: gpiozero needs lgpio (or RPi.GPIO): {INSTALL_PIN_LIBRARY}"
    factory_names = {"lgpio": "lgpio", "RPi.GPIO": "rpigpio", "pigpio": "pigpio"}
    library = installed[0]
    reason = next((f.split(":", 1)[1].strip() for f in fallbacks
                   if f.startswith(f"Falling back from {factory_names[library]}:")), "")
    hint = ""
    if "Permission denied" in reason:
        hint = " (add the user to the gpio group)"
    elif ".lgd-nfy" in reason:
        hint = " (lgpio needs a writable working directory: run from one, or set LG_WD)"
    return (f"GPIO pin library {library} is installed but cannot drive the pins: "
            f"{reason or 'no reason given'}{hint}")


def gpio_words(exc: Exception) -> str:
    words = GPIO_WORDS.get(type(exc).__name__)
    detail = one_line(exc)
    if words is None:
        return detail
    return words if detail == type(exc).__name__ else f"{words} ({detail})"
