"""The C check drivers of ext/ (`ext/<kernels>/tests/<name>_check.c`: fixed inputs, a hash per
output, one line each), built natively and run with every kernel this CPU runs, and built for
the Raspberry Pi 4 (aarch64 -mcpu=cortex-a72) and run under qemu: the same lines everywhere
mean the same bits on the Pi. `./dev test` installs the cross tools as root; tests skip without
them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CC = shutil.which("cc") or shutil.which("gcc")
ARM_CC, ARM_OBJDUMP, QEMU = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objdump", "qemu-aarch64"
ARM_MISSING = any(shutil.which(tool) is None for tool in (ARM_CC, ARM_OBJDUMP, QEMU))
ARM_REASON = ("aarch64 cross tools missing (apt-get install gcc-aarch64-linux-gnu "
              "libc6-dev-arm64-cross qemu-user; ./dev test does it as root)")
needs_arm = pytest.mark.skipif(ARM_MISSING, reason=ARM_REASON)


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def native_lines(out: Path, cflags: list[str], sources: list[str], kernels: list[str],
                 count: int) -> list[str]:
    """The driver's `count` lines, asserted the same for every kernel in `kernels` (each run
    ending in " 0": no failure)."""
    if CC is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    driver = out / "check"
    built = run([CC, *cflags, *sources, "-o", str(driver), "-lm"])
    assert built.returncode == 0, built.stderr
    outputs = {name: run([str(driver), name]) for name in kernels}
    for name, result in outputs.items():
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    lines = outputs["serial"].stdout.splitlines()
    assert len(lines) == count and all(line.endswith(" 0") for line in lines)
    for name, result in outputs.items():
        assert result.stdout.splitlines() == lines, name
    return lines


def pi_lines(out: Path, cflags: list[str], sources: list[str]) -> tuple[list[str], str]:
    """The Pi 4 build's lines with its serial kernel under qemu, and its disassembly."""
    driver = out / "check-aarch64"
    built = run([ARM_CC, *cflags, "-mcpu=cortex-a72", "-static", *sources, "-o", str(driver),
                 "-lm"])
    assert built.returncode == 0, built.stderr
    result = run([QEMU, "-cpu", "cortex-a72", str(driver), "serial"])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines(), run([ARM_OBJDUMP, "-d", "--no-show-raw-insn",
                                            str(driver)]).stdout
