"""Cheap checks of the SD-image files in firmware/ (the image itself is built and booted by hand:
firmware/build, firmware/smoke-test).

The unit files must pass `systemd-analyze verify` in a scratch root holding the system's units and
stand-ins for the image's programs; the shell scripts must parse; the installer's example
sosie.yaml (and the smoke-test one) must be accepted by the setup step, which checks them the
way `sosie run` reads them; wrong settings must be refused with one line naming the key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
UNITS = FW / "rootfs" / "etc" / "systemd" / "system"
SETUP = FW / "rootfs" / "usr" / "local" / "lib" / "sosie" / "sosie-setup"
UNIT_FILES = sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.path"))
SMOKE_UNIT = FW / "smoke" / "sosie-smoke.service"
BASH_SCRIPTS = [FW / "build", FW / "smoke-test", FW / "smoke" / "sosie-smoke"]
SH_SCRIPTS = [FW / "rootfs" / "usr" / "local" / "sbin" / "sosie-rw"]


# ---------------------------------------------------------------------------------------------
# systemd units


def _exec_paths(unit: Path) -> set[str]:
    paths = set()
    for line in unit.read_text().splitlines():
        if m := re.match(r"^Exec\w+=[-@:+!]*(/\S+)", line):
            paths.add(m.group(1))
    return paths


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch root: the host's system units, our units, stand-ins for their programs."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    system_units = next(
        (p for p in (Path("/lib/systemd/system"), Path("/usr/lib/systemd/system")) if p.is_dir()),
        None,
    )
    if system_units is None:
        pytest.skip("no system unit directory on this machine")
    root = tmp_path_factory.mktemp("unit-root")
    shutil.copytree(system_units, root / "lib" / "systemd" / "system", symlinks=True)
    dest = root / "etc" / "systemd" / "system"
    dest.mkdir(parents=True)
    for unit in [*UNIT_FILES, SMOKE_UNIT]:
        shutil.copy(unit, dest)
        for program in _exec_paths(unit):
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    return root


def _verify(root: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", f"etc/systemd/system/{name}"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("unit", [*UNIT_FILES, SMOKE_UNIT], ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit_root: Path, unit: Path) -> None:
    result = _verify(unit_root, unit.name)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Unknown keys are only warnings with exit status 0: treat any remark as a failure.
    assert output == "", output


def test_verify_catches_a_misspelt_key(unit_root: Path) -> None:
    broken = unit_root / "etc" / "systemd" / "system" / "sosie-broken.service"
    text = (UNITS / "sosie.service").read_text()
    broken.write_text(text.replace("WatchdogSec=", "WatchdogSecs="))
    try:
        result = _verify(unit_root, broken.name)
        output = result.stdout + result.stderr
        assert "WatchdogSecs" in output
    finally:
        broken.unlink()


def test_appliance_unit_contract() -> None:
    """What issue 8 asks of sosie.service, read from the file."""
    text = (UNITS / "sosie.service").read_text()
    service = dict(
        line.split("=", 1) for line in text.split("[Service]")[1].split("[Install]")[0].splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert service["Type"] == "notify"
    assert service["User"] == "sosie"
    assert {"gpio", "video", "lp"} <= set(service["SupplementaryGroups"].split())
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert service["RuntimeDirectory"] == "sosie"  # the control socket: /run/sosie/control.sock
    assert service["ExecStart"].startswith("/opt/sosie/bin/sosie run --config ")


# ---------------------------------------------------------------------------------------------
# scripts


@pytest.mark.parametrize("script", BASH_SCRIPTS, ids=lambda p: p.name)
def test_bash_script_parses(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


@pytest.mark.parametrize("script", SH_SCRIPTS, ids=lambda p: p.name)
def test_posix_script_parses(script: Path) -> None:
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cross_compile_helper_sees_the_extensions() -> None:
    """firmware/lib/cross_ext.py reads setup.py's extension list without building anything."""
    sys.path.insert(0, str(FW / "lib"))
    try:
        import cross_ext
    finally:
        sys.path.pop(0)
    names = {ext.name for ext in cross_ext.extensions(REPO)}
    expected = [("appliance._scan", "ext/scan.pyx"), ("appliance._dither", "ext/dither.pyx")]
    for name, source in expected:
        assert (name in names) == (REPO / source).exists()


# ---------------------------------------------------------------------------------------------
# the setup step and the installer's sosie.yaml


def _setup(tmp_path: Path, config_text: str | None) -> subprocess.CompletedProcess:
    boot = tmp_path / "boot" / "sosie.yaml"
    boot.parent.mkdir(exist_ok=True)
    if config_text is not None:
        boot.write_text(config_text)
    (tmp_path / "data").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "INVOCATION_ID"}  # never set a hostname
    env.update(
        SOSIE_BOOT_CONFIG=str(boot),
        SOSIE_SETUP_DIR=str(tmp_path / "run"),
        SOSIE_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(REPO),
    )
    return subprocess.run(
        [sys.executable, str(SETUP)], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("example", [FW / "sosie.yaml", FW / "smoke" / "sosie.yaml"],
                         ids=["installer", "smoke"])
def test_example_config_is_accepted(tmp_path: Path, example: Path) -> None:
    result = _setup(tmp_path, example.read_text())
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load((tmp_path / "run" / "sosie.yaml").read_text())
    original = yaml.safe_load(example.read_text())
    assert "system" not in written  # the image's own section is not passed to the appliance
    for section, values in original.items():
        if section != "system":
            assert written[section] == {**written[section], **values}
    tz = original["system"]["timezone"]
    assert (tmp_path / "run" / "environment").read_text() == f"TZ={tz}\n"
    assert {p.name for p in (tmp_path / "data").iterdir()} >= {"corpus", "tickets", "cache"}


def test_missing_config_means_defaults(tmp_path: Path) -> None:
    result = _setup(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "sosie.yaml").is_file()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("system: {hostname: 'Not A Name'}\n", "system.hostname"),
        ("system: {timezone: Mars/Olympus}\n", "system.timezone"),
        ("system: {colour: red}\n", "system.colour"),
        ("faces: {upsampel: 1}\n", "faces.upsampel"),
        ("faces: {upsample: lots}\n", "faces.upsample"),
        ("nonsense: 1\n", "nonsense"),
        ("faces: [1, 2\n", "line"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_wrong_config_is_refused_on_one_line(tmp_path: Path, text: str, names: str) -> None:
    result = _setup(tmp_path, text)
    assert result.returncode == 1
    error = (tmp_path / "run" / "error.txt").read_text()
    assert error.count("\n") == 1 and names in error, error
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "sosie.yaml").exists()


def test_error_clears_once_fixed(tmp_path: Path) -> None:
    assert _setup(tmp_path, "nonsense: 1\n").returncode == 1
    assert _setup(tmp_path, "faces: {upsample: 1}\n").returncode == 0
    assert not (tmp_path / "run" / "error.txt").exists()


def test_error_ticket_is_plain_escpos_text() -> None:
    namespace: dict = {"__name__": "sosie_setup"}
    exec(compile(SETUP.read_text(), str(SETUP), "exec"), namespace)
    message = "config key 'printer.usb.vendor_id' = 'x': expected an integer " * 2
    data = namespace["error_ticket"](message)
    assert data.startswith(b"\x1b@") and data.endswith(b"\x1dV\x01")
    text = data.decode("ascii")
    body_lines = [line for line in text.splitlines() if "vendor_id" in line or "expected" in line]
    assert body_lines and all(len(line) <= 32 for line in body_lines)
    assert "printer.usb.vendor_id" in text.replace("\n", "")


def test_boot_fragment_is_scoped_to_the_pi4() -> None:
    text = (FW / "boot" / "config-sosie.txt").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[pi4]" and lines[-1] == "[all]"
    assert "camera_auto_detect=1" in lines
