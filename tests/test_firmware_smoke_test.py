"""firmware/smoke-test --no-corpus, exercised with a stand-in for QEMU (no emulation).

The stand-in records the kernel command line and what the SD card's copy holds on its data
partition, then writes a console log (the forwarded journal of an installer image, which has no
sosie-smoke.service) and exits. smoke-test must delete corpus/ from the copy only, put the
journal on the console, and judge the unit from the console: started (READY=1) and
multi-user.target reached, the corpus fault logged, no restart; any restart, watchdog kill or
missing start is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("dtc", "fdtput", "fdtget", "sfdisk", "mkfs.vfat", "mcopy", "mmd", "mdir", "mdeltree",
         "truncate")

DTS = """/dts-v1/;
/ { compatible = "raspberrypi,4-model-b"; #address-cells = <1>; #size-cells = <1>;
    soc { mmc@7e300000 { status = "disabled"; non-removable; wifi@1 { reg = <1>; }; }; };
};
"""

FAKE_QEMU = """#!/bin/bash
case "$*" in *"-M help"*) echo "raspi4b  Raspberry Pi 4B"; exit 0 ;; esac
[[ $1 == --version ]] && { echo "QEMU emulator version 10.0.0"; exit 0; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        -append) echo "$2" > "$RECORD/cmdline" ;;
        -drive) sd=${2#file=}; sd=${sd%%,*} ;;
        -serial) log=${2#file:} ;;
    esac
    shift
done
start=$(sfdisk -d "$sd" |
        awk -F'start=' '/start=/ { if (++i == 3) { split($2, a, ","); print a[1] + 0 } }')
mdir -b -i "$sd@@$(( start * 512 ))" ::/ > "$RECORD/data" 2>&1
cp "$CONSOLE" "$log"
sleep 7
"""

HEALTHY = """[    0.000000] Linux version 6.1.0-50-arm64 (debian-kernel@lists.debian.org)
[   61.204110] systemd[1]: Starting sosie.service - Sosie appliance...
\x1b[K[   72.901233] systemd[1]: Started sosie.service - Sosie appliance.
[   73.120004] systemd[1]: Reached target multi-user.target - Multi-User System.
[  140.332100] sosie[512]: WARNING fault (corpus): corpus: /srv/sosie/corpus: no such folder
[  170.332100] sosie[512]: WARNING fault (corpus): corpus: /srv/sosie/corpus: no such folder
[  171.000000] bash[327]: SOSIE-SMOKE INFO quoting it: fault (corpus): corpus: /srv/sosie/corpus: no
"""

# A console longer than a pipe's buffer after the lines looked for (a real one is ~200 KB).
FILLER = "".join(f"[  200.{i:06d}] systemd[1]: Finished unit-{i}.service.\n" for i in range(4000))

RESTARTED = """[    0.000000] Linux version 6.1.0-50-arm64 (debian-kernel@lists.debian.org)
[   61.204110] systemd[1]: Starting sosie.service - Sosie appliance...
[  140.332100] sosie[512]: WARNING fault (corpus): corpus: /srv/sosie/corpus: no such folder
[  361.204110] systemd[1]: sosie.service: start operation timed out. Terminating.
[  364.204110] systemd[1]: sosie.service: Scheduled restart job, restart counter is at 1.
"""


@pytest.fixture()
def firmware(tmp_path: Path) -> Path:
    """A copy of smoke-test with the stand-in QEMU and an installer image (corpus on SOSIE-DATA)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' '.join(missing)} (device-tree-compiler, fdisk, dosfstools, mtools)")
    firmware = tmp_path / "firmware"
    qemu = firmware / "work/qemu10/usr/bin/qemu-system-aarch64"
    qemu.parent.mkdir(parents=True)
    shutil.copy2(REPO / "firmware/smoke-test", firmware / "smoke-test")
    qemu.write_text(FAKE_QEMU)
    qemu.chmod(0o755)
    out = firmware / "out"
    boot = out / "sosie-installer-test.boot"
    boot.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img"):
        (boot / name).write_bytes(b"\0" * 64)
    (boot / "cmdline.txt").write_text("console=serial0,115200 root=LABEL=sosie-root ro quiet\n")
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(boot / "bcm2711-rpi-4-b.dtb")],
                   input=DTS, text=True, check=True)
    data = tmp_path / "data.vfat"
    subprocess.run(["mkfs.vfat", "-n", "SOSIE-DATA", "-C", str(data), "8192"], check=True,
                   capture_output=True)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("faces: 2\n")
    subprocess.run(["mmd", "-i", str(data), "::corpus"], check=True)
    subprocess.run(["mcopy", "-i", str(data), str(manifest), "::corpus/"], check=True)
    image = out / "sosie-installer-test.img"
    with image.open("wb") as handle:
        handle.truncate(24 * 1024 * 1024)
    table = "label: dos\nstart=2048, size=4096, type=c\nstart=6144, size=4096, type=83\n" \
            "start=10240, size=16384, type=c\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=table, text=True, check=True)
    subprocess.run(["dd", f"if={data}", f"of={image}", "bs=512", "seek=10240", "conv=notrunc",
                    "status=none"], check=True)
    return firmware


def _run(firmware: Path, tmp_path: Path, console: str) -> subprocess.CompletedProcess:
    (tmp_path / "console.log").write_text(console)
    record = tmp_path / "record"
    record.mkdir(exist_ok=True)
    env = {**os.environ, "RECORD": str(record), "CONSOLE": str(tmp_path / "console.log")}
    image = firmware / "out/sosie-installer-test.img"
    return subprocess.run([str(firmware / "smoke-test"), "--image", str(image), "--no-corpus",
                           "--hold", "0"], env=env, capture_output=True, text=True, timeout=120)


def test_no_corpus_boot_is_judged_from_the_console(firmware: Path, tmp_path: Path) -> None:
    result = _run(firmware, tmp_path, HEALTHY + FILLER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: PASS" in result.stdout
    assert "started (READY=1, active) at 72s after power-on" in result.stdout
    assert "multi-user.target reached at 73s after power-on" in result.stdout
    assert "logged 2 time(s), first: fault (corpus): corpus:" in result.stdout
    assert "judged from the console only" in result.stdout
    record = tmp_path / "record"
    assert "systemd.journald.forward_to_console=1" in (record / "cmdline").read_text()
    assert "corpus" not in (record / "data").read_text().lower()  # deleted on the copy ...
    image = firmware / "out/sosie-installer-test.img"
    listing = subprocess.run(["mdir", "-b", "-i", f"{image}@@{10240 * 512}", "::/"],
                             capture_output=True, text=True, check=True).stdout
    assert "corpus" in listing.lower()  # ... and the image untouched


def test_a_restart_or_a_start_that_never_ends_fails(firmware: Path, tmp_path: Path) -> None:
    result = _run(firmware, tmp_path, RESTARTED)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line[2:18].strip(): line[19:] for line in result.stdout.splitlines()
             if line.startswith("  ") and line[19:].startswith(("ok", "FAIL"))}
    assert "FAIL" in lines["service active"]
    assert "FAIL" in lines["multi-user"]
    assert "FAIL" in lines["not restarted"]
    assert "start operation timed out" in lines["not restarted"]
    assert "Scheduled restart job" in lines["not restarted"]
    assert lines["corpus fault"].startswith("ok")
    assert "RESULT: FAIL" in result.stdout
