"""Config files a careless installer (or anyone holding the SD card) may write.

Every number must be finite and in range (NaN used to pass the bounds check and keep the
appliance in cooldown forever), and a file that is not UTF-8, nested absurdly deep, or made of
aliases must stop `run`, `doctor` and `describe` with one line naming the file.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from appliance import config
from appliance.config import ConfigError, parse, setting
from appliance.settings import load_settings

PHOTO = __file__  # describe needs an existing path; the config fails before it is read

BAD_FILES = {
    "latin1": (b"installation:\n  title: Caf\xe9\n",
               "not UTF-8 text (byte 0xe9 at line 2, column 13"),
    "utf16": ("installation:\n  title: Hello\n".encode("utf-16"), "saved as UTF-16"),
    "deep": (b"installation: " + b"[" * 1000 + b"]" * 1000 + b"\n", "nested deeper than"),
    "aliases": (b"installation: &a {title: x}\nticket: *a\n", "alias *a refused"),
    "nan": (b"machine:\n  cooldown_seconds: .nan\n",
            "config key 'machine.cooldown_seconds' = nan: expected a finite number"),
    "inf": (b"printer:\n  write_timeout: .inf\n",
            "config key 'printer.write_timeout' = inf: expected a finite number"),
    "huge": (b"printer:\n  write_timeout: 1.0e+300\n",
             "config key 'printer.write_timeout' = 1e+300: expected a finite number from"),
    "digits": (b"printer:\n  chunk_bytes: " + b"9" * 5000 + b"\n", "line 2: invalid YAML"),
    "bigint": (b"printer:\n  chunk_bytes: 99999999999999999999\n",
               "'printer.chunk_bytes' = 99999999999999999999: expected an integer from"),
    "control": (b"installation:\n  title: \x00\n", "unacceptable character #x0000"),
}


@pytest.fixture(params=sorted(BAD_FILES))
def bad_config(request, tmp_path):
    data, message = BAD_FILES[request.param]
    path = tmp_path / f"{request.param}.yaml"
    path.write_bytes(data)
    return path, message


def test_bad_config_file_is_one_config_error_naming_the_file(bad_config):
    path, message = bad_config
    with pytest.raises(ConfigError) as err:
        load_settings(path, search=False)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("command", "status"),
    [(["run"], 2), (["doctor"], 1), (["describe", PHOTO], 2)],
)
@pytest.mark.parametrize("name", ["latin1", "deep", "nan"])
def test_run_doctor_describe_report_one_line(tmp_path, command, status, name):
    data, message = BAD_FILES[name]
    path = tmp_path / "sosie.yaml"
    path.write_bytes(data)
    run = subprocess.run(
        [sys.executable, "-m", "appliance", *command, "--config", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == status, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    line = next(x for x in (run.stderr + run.stdout).splitlines() if message in x)
    assert str(path) in line


def test_oversized_config_file_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# padding\n" * 30_000)
    with pytest.raises(ConfigError, match=r"big\.yaml: larger than 262144 bytes"):
        config.load(path)


def test_a_utf8_file_with_byte_order_mark_is_fine(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffinstallation:\n  title: Café\n".encode())
    assert config.load(path)["installation"]["title"] == "Café"


@dataclass(frozen=True)
class Knobs:
    level: float = setting(1.0, min=0.0, max=1.0)
    floor: float = setting(1.0, min=0.0)  # no declared maximum
    count: int = 3  # no declared bounds at all
    gains: list[float] = field(default_factory=list)
    extra: Any = None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"level": float("nan")}, "'k.level' = nan: expected a finite number"),
        ({"level": float("-inf")}, "'k.level' = -inf: expected a finite number"),
        ({"floor": float("inf")}, "'k.floor' = inf: expected a finite number"),
        ({"floor": 10**400}, "'k.floor' = 1000000000"),
        ({"floor": 2e9}, "'k.floor' = 2000000000.0: expected a finite number from -1e+09"),
        ({"count": 2**63}, "'k.count' = 9223372036854775808: expected an integer from"),
        ({"gains": [1.0, float("nan")]}, "'k.gains[1]' = nan: expected a finite number"),
    ],
)
def test_every_number_is_finite_and_bounded(data, message):
    with pytest.raises(ConfigError) as err:
        parse(Knobs, data, "k")
    assert message in str(err.value)


def test_nan_under_an_untyped_key_is_refused_on_load(tmp_path):
    path = tmp_path / "any.yaml"
    path.write_text("installation:\n  title: x\n  extra: [1, .nan]\n")
    with pytest.raises(ConfigError, match=r"'installation\.extra\[1\]' = nan: expected a finite"):
        config.read_yaml(path)


def test_nan_cooldown_cannot_reach_the_machine(tmp_path):
    path = tmp_path / "cool.yaml"
    for value in (".nan", ".NaN", "-.inf", ".inf"):
        path.write_text(f"machine:\n  cooldown_seconds: {value}\n")
        with pytest.raises(ConfigError, match=r"machine\.cooldown_seconds"):
            load_settings(path, search=False)
    path.write_text("machine:\n  cooldown_seconds: 2.5\n")
    assert load_settings(path, search=False).machine.cooldown_seconds == 2.5
