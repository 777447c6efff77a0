from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from appliance import config
from appliance.config import ConfigError, parse, setting


@dataclass(frozen=True)
class Lamp:
    pin: int = setting(17, min=0, max=27)
    mode: Literal["steady", "blink"] = "steady"
    level: float = setting(1.0, min=0.0, max=1.0)
    path: Path | None = None
    colours: tuple[int, int, int] = (0, 0, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"pin": "x"}, "config key 'lamp.pin' = 'x': expected an integer"),
        ({"pin": 40}, "config key 'lamp.pin' = 40: expected a number from 0 to 27"),
        ({"pin": True}, "config key 'lamp.pin' = True: expected an integer"),
        ({"mode": "fast"}, "config key 'lamp.mode' = 'fast': expected one of 'steady', 'blink'"),
        ({"level": "1"}, "config key 'lamp.level' = '1': expected a number"),
        ({"colours": [1, 2]}, "config key 'lamp.colours' = [1, 2]: expected a list of 3 items"),
        ({"colour": 1}, "unknown config key 'lamp.colour'"),
        ({"path": 3}, "config key 'lamp.path' = 3: expected a file path"),
    ],
)
def test_bad_values_name_key_value_and_expectation(data, message):
    with pytest.raises(ConfigError) as err:
        parse(Lamp, data, "lamp")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_good_values_are_coerced():
    lamp = parse(Lamp, {"pin": 4, "level": 0, "path": "~/x", "colours": [1, 2, 3]}, "lamp")
    assert lamp.pin == 4 and lamp.level == 0.0 and isinstance(lamp.level, float)
    assert lamp.path == Path("~/x").expanduser()
    assert lamp.colours == (1, 2, 3)


def test_user_file_overrides_defaults_and_rejects_typos(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("installation:\n  title: Hello\n")
    assert config.load(good)["installation"]["title"] == "Hello"
    assert config.load()["installation"]["title"] == "Sosie"
    bad = tmp_path / "bad.yaml"
    bad.write_text("instalation:\n  title: Hello\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*unknown config key 'instalation'"):
        config.load(bad)


def test_defaults_parsed_once_are_a_fresh_copy_each_time(tmp_path, monkeypatch):
    first = config.load()
    first["installation"]["title"] = "changed by a caller"
    assert config.load()["installation"]["title"] == "Sosie"
    copy = tmp_path / "defaults.yaml"  # a changed file is read again (mtime, size)
    copy.write_text(config.DEFAULTS_FILE.read_text().replace('title: "Sosie"', 'title: "Other"', 1))
    monkeypatch.setattr(config, "DEFAULTS_FILE", copy)
    assert config.load()["installation"]["title"] == "Other"


def test_invalid_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("installation:\n  title: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+: invalid YAML"):
        config.load(bad)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("section", "value"), [("printer", 500), ("ticket", 300)])
def test_paper_width_not_a_multiple_of_8_is_refused_on_load(tmp_path, section, value):
    from appliance.settings import load_settings

    bad = tmp_path / "width.yaml"
    bad.write_text(f"{section}:\n  width: {value}\n")
    message = rf"'{section}.width' = {value}: expected a multiple of 8"
    with pytest.raises(ConfigError, match=message):
        load_settings(bad, search=False)
