"""Generator weights in safetensors (what `sosie train` writes), read with numpy alone.

The format: an 8-byte little-endian header length N, N bytes of JSON naming each tensor's
dtype, shape and [begin, end) byte range in the data that follows, and the raw little-endian
data. Nothing in it is executed (no pickle). This reader trusts nothing: N is bounded before it
is read, the JSON must be one object without duplicate names, every tensor must be one the
network expects with its dtype kind and shape, the ranges must tile the data exactly (no holes,
no overlap, nothing after) and the file must be as long as they say; values must be finite.
Anything else is refused with one WeightsFormatError line naming the file.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from appliance.generator.torch_zip import WeightsFormatError

#: Bound on the JSON header (the DCGAN's ~30 tensors take ~3 KB).
MAX_HEADER_BYTES = 64 * 1024
#: Bound on the whole data section (the DCGAN holds ~14 MB of float32).
MAX_DATA_BYTES = 256 * 1024 * 1024
MAX_METADATA_ITEMS = 64
MAX_METADATA_CHARS = 4096
DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}
FIELDS = {"dtype", "shape", "data_offsets"}

Expected = Mapping[str, tuple[tuple[int, ...], str]]


def is_safetensors(path: Path) -> bool:
    """Whether the file starts like safetensors (a header length, then '{'); False for a zip."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def read_generator_state(path: Path, expected: Expected) -> dict[str, np.ndarray]:
    """The tensors of `path`, exactly the names, dtype kinds and shapes of `expected` (its
    `__metadata__` checked too)."""
    with _reading(path) as (fh, size):
        header = _header(fh, size)
        _metadata(header.pop("__metadata__", {}))
        layout = _layout(header, expected)
        data_size = size - fh.tell()
        end = max((stop for _, _, stop in layout.values()), default=0)
        if data_size != end:
            raise WeightsFormatError(f"the header describes {end} bytes of data, the file "
                                     f"holds {data_size}")
        data = fh.read(end)
        if len(data) != end:
            raise WeightsFormatError("truncated data")
    tensors = {}
    for name, (dtype, begin, stop) in layout.items():
        shape = expected[name][0]
        value = np.frombuffer(data, dtype=dtype, count=(stop - begin) // np.dtype(dtype).itemsize,
                              offset=begin).reshape(shape).copy()
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise WeightsFormatError(f"{path}: {name} holds values that are not finite")
        tensors[name] = value
    return tensors


def read_metadata(path: Path) -> dict[str, str]:
    """The `__metadata__` strings of a safetensors file (its header only is read and checked)."""
    with _reading(path) as (fh, size):
        header = _header(fh, size)
    return _metadata(header.get("__metadata__", {}))


@contextmanager
def _reading(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """(the open file, its size); any WeightsFormatError or OSError inside becomes one
    WeightsFormatError line naming `path`."""
    try:
        with open(path, "rb") as fh:
            yield fh, Path(path).stat().st_size
    except WeightsFormatError as exc:
        raise WeightsFormatError(f"{path}: {exc}") from None
    except OSError as exc:
        raise WeightsFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _header(fh: Any, size: int) -> dict[str, Any]:
    if size < 8:
        raise WeightsFormatError(f"not safetensors weights ({size} bytes)")
    (length,) = struct.unpack("<Q", fh.read(8))
    if not 2 <= length <= MAX_HEADER_BYTES:
        raise WeightsFormatError(f"safetensors header of {length} bytes (expected 2 to "
                                 f"{MAX_HEADER_BYTES})")
    if 8 + length > size:
        raise WeightsFormatError(f"safetensors header of {length} bytes in a file of {size}")
    raw = fh.read(length)
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightsFormatError(f"unreadable safetensors header ({str(exc)[:80]})") from None
    if not isinstance(header, dict):
        raise WeightsFormatError("the safetensors header is not a JSON object")
    return header


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{key[:40]!r} named twice")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} in the header")


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_METADATA_ITEMS:
        raise WeightsFormatError("__metadata__ is not a small object of strings")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) + len(item) > MAX_METADATA_CHARS:
            raise WeightsFormatError(f"__metadata__ {key[:40]!r} is not a short string")
    return dict(value)


def _layout(header: dict[str, Any], expected: Expected) -> dict[str, tuple[str, int, int]]:
    """name -> (numpy dtype, begin, end), the ranges checked to tile the data in order."""
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0][:60]!r}"
        raise WeightsFormatError(f"not the DCGAN generator ({what})")
    layout = {}
    for name, (shape, kind) in expected.items():
        entry = header[name]
        if not isinstance(entry, dict) or set(entry) != FIELDS:
            raise WeightsFormatError(f"{name}: expected exactly {sorted(FIELDS)}")
        dtype = DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
        if dtype is None or np.dtype(dtype).kind != kind:
            raise WeightsFormatError(f"{name} is {str(entry['dtype'])[:20]} (expected "
                                     f"{'a float' if kind == 'f' else 'an integer'} dtype)")
        if entry["shape"] != list(shape):
            raise WeightsFormatError(f"{name} has shape {str(entry['shape'])[:40]} (expected "
                                     f"{list(shape)})")
        offsets = entry["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(v) is int and 0 <= v <= MAX_DATA_BYTES for v in offsets)):
            raise WeightsFormatError(f"{name}: data_offsets {str(offsets)[:40]}")
        begin, stop = offsets
        if stop - begin != math.prod(shape) * np.dtype(dtype).itemsize:
            raise WeightsFormatError(f"{name}: {stop - begin} bytes for {math.prod(shape)} "
                                     f"values of {entry['dtype']}")
        layout[name] = (dtype, begin, stop)
    position = 0
    for name, (_, begin, stop) in sorted(layout.items(), key=lambda item: item[1][1:]):
        if begin != position:
            raise WeightsFormatError(f"{name}: data at byte {begin}, expected {position} "
                                     f"(ranges overlap or leave a hole)")
        position = stop
    return layout
