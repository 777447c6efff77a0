"""The 8-bit sketch of a corpus: what lets an exact search skip most float16 rows.

Every descriptor is rotated onto the corpus' principal axes (the full d x d orthonormal rotation,
float64: distances are unchanged). The leading `axes` rotated coordinates are quantized to int8
over a per-axis scale (`codes`, (N, m)); the norm of the remaining coordinates is kept per row
(`tails`, float32). For a query rotated the same way, the sketch alone gives a certified lower
bound of each row's distance (partial distance over the leading axes minus the largest
quantization error of any row, plus the tail norms' difference); `appliance.search` reads in
float16 only the rows whose bound does not exceed the best k distances found so far.

Files (see `appliance.corpus.format`): ``sketch.i8`` the codes, ``sketch_tails.f32`` the tail
norms, ``sketch.f64`` a (d + 3, d) float64 matrix: the mean, the d axes (rows, descending
variance), the m scales (zero-padded), then [m, error, radius, code_norm, 0...]; and the codes
laid out for the scan (`appliance.search.layout`): ``sketch_blocks.u8`` the first stage's
blocks of 16 rows, ``sketch_records.u8`` one second-stage record per row, memory-mapped (shared
by every process that opens the corpus) instead of being laid out again at every start.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from appliance.corpus.format import MAX_SKETCH_AXES, CorpusError
from appliance.corpus.pca import fit_pca
from appliance.search.layout import (
    LAYOUT_VERSION,
    ScanLayout,
    layout_shapes,
    scan_layout,
    stored_layout,
)

log = logging.getLogger(__name__)

#: Leading principal axes kept in the sketch (chosen with bench/scan.py, see the README).
SKETCH_AXES = 64
CODE_MAX = 127
BLOCK = 32768
ORTHONORMAL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Sketch:
    """The sketch of N rows of dimension d (see the module docstring)."""

    mean: np.ndarray  # (d,) float64
    rotation: np.ndarray  # (d, d) float64, orthonormal rows, descending variance
    scale: np.ndarray  # (m,) float32, > 0
    codes: np.ndarray  # (N, m) int8
    tails: np.ndarray  # (N,) float32, norm of rotated coordinates m..d-1
    error: float  # no row's leading coordinates are farther than this from scale * codes
    radius: float  # no row is farther than this from the mean
    code_norm: float  # no row's scale * codes is longer than this
    variance_explained: float = 0.0  # share of the variance on the m axes (informative)

    @property
    def axes(self) -> int:
        """m, the leading axes in the codes."""
        return int(self.scale.shape[0])

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def rotate(self, query: np.ndarray) -> np.ndarray:
        """The query's rotated coordinates, float64 (d,)."""
        return self.rotation @ (np.asarray(query, dtype=np.float64) - self.mean)


def build_sketch(vectors: np.ndarray, axes: int = SKETCH_AXES) -> Sketch:
    """The sketch of an (N, d) matrix (float16 rows, memmaps read block by block).

    `axes` is clipped to d and must be a multiple of 8 (so is d).
    """
    n, d = vectors.shape
    m = min(axes, d)
    if d % 8 or m < 8 or m % 8 or m > MAX_SKETCH_AXES:
        raise ValueError(f"sketch: axes {m} and dimension {d} must be multiples of 8, the axes "
                         f"at most {MAX_SKETCH_AXES}")
    if n == 0:
        pca_mean, rotation, share = np.zeros(d), np.eye(d), 0.0
    else:
        pca = fit_pca(vectors, k=d)
        pca_mean, rotation = pca.mean, pca.components
        if np.any(~np.any(rotation, axis=1)):  # fewer rows than axes: complete the basis
            rotation = _completed(rotation)
        share = float(pca.explained_variance_ratio[:m].sum())
    with threadpool_limits(limits=1, user_api="blas"):
        peak = np.zeros(m)
        radius = 0.0
        for start in range(0, n, BLOCK):
            block = np.asarray(vectors[start : start + BLOCK], dtype=np.float64) - pca_mean
            radius = max(radius, float(np.sqrt(np.einsum("ij,ij->i", block, block).max())))
            peak = np.maximum(peak, np.abs(block @ rotation[:m].T).max(axis=0))
        scale = np.where(peak > 0, peak / CODE_MAX, 1.0).astype(np.float32)
        scale = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
        codes = np.empty((n, m), dtype=np.int8)
        tails = np.empty(n, dtype=np.float32)
        error = code_norm = 0.0
        scale64 = scale.astype(np.float64)
        for start in range(0, n, BLOCK):
            block = np.asarray(vectors[start : start + BLOCK], dtype=np.float64) - pca_mean
            rotated = block @ rotation.T
            head = rotated[:, :m]
            code = np.clip(np.rint(head / scale64), -CODE_MAX, CODE_MAX)
            codes[start : start + BLOCK] = code
            quantized = code * scale64  # exact: an int8 times a float32
            error = max(error, float(np.sqrt(((head - quantized) ** 2).sum(axis=1).max())))
            code_norm = max(code_norm, float(np.sqrt((quantized**2).sum(axis=1).max())))
            tails[start : start + BLOCK] = np.sqrt((rotated[:, m:] ** 2).sum(axis=1))
    # float64 rounding of the rotation and of these sums: a generous relative margin
    return Sketch(
        mean=pca_mean,
        rotation=rotation,
        scale=scale,
        codes=codes,
        tails=tails,
        error=error * (1 + 1e-9) + 1e-300,
        radius=radius * (1 + 1e-9),
        code_norm=code_norm * (1 + 1e-9),
        variance_explained=share,
    )


def _completed(rotation: np.ndarray) -> np.ndarray:
    """An orthonormal basis whose first rows are the non-zero rows of `rotation`."""
    kept = rotation[np.any(rotation, axis=1)]
    d = rotation.shape[1]
    q, _ = np.linalg.qr(np.vstack([kept, np.eye(d)]).T)
    basis = q.T[:d]
    basis[: len(kept)] = kept  # the same axes (QR may flip signs)
    return basis


# ---------------------------------------------------------------------------------------------
# Files


def header_matrix(sketch: Sketch) -> np.ndarray:
    """The (d + 3, d) float64 content of sketch.f64."""
    d = sketch.mean.shape[0]
    out = np.zeros((d + 3, d), dtype=np.float64)
    out[0] = sketch.mean
    out[1 : d + 1] = sketch.rotation
    out[d + 1, : sketch.axes] = sketch.scale
    out[d + 2, :4] = [sketch.axes, sketch.error, sketch.radius, sketch.code_norm]
    return out


def write_sketch(directory: Path, sketch: Sketch, names: tuple[str, str, str]) -> None:
    """Write the codes, tails and header files `names` into `directory`."""
    codes_name, tails_name, header_name = names
    directory = Path(directory)
    (directory / codes_name).write_bytes(np.ascontiguousarray(sketch.codes).tobytes())
    (directory / tails_name).write_bytes(sketch.tails.astype("<f4").tobytes())
    (directory / header_name).write_bytes(header_matrix(sketch).astype("<f8").tobytes())


def read_sketch(directory: Path, count: int, dim: int, axes: int,
                names: tuple[str, str, str], *, check_tails: bool = True) -> Sketch:
    """The sketch files of a corpus, every number checked, or a one-line CorpusError; the
    codes and tails memory-mapped (`check_tails=False`: the tails are checked later, by
    `check_sketch_tails`, a pass over 4 bytes a row)."""
    codes_name, tails_name, header_name = names
    directory = Path(directory)
    where = directory / header_name
    header = np.fromfile(where, dtype="<f8").astype(np.float64)
    if header.shape != ((dim + 3) * dim,):
        raise CorpusError(f"{where}: {header.size} values, expected {(dim + 3) * dim}")
    header = header.reshape(dim + 3, dim)
    if not np.all(np.isfinite(header)):
        raise CorpusError(f"{where}: holds NaN or infinity")
    m = header[dim + 2, 0]
    if m != axes:
        raise CorpusError(f"{where}: {m:g} axes, the manifest says {axes}")
    rotation = header[1 : dim + 1]
    gap = float(np.abs(rotation @ rotation.T - np.eye(dim)).max())
    if gap > ORTHONORMAL_TOLERANCE:
        raise CorpusError(f"{where}: the rotation is not orthonormal (off by {gap:.3g})")
    scale64 = header[dim + 1, :axes]
    scale = scale64.astype(np.float32)
    if np.any(scale64 <= 0) or np.any(scale.astype(np.float64) != scale64) or np.any(
            header[dim + 1, axes:]):
        raise CorpusError(f"{where}: the scales must be {axes} positive float32 values")
    error, radius, code_norm = (float(v) for v in header[dim + 2, 1:4])
    if min(error, radius, code_norm) < 0 or max(error, radius, code_norm) > 1e30:
        raise CorpusError(f"{where}: error, radius and code norm must be in [0, 1e30]")
    tails_path = directory / tails_name
    if tails_path.stat().st_size != 4 * count:
        raise CorpusError(f"{tails_path}: expected {count} finite norms >= 0")
    if count:
        codes = np.memmap(directory / codes_name, dtype=np.int8, mode="r", shape=(count, axes))
        tails = np.memmap(tails_path, dtype="<f4", mode="r", shape=(count,))
        if not tails.dtype.isnative:
            tails = tails.astype(np.float32)
    else:
        codes = np.zeros((0, axes), dtype=np.int8)
        tails = np.zeros(0, dtype=np.float32)
    if check_tails:
        check_sketch_tails(tails_path, tails)
    return Sketch(header[0].copy(), rotation.copy(), scale, codes, tails, error, radius,
                  code_norm)



def check_sketch_tails(path: Path, tails: np.ndarray) -> None:
    """Refuse tails that are not all finite norms >= 0 (a one-line CorpusError)."""
    if not np.all(np.isfinite(tails)) or np.any(tails < 0):
        raise CorpusError(f"{path}: expected {len(tails)} finite norms >= 0")


def write_scan_layout(directory: Path, sketch: Sketch, names: tuple[str, str]) -> dict[str, Any]:
    """Lay `sketch` out for the scan and write its blocks and records files `names` into
    `directory` (each through a temporary name, then renamed); returns the manifest's
    `sketch.layout` entry."""
    layout = scan_layout(sketch)
    for name, array in zip(names, (layout.blocks, layout.records), strict=True):
        final = Path(directory) / name
        part = final.with_name(final.name + ".part")
        with open(part, "wb") as handle:
            array.tofile(handle)
        part.replace(final)
    return {"version": LAYOUT_VERSION, "first_axes": layout.first_axes,
            "record_bytes": int(layout.records.shape[1]), "l1_max": int(layout.l1_max)}


def read_scan_layout(directory: Path, sketch: Sketch, entry: Mapping[str, Any] | None,
                     names: tuple[str, str]) -> ScanLayout | None:
    """The stored layout of `sketch`, memory-mapped, or None when the corpus has none this
    Sosie can use (built before the files, another layout version, a big-endian host): the
    scanner then lays the codes out in memory. The files' sizes were checked on open."""
    if not entry or len(sketch) == 0:
        return None
    m1, blocks_shape, records_shape = layout_shapes(len(sketch), sketch.axes)
    usable = (entry.get("version") == LAYOUT_VERSION and entry.get("first_axes") == m1
              and entry.get("record_bytes") == records_shape[1] and sys.byteorder == "little")
    if not usable:
        log.info("%s: scan layout %s is not this Sosie's (version %d, %d first axes); laying the "
                 "sketch out in memory", directory, dict(entry), LAYOUT_VERSION, m1)
        return None
    blocks_name, records_name = names
    blocks = np.memmap(Path(directory) / blocks_name, np.uint8, mode="r", shape=blocks_shape)
    records = np.memmap(Path(directory) / records_name, np.uint8, mode="r", shape=records_shape)
    for array in (blocks, records):  # before the first touch: huge pages where the kernel maps
        _prefer_huge_pages(array)  # the page cache's large folios so (the streamed first pass)
    try:
        return stored_layout(sketch, blocks, records, entry["l1_max"])
    except ValueError as exc:
        raise CorpusError(f"{directory}: {exc}") from None


def _prefer_huge_pages(array: np.ndarray) -> None:
    """Ask for huge pages over a memory map (a hint: ignored where unsupported)."""
    handle = getattr(array, "_mmap", None)
    if isinstance(handle, mmap.mmap) and hasattr(mmap, "MADV_HUGEPAGE"):
        with contextlib.suppress(OSError):
            handle.madvise(mmap.MADV_HUGEPAGE)


def sketch_problems(sketch: Sketch, vectors: np.ndarray) -> list[str]:
    """What makes `sketch` unsafe for certified bounds over `vectors` (empty: nothing).

    Recomputes every row's rotated coordinates: the codes within `error`, the tails within
    float32 rounding of the remaining norms, every row within `radius`, the codes within
    `code_norm`. This is what exactness relies on; the codes themselves may differ from a fresh
    build's by rounding (another BLAS orders the rotation's sums differently).
    """
    n, m = len(vectors), sketch.axes
    scale = sketch.scale.astype(np.float64)
    found: dict[str, int] = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, BLOCK):
            block = np.asarray(vectors[start : start + BLOCK], dtype=np.float64) - sketch.mean
            rotated = block @ sketch.rotation.T
            quantized = np.asarray(sketch.codes[start : start + BLOCK], np.float64) * scale
            tails = np.sqrt((rotated[:, m:] ** 2).sum(axis=1))
            stored = sketch.tails[start : start + BLOCK].astype(np.float64)
            checks = {
                "codes farther than the recorded error": np.sqrt(
                    ((rotated[:, :m] - quantized) ** 2).sum(axis=1)) > sketch.error,
                "tail norms wrong": np.abs(stored - tails) > 2.0**-20 * tails + 1e-30,
                "rows beyond the recorded radius": np.sqrt((block**2).sum(axis=1))
                > sketch.radius,
                "codes beyond the recorded code norm": np.sqrt((quantized**2).sum(axis=1))
                > sketch.code_norm,
            }
            for what, bad in checks.items():
                if bad.any() and what not in found:
                    found[what] = start + int(np.flatnonzero(bad)[0])
    return [f"{what} (first row {row})" for what, row in found.items()]
