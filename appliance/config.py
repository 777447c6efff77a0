"""Configuration: documented defaults shipped in the package, plus one user override file.

`appliance/defaults.yaml` holds every key with a comment saying what it does. An installer's file
overrides any subset of it. Each part of the appliance describes its own section as a dataclass
(`FaceSettings`, `PrinterSettings`, ...) and reads it with `section()`, which validates every value
and fails with one line naming the key, the value and what is expected::

    >>> @dataclass(frozen=True)
    ... class Lamp:
    ...     pin: int = setting(17, min=0, max=27)
    >>> parse(Lamp, {"pin": "x"}, "lamp")
    Traceback (most recent call last):
    ConfigError: config key 'lamp.pin' = 'x': expected an integer
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from appliance import safe_yaml

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")

T = TypeVar("T")

#: An installer's file is a few kilobytes and four levels deep at most (`ticket.tone.gamma`).
MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 16

#: Every number in the config is finite and within these, whatever its own bounds: a value
#: without a declared maximum still fits a C int / a sleep or socket timeout (~31 years).
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e9
#: Every string in the config is at most this long unless its field says less (`max_chars`):
#: a path, a host name, a format. Texts printed on the ticket declare their own bounds.
MAX_STRING_CHARS = 4096


class ConfigError(ValueError):
    """A configuration problem, described on one line."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    min: float | None = None,
    max: float | None = None,
    max_chars: int | None = None,
    max_lines: int | None = None,
    factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with optional bounds checked by `parse`: numeric `min`/`max`; for a
    text, `max_chars` characters and `max_lines` lines (the lines it may print as: the ticket
    layout cuts a longer wrap there, see `ticket.text.wrap_lines`)."""
    meta = {"min": min, "max": max, "max_chars": max_chars, "max_lines": max_lines}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# Loading and merging


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or a one-line ConfigError.

    Parsed by `appliance.safe_yaml`: at most MAX_FILE_BYTES, UTF-8 only, no aliases, nesting
    bounded, so a file saved as Latin-1, a billion laughs or 1,000 nested brackets on the SD
    card give one line naming the file instead of a traceback or an exhausted Pi.
    """
    try:
        data = safe_yaml.read(path, max_bytes=MAX_FILE_BYTES, max_depth=MAX_DEPTH)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except safe_yaml.YAMLFileError as exc:
        message = str(exc)
        joint = " " if message.startswith("line ") else ": "
        raise ConfigError(f"config file {path}{joint}{message}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys, got {_kind(data)}")
    _refuse_non_finite(data, "")
    return data


def _refuse_non_finite(value: Any, key: str) -> None:
    """NaN and infinities anywhere, even under keys no dataclass types (`Any`, plain dicts)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_non_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_non_finite(v, f"{key}[{i}]")


def merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict:
    """Deep-merge `override` into `base`; keys unknown to `base` are errors (typos)."""
    out = dict(base)
    for key, value in override.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in base:
            raise ConfigError(unknown_key(dotted, map(str, base)))
        if isinstance(base[key], Mapping) and isinstance(value, Mapping):
            out[key] = merge(base[key], value, dotted)
        else:
            out[key] = value
    return out


def unknown_key(dotted: str, known: Iterable[str]) -> str:
    """The one-line error for an unknown key: the nearest known one first (a typo), then all
    the keys known at that level."""
    import difflib

    names = sorted(known)
    last = dotted.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(last, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{dotted[:len(dotted) - len(last)]}{close[0]}'?" if close else ""
    return f"unknown config key '{dotted}'{hint} (known here: {', '.join(names) or 'none'})"


_parsed_defaults: dict[tuple[int, int], dict[str, Any]] = {}


def _defaults() -> dict[str, Any]:
    """A copy of the packaged defaults, parsed once per process while the file is unchanged
    (the safe pure-Python YAML parser spends ~0.17 s of CPU on them; a command reads them
    two or three times)."""
    status = DEFAULTS_FILE.stat()
    key = (status.st_mtime_ns, status.st_size)
    if key not in _parsed_defaults:
        _parsed_defaults.clear()
        _parsed_defaults[key] = read_yaml(DEFAULTS_FILE)
    return copy.deepcopy(_parsed_defaults[key])


def load(user_file: str | Path | None = None) -> dict[str, Any]:
    """The merged raw configuration: packaged defaults, then `user_file` if given."""
    data = _defaults()
    if user_file is not None:
        try:
            data = merge(data, read_yaml(Path(user_file)))
        except ConfigError as exc:
            msg = str(exc)
            if str(user_file) not in msg:
                msg = f"{user_file}: {msg}"
            raise ConfigError(msg) from None
    return data


def section(config: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Validate the section `name` of a merged config as dataclass `cls`."""
    return parse(cls, config.get(name, {}), name)


# ---------------------------------------------------------------------------------------------
# Validation against dataclass type hints


def parse(cls: type[T], data: Any, key: str) -> T:
    """Build dataclass `cls` from mapping `data`, validating each field; `key` names the section."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{key}' = {_show(data)}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise ConfigError(unknown_key(f"{key}.{unknown[0]}", fields))
    hints = get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name not in data:
            continue
        dotted = f"{key}.{name}"
        value = _coerce(hints[name], data[name], dotted)
        _check_bounds(field, value, dotted)
        values[name] = value
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, key)
            except ConfigError as exc:
                errors.append(str(exc).split(": expected ", 1)[-1])
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected {' or '.join(errors)}")
    if origin is Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected one of {choices}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' = {_show(value)}: expected a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(
                    f"config key '{key}' = {_show(value)}: expected a list of {len(args)} items"
                )
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' = {_show(value)}: expected a mapping")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, key)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in hint)
            raise ConfigError(
                f"config key '{key}' = {_show(value)}: expected one of {choices}"
            ) from None
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if -INT_LIMIT <= value <= INT_LIMIT:
                return value
            raise ConfigError(f"config key '{key}' = {_show(value)}: expected an integer "
                              f"from {-INT_LIMIT} to {INT_LIMIT}")
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected an integer")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value) if abs(value) <= FLOAT_LIMIT else math.inf
            if math.isfinite(number):
                return number
            raise ConfigError(f"config key '{key}' = {_show(value)}: expected a finite number "
                              f"from {-FLOAT_LIMIT:g} to {FLOAT_LIMIT:g}")
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected a string")
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value).expanduser()
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected a file path")
    raise TypeError(f"config key '{key}': unsupported type {hint!r} in schema")


def check_dots(key: str, value: int | None) -> None:
    """A paper width in printer dots, if set, is a multiple of 8 (one byte per 8 dots)."""
    if value is not None and value % 8:
        raise ConfigError(f"config key '{key}' = {value}: expected a multiple of 8")


def _check_text(field: dataclasses.Field, value: str, key: str) -> None:
    """A text within its field's `max_chars` (else MAX_STRING_CHARS) and `max_lines`."""
    most = field.metadata.get("max_chars") or MAX_STRING_CHARS
    if len(value) > most:
        raise ConfigError(f"config key '{key}' = {_show(value)}: {len(value)} characters, "
                          f"expected at most {most}")
    lines = field.metadata.get("max_lines")
    if lines is not None and len(value.splitlines()) > lines:
        raise ConfigError(f"config key '{key}' = {_show(value)}: "
                          f"{len(value.splitlines())} lines, expected at most {lines}")


def _check_bounds(field: dataclasses.Field, value: Any, key: str) -> None:
    lo, hi = field.metadata.get("min"), field.metadata.get("max")
    if isinstance(value, str):
        _check_text(field, value, key)
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    # Written so that NaN, which compares false with everything, is out of range.
    if not ((lo is None or value >= lo) and (hi is None or value <= hi)):
        if lo is not None and hi is not None:
            want = f"a number from {lo} to {hi}"
        elif lo is not None:
            want = f"a number >= {lo}"
        else:
            want = f"a number <= {hi}"
        raise ConfigError(f"config key '{key}' = {_show(value)}: expected {want}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
