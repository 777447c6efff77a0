"""Resumable build state: one file per chunk of consecutive source images.

`CORPUS_DIR/.build/chunk-000042.bin` holds the results of images 42*S .. 43*S-1 of the sorted
file list (S = chunk size): an 8-byte little-endian header length, a JSON header (build key,
the chunk's paths with size and mtime, one record per image), then the float32 descriptors of
the accepted images and their encoded thumbnails. Each file is written to a temporary name,
fsynced and renamed, so after a SIGKILL a chunk is either complete or absent. On restart a
chunk is reused only if its build key and its list of (path, size, mtime) are unchanged.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.corpus.format import atomic_write_bytes

CHUNK_VERSION = 1
DIM = 128


@dataclass(frozen=True)
class SourceFile:
    """One file of the source folder: path relative to it (with "/"), size and mtime."""

    rel: str
    size: int
    mtime_ns: int

    def key(self) -> list[Any]:
        return [self.rel, self.size, self.mtime_ns]


@dataclass(frozen=True)
class ItemResult:
    """What the build made of one file: a face (descriptor + thumbnail) or a rejection."""

    reason: str | None  # None: accepted
    sha256: str | None = None
    descriptor: np.ndarray | None = None  # float32[128]
    thumbnail: bytes | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


def chunk_path(work_dir: Path, index: int) -> Path:
    return Path(work_dir) / f"chunk-{index:06d}.bin"


def write_chunk(
    work_dir: Path, index: int, key: str, files: list[SourceFile], results: list[ItemResult]
) -> None:
    """Persist one finished chunk atomically."""
    atomic_write_bytes(chunk_path(work_dir, index), chunk_bytes(key, files, results))


def chunk_bytes(key: str, files: list[SourceFile], results: list[ItemResult]) -> bytes:
    """The bytes of a chunk file holding `results` of `files` (a cluster worker sends these)."""
    records = [
        {"reason": r.reason, "sha256": r.sha256, "thumb": len(r.thumbnail or b"")}
        for r in results
    ]
    header = json.dumps(
        {
            "version": CHUNK_VERSION,
            "key": key,
            "files": [f.key() for f in files],
            "items": records,
        },
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")
    accepted = [r for r in results if r.accepted]
    vectors = np.array([r.descriptor for r in accepted], dtype="<f4").reshape(-1, DIM)
    payload = b"".join(r.thumbnail or b"" for r in accepted)
    return struct.pack("<Q", len(header)) + header + vectors.tobytes() + payload


def read_chunk(path: Path) -> tuple[dict[str, Any], list[ItemResult]]:
    """The header and the per-file results of a chunk file (ValueError if damaged)."""
    return parse_chunk(Path(path).read_bytes(), str(path))


def parse_chunk(data: bytes, path: str) -> tuple[dict[str, Any], list[ItemResult]]:
    """The header and the per-file results of chunk bytes (`path` names them in errors)."""
    if len(data) < 8:
        raise ValueError(f"{path}: truncated")
    (length,) = struct.unpack_from("<Q", data)
    try:
        header = json.loads(data[8 : 8 + length].decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged header ({exc})") from None
    items = header["items"]
    n_ok = sum(1 for it in items if it["reason"] is None)
    start = 8 + length
    vectors = np.frombuffer(data, dtype="<f4", count=n_ok * DIM, offset=start).reshape(n_ok, DIM)
    offset = start + n_ok * DIM * 4
    if len(data) != offset + sum(it["thumb"] for it in items):
        raise ValueError(f"{path}: size does not match its header")
    results, row = [], 0
    for item in items:
        if item["reason"] is None:
            blob = data[offset : offset + item["thumb"]]
            offset += item["thumb"]
            results.append(ItemResult(None, item["sha256"], vectors[row].copy(), blob))
            row += 1
        else:
            results.append(ItemResult(item["reason"], item["sha256"]))
    return header, results


def chunk_is_current(path: Path, key: str, files: list[SourceFile]) -> bool:
    """Whether a chunk on disk was made with this build key for exactly these files."""
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length).decode("ascii"))
    except (OSError, struct.error, ValueError):
        return False
    return (
        header.get("version") == CHUNK_VERSION
        and header.get("key") == key
        and header.get("files") == [f.key() for f in files]
    )
