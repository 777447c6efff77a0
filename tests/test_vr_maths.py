"""The 3-D view's matrix maths (appliance/web/assets/vr/matrix.js), checked in node.

The page's scripts are classic browser scripts; tests/js/matrix.test.js loads matrix.js into a
node context the way the page does and checks its matrices against their geometric meaning
(seeded random cases). Skipped with a reason where node (18 or later, for `node --test`) is
missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SUITE = Path(__file__).parent / "js" / "matrix.test.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the 3-D view's maths are tested in node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    major = re.match(r"v(\d+)\.", version.stdout)
    if not major or int(major.group(1)) < 18:
        pytest.skip(f"node {version.stdout.strip()} has no `node --test` (18 or later needed)")
    return node


def test_matrix_maths_hold_in_node():
    result = subprocess.run([_node(), "--test", str(SUITE)], capture_output=True, text=True,
                            timeout=120)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", report, re.M)
    assert passed and int(passed.group(1)) >= 6, report  # every case ran, none was skipped
    assert re.search(r"^# fail 0$", report, re.M), report
