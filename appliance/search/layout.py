"""The sketch laid out for the scan (ext/kernels/dispatch.h): the first stage's blocks of 16 rows
and the second stage's one record per row, built from the sketch's codes.

A `ScanLayout` is built here in memory (`scan_layout`), or made of the arrays a corpus build
wrote as files (`stored_layout`, memory-mapped by `appliance.corpus.sketch`): the same bytes
either way. `LAYOUT_VERSION` names this layout; files of another version are not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

#: The layout written as files: bump it whenever the bytes of the blocks or records change.
LAYOUT_VERSION = 1
CHUNK_ROWS = 65536
#: Axes of the sketch's first stage, streamed for every row (the rest only for the few rows
#: that pass it): the pass is memory-bound, so fewer bytes per row is less time.
FIRST_STAGE_AXES = 40
HUGE_PAGE = 2 << 20


class SketchArrays(Protocol):
    """What the scan reads of a sketch (`appliance.corpus.sketch.Sketch`)."""

    mean: np.ndarray  # (d,) float64
    rotation: np.ndarray  # (d, d) float64
    scale: np.ndarray  # (m,) float32
    codes: np.ndarray  # (N, m) int8
    tails: np.ndarray  # (N,) float32
    error: float
    radius: float
    code_norm: float

    @property
    def axes(self) -> int: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class ScanLayout:
    """The sketch laid out for the scan (see dispatch.h): the first stage every query streams, in
    blocks of 16 rows (the codes of the first axes pair by pair, then float32 |scale * codes_i|^2
    over them), and for the few rows that pass it one record each (the other codes, then float32
    |scale * codes_i|^2 over all axes and the tail norm), at most one cache line."""

    mean: np.ndarray  # float64 (d,), contiguous
    rotation: np.ndarray  # float64 (d, d), C-contiguous
    scale: np.ndarray  # float64 (m,)
    blocks: np.ndarray  # uint8 (ceil(N / 16), 16 m1 + 64)
    first_axes: int  # m1
    records: np.ndarray  # uint8 (N, s)
    rest_axes: int  # m - m1
    l1_max: float  # largest sum |codes_i| over all m axes


def first_stage_blocks(codes: np.ndarray, norms2: np.ndarray) -> np.ndarray:
    """(N, m) int8 codes and float32 |scale * codes_i|^2 laid out in the first stage's blocks of
    16 rows (dispatch.h): (ceil(N / 16), 16 m + 64) uint8, padding rows zero."""
    n, m = codes.shape
    blocks = huge_zeros(-(-n // 16), 16 * m + 64)
    for start in range(0, n, CHUNK_ROWS):
        fill_blocks(blocks, start, codes[start : start + CHUNK_ROWS],
                     norms2[start : start + CHUNK_ROWS])
    return blocks


def fill_blocks(blocks: np.ndarray, start: int, codes: np.ndarray, norms2: np.ndarray) -> None:
    """Lay rows start.. (start a multiple of 16) of codes and norms into their blocks."""
    m = codes.shape[1]
    rows = -(-len(codes) // 16) * 16
    part = np.zeros((rows, m), np.int8)
    part[: len(codes)] = codes
    a2 = np.zeros(rows, "=f4")
    a2[: len(codes)] = norms2
    first, last = start // 16, start // 16 + rows // 16
    pairs = part.reshape(rows // 16, 16, m // 2, 2).transpose(0, 2, 1, 3)
    blocks[first:last, : 16 * m] = pairs.reshape(rows // 16, 16 * m).view(np.uint8)
    blocks[first:last, 16 * m :] = a2.reshape(rows // 16, 16).view(np.uint8)


def layout_shapes(rows: int, axes: int) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """(first-stage axes, blocks' shape, records' shape) of the layout of `rows` x `axes` codes:
    the codes split after `FIRST_STAGE_AXES` (one stage when the sketch has no more)."""
    m1 = min(axes, FIRST_STAGE_AXES)
    width = 8  # a power of two up to a cache line, so that no record straddles two lines
    while width < axes - m1 + 8:
        width *= 2
    return m1, (-(-rows // 16), 16 * m1 + 64), (rows, width)


def stored_layout(sketch: SketchArrays, blocks: np.ndarray, records: np.ndarray,
                  l1_max: float) -> ScanLayout:
    """The layout of `sketch` made of stored arrays (ValueError unless they have its shapes)."""
    m1, blocks_shape, records_shape = layout_shapes(len(sketch), sketch.axes)
    for name, array, shape in (("blocks", blocks, blocks_shape),
                               ("records", records, records_shape)):
        if array.dtype != np.uint8 or array.shape != shape or not array.flags.c_contiguous:
            raise ValueError(f"scan layout: {name} {array.dtype} {array.shape}, expected "
                             f"contiguous uint8 {shape}")
    if not (0 <= l1_max <= 127 * sketch.axes):
        raise ValueError(f"scan layout: l1_max {l1_max} out of range")
    return ScanLayout(*_rotation(sketch), blocks, m1, records, sketch.axes - m1, float(l1_max))


def _rotation(sketch: SketchArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.ascontiguousarray(sketch.mean, np.float64),
            np.ascontiguousarray(sketch.rotation, np.float64), sketch.scale.astype(np.float64))


def scan_layout(sketch: SketchArrays) -> ScanLayout:
    """Lay the sketch's codes out for the scan, in memory (a pass over every code)."""
    m = sketch.axes
    n = len(sketch)
    m1, blocks_shape, records_shape = layout_shapes(n, m)
    rest_axes = m - m1
    scale = sketch.scale.astype(np.float64)
    blocks = huge_zeros(*blocks_shape)
    records = huge_zeros(*records_shape)
    records[:, rest_axes + 4 : rest_axes + 8] = sketch.tails.astype("=f4").reshape(n, 1).view(
        np.uint8)
    # |scale * codes_i|^2 as codes_i^2 . scale^2: each term c^2 s^2 is the same single rounding of
    # the same exact product as (c s)^2, and the float64 sum's own error (~m 2^-53) is far
    # inside the float32 rounding the slacks allow for
    first_weights = np.where(np.arange(m) < m1, scale**2, 0.0)
    both = np.stack([first_weights, scale**2], axis=1)  # (m, 2)
    l1 = 0
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, CHUNK_ROWS):
            stop = min(n, start + CHUNK_ROWS)
            codes = np.asarray(sketch.codes[start:stop])
            wide = codes.astype(np.float64)
            norms2 = (wide * wide) @ both
            fill_blocks(blocks, start, codes[:, :m1], norms2[:, 0])
            records[start:stop, :rest_axes] = codes[:, m1:].view(np.uint8)
            all_norms2 = norms2[:, 1].astype("=f4").reshape(-1, 1)
            records[start:stop, rest_axes : rest_axes + 4] = all_norms2.view(np.uint8)
            l1 = max(l1, int(np.abs(wide).sum(axis=1).max()))
    return ScanLayout(*_rotation(sketch), blocks, m1, records, rest_axes, float(l1))


def huge_zeros(rows: int, width: int) -> np.ndarray:
    """A zeroed C-contiguous (rows, width) uint8 array starting on a 2 MB boundary: the kernel
    may back it with huge pages, which the streamed first pass reads markedly faster."""
    size = max(1, rows * width)
    buffer = np.zeros(size + HUGE_PAGE, np.uint8)
    skip = -buffer.__array_interface__["data"][0] % HUGE_PAGE
    return buffer[skip : skip + rows * width].reshape(rows, width)
