"""`sosie doctor`'s checks one by one: the scan kernel the `search` section selects, the GPIO pin
library, and whether the appliance may power the machine off (the hold-to-shutdown button)."""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.exc import BadPinFactory, PinFactoryFallback

from appliance.parts import pins
from appliance.runtime import doctor
from appliance.runtime.doctor import Doctor
from appliance.runtime.service import ServiceSettings
from appliance.search import kernels
from appliance.settings import load_settings


def settings_from(tmp_path: Path, text: str):
    path = tmp_path / "sosie.yaml"
    path.write_text(text)
    return load_settings(path)


def run_check(check, *args, **kwargs) -> list[tuple[str, str, str]]:
    doc = Doctor(echo=lambda line: None)
    check(doc, *args, **kwargs)
    return [(c.level, c.part, c.message) for c in doc.checks]


# ---------------------------------------------------------------------------------------------
# the scan kernel: the one `sosie run` will use, chosen by the `search` section


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 300, seed=3)


@pytest.mark.parametrize("kernel", kernels())
def test_corpus_check_reports_the_configured_kernel(tmp_path, corpus_dir, monkeypatch, kernel):
    monkeypatch.delenv("SOSIE_KERNEL", raising=False)
    settings = settings_from(tmp_path, f"search: {{kernel: {kernel}, threads: 2}}\n")
    checks = run_check(doctor.check_corpus, settings, corpus_dir)
    ok = [m for level, part, m in checks if (level, part) == ("ok", "corpus")]
    assert len(ok) == 1, checks
    assert f"{kernel} scan kernel, 2 threads" in ok[0]


def test_corpus_check_auto_kernel_is_the_best(tmp_path, corpus_dir, monkeypatch):
    monkeypatch.delenv("SOSIE_KERNEL", raising=False)
    checks = run_check(doctor.check_corpus, settings_from(tmp_path, "{}\n"), corpus_dir)
    assert f"{kernels()[0]} scan kernel" in checks[0][2]
    assert "threads" not in checks[0][2]


def test_corpus_check_refuses_a_kernel_this_cpu_cannot_run(tmp_path, corpus_dir):
    missing = next((k for k in ("neon", "avx512", "avx2") if k not in kernels()), None)
    if missing is None:
        pytest.skip("this CPU runs every kernel")
    settings = settings_from(tmp_path, f"search: {{kernel: {missing}}}\n")
    checks = run_check(doctor.check_corpus, settings, corpus_dir)
    assert [(level, part) for level, part, _ in checks] == [("PROBLEM", "search")]
    assert "search.kernel" in checks[0][2] and missing in checks[0][2]
    assert "\n" not in checks[0][2]


# ---------------------------------------------------------------------------------------------
# GPIO: gpiozero without a working pin library


@pytest.fixture
def no_pin_factory(monkeypatch):
    """gpiozero's default factory search failing the way it does without any pin library."""
    reasons: dict[str, str] = {
        "lgpio": "No module named 'lgpio'",
        "rpigpio": "No module named 'RPi'",
        "pigpio": "No module named 'pigpio'",
        "native": "unable to locate Pi revision in /proc/device-tree or /proc/cpuinfo",
    }

    def default_factory():
        for name, why in reasons.items():
            warnings.warn(PinFactoryFallback(f"Falling back from {name}: {why}"), stacklevel=2)
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(default_factory))
    return reasons


def pins_lines(tmp_path, backend: str) -> list[tuple[str, str, str]]:
    settings = settings_from(tmp_path, f"controls: {{backend: {backend}}}\n")
    return [c for c in run_check(doctor.check_pins, settings) if c[1] == "pins"]


def test_missing_pin_library_is_named_on_one_line(tmp_path, monkeypatch, no_pin_factory):
    monkeypatch.setattr(pins, "installed_pin_libraries", lambda: [])
    monkeypatch.setattr(pins, "on_raspberry_pi", lambda: True)
    (line,) = pins_lines(tmp_path, "gpio")
    assert line[0] == "PROBLEM"
    assert line[2].startswith("no GPIO pin library: gpiozero needs lgpio")
    assert "pip install lgpio" in line[2] and "\n" not in line[2]
    assert "Unable to load any default pin factory" not in line[2]  # gpiozero's words, not ours


def test_not_a_pi_with_auto_backend_is_only_a_note(tmp_path, monkeypatch, no_pin_factory):
    monkeypatch.setattr(pins, "installed_pin_libraries", lambda: [])
    monkeypatch.setattr(pins, "on_raspberry_pi", lambda: False)
    (line,) = pins_lines(tmp_path, "auto")
    assert line[0] == "note"
    assert "not a Raspberry Pi" in line[2] and "virtual button will be used" in line[2]


def test_a_pi_without_pin_library_is_a_problem_even_with_auto(tmp_path, monkeypatch,
                                                               no_pin_factory):
    monkeypatch.setattr(pins, "installed_pin_libraries", lambda: [])
    monkeypatch.setattr(pins, "on_raspberry_pi", lambda: True)
    (line,) = pins_lines(tmp_path, "auto")
    assert line[0] == "PROBLEM" and "no GPIO pin library" in line[2]
    assert "virtual button will be used" in line[2]


@pytest.mark.parametrize(
    ("why", "hint"),
    [
        ("[Errno 13] Permission denied: '/dev/gpiochip0'", "gpio group"),
        ("[Errno 2] No such file or directory: '.lgd-nfy-3'", "writable working directory"),
    ],
)
def test_installed_but_failing_pin_library_says_why(tmp_path, monkeypatch, no_pin_factory,
                                                     why, hint):
    no_pin_factory["lgpio"] = why
    monkeypatch.setattr(pins, "installed_pin_libraries", lambda: ["lgpio"])
    (line,) = pins_lines(tmp_path, "gpio")
    assert line[0] == "PROBLEM"
    assert line[2].startswith("GPIO pin library lgpio is installed but cannot drive the pins")
    assert why in line[2] and hint in line[2]


def test_installed_pin_libraries_finds_only_importable_ones(monkeypatch):
    import importlib.util

    present = {"RPi.GPIO"}

    def find_spec(name):
        if name.startswith("RPi") and "RPi.GPIO" not in present:
            raise ModuleNotFoundError(name)
        return object() if name in present else None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert pins.installed_pin_libraries() == ["RPi.GPIO"]
    present.clear()
    assert pins.installed_pin_libraries() == []


# ---------------------------------------------------------------------------------------------
# power-off: may the appliance's user run service.poweroff_command?


class FakeSystem:
    """Answers `systemctl show` and logind's Can* calls the way busctl prints them."""

    def __init__(self, answer: str = "yes", service_user: str = "", fail: bool = False) -> None:
        self.answer, self.service_user, self.fail = answer, service_user, fail
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess:
        args = list(args)
        self.calls.append(args)
        if args[:2] == ["systemctl", "show"]:
            return subprocess.CompletedProcess(args, 0, f"{self.service_user}\n", "")
        if self.fail:
            return subprocess.CompletedProcess(
                args, 1, "", "Failed to connect to bus: No such file or directory\n")
        return subprocess.CompletedProcess(args, 0, f's "{self.answer}"\n', "")


BUTTON = "controls: {backend: gpio, shutdown_pin: 3}\n"


def poweroff_lines(tmp_path, text: str, system: FakeSystem, euid: int = 1000):
    settings = settings_from(tmp_path, text)
    return run_check(doctor.check_poweroff, settings, run=system, euid=euid)


def test_shipped_poweroff_default_is_the_checked_systemctl_form():
    assert ServiceSettings().poweroff_command == ["systemctl", "poweroff"]


def test_poweroff_permitted(tmp_path):
    system = FakeSystem("yes")
    assert poweroff_lines(tmp_path, BUTTON, system) == [
        ("ok", "poweroff", "`systemctl poweroff` is permitted for this user (logind/polkit)")]
    assert system.calls[-1][-1] == "CanPowerOff"
    assert system.calls[-1][:3] == ["busctl", "--system", "call"]


@pytest.mark.parametrize(("answer", "words"), [("challenge", "needs a password"),
                                               ("no", "is refused")])
def test_poweroff_refused_with_a_shutdown_button_is_a_problem(tmp_path, answer, words):
    ((level, part, message),) = poweroff_lines(tmp_path, BUTTON, FakeSystem(answer))
    assert (level, part) == ("PROBLEM", "poweroff")
    assert words in message and "polkit" in message and "60-sosie.rules" in message


def test_poweroff_refused_without_a_shutdown_button_is_a_note(tmp_path):
    ((level, _, message),) = poweroff_lines(tmp_path, "{}\n", FakeSystem("challenge"))
    assert level == "note" and "controls.shutdown_pin" in message


def test_as_root_the_service_user_is_asked(tmp_path):
    system = FakeSystem("yes", service_user="sosie")
    ((level, _, message),) = poweroff_lines(tmp_path, BUTTON, system, euid=0)
    assert level == "ok" and "for user sosie" in message
    assert system.calls[-1][:4] == ["runuser", "-u", "sosie", "--"]
    assert system.calls[-1][-1] == "CanPowerOff"


def test_as_root_without_a_service_user_root_may(tmp_path):
    system = FakeSystem("no", service_user="")
    ((level, _, message),) = poweroff_lines(tmp_path, BUTTON, system, euid=0)
    assert level == "ok" and "running as root" in message
    assert not any("busctl" in call for call in system.calls)


def test_reboot_command_asks_can_reboot(tmp_path):
    system = FakeSystem("yes")
    text = BUTTON + "service: {poweroff_command: [systemctl, --no-wall, reboot]}\n"
    poweroff_lines(tmp_path, text, system)
    assert system.calls[-1][-1] == "CanReboot"


def test_logind_unreachable_is_a_note_naming_the_reason(tmp_path):
    ((level, _, message),) = poweroff_lines(tmp_path, BUTTON, FakeSystem(fail=True))
    assert level == "note" and "Failed to connect to bus" in message


def test_missing_and_custom_commands(tmp_path):
    text = BUTTON + "service: {poweroff_command: [no-such-program-sosie, now]}\n"
    ((level, _, message),) = poweroff_lines(tmp_path, text, FakeSystem())
    assert level == "PROBLEM" and "'no-such-program-sosie' not found" in message
    text = BUTTON + "service: {poweroff_command: [sh, -c, 'echo off']}\n"
    ((level, _, message),) = poweroff_lines(tmp_path, text, FakeSystem())
    assert level == "note" and "custom command" in message
    text = BUTTON + "service: {poweroff_command: []}\n"
    ((level, _, message),) = poweroff_lines(tmp_path, text, FakeSystem())
    assert level == "PROBLEM" and "leaves the machine on" in message


# ---------------------------------------------------------------------------------------------
# the descriptor engine


class TimedEngine:
    """An analyzer stand-in whose descriptor takes `seconds` (and is otherwise dlib's size)."""

    def __init__(self, engine: str, seconds: float) -> None:
        self.descriptor_engine = engine
        self.seconds = seconds
        self.calls = 0

    def describe(self, chip):
        import time

        import numpy as np

        assert chip.shape == (150, 150, 3)
        self.calls += 1
        time.sleep(self.seconds)
        return np.zeros(128, np.float32)


def descriptor_checks(tmp_path, monkeypatch, configured: str, used: TimedEngine,
                      other: TimedEngine):
    import appliance.faces.analyzer

    monkeypatch.setattr(appliance.faces.analyzer, "FaceAnalyzer", lambda faces: other)
    settings = settings_from(tmp_path, f"faces: {{descriptor_engine: {configured}}}\n")
    return run_check(doctor.check_descriptor, settings, used)


def test_descriptor_engine_and_both_timings_are_reported(tmp_path, monkeypatch):
    used, other = TimedEngine("numpy", 0.002), TimedEngine("dlib", 0.02)
    (level, part, message), = descriptor_checks(tmp_path, monkeypatch, "numpy", used, other)
    assert (level, part) == (doctor.OK, "descriptor")
    assert message.startswith("numpy engine: ") and "(dlib: " in message
    ours, theirs = (int(m.split(" ms")[0].split()[-1]) for m in message.split("("))
    assert ours < theirs
    assert used.calls >= 2 and other.calls >= 2


def test_a_faster_other_engine_is_suggested(tmp_path, monkeypatch):
    used, other = TimedEngine("numpy", 0.03), TimedEngine("dlib", 0.002)
    (level, _, message), = descriptor_checks(tmp_path, monkeypatch, "numpy", used, other)
    assert level == doctor.NOTE and "set faces.descriptor_engine: dlib" in message


def test_a_fallback_to_dlib_is_named(tmp_path, monkeypatch):
    used, other = TimedEngine("dlib", 0.002), TimedEngine("numpy", 0.002)
    (level, _, message), = descriptor_checks(tmp_path, monkeypatch, "numpy", used, other)
    assert level == doctor.NOTE and "refused the model file" in message


def test_the_real_engines_are_timed(tmp_path):
    from appliance.faces.analyzer import FaceAnalyzer

    settings = settings_from(tmp_path, "faces: {}\n")
    (level, _, message), = run_check(doctor.check_descriptor, settings,
                                     FaceAnalyzer(settings.faces), repeats=1)
    assert level in (doctor.OK, doctor.NOTE) and message.startswith("numpy engine: ")


# ---------------------------------------------------------------------------------------------
# a check never writes


def test_doctor_never_writes_to_the_file_printers_device(tmp_path):
    precious = tmp_path / "x"
    precious.write_text("data the installer keeps\n")
    settings = settings_from(tmp_path, f"printer: {{backend: file, file: {{device: '{precious}'}}"
                                       "}\n")
    checks = run_check(doctor.check_printer, settings)
    assert checks[0][:2] == ("PROBLEM", "printer") and "regular file" in checks[0][2]
    assert precious.read_text() == "data the installer keeps\n"
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)  # no reader: opening it to write would block or fail; a look does not
    settings = settings_from(tmp_path, f"printer: {{backend: file, file: {{device: '{fifo}'}}}}\n")
    assert run_check(doctor.check_printer, settings)[0][:2] == ("ok", "printer")


# ---------------------------------------------------------------------------------------------
# ticket.conjure: after needs the cma package and the generator's weights


def test_conjure_off_is_not_checked(tmp_path):
    settings = settings_from(tmp_path, "ticket: {conjure: 'off'}\n")
    assert run_check(doctor.check_conjure, settings) == []


def test_conjure_without_its_weights_is_a_problem_naming_the_file(tmp_path):
    missing = tmp_path / "none.tar"
    settings = settings_from(
        tmp_path, f"ticket: {{conjure: after}}\ngenerator: {{weights: {missing}}}\n")
    [(level, part, message)] = run_check(doctor.check_conjure, settings)
    assert (level, part) == (doctor.PROBLEM, "conjure")
    assert str(missing) in message and "\n" not in message


def test_conjure_with_cma_and_the_weights_is_ok(tmp_path):
    pytest.importorskip("cma")
    from appliance.generator.dcgan import WeightsNotFound, default_weights_path

    try:
        default_weights_path()
    except WeightsNotFound:
        pytest.skip("the DCGAN weights are not installed (./dev setup installs them)")
    settings = settings_from(tmp_path, "ticket: {conjure: after, conjure_seconds: 7}\n")
    [(level, part, message)] = run_check(doctor.check_conjure, settings)
    assert (level, part) == (doctor.OK, "conjure") and "7 s" in message
