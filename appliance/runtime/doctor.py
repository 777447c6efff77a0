"""`sosie doctor`: check every part of the appliance and say what is wrong in plain words.

Each check gives `ok`, `note` (worth knowing, not a problem) or `PROBLEM` with a one-line
explanation and, where there is one, what to do. When a service is already running, the
camera, printer and pins belong to it: the doctor asks it instead of opening them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import one_line
from appliance.parts.diagnosis import Finding

OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"
LEVELS = {"ok": OK, "note": NOTE, "problem": PROBLEM}


@dataclass
class Check:
    part: str
    level: str
    message: str


class Doctor:
    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.checks: list[Check] = []
        self.echo = echo

    def report(self, part: str, level: str, message: str) -> None:
        self.checks.append(Check(part, level, message))
        self.echo(f"{level:>7}  {part:<10} {message}")

    def findings(self, part: str, findings: list[Finding]) -> None:
        """Report what a part's `diagnose()` found."""
        for finding in findings:
            self.report(part, LEVELS[finding.level], finding.message)

    @property
    def problems(self) -> int:
        return sum(c.level == PROBLEM for c in self.checks)


def run_doctor(config_file: Path | None, *, socket: Path | None = None,
               corpus: Path | None = None, echo: Callable[[str], None] = print,
               pin_factory: Any = None) -> int:
    doc = Doctor(echo)
    settings = check_config(doc, config_file)
    if settings is None:
        echo("fix the configuration first; nothing else was checked")
        return 1
    running = check_service(doc, settings, socket)
    analyzer = check_models(doc, settings)
    check_corpus(doc, settings, corpus)
    if running:
        doc.report("camera", NOTE, "in use by the running service (see its status above)")
        doc.report("printer", NOTE, "in use by the running service")
        doc.report("pins", NOTE, "in use by the running service")
    else:
        check_camera(doc, settings, analyzer)
        check_printer(doc, settings)
        check_pins(doc, settings, pin_factory)
    check_poweroff(doc, settings)
    check_privacy(doc, settings)
    if doc.problems:
        echo(f"{doc.problems} problem(s) found")
        return 1
    echo("everything looks fine")
    return 0


def check_config(doc: Doctor, config_file: Path | None) -> Any:
    from appliance.config import ConfigError
    from appliance.settings import load_settings

    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        doc.report("config", PROBLEM, str(exc))
        return None
    where = settings.source or "packaged defaults only (no user file)"
    doc.report("config", OK, f"{where}: every key valid")
    return settings


def check_service(doc: Doctor, settings: Any, socket: Path | None) -> bool:
    from appliance.runtime.control_socket import ControlError, default_socket_path, request

    path = socket or settings.service.socket or default_socket_path()
    try:
        status = request(path, "status", timeout=3)
    except ControlError as exc:
        doc.report("service", NOTE, f"not running ({exc})")
        return False
    state = status.get("state")
    fault = status.get("last_fault") or {}
    if state == "fault":
        doc.report("service", PROBLEM, f"running but in fault: {fault.get('part')}: "
                   f"{fault.get('reason')} (it keeps retrying)")
    else:
        doc.report("service", OK, f"running, {state}, {status.get('tickets_printed', 0)} "
                   f"tickets printed ({path})")
    return True


def check_models(doc: Doctor, settings: Any) -> Any:
    try:
        from appliance.faces.analyzer import FaceAnalyzer, model_paths

        paths = model_paths(settings.faces)
        analyzer = FaceAnalyzer(settings.faces)
        import numpy as np

        analyzer.analyze(np.zeros((64, 64, 3), np.uint8))
    except Exception as exc:
        doc.report("models", PROBLEM, f"face models cannot be loaded: {one_line(exc)} "
                   "(reinstall face-recognition-models or set faces.*_model)")
        return None
    names = ", ".join(Path(p).name for p in paths.values())
    doc.report("models", OK, f"loaded {names}")
    check_descriptor(doc, settings, analyzer)
    return analyzer


def check_descriptor(doc: Doctor, settings: Any, analyzer: Any, repeats: int = 3) -> None:
    """Which engine runs the descriptor network and how long one face takes, against the other
    engine on this machine (dlib-bin has no BLAS: dlib's own code is several times slower)."""
    import dataclasses
    import time

    import numpy as np

    from appliance.faces.analyzer import FaceAnalyzer

    chip = np.random.default_rng(0).integers(0, 256, (150, 150, 3), np.uint8)

    def per_face(engine: Any) -> float:
        engine.describe(chip)  # warm
        start = time.perf_counter()
        for _ in range(repeats):
            engine.describe(chip)
        return (time.perf_counter() - start) / repeats * 1000

    configured, used = settings.faces.descriptor_engine, analyzer.descriptor_engine
    other_name = "dlib" if used == "numpy" else "numpy"
    try:
        other = FaceAnalyzer(dataclasses.replace(settings.faces, descriptor_engine=other_name))
        ours_ms, other_ms = per_face(analyzer), per_face(other)
    except Exception as exc:
        doc.report("descriptor", NOTE, f"{used} engine; could not time it: {one_line(exc)}")
        return
    text = f"{used} engine: {ours_ms:.0f} ms per face ({other_name}: {other_ms:.0f} ms)"
    if configured != used:
        doc.report("descriptor", NOTE, f"{text}; faces.descriptor_engine is {configured} but "
                   "that engine refused the model file (see the log), so dlib runs it")
    elif other_ms < 0.8 * ours_ms:
        doc.report("descriptor", NOTE, f"{text}: set faces.descriptor_engine: {other_name}, "
                   "it is faster on this machine")
    else:
        doc.report("descriptor", OK, text)


def check_corpus(doc: Doctor, settings: Any, path: Path | None = None) -> None:
    path = path or getattr(settings.corpus, "path", None)
    if not path:
        from appliance.paths import cache_dir

        demo = cache_dir() / "demo-corpus"
        doc.report("corpus", NOTE, "corpus.path is not set: the small demo corpus is used"
                   + ("" if demo.exists() else " (built on first start)")
                   + "; build yours with `sosie build`")
        if not demo.exists():
            return
        path = demo
    try:
        from appliance.runtime.appliance import make_scanner, open_corpus

        corpus = open_corpus(Path(path), settings.faces)
    except Exception as exc:
        doc.report("corpus", PROBLEM, one_line(exc))
        return
    try:
        kind = "synthetic test corpus" if corpus.synthetic else "corpus"
        try:  # the scanner `sosie run` makes: the `search` section picks kernel and threads
            scanner = make_scanner(corpus, settings.search)
        except ValueError as exc:
            doc.report("search", PROBLEM, f"search.kernel: {one_line(exc)}")
            return
        threads = getattr(scanner, "threads", None)
        doc.report("corpus", OK, f"{kind} {path}: {corpus.count} faces, {corpus.dim}-D, "
                   f"{getattr(scanner, 'kernel', '?')} scan kernel"
                   + (f", {threads} threads" if threads and threads > 1 else ""))
        if corpus.synthetic:
            doc.report("corpus", NOTE, "a synthetic corpus has placeholder faces: fine for "
                       "benchmarks, not for visitors")
    finally:
        corpus.close()


def check_camera(doc: Doctor, settings: Any, analyzer: Any) -> None:
    from appliance.parts.camera import CameraError, make_camera

    try:
        camera = make_camera(settings.camera)
        with camera:
            frame = camera.capture()
    except CameraError as exc:
        doc.report("camera", PROBLEM, f"{exc} (check the cable/ribbon and camera.backend)")
        return
    h, w = frame.shape[:2]
    brightness = float(frame.mean())
    doc.report("camera", OK, f"{camera.name}: {w}x{h} frame, mean brightness {brightness:.0f}")
    if brightness < 12:
        doc.report("camera", PROBLEM, "the picture is almost black (lens cap? no light?)")
    elif brightness > 245:
        doc.report("camera", PROBLEM, "the picture is almost white (over-exposed)")
    if analyzer is not None:
        faces = analyzer.detect(frame)
        del frame
        doc.report("camera", NOTE, f"{len(faces)} face(s) in view right now")


def check_printer(doc: Doctor, settings: Any) -> None:
    """The printer's own diagnosis (it only looks: the file backend's device is not opened)."""
    try:
        from appliance.parts.printer import make_printer

        printer = make_printer(settings.printer)
    except Exception as exc:
        doc.report("printer", PROBLEM, one_line(exc))
        return
    try:
        doc.findings("printer", printer.diagnose())
    finally:
        with contextlib.suppress(Exception):
            printer.close()


def check_pins(doc: Doctor, settings: Any, pin_factory: Any = None) -> None:
    from appliance.parts.controls import GpioControls

    c = settings.controls
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
            doc.report("pins", PROBLEM, f"pin {pin} is used twice: {used[key]} and {role}")
            clash = True
        used[key] = role
    if c.backend == "virtual":
        doc.report("pins", NOTE, "controls.backend is virtual: no GPIO is used")
        return
    if clash:
        return
    try:
        with warnings.catch_warnings(record=True) as caught:  # gpiozero warns per pin library
            warnings.simplefilter("always")
            controls = GpioControls(c, pin_factory=pin_factory)
    except Exception as exc:
        # `auto` on a Pi means the installer wired a button: its GPIO failing is a problem too.
        level = PROBLEM if c.backend == "gpio" or on_raspberry_pi() else NOTE
        extra = "" if c.backend == "gpio" else " (the virtual button will be used)"
        fallbacks = [str(w.message) for w in caught
                     if type(w.message).__name__ == "PinFactoryFallback"]
        if type(exc).__name__ == "BadPinFactory":
            doc.report("pins", level, pin_library_problem(fallbacks) + extra)
        else:
            doc.report("pins", level, f"cannot use GPIO: {_gpio_words(exc)}{extra}")
        return
    try:
        pressed = controls.button.is_pressed
        factory = type(controls.button.pin_factory).__name__
    finally:
        controls.close()
    desc = ", ".join(f"{role} {pin}" for role, pin in wanted)
    doc.report("pins", OK, f"{desc} (BCM numbering)")
    if factory == "NativeFactory":
        doc.report("pins", NOTE, "gpiozero fell back to its limited built-in pin driver (no "
                   f"fading LED, polled button): {INSTALL_PIN_LIBRARY}")
    if pressed:
        doc.report("pins", PROBLEM, f"the button on pin {c.button_pin} reads as pressed right "
                   "now: stuck, or wired to the wrong rail (see controls.pull_up)")


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


def _gpio_words(exc: Exception) -> str:
    words = GPIO_WORDS.get(type(exc).__name__)
    detail = one_line(exc)
    if words is None:
        return detail
    return words if detail == type(exc).__name__ else f"{words} ({detail})"


# What `systemctl VERB` asks logind, which answers yes / no / challenge (password) / na.
LOGIND_CAN = {"poweroff": "CanPowerOff", "reboot": "CanReboot", "halt": "CanHalt"}
Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]


def _run(args: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=15, check=False)


def check_poweroff(doc: Doctor, settings: Any, *, run: Runner = _run,
                   euid: int | None = None) -> None:
    """May this appliance power the machine off (service.poweroff_command, shutdown button)?"""
    command = list(settings.service.poweroff_command or [])
    c = settings.controls
    used = c.shutdown_pin is not None and c.backend != "virtual"
    bad = PROBLEM if used else NOTE
    unused = "" if used else " (only matters with a shutdown button: controls.shutdown_pin)"
    if not command:
        doc.report("poweroff", bad, "service.poweroff_command is empty: the shutdown button "
                   f"stops the appliance but leaves the machine on{unused}")
        return
    shown = " ".join(command)
    if shutil.which(command[0]) is None:
        doc.report("poweroff", bad, f"service.poweroff_command: '{command[0]}' not found{unused}")
        return
    verb = next((a for a in command[1:] if not a.startswith("-")), "")
    if Path(command[0]).name != "systemctl" or verb not in LOGIND_CAN:
        doc.report("poweroff", NOTE, f"`{shown}`: a custom command, not checked")
        return
    euid = os.geteuid() if euid is None else euid
    user = _service_user(run) if euid == 0 else None
    if euid == 0 and user in (None, "root"):
        doc.report("poweroff", OK, f"`{shown}` is permitted (running as root)")
        return
    ask = ["busctl", "--system", "call", "org.freedesktop.login1", "/org/freedesktop/login1",
           "org.freedesktop.login1.Manager", LOGIND_CAN[verb]]
    if user is not None:
        ask = ["runuser", "-u", user, "--", *ask]
    who = f"user {user}" if user is not None else "this user"
    try:
        result = run(ask)
    except (OSError, subprocess.SubprocessError) as exc:
        doc.report("poweroff", NOTE, f"cannot ask logind whether {who} may run `{shown}`: "
                   f"{one_line(exc)}")
        return
    answer = result.stdout.strip().removeprefix("s ").strip('"') if result.returncode == 0 else ""
    if answer == "yes":
        doc.report("poweroff", OK, f"`{shown}` is permitted for {who} (logind/polkit)")
    elif answer in ("no", "challenge"):
        why = "needs a password" if answer == "challenge" else "is refused"
        doc.report("poweroff", bad, f"`{shown}` {why} for {who}: allow it with a polkit rule "
                   "(firmware/rootfs/etc/polkit-1/rules.d/60-sosie.rules), or set "
                   f"service.poweroff_command{unused}")
    elif answer == "na":
        doc.report("poweroff", bad, f"`{shown}`: this system cannot power off through "
                   f"logind{unused}")
    else:
        detail = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
        doc.report("poweroff", NOTE, f"cannot ask logind whether {who} may run `{shown}`: "
                   f"{detail}")


def _service_user(run: Runner) -> str | None:
    """The user sosie.service runs as (the doctor itself may run as root), if it is installed."""
    try:
        result = run(["systemctl", "show", "--property=User", "--value", "sosie.service"])
    except (OSError, subprocess.SubprocessError):
        return None
    user = result.stdout.strip() if result.returncode == 0 else ""
    return user or None


def check_privacy(doc: Doctor, settings: Any) -> None:
    s = settings.service
    if s.keep_captures:
        writable = s.captures_dir is not None and _writable(s.captures_dir)
        level = NOTE if writable else PROBLEM
        doc.report("privacy", level, f"visitors' photos are KEPT in {s.captures_dir}"
                   + ("" if writable else " (not writable)") + ": tell your visitors")
    else:
        doc.report("privacy", OK, "visitors' photos and descriptors stay in memory only")


def _writable(path: Path) -> bool:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return os.access(path, os.W_OK)
