"""Button, LED patterns and presence trigger, on gpiozero's mock pins."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.config import ConfigError, parse
from appliance.faults import Fault
from appliance.parts.controls import (
    OFF,
    ControlsError,
    GpioControls,
    VirtualControls,
    make_controls,
)
from appliance.parts.settings import ControlSettings, PresenceSettings
from appliance.runtime.patterns import PATTERNS, SIGNALS, pattern_for
from appliance.runtime.presence import PresenceSensor, PresenceTrigger, face_seen
from appliance.runtime.states import State


@pytest.fixture
def factory():
    previous = Device.pin_factory
    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = previous


def make(factory, **kw) -> GpioControls:
    c = GpioControls(ControlSettings(backend="gpio", **kw))
    return c


def test_every_state_has_a_distinct_pattern():
    keys = [(s, None) for s in State if s is not State.FAULT] + [(State.FAULT, f) for f in Fault]
    assert set(keys) == set(PATTERNS)
    patterns = [PATTERNS[k] for k in keys]
    assert len(set(patterns)) == len(patterns)
    # readable on a single-colour LED too: kind + rhythm alone tell states apart
    rhythms = [(p.kind, p.on, p.off) for p in patterns]
    assert len(set(rhythms)) == len(rhythms)


def test_pattern_for_ignores_fault_outside_fault_state():
    assert pattern_for(State.READY, Fault.CAMERA) == PATTERNS[(State.READY, None)]
    assert pattern_for(State.FAULT, Fault.PRINTER) == PATTERNS[(State.FAULT, Fault.PRINTER)]


def test_button_press_calls_back_with_pull_up(factory):
    c = make(factory, button_pin=17)
    presses = []
    c.on_press = presses.append
    pin = factory.pin(17)
    assert pin.state == 1  # pulled up, not pressed
    pin.drive_low()
    pin.drive_high()
    pin.drive_low()
    assert presses == ["button", "button"]
    c.close()


def test_button_without_pull_up_is_active_high(factory):
    c = make(factory, button_pin=5, pull_up=False)
    presses = []
    c.on_press = presses.append
    factory.pin(5).drive_high()
    assert presses == ["button"]
    c.close()


def test_hold_to_shutdown_on_separate_pin(factory):
    c = make(factory, button_pin=17, shutdown_pin=3, shutdown_hold_seconds=0.5)
    held = threading.Event()
    c.on_shutdown = held.set
    c.on_press = lambda source: pytest.fail("shutdown button must not start a visit")
    factory.pin(3).drive_low()
    assert held.wait(3)
    c.close()


def test_short_press_on_shutdown_pin_does_nothing(factory):
    c = make(factory, button_pin=17, shutdown_pin=3, shutdown_hold_seconds=0.5)
    held = threading.Event()
    c.on_shutdown = held.set
    factory.pin(3).drive_low()
    factory.pin(3).drive_high()
    assert not held.wait(0.8)
    c.close()


def test_hold_on_the_visit_button_when_pins_are_shared(factory):
    c = make(factory, button_pin=17, shutdown_pin=17, shutdown_hold_seconds=0.5)
    held = threading.Event()
    presses = []
    c.on_press = presses.append
    c.on_shutdown = held.set
    factory.pin(17).drive_low()
    assert held.wait(3)
    assert presses == ["button"]
    c.close()


def test_pwm_led_solid_and_off(factory):
    c = make(factory, led="pwm", led_pin=18)
    pin = factory.pin(18)
    c.show(pattern_for(State.READY))
    assert pin.state == 1
    c.close()
    assert pin.state == 0


def test_single_led_active_low(factory):
    c = make(factory, led="single", led_pin=18, led_active_high=False)
    c.show(pattern_for(State.READY))
    assert factory.pin(18).state == 0  # lit = driven low
    c.show(pattern_for(State.FAULT, Fault.CAMERA))
    c.close()


def _toggles(pin, seconds):
    start = len(pin.states)
    time.sleep(seconds)
    return len(pin.states) - start


def test_blink_pattern_toggles_the_led(factory):
    c = make(factory, led="single", led_pin=18)
    c.show(pattern_for(State.CAPTURING))  # 50 ms blink
    assert _toggles(factory.pin(18), 0.5) >= 3
    c.show(pattern_for(State.READY))
    time.sleep(0.05)
    assert _toggles(factory.pin(18), 0.3) == 0
    assert factory.pin(18).state == 1
    c.close()


def test_rgb_led_colours(factory):
    c = make(factory, led="rgb", rgb_pins=(22, 23, 24))
    c.show(pattern_for(State.READY))
    assert c.led.color == (0, 1, 0)
    c.show(pattern_for(State.FAULT, Fault.PRINTER))
    time.sleep(0.1)  # blink starts with the on colour
    assert tuple(c.led.color) in {(1, 0, 1), (0, 0, 0)}
    c.show(pattern_for(State.COOLDOWN))  # pulse needs PWM pins
    c.close()
    assert tuple(factory.pin(p).state for p in (22, 23, 24)) == (0, 0, 0)


def test_signal_returns_to_the_state_pattern(factory):
    v = VirtualControls()
    v.show(pattern_for(State.COOLDOWN))
    v.signal(SIGNALS["no_face"], 0.1)
    assert v.shown[-1].color == (1.0, 0.0, 0.0)
    time.sleep(0.3)
    assert v.shown[-1] == PATTERNS[(State.COOLDOWN, None)]


def test_signal_superseded_by_new_state_does_not_restore_old_pattern():
    v = VirtualControls()
    v.show(pattern_for(State.COOLDOWN))
    v.signal(SIGNALS["no_face"], 0.1)
    v.show(pattern_for(State.READY))
    time.sleep(0.3)
    assert v.shown[-1] == PATTERNS[(State.READY, None)]


def test_virtual_controls_press_and_close():
    v = VirtualControls()
    got = []
    v.on_press = got.append
    v.press("keyboard")
    v.close()
    assert got == ["keyboard"] and v.shown[-1] == OFF


def test_make_controls_virtual_and_gpio(factory):
    assert isinstance(make_controls(ControlSettings(backend="virtual")), VirtualControls)
    c = make_controls(ControlSettings(backend="gpio"))
    assert isinstance(c, GpioControls)
    c.close()


def test_make_controls_busy_pin_is_one_clear_error(factory):
    first = make_controls(ControlSettings(backend="gpio", button_pin=17))
    with pytest.raises(ControlsError, match="cannot use GPIO"):
        make_controls(ControlSettings(backend="gpio", button_pin=17))
    # auto falls back to the virtual button instead of refusing to start
    assert isinstance(make_controls(ControlSettings(backend="auto", button_pin=17)),
                      VirtualControls)
    first.close()


def test_failed_construction_releases_pins(factory):
    blocker = make_controls(ControlSettings(backend="gpio", button_pin=4, led="none"))
    with pytest.raises(ControlsError):
        make_controls(ControlSettings(backend="gpio", button_pin=17, led_pin=4))
    blocker.close()
    c = make_controls(ControlSettings(backend="gpio", button_pin=17, led_pin=18))
    c.close()


def test_settings_validation_names_the_key():
    s = parse(ControlSettings, {"button_pin": "GPIO17", "rgb_pins": [1, 2, 3],
                                "presence": {"enabled": True}}, "controls")
    assert s.rgb_pins == (1, 2, 3) and s.presence.enabled
    with pytest.raises(ConfigError, match=r"controls.led' = 'blue'"):
        parse(ControlSettings, {"led": "blue"}, "controls")
    with pytest.raises(ConfigError, match=r"controls.presence.fps"):
        parse(ControlSettings, {"presence": {"fps": 0}}, "controls")


# ---------------------------------------------------------------------------------------------
# Presence trigger


def test_presence_fires_after_steady_time_only():
    t = PresenceTrigger(PresenceSettings(enabled=True, steady_seconds=1.0, cooldown_seconds=10))
    assert not t.observe(True, 0.0)
    assert not t.observe(True, 0.5)
    assert not t.observe(False, 0.9)  # looked away: the streak restarts
    assert not t.observe(True, 1.0)
    assert not t.observe(True, 1.9)
    assert t.observe(True, 2.0)


def test_presence_does_not_fire_twice_for_someone_standing_still():
    t = PresenceTrigger(PresenceSettings(steady_seconds=0.5, cooldown_seconds=5))
    t.observe(True, 0)
    assert t.observe(True, 0.5)
    fired = [t.observe(True, x / 2) for x in range(2, 200)]  # still there for 100 s
    assert not any(fired)
    t.observe(False, 101)  # leaves; the next person (after the cooldown) triggers again
    assert not t.observe(True, 102)
    assert t.observe(True, 102.5)


def test_presence_cooldown_applies_even_after_leaving():
    t = PresenceTrigger(PresenceSettings(steady_seconds=0, cooldown_seconds=10))
    assert t.observe(True, 0)
    t.observe(False, 1)
    assert not t.observe(True, 5)
    assert t.observe(True, 10)


def test_face_seen_uses_minimum_width():
    import numpy as np

    frame = np.zeros((480, 640, 3), np.uint8)
    assert face_seen(lambda f: [(0, 0, 100, 100)], frame, 0.1)
    assert not face_seen(lambda f: [(0, 0, 50, 50)], frame, 0.1)
    assert not face_seen(lambda f: [], frame, 0.0)


def test_presence_sensor_fires_once_while_armed_and_stops_on_close(factory):
    import numpy as np

    settings = PresenceSettings(fps=50, steady_seconds=0.05, cooldown_seconds=100)
    frame = np.zeros((10, 10, 3), np.uint8)
    fired = []
    armed = threading.Event()
    sensor = PresenceSensor(settings, lambda: frame, lambda f: [(0, 0, 10, 10)], armed.is_set)
    sensor.when_activated = lambda: fired.append(time.monotonic())  # starts the polling
    time.sleep(0.2)
    assert fired == []  # not armed (busy): no trigger
    armed.set()
    deadline = time.monotonic() + 2
    while not fired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fired) == 1
    time.sleep(0.3)
    assert len(fired) == 1  # the same face still in view: resting, one visit
    sensor.close()
    assert sensor.closed and not sensor.is_active


def test_presence_sensor_reads_a_lost_camera_as_nobody(factory):
    def lost():
        raise RuntimeError("camera not open")

    sensor = PresenceSensor(PresenceSettings(steady_seconds=0), lost, lambda f: [], lambda: True)
    assert sensor.value == 0 and not sensor.is_active
    sensor.close()
