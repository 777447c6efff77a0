"""The C kernels on this machine through ext/kernels/tests/kernel_check.c (no Python in between):
row values within the certified rounding bound, exact ties, and the fused multi-threaded scan
keeping exactly the best rows by (value, row) in every chunk, for every kernel this CPU runs."""

from __future__ import annotations

import shutil
import subprocess
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
