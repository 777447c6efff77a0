"""The C kernels on this machine through ext/kernels/tests/kernel_check.c (no Python in between):
row values within the certified rounding bound, exact ties, and the fused multi-threaded scan
keeping exactly the best rows by (value, row) in every chunk, for every kernel this CPU runs;
and the built module under qemu-x86_64 as older CPUs (runtime dispatch, no AVX2 needed)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.search import kernels

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "ext" / "kernels"
CC = shutil.which("cc") or shutil.which("gcc")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc/gcc) on PATH")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("native") / "kernel_check"
    cmd = [CC, "-O2", "-Wall", "-Werror", "-ffp-contract=off", "-pthread",
           str(KERNELS / "tests" / "kernel_check.c"), str(KERNELS / "dispatch.c"), "-o", str(out),
           "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("kernel", kernels())
def test_kernel_check(driver: Path, kernel: str) -> None:
    result = subprocess.run([str(driver), kernel, "5", "80"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok {kernel} ")
    assert int(result.stdout.split()[2]) > 10_000


QEMU_X86 = shutil.which("qemu-x86_64")
PROBE = """
import numpy as np
from appliance.search import Scanner, kernels
x = (np.arange(64 * 16).reshape(64, 16) % 7).astype(np.float16)
scanner = Scanner(x)
print(",".join(kernels()), scanner.kernel, scanner.topk(x[5].astype(np.float32), 3)[0].tolist())
"""


@pytest.mark.skipif(QEMU_X86 is None or platform.machine() != "x86_64",
                    reason="needs an x86-64 host with qemu-x86_64 (apt-get install qemu-user)")
@pytest.mark.parametrize(("cpu", "expected"), [("Nehalem", "serial"), ("Haswell", "avx2,serial")])
def test_module_imports_and_dispatches_on_older_cpus(cpu: str, expected: str) -> None:
    """Built for baseline x86-64 with per-function targets: on a CPU without AVX (Nehalem) it
    imports and runs the serial kernel; on AVX2 without AVX-512 (Haswell) it picks avx2."""
    result = subprocess.run([QEMU_X86, "-cpu", cpu, sys.executable, "-c", PROBE],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [expected, expected.split(",")[0], "[5,", "12,", "19]"]
