"""A restricted reader of `torch.save` zip files: tensors as numpy arrays, without torch.

A `torch.save` file is a zip archive `<name>/data.pkl` (a pickle) + `<name>/data/<key>` (raw
little-endian storages). Unpickling an arbitrary pickle runs arbitrary code, so this reader
allows only the four globals a plain state dict of float and integer tensors names
(`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`,
`torch.LongStorage`), each replaced by an inert stand-in; any other global stops the reading
with `WeightsFormatError` before anything is called. Every number the pickle gives (element
counts, shapes, strides, offsets) is checked against the sizes of the zip members it points to
before a byte is read, and damaged or truncated archives fail with one line naming the file.

Nothing in the archive is trusted for memory either: torch.save stores its members uncompressed,
so any other compression method (a deflate or bzip2 member that inflates a 1 MB file to
gigabytes) is refused before a byte is inflated, as are member names with ".." or an absolute
path; members are read as bounded streams, at most `max_tensor_bytes` in all (callers that know
their network's shapes pass its exact size, see `dcgan.expected_bytes`), and a file larger than
that budget allows is refused before it is opened.

    >>> state = read_torch_zip(path)   # nested dicts of numpy arrays, str, int, float, ...
    >>> state = read_torch_zip(path, max_tensor_bytes=15 << 20)   # a known network's size
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_PICKLE_BYTES = 4 << 20  # a state dict's pickle is a few KB
MAX_TENSOR_BYTES = 64 << 20  # in all, by default (peak memory about twice): the DCGAN's 14 MB
MAX_MEMBERS = 4096  # torch.save writes one member per storage plus three
ARCHIVE_SLACK = 1 << 20  # bytes of zip headers and pickle beyond the tensors a file may hold
READ_BLOCK = 1 << 20
MAX_DIMS = 8
MAX_DEPTH = 32
MAX_NODES = 100_000  # values in the unpickled structure (shared ones counted each time)
_KEY = re.compile(r"[0-9A-Za-z_]{1,64}")


class WeightsFormatError(ValueError):
    """The file is not a torch.save archive of plain tensors this reader accepts (one line)."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: str  # numpy little-endian dtype


_FLOAT = _StorageType("torch.FloatStorage", "<f4")
_LONG = _StorageType("torch.LongStorage", "<i8")


@dataclass(frozen=True)
class _Storage:
    type: _StorageType
    member: str
    numel: int


class _Tensor:
    """A tensor named by the pickle, read from its storage only after the pickle is done."""

    __slots__ = ("offset", "shape", "storage", "strides")

    def __init__(self, storage: _Storage, offset: int, shape: tuple[int, ...],
                 strides: tuple[int, ...]) -> None:
        self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides

    def __setstate__(self, state: Any) -> None:
        raise WeightsFormatError("the pickle sets the state of a tensor")


class _StateDict(OrderedDict):
    """`collections.OrderedDict` as the pickle builds it; its only allowed state is torch's
    `_metadata` attribute (module versions), which is dropped."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise WeightsFormatError("the pickle sets unexpected attributes on an OrderedDict")


def read_torch_zip(path: str | Path, *, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> Any:
    """The object a `torch.save` zip file holds, tensors as numpy arrays (float32 / int64).

    Raises WeightsFormatError (one line naming `path`) for anything but plain tensors in
    dicts, lists and tuples of str, int, float, bool and None, stored uncompressed, at most
    `max_tensor_bytes` of them in all (the peak memory is about twice that, whatever the file
    claims).
    """
    try:
        size = os.stat(path).st_size
        if size > max_tensor_bytes + MAX_PICKLE_BYTES + ARCHIVE_SLACK:
            raise WeightsFormatError(f"{size} bytes: larger than the {max_tensor_bytes} bytes "
                                     "of tensors expected")
        with zipfile.ZipFile(path) as archive:
            return _read(archive, max_tensor_bytes)
    except WeightsFormatError as exc:
        raise WeightsFormatError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise WeightsFormatError(f"{path}: damaged or truncated zip archive ({exc})") from None
    except OSError as exc:
        raise WeightsFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read(archive: zipfile.ZipFile, max_tensor_bytes: int) -> Any:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise WeightsFormatError(f"{len(infos)} members (at most {MAX_MEMBERS} expected)")
    for info in infos:
        _check_member(info)
    members = {info.filename: info for info in infos}
    if len(members) != len(infos):
        raise WeightsFormatError("two members with the same name")
    pickles = [name for name in members if re.fullmatch(r"[^/]+/data\.pkl", name)]
    if len(pickles) != 1:
        raise WeightsFormatError("not a torch.save archive (expected one <name>/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    order = members.get(prefix + "byteorder")
    if order is not None and _member_bytes(archive, order, 16) != b"little":
        raise WeightsFormatError("storages are not little-endian")
    info = members[pickles[0]]
    if info.file_size > MAX_PICKLE_BYTES:
        raise WeightsFormatError(f"data.pkl of {info.file_size} bytes (at most "
                                 f"{MAX_PICKLE_BYTES} expected)")
    data = _member_bytes(archive, info, MAX_PICKLE_BYTES)
    unpickler = _Unpickler(io.BytesIO(data), members, prefix)
    try:
        obj = unpickler.load()
    except WeightsFormatError:
        raise
    except Exception as exc:  # malformed opcodes, wrong argument types, ...
        raise WeightsFormatError(f"malformed pickle ({type(exc).__name__}: {exc})"
                                 .splitlines()[0]) from None
    return _materialise(obj, archive, [max_tensor_bytes, MAX_NODES, max_tensor_bytes], 0)


def _check_member(info: zipfile.ZipInfo) -> None:
    """Refuse what torch.save never writes: compression, and names that could be paths."""
    name = info.filename
    if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or (
            ":" in name or "\0" in name):
        raise WeightsFormatError(f"member name {name[:60]!r}: a path outside the archive")
    if info.compress_type != zipfile.ZIP_STORED:
        method = {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                  zipfile.ZIP_LZMA: "lzma"}.get(info.compress_type, str(info.compress_type))
        raise WeightsFormatError(f"{name[:60]}: compressed with {method}; torch.save stores "
                                 "its members uncompressed (refused before inflating it)")
    if info.compress_size != info.file_size:
        raise WeightsFormatError(f"{name[:60]}: stored member whose sizes disagree "
                                 f"({info.compress_size} and {info.file_size} bytes)")


def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytearray:
    """The bytes of a stored member, read as a stream of at most `limit` bytes."""
    if info.file_size > limit:
        raise WeightsFormatError(f"{info.filename[:60]}: {info.file_size} bytes (at most "
                                 f"{limit} expected)")
    out = bytearray(info.file_size)
    done = 0
    with archive.open(info) as stream:
        while block := stream.read(min(READ_BLOCK, info.file_size - done) or 1):
            if done + len(block) > info.file_size:
                raise WeightsFormatError(f"{info.filename[:60]}: longer than its "
                                         f"{info.file_size} bytes")
            out[done:done + len(block)] = block
            done += len(block)
    if done != info.file_size:
        raise WeightsFormatError(f"{info.filename[:60]}: {done} of {info.file_size} bytes")
    return out


class _Unpickler(pickle.Unpickler):
    """Resolves only the four allowed globals, to inert stand-ins."""

    def __init__(self, file: io.BytesIO, members: dict[str, zipfile.ZipInfo], prefix: str):
        super().__init__(file)
        self._members, self._prefix = members, prefix
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("collections", "OrderedDict"): _StateDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch", "FloatStorage"): _FLOAT,
            ("torch", "LongStorage"): _LONG,
        }
        found = allowed.get((module, name))
        if found is None:
            raise WeightsFormatError(f"refused: the pickle names {module}.{name} (only plain "
                                     "float/long tensors in OrderedDicts are accepted)")
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise WeightsFormatError(f"unexpected persistent id {str(pid)[:60]}")
        _, kind, key, location, numel = pid
        if not isinstance(kind, _StorageType):
            raise WeightsFormatError(f"storage {str(key)[:20]}: type {str(kind)[:40]}")
        if not (isinstance(key, str) and _KEY.fullmatch(key)) or not isinstance(location, str):
            raise WeightsFormatError(f"storage key {str(key)[:20]!r}: expected a short name")
        if type(numel) is not int or numel < 0:
            raise WeightsFormatError(f"storage {key}: element count {numel!r}")
        member = self._members.get(f"{self._prefix}data/{key}")
        itemsize = np.dtype(kind.dtype).itemsize
        if member is None:
            raise WeightsFormatError(f"storage {key}: no data/{key} in the archive")
        if member.file_size != numel * itemsize:
            raise WeightsFormatError(f"storage {key}: {numel} elements of {itemsize} bytes "
                                     f"but data/{key} holds {member.file_size} bytes")
        storage = _Storage(kind, member.filename, numel)
        if self._storages.setdefault(key, storage) != storage:
            raise WeightsFormatError(f"storage {key}: named twice with different types/sizes")
        return storage


def _rebuild_tensor_v2(storage: Any, offset: Any, shape: Any, strides: Any,
                       requires_grad: Any, hooks: Any, metadata: Any = None) -> _Tensor:
    """Stand-in for torch's: checks every number against the storage and defers reading."""
    if not isinstance(storage, _Storage):
        raise WeightsFormatError("a tensor without a storage")
    if not (_ints(shape) and _ints(strides) and len(shape) == len(strides) <= MAX_DIMS):
        raise WeightsFormatError(f"tensor of shape {str(shape)[:40]} strides "
                                 f"{str(strides)[:40]}")
    if type(offset) is not int or not 0 <= offset <= storage.numel:
        raise WeightsFormatError(f"tensor offset {offset!r} outside its storage")
    if not isinstance(requires_grad, bool) or not isinstance(hooks, dict) or hooks:
        raise WeightsFormatError("tensor with gradient hooks")
    if metadata not in (None, {}):
        raise WeightsFormatError("tensor with metadata")
    count = math.prod(shape)
    if count:
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
        if last >= storage.numel:
            raise WeightsFormatError(f"tensor of shape {tuple(shape)} reads element {last} of "
                                     f"a storage of {storage.numel}")
    return _Tensor(storage, offset, tuple(shape), tuple(strides))


def _ints(values: Any) -> bool:
    return isinstance(values, tuple) and all(type(v) is int and 0 <= v < 1 << 40 for v in values)


def _materialise(obj: Any, archive: zipfile.ZipFile, budget: list[int], depth: int) -> Any:
    budget[1] -= 1
    if depth > MAX_DEPTH or budget[1] < 0:
        raise WeightsFormatError("nested too deeply or too many values")
    if isinstance(obj, _Tensor):
        return _tensor(obj, archive, budget)
    if isinstance(obj, dict):
        return {_key(k): _materialise(v, archive, budget, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_materialise(v, archive, budget, depth + 1) for v in obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise WeightsFormatError(f"unexpected {type(obj).__name__} in the pickle")


def _key(key: Any) -> Any:
    if isinstance(key, str | int):
        return key
    raise WeightsFormatError(f"a dict key of type {type(key).__name__}")


def _tensor(t: _Tensor, archive: zipfile.ZipFile, budget: list[int]) -> np.ndarray:
    dtype = np.dtype(t.storage.type.dtype)
    size = math.prod(t.shape) * dtype.itemsize
    stored = t.storage.numel * dtype.itemsize
    budget[0] -= size + stored
    if budget[0] < -budget[2]:  # the copies and their storages: twice the tensors at most
        raise WeightsFormatError(f"tensors larger than {budget[2]} bytes in all")
    member = archive.getinfo(t.storage.member)
    raw = np.frombuffer(_member_bytes(archive, member, stored), dtype=dtype)
    if raw.size != t.storage.numel:  # the member's real length differs from its header
        raise WeightsFormatError(f"{t.storage.member}: {raw.size} elements, "
                                 f"{t.storage.numel} declared")
    if not math.prod(t.shape):
        return np.zeros(t.shape, dtype=dtype.newbyteorder("="))
    view = np.lib.stride_tricks.as_strided(
        raw[t.offset:], shape=t.shape, strides=[s * dtype.itemsize for s in t.strides],
        writeable=False)
    return np.array(view, dtype=dtype.newbyteorder("="), order="C")  # keeps 0-d as 0-d
