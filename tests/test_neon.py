"""The aarch64 NEON kernel, cross-compiled and run under qemu as a Cortex-A72 (Raspberry Pi 4).

ext/kernels/tests/kernel_check.c checks a kernel against exact double arithmetic and the serial
reference (row values within the rounding bound the exactness certificate relies on, exact ties
for duplicated rows, the fused multi-threaded scan keeping exactly the best rows; the int8
sketch's values within the slack of its lower bound, and the sketch scan keeping every row of
the exact top-k). Here it is
built with Debian's gcc-aarch64-linux-gnu for -mcpu=cortex-a72 and run with
`qemu-aarch64 -cpu cortex-a72`, which raises SIGILL on ARMv8.2 FP16 arithmetic like the real A72.
`./dev test` installs both tools (gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "ext" / "kernels"
CC = "aarch64-linux-gnu-gcc"
OBJDUMP = "aarch64-linux-gnu-objdump"
QEMU = "qemu-aarch64"
CFLAGS = ["-O3", "-mcpu=cortex-a72", "-Wall", "-Werror", "-ffp-contract=off"]
QEMU_CPU = ["-cpu", "cortex-a72"]

missing = [tool for tool in (CC, OBJDUMP, QEMU) if shutil.which(tool) is None]
pytestmark = pytest.mark.skipif(
    bool(missing),
    reason=f"{', '.join(missing)} not installed (apt-get install gcc-aarch64-linux-gnu "
    "libc6-dev-arm64-cross qemu-user; ./dev test does it as root)",
)

# Floating-point instructions on half-precision operands that are ARMv8.2-A FP16 arithmetic.
# Base ARMv8.0 only converts: FCVTL/FCVTL2/FCVTN/FCVTN2 and scalar FCVT between h and s/d.
_HALF_OPERAND = re.compile(r"\.[48]h\b|\bh\d+\b")
_BASE_CONVERSIONS = {"fcvtl", "fcvtl2", "fcvtn", "fcvtn2", "fcvt"}


def fp16_arithmetic(disassembly: str) -> list[str]:
    """Lines of an objdump disassembly doing FP16 arithmetic."""
    found = []
    for line in disassembly.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        mnemonic, operands = parts[-2].strip(), parts[-1]
        fp = mnemonic.startswith("f") and mnemonic not in _BASE_CONVERSIONS
        if fp and _HALF_OPERAND.search(operands):
            found.append(line.strip())
    return found


def _run(cmd: list[str | Path], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("neon")
    obj = out / "dispatch.o"
    result = _run([CC, *CFLAGS, "-c", KERNELS / "dispatch.c", "-o", obj])
    assert result.returncode == 0, result.stderr
    driver = out / "kernel_check"
    result = _run([CC, *CFLAGS, "-static", "-pthread", KERNELS / "tests" / "kernel_check.c", obj,
                   "-o", driver, "-lm"])
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_neon_kernel_matches_exact_and_serial_under_qemu(build: Path, seed: int) -> None:
    result = _run([QEMU, *QEMU_CPU, build / "kernel_check", "neon", str(seed), "40"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok neon ")
    assert int(result.stdout.split()[2]) > 10_000  # it really compared many values
    assert int(result.stdout.split()[3]) > 5_000  # and the sketch pass's values and scans


def test_serial_kernel_under_qemu(build: Path) -> None:
    result = _run([QEMU, *QEMU_CPU, build / "kernel_check", "serial", "7", "20"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kernels_use_no_fp16_arithmetic(build: Path) -> None:
    disassembly = _run([OBJDUMP, "-d", "--no-show-raw-insn", build / "dispatch.o"]).stdout
    assert "fcvtl" in disassembly  # the NEON kernel is in there, widening float16
    assert fp16_arithmetic(disassembly) == []


def test_fp16_guards_catch_fp16_arithmetic(tmp_path: Path) -> None:
    """Controls: FP16 arithmetic is found by the disassembly check, and qemu pinned to the
    Cortex-A72 refuses it (SIGILL) as the Pi 4 does."""
    src = tmp_path / "fp16.c"
    src.write_text(
        "#include <arm_neon.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
        "int main(int c, char **v) {\n"
        "  float16x8_t a = vdupq_n_f16((float16_t)atof(c > 1 ? v[1] : \"1.5\"));\n"
        "  a = vfmaq_f16(a, a, a);\n"
        "  printf(\"%f\\n\", (double)vgetq_lane_f16(a, 0));\n  return 0;\n}\n"
    )
    prog = tmp_path / "fp16"
    result = _run([CC, "-O2", "-march=armv8.2-a+fp16", "-static", src, "-o", prog])
    assert result.returncode == 0, result.stderr
    assert fp16_arithmetic(_run([OBJDUMP, "-d", "--no-show-raw-insn", prog]).stdout)
    refused = _run([QEMU, *QEMU_CPU, prog])
    assert refused.returncode in (-signal.SIGILL, 128 + signal.SIGILL), refused
