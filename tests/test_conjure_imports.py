"""The service's conjurer imports cma as on a Pi: without the plotting and statistics packages
cma would pull in when a workstation has them (66 MB of RSS), which stay importable after."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from appliance.conjure.search import require_cma
cma = require_cma()
assert cma.CMAEvolutionStrategy is not None
print(sorted(m for m in ("matplotlib", "scipy", "scipy.stats") if m in sys.modules))
import matplotlib, scipy.stats  # importable again
print("importable")
"""


def test_cma_is_imported_without_matplotlib_and_scipy():
    pytest.importorskip("cma")
    pytest.importorskip("scipy.stats")  # on a machine without them there is nothing to avoid
    pytest.importorskip("matplotlib")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "importable"


def test_an_already_imported_scipy_is_left_alone():
    pytest.importorskip("cma")
    pytest.importorskip("scipy.stats")
    script = "import scipy.stats\n" + SCRIPT.replace('print("importable")', "")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split("\n")
    assert out[0] == "['scipy', 'scipy.stats']"
