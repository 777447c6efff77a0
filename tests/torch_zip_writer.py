"""Writes `torch.save`-style zip files without torch, for the generator tests.

`pickle_bytes(obj)` emits protocol-2 opcodes the way torch does for a state dict; `Global` and
`Call` let a test name any global (a hostile pickle) and `Tensor` any storage, shape, stride and
offset (absurd ones included).
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(frozen=True)
class Call:
    function: Any
    args: tuple


@dataclass(frozen=True)
class Build:
    """`obj` whose state the pickle then sets (BUILD), as torch does for `_metadata`."""

    obj: Any
    state: Any


@dataclass
class Tensor:
    """A tensor over storage `key`; `numel`/`shape`/`stride` default to the array's own."""

    array: np.ndarray
    key: str
    shape: tuple | None = None
    stride: tuple | None = None
    offset: int = 0
    numel: int | None = None
    kind: str | None = None  # storage class name; default from the dtype
    extra: tuple = field(default_factory=tuple)  # arguments after backward_hooks


def pickle_bytes(obj: Any) -> bytes:
    out = io.BytesIO()
    out.write(b"\x80\x02")
    _save(obj, out)
    out.write(b".")
    return out.getvalue()


def _save(obj: Any, out: io.BytesIO) -> None:
    if isinstance(obj, Global):
        out.write(f"c{obj.module}\n{obj.name}\n".encode())
    elif isinstance(obj, Call):
        _save(obj.function, out)
        _save(tuple(obj.args), out)
        out.write(b"R")
    elif isinstance(obj, Build):
        _save(obj.obj, out)
        _save(obj.state, out)
        out.write(b"b")
    elif isinstance(obj, Tensor):
        array = obj.array
        kind = obj.kind or ("FloatStorage" if array.dtype.kind == "f" else "LongStorage")
        numel = obj.numel if obj.numel is not None else array.size
        shape = obj.shape if obj.shape is not None else array.shape
        stride = obj.stride if obj.stride is not None else tuple(
            s // array.itemsize for s in array.strides)
        _save(Global("torch._utils", "_rebuild_tensor_v2"), out)
        out.write(b"(")
        _save(("storage", Global("torch", kind), obj.key, "cpu", numel), out)
        out.write(b"Q")
        for item in (obj.offset, tuple(shape), tuple(stride), False):
            _save(item, out)
        _save(Call(Global("collections", "OrderedDict"), ()), out)
        for item in obj.extra:
            _save(item, out)
        out.write(b"t")
        out.write(b"R")
    elif isinstance(obj, OrderedDict):
        _save(Call(Global("collections", "OrderedDict"), ()), out)
        _items(obj, out)
    elif isinstance(obj, dict):
        out.write(b"}")
        _items(obj, out)
    elif isinstance(obj, bool):
        out.write(b"\x88" if obj else b"\x89")
    elif isinstance(obj, int):
        if 0 <= obj < 1 << 31:
            out.write(b"J" + struct.pack("<i", obj))
        else:
            data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
            out.write(b"\x8a" + bytes([len(data)]) + data)
    elif isinstance(obj, float):
        out.write(b"G" + struct.pack(">d", obj))
    elif isinstance(obj, str):
        data = obj.encode()
        out.write(b"X" + struct.pack("<I", len(data)) + data)
    elif isinstance(obj, tuple):
        out.write(b"(")
        for item in obj:
            _save(item, out)
        out.write(b"t")
    elif obj is None:
        out.write(b"N")
    else:
        raise TypeError(type(obj))


def _items(mapping: dict, out: io.BytesIO) -> None:
    out.write(b"(")
    for key, value in mapping.items():
        _save(key, out)
        _save(value, out)
    out.write(b"u")


def tensors_of(obj: Any) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, Build):
        return tensors_of(obj.obj)
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors_of(v)]
    if isinstance(obj, tuple | list):
        return [t for v in obj for t in tensors_of(v)]
    return []


def write_torch_zip(path: Path, obj: Any, *, pickle: bytes | None = None,
                    storages: dict[str, bytes] | None = None) -> Path:
    """A zip laid out like torch.save's: `archive/data.pkl`, `archive/data/<key>`, ..."""
    data = {t.key: np.ascontiguousarray(t.array).astype(t.array.dtype.newbyteorder("<"))
            .tobytes() for t in tensors_of(obj)}
    data.update(storages or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle if pickle is not None else pickle_bytes(obj))
        archive.writestr("archive/byteorder", "little")
        for key, raw in data.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")
    return path


def dcgan_state(channels: tuple[int, ...] = (100, 512, 256, 128, 64, 3), seed: int = 0,
                ) -> OrderedDict:
    """A random generator state dict of the DCGAN's layout (as numpy arrays)."""
    rng = np.random.default_rng(seed)
    state: OrderedDict = OrderedDict()
    count = len(channels) - 1
    for i in range(count):
        cin, cout = channels[i], channels[i + 1]
        scale = 1.0 / np.sqrt(cin * 4)
        state[f"main.{3 * i}.weight"] = (rng.standard_normal((cin, cout, 4, 4)) * scale
                                         ).astype(np.float32)
        if i < count - 1:
            bn = f"main.{3 * i + 1}"
            state[f"{bn}.weight"] = rng.uniform(0.5, 1.5, cout).astype(np.float32)
            state[f"{bn}.bias"] = rng.uniform(-0.2, 0.2, cout).astype(np.float32)
            state[f"{bn}.running_mean"] = rng.uniform(-0.2, 0.2, cout).astype(np.float32)
            state[f"{bn}.running_var"] = rng.uniform(0.1, 2.0, cout).astype(np.float32)
            state[f"{bn}.num_batches_tracked"] = np.array(1000, dtype=np.int64)
    return state


def as_tensors(state: dict) -> OrderedDict:
    """Numpy arrays -> `Tensor`s over storages named 0, 1, 2, ..."""
    return OrderedDict((k, Tensor(np.asarray(v), str(i))) for i, (k, v) in
                       enumerate(state.items()))


def write_dcgan(path: Path, state: dict) -> Path:
    return write_torch_zip(path, {"netG_state_dict": as_tensors(state)})
