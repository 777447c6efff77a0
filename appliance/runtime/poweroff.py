"""May the appliance power the machine off? `service.poweroff_command` (hold-to-shutdown
button) asked of logind and polkit the way `systemctl poweroff` asks, for the service's user."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from appliance.errors import one_line
from appliance.parts.diagnosis import Finding, Level
from appliance.parts.settings import ControlSettings
from appliance.runtime.settings import ServiceSettings

# What `systemctl VERB` asks logind, which answers yes / no / challenge (password) / na.
LOGIND_CAN = {"poweroff": "CanPowerOff", "reboot": "CanReboot", "halt": "CanHalt"}
Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]


def _run(args: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=15, check=False)


def diagnose_poweroff(service: ServiceSettings, c: ControlSettings, *, run: Runner = _run,
                      euid: int | None = None) -> list[Finding]:
    """May this appliance power the machine off (service.poweroff_command, shutdown button)?

    Asks logind (polkit) the question `systemctl poweroff` would ask, as the service's user.
    """
    findings: list[Finding] = []

    def report(level: Level, message: str) -> None:
        findings.append(Finding(level, message))

    command = list(service.poweroff_command or [])
    used = c.shutdown_pin is not None and c.backend != "virtual"
    bad: Level = "problem" if used else "note"
    unused = "" if used else " (only matters with a shutdown button: controls.shutdown_pin)"
    if not command:
        report(bad, "service.poweroff_command is empty: the shutdown button "
                   f"stops the appliance but leaves the machine on{unused}")
        return findings
    shown = " ".join(command)
    if shutil.which(command[0]) is None:
        report(bad, f"service.poweroff_command: '{command[0]}' not found{unused}")
        return findings
    verb = next((a for a in command[1:] if not a.startswith("-")), "")
    if Path(command[0]).name != "systemctl" or verb not in LOGIND_CAN:
        report("note", f"`{shown}`: a custom command, not checked")
        return findings
    euid = os.geteuid() if euid is None else euid
    user = service_user(run) if euid == 0 else None
    if euid == 0 and user in (None, "root"):
        report("ok", f"`{shown}` is permitted (running as root)")
        return findings
    ask = ["busctl", "--system", "call", "org.freedesktop.login1", "/org/freedesktop/login1",
           "org.freedesktop.login1.Manager", LOGIND_CAN[verb]]
    if user is not None:
        ask = ["runuser", "-u", user, "--", *ask]
    who = f"user {user}" if user is not None else "this user"
    try:
        result = run(ask)
    except (OSError, subprocess.SubprocessError) as exc:
        report("note", f"cannot ask logind whether {who} may run `{shown}`: "
                   f"{one_line(exc)}")
        return findings
    answer = result.stdout.strip().removeprefix("s ").strip('"') if result.returncode == 0 else ""
    if answer == "yes":
        report("ok", f"`{shown}` is permitted for {who} (logind/polkit)")
    elif answer in ("no", "challenge"):
        why = "needs a password" if answer == "challenge" else "is refused"
        report(bad, f"`{shown}` {why} for {who}: allow it with a polkit rule "
                   "(firmware/rootfs/etc/polkit-1/rules.d/60-sosie.rules), or set "
                   f"service.poweroff_command{unused}")
    elif answer == "na":
        report(bad, f"`{shown}`: this system cannot power off through "
                   f"logind{unused}")
    else:
        detail = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
        report("note", f"cannot ask logind whether {who} may run `{shown}`: "
                   f"{detail}")
    return findings


def service_user(run: Runner) -> str | None:
    """The user sosie.service runs as (the doctor itself may run as root), if it is installed."""
    try:
        result = run(["systemctl", "show", "--property=User", "--value", "sosie.service"])
    except (OSError, subprocess.SubprocessError):
        return None
    user = result.stdout.strip() if result.returncode == 0 else ""
    return user or None
