"""Face images for the site: thumbnails decoded at the sizes the site needs, sheets, 3-D atlas."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.cartography.tiles import encode_jpeg

SHEET_COLUMNS = 16  # faces per sheet row; a sheet holds SHEET_COLUMNS^2 faces


def decode_thumbnail(corpus: Any, i: int, size: int, cache: dict[bytes, np.ndarray]) -> np.ndarray:
    """Row `i`'s thumbnail as (size, size) uint8, decoded at reduced scale where JPEG allows.

    Rows that share encoded bytes (synthetic corpora) are decoded once.
    """
    blob_of = getattr(corpus, "thumbnail_bytes", None)
    if blob_of is None:
        return resize(np.asarray(corpus.thumbnail(i), dtype=np.uint8), size)
    blob = blob_of(i)
    shared = bool(getattr(corpus, "synthetic", False))  # only synthetic rows share images
    hit = cache.get(blob) if shared else None
    if hit is not None:
        return hit
    try:
        with Image.open(io.BytesIO(blob)) as image:
            image.draft("L", (size, size))  # JPEG: DCT-domain downscale, several times faster
            gray = np.asarray(image.convert("L"))
    except (OSError, ValueError):  # raw pixels, or a format PIL cannot sniff
        gray = np.asarray(corpus.thumbnail(i), dtype=np.uint8)
    face = resize(gray, size)
    if shared and len(cache) < 4096:
        cache[blob] = face
    return face


def resize(gray: np.ndarray, size: int) -> np.ndarray:
    """A square (size, size) uint8 image from any (h, w) uint8 image (centre crop, area filter)."""
    h, w = gray.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(gray)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = Image.fromarray(np.ascontiguousarray(gray[top : top + side, left : left + side]))
    return np.asarray(image.resize((size, size), Image.Resampling.BOX if side > size
                                   else Image.Resampling.BICUBIC))


def pool(stack: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscale of a (n, s, s) uint8 stack by an integer `factor`."""
    if factor == 1:
        return stack
    n, s, _ = stack.shape
    if s % factor == 0 and n * s < 2**31:
        import cv2  # area filter at an integer factor = exact box mean, and it is fast

        flat = np.ascontiguousarray(stack).reshape(n * s, s)
        t = s // factor
        return cv2.resize(flat, (t, n * t), interpolation=cv2.INTER_AREA).reshape(n, t, t)
    if factor & (factor - 1) == 0 and stack.shape[1] % factor == 0:  # power of two: halve
        out = stack
        while factor > 1:
            b = out.astype(np.uint16)
            out = ((b[:, 0::2, 0::2] + b[:, 1::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 1::2]
                    + 2) >> 2).astype(np.uint8)
            factor //= 2
        return out
    t = s // factor
    acc = stack[:, : t * factor, : t * factor].reshape(n, t, factor, t, factor)
    return (acc.mean(axis=(2, 4), dtype=np.float32) + 0.5).astype(np.uint8)


def write_sheets(
    corpus: Any,
    count: int,
    sheet_px: int,
    map_px: int,
    out_dir: Path,
    *,
    quality: int = 82,
    workers: int = 1,
) -> np.ndarray:
    """Write `out_dir/{s}.jpg` sheets of faces at `sheet_px` in index order; return the faces at
    `map_px` (n, map_px, map_px) for the tiles (sheet_px must be a multiple of map_px). With
    `workers` > 1, sheets are made by forked processes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sheet = SHEET_COLUMNS * SHEET_COLUMNS
    small = np.empty((count, map_px, map_px), dtype=np.uint8)
    sheets = range(-(-count // per_sheet))
    global _SHEET_JOB
    _SHEET_JOB = (corpus, count, sheet_px, map_px, out_dir, quality, {})
    try:
        if workers > 1 and len(sheets) > 1 and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            with context.Pool(min(workers, len(sheets))) as pool:
                for sheet, faces in pool.imap_unordered(_write_sheet, sheets, chunksize=4):
                    small[sheet * per_sheet : sheet * per_sheet + len(faces)] = faces
        else:
            for sheet in sheets:
                _, faces = _write_sheet(sheet)
                small[sheet * per_sheet : sheet * per_sheet + len(faces)] = faces
    finally:
        _SHEET_JOB = None
    return small


_SHEET_JOB: tuple | None = None


def _write_sheet(sheet: int) -> tuple[int, np.ndarray]:
    """Write one sheet; its faces at map size (runs in a worker process or in place)."""
    assert _SHEET_JOB is not None
    corpus, count, sheet_px, map_px, out_dir, quality, cache = _SHEET_JOB
    per_sheet = SHEET_COLUMNS * SHEET_COLUMNS
    start = sheet * per_sheet
    rows = range(start, min(count, start + per_sheet))
    faces = np.stack([decode_thumbnail(corpus, i, sheet_px, cache) for i in rows])
    lines = -(-len(faces) // SHEET_COLUMNS)
    canvas = np.zeros((lines * sheet_px, SHEET_COLUMNS * sheet_px), dtype=np.uint8)
    for j, face in enumerate(faces):
        r, c = divmod(j, SHEET_COLUMNS)
        canvas[r * sheet_px : (r + 1) * sheet_px, c * sheet_px : (c + 1) * sheet_px] = face
    (out_dir / f"{sheet}.jpg").write_bytes(encode_jpeg(canvas, quality))
    return sheet, pool(faces, sheet_px // map_px)


def atlas(
    faces: np.ndarray, max_side: int = 4096, max_cell: int = 64
) -> tuple[np.ndarray, int, int]:
    """One square power-of-two texture holding every face: (image, cell_px, columns)."""
    n, p, _ = faces.shape
    columns = int(np.ceil(np.sqrt(max(n, 1))))
    cell = min(max_cell, p)
    while cell > 1 and columns * cell > max_side:
        cell //= 2
    rows = -(-n // columns)
    cells = np.zeros((rows * columns, cell, cell), dtype=np.uint8)
    for start in range(0, n, 16384):  # in blocks: the pooling temporaries stay small
        block = faces[start : start + 16384]
        if p % cell == 0:
            cells[start : start + len(block)] = pool(block, p // cell)
        else:
            cells[start : start + len(block)] = np.stack([resize(f, cell) for f in block])
    side = 1
    while side < columns * cell:
        side *= 2
    image = np.zeros((side, side), dtype=np.uint8)
    grid = cells.reshape(rows, columns, cell, cell).transpose(0, 2, 1, 3)
    image[: rows * cell, : columns * cell] = grid.reshape(rows * cell, columns * cell)
    return image, cell, columns


def jpeg_bytes(gray: np.ndarray, quality: int = 85) -> bytes:
    """JPEG encoding of a uint8 grayscale image."""
    return encode_jpeg(np.ascontiguousarray(gray), quality)
