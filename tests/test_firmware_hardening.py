"""The image's systemd units are sandboxed (issue 13, item 7), and the data partition runs nothing.

`systemd-analyze security --offline=true` scores each unit file (0 safe .. 10 unsafe): the
appliance must be "OK" (<= 3.0), the units around it (setup, its error signal, the clock saver)
<= 5.0. The sandbox must still let the appliance reach what it drives: checked from the files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
UNITS = FW / "rootfs" / "etc" / "systemd" / "system"
LIMITS = {
    "sosie.service": 3.0,
    "sosie-setup.service": 5.0,
    "sosie-config-error.service": 5.0,
    "sosie-clock-save.service": 5.0,
}
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?) (\w+)")


def _analyze(unit: Path) -> tuple[float, str, str]:
    """The unit file's exposure (score, verdict) and the full report."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (./dev test installs systemd where it can)")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=120, cwd=unit.parent,
    )
    output = result.stdout + result.stderr
    if "--offline" in output and ("unrecognized" in output or "Unknown" in output):
        pytest.skip("this systemd-analyze has no --offline (systemd >= 250 needed)")
    match = EXPOSURE.search(output)
    assert match, output
    return float(match.group(2)), match.group(3), output


@pytest.mark.parametrize(("name", "limit"), LIMITS.items(), ids=list(LIMITS))
def test_unit_exposure_is_within_its_limit(name: str, limit: float) -> None:
    score, verdict, report = _analyze(UNITS / name)
    failing = [line for line in report.splitlines() if line.startswith("✗")]
    assert score <= limit, f"{name}: {score} {verdict}\n" + "\n".join(failing)


def test_the_analysis_tells_a_bare_unit_apart(tmp_path: Path) -> None:
    """The same check on sosie.service stripped of its sandbox: far above the limit."""
    text = (UNITS / "sosie.service").read_text()
    service = text.split("[Service]")[1].split("[Install]")[0]
    keep = ("Type=", "NotifyAccess=", "User=", "Group=", "ExecStart=", "Restart")
    bare = "\n".join(line for line in service.splitlines() if line.startswith(keep))
    unit = tmp_path / "sosie.service"
    unit.write_text(text.split("[Service]")[0] + "[Service]\n" + bare + "\n[Install]\n"
                    "WantedBy=multi-user.target\n")
    score, _, _ = _analyze(unit)
    assert score > LIMITS["sosie.service"] + 3


def _service(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = (UNITS / name).read_text().split("[Service]")[1].split("\n[")[0]
    for line in section.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_the_appliance_still_reaches_its_devices_and_data() -> None:
    service = _service("sosie.service")
    assert service["DevicePolicy"] == ["closed"]
    allowed = {entry.split()[0] for entry in service["DeviceAllow"]}
    # GPIO (lgpio), camera (V4L2, libcamera media + DMA heaps), USB printers (usblp and libusb),
    # serial printers: the nodes the udev rules give to its groups.
    assert {"char-gpiochip", "char-video4linux", "char-media", "char-dma_heap", "char-usb",
            "char-usb_device", "char-ttyUSB", "char-ttyACM", "char-ttyAMA"} <= allowed
    assert all(entry.split()[1] == "rw" for entry in service["DeviceAllow"])
    families = set(" ".join(service["RestrictAddressFamilies"]).split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families  # socket, systemd, network printer
    assert service["ReadWritePaths"] == ["/srv/sosie"]
    assert service["CapabilityBoundingSet"] == [""] and service["NoNewPrivileges"] == ["yes"]
    assert service["UMask"] == ["0077"]  # what it keeps is its user's alone
    assert {"gpio", "video", "lp", "dialout"} <= set(service["SupplementaryGroups"][0].split())
    assert re.fullmatch(r"\d{1,2}%", service["MemoryMax"][0])  # a share of the Pi's RAM


def test_setup_reads_the_card_unprivileged_and_only_sets_the_host_name_as_root() -> None:
    setup = _service("sosie-setup.service")
    assert setup["User"] == ["sosie"] and setup["CapabilityBoundingSet"] == [""]
    assert setup["PrivateNetwork"] == ["yes"] and setup["PrivateDevices"] == ["yes"]
    privileged = [cmd for key in ("ExecStart", "ExecStartPre", "ExecStartPost")
                  for cmd in setup.get(key, []) if cmd.startswith(("+", "!"))]
    assert privileged == ["+/bin/hostname --file /run/sosie-setup/hostname"]
    assert setup["RuntimeDirectory"] == ["sosie-setup"]
    assert setup["RuntimeDirectoryPreserve"] == ["yes"]  # kept for the error unit
    error = _service("sosie-config-error.service")
    assert error["User"] == ["sosie"] and {"gpio", "lp"} <= set(error["SupplementaryGroups"][0]
                                                               .split())
    assert {e.split()[0] for e in error["DeviceAllow"]} == {"char-usb", "char-gpiochip"}


def _fstab(tmp_path: Path) -> dict[str, list[str]]:
    """firmware/build's write_fstab, run on a scratch root: mount point -> options."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    script = (f"source {FW / 'build'}; ROOT={root}; DISK_ID=1234abcd; "
              "in_root() { echo 999; }; write_fstab")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    mounts = {}
    for line in (root / "etc" / "fstab").read_text().splitlines():
        if line and not line.startswith("#"):
            fields = line.split()
            mounts[fields[1]] = fields[3].split(",")
    return mounts


def test_the_data_partition_runs_nothing_and_keeps_files_private(tmp_path: Path) -> None:
    mounts = _fstab(tmp_path)
    data, boot = mounts["/srv/sosie"], mounts["/boot/firmware"]
    assert {"rw", "nosuid", "nodev", "noexec", "uid=999", "gid=999"} <= set(data)
    # FAT has no permissions of its own: the masks make every file 0600, every folder 0700.
    assert "fmask=0177" in data and "dmask=0077" in data
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(boot)
    assert "ro" in mounts["/"]
