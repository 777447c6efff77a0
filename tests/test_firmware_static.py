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
UNIT_FILES = sorted(p for kind in ("service", "path", "timer", "target")
              for p in UNITS.glob(f"*.{kind}"))
POLKIT_RULE = FW / "rootfs" / "etc" / "polkit-1" / "rules.d" / "60-sosie.rules"
PACKAGES = FW / "packages"
# Debian bookworm's fake-hwclock.service (package fake-hwclock 0.12+nmu1), which the image's
# drop-in extends: a stand-in when the host does not have the package.
FAKE_HWCLOCK_UNIT = """[Unit]
Description=Restore / save the current clock
DefaultDependencies=no
Before=sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
EnvironmentFile=-/etc/default/fake-hwclock
ExecStart=/sbin/fake-hwclock load $FORCE
ExecStop=/sbin/fake-hwclock save
Type=oneshot
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
"""
SMOKE_UNIT = FW / "smoke" / "sosie-smoke.service"
BASH_SCRIPTS = [FW / "build", FW / "smoke-test", FW / "check-descriptor",
                FW / "smoke" / "sosie-smoke"]
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
    shutil.copytree(UNITS / "fake-hwclock.service.d", dest / "fake-hwclock.service.d")
    stock = root / "lib" / "systemd" / "system" / "fake-hwclock.service"
    if not stock.exists():
        stock.write_text(FAKE_HWCLOCK_UNIT)
    for program in ("sbin/fake-hwclock",):
        (root / program).parent.mkdir(parents=True, exist_ok=True)
        (root / program).write_text("#!/bin/sh\n")
        (root / program).chmod(0o755)
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


def test_clock_drop_in_passes_verify_and_waits_for_the_data_partition(unit_root: Path) -> None:
    """fake-hwclock.service with the image's drop-in (the stock unit, or a stand-in for it)."""
    result = _verify(unit_root, "fake-hwclock.service")
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == ""
    # verify reads the drop-in folder: a misspelt key in it is reported.
    broken = unit_root / "etc" / "systemd" / "system" / "fake-hwclock.service.d" / "zz.conf"
    broken.write_text("[Unit]\nAfterr=srv-sosie.mount\n")
    try:
        result = _verify(unit_root, "fake-hwclock.service")
        assert "Afterr" in result.stdout + result.stderr
    finally:
        broken.unlink()


def test_the_saved_clock_lives_on_the_writable_data_partition() -> None:
    defaults = (FW / "rootfs" / "etc" / "default" / "fake-hwclock").read_text()
    (clock_file,) = re.findall(r"^FILE=(\S+)$", defaults, re.MULTILINE)
    build = (FW / "build").read_text()
    data_mount = re.search(r"^PARTUUID=\$DISK_ID-03\s+(\S+)\s+vfat\s+rw,", build, re.MULTILINE)
    assert data_mount, "the data partition is mounted read-write"
    assert clock_file.startswith(data_mount.group(1) + "/")
    root_mount = re.search(r"^PARTUUID=\$DISK_ID-02\s+/\s+ext4\s+ro,", build, re.MULTILINE)
    assert root_mount, "the root is read-only (so the stock /etc/fake-hwclock.data cannot be saved)"
    drop_in = (UNITS / "fake-hwclock.service.d" / "sosie.conf").read_text()
    assert "After=srv-sosie.mount" in drop_in
    save = (UNITS / "sosie-clock-save.service").read_text()
    assert "EnvironmentFile=-/etc/default/fake-hwclock" in save
    assert "ExecStart=/sbin/fake-hwclock save" in save
    assert "fake-hwclock" in _list(PACKAGES / "system.txt")
    assert re.search(r"for unit in .*fake-hwclock\.service.*sosie-clock-save\.timer", build)
    # The data partition starts with the build time, so even the first boot is not in 1970.
    assert '> "$DATA/fake-hwclock.data"' in build


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


def _service_section(unit: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = unit.read_text().split("[Service]")[1].split("\n[")[0]
    for line in section.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("name", ["sosie.service", "sosie-config-error.service"])
def test_gpio_units_run_in_a_writable_working_directory(name: str) -> None:
    """lgpio makes its notification pipes in the working directory; the root is read-only."""
    service = _service_section(UNITS / name)
    (runtime,) = service["RuntimeDirectory"]
    (workdir,) = service["WorkingDirectory"]
    assert workdir == f"/run/{runtime}"
    environment = " ".join(service["Environment"]).split()
    assert f"LG_WD={workdir}" in environment


# ---------------------------------------------------------------------------------------------
# power-off by the unprivileged appliance user: `systemctl poweroff` through logind + polkit


def _list(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines()
            if line.split("#")[0].strip()]


def _polkit_decisions(queries: list[tuple[str, str]]) -> list[str | None]:
    """Run the rule file the way polkitd does (a JavaScript polkit.addRule) for (user, action)."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node not installed")
    harness = """
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", AUTH_ADMIN: "auth_admin",
                         NOT_HANDLED: null}, addRule: (f) => rules.push(f),
                log: () => {}};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const queries = JSON.parse(process.argv[2]);
console.log(JSON.stringify(queries.map(([user, id]) => {
  for (const rule of rules) {
    const r = rule({id: id}, {user: user, isInGroup: () => false});
    if (r !== undefined && r !== null) return r;
  }
  return null;
})));
"""
    import json

    result = subprocess.run([node, "-e", harness, str(POLKIT_RULE), json.dumps(queries)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_polkit_rule_lets_the_appliance_user_power_off_and_nothing_more() -> None:
    login1 = "org.freedesktop.login1."
    granted = [login1 + a for a in ("power-off", "power-off-multiple-sessions",
                                     "power-off-ignore-inhibit", "reboot",
                                     "reboot-multiple-sessions", "halt")]
    refused = [login1 + a for a in ("suspend", "hibernate", "set-wall-message",
                                     "power-offx", "manage")]
    refused += ["org.freedesktop.systemd1.manage-units", "org.freedesktop.login1power-off"]
    queries = [("sosie", a) for a in granted + refused] + [("pi", login1 + "power-off"),
                                                            ("nobody", login1 + "reboot")]
    decisions = _polkit_decisions(queries)
    expected = ["yes"] * len(granted) + [None] * (len(refused) + 2)
    assert list(zip(queries, decisions, strict=True)) == list(zip(queries, expected, strict=True))


def test_image_powers_off_with_the_shipped_default(tmp_path: Path) -> None:
    """One way to power off, the same on a laptop, a hand-made Pi install and the SD image:
    the default `systemctl poweroff`, which the polkit rule lets the unprivileged user run."""
    from appliance.runtime.service import ServiceSettings

    default = ServiceSettings().poweroff_command
    assert default == ["systemctl", "poweroff"]
    shipped = yaml.safe_load((REPO / "appliance" / "defaults.yaml").read_text())
    assert shipped["service"]["poweroff_command"] == default
    assert _setup(tmp_path, (FW / "sosie.yaml").read_text()).returncode == 0
    written = yaml.safe_load((tmp_path / "run" / "sosie.yaml").read_text())
    assert "poweroff_command" not in (written.get("service") or {})  # the default applies
    assert "polkitd" in _list(PACKAGES / "system.txt")
    assert "polkit" in (UNITS / "sosie.service").read_text()
    assert not list(UNITS.glob("sosie-poweroff.*"))  # the old root path-unit detour is gone


def test_build_installs_a_gpio_pin_library() -> None:
    from packaging.requirements import Requirement
    from packaging.version import Version

    requirements = [Requirement(line) for line in _list(PACKAGES / "pi-requirements.txt")]
    lgpio = next(r for r in requirements if r.name == "lgpio")
    # PyPI also holds an empty lgpio 0.0.0.2 wheel: the bound must exclude it.
    assert not lgpio.specifier.contains(Version("0.0.0.2"))
    assert lgpio.specifier.contains(Version("0.2.2.0"))
    build = (FW / "build").read_text()
    assert "packages/pi-requirements.txt" in build and 'reqs+=("${PI_REQUIREMENTS[@]}")' in build
    assert "manylinux_2_34_aarch64" in build  # lgpio's aarch64 wheel tag
    assert '"$site/_lgpio*.so"' in build  # the build stops when it is not in the image


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
    data = tmp_path / "data"
    paths = {("corpus", "path"): data / "corpus", ("camera", "source"): data / "smoke/visitor.jpg"}
    for section, values in original.items():
        if section != "system":
            expected = {k: str(paths.get((section, k), v)) if (section, k) in paths else v
                        for k, v in values.items()}
            if "virtual" in expected:  # paths on the data partition become absolute
                expected["virtual"] = {**expected["virtual"], "out_dir": str(data / "tickets")}
            assert written[section] == {**written[section], **expected}
    tz = original["system"]["timezone"]
    assert (tmp_path / "run" / "environment").read_text() == f"TZ={tz}\n"
    assert {p.name for p in (tmp_path / "data").iterdir()} >= {"corpus", "tickets", "cache"}


def test_smoke_tests_wrong_config_is_refused_for_the_key_it_expects(tmp_path: Path) -> None:
    """`firmware/smoke-test --config-error` boots firmware/smoke/sosie-wrong.yaml and passes only
    when the refusal names printer.virtual.out_dir: the same refusal, here, before a boot."""
    result = _setup(tmp_path, (FW / "smoke" / "sosie-wrong.yaml").read_text())
    assert result.returncode == 1
    error = (tmp_path / "run" / "error.txt").read_text()
    assert error.startswith(f"{tmp_path / 'boot' / 'sosie.yaml'}: printer.virtual.out_dir = ")
    assert "refused*printer.virtual.out_dir*" in (FW / "smoke-test").read_text()
    assert not (tmp_path / "run" / "sosie.yaml").exists()


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
