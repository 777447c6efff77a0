"""Face images for the site: thumbnails decoded at the sizes the site needs, sheets, 3-D atlas."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from appliance.cartography.encoding import SHEET_QUALITY, SUFFIX, encode_webp
from appliance.corpus.thumbs import MAX_THUMBNAIL_PIXELS
from appliance.files import atomic_write_bytes

SHEET_COLUMNS = 16  # faces per sheet row; a sheet holds SHEET_COLUMNS^2 faces


def colour_of(corpus: Any) -> bool:
    """Whether the site shows `corpus` in colour: its manifest says so (`thumbnails.gray`), or,
    without one, its first thumbnail has colour. Gray corpora map in gray (one channel)."""
    thumbs = (getattr(corpus, "manifest", None) or {}).get("thumbnails") or {}
    if "gray" in thumbs:
        return not thumbs["gray"]
    if not int(getattr(corpus, "count", 0)):
        return False
    face = decode_thumbnail(corpus, 0, 16, {}, colour=True)
    return bool(face.ndim == 3 and np.ptp(face.astype(np.int16), axis=2).max() > 2)


def decode_thumbnail(
    corpus: Any, i: int, size: int, cache: dict[bytes, np.ndarray], *, colour: bool = False
) -> np.ndarray:
    """Row `i`'s thumbnail as (size, size) uint8 gray, or (size, size, 3) RGB with `colour`,
    decoded at reduced scale where JPEG allows.

    Rows that share encoded bytes (synthetic corpora) are decoded once.
    """
    mode = "RGB" if colour else "L"
    blob_of = getattr(corpus, "thumbnail_bytes", None)
    if blob_of is None:
        return resize(as_mode(np.asarray(corpus.thumbnail(i), dtype=np.uint8), colour), size)
    blob = blob_of(i)
    shared = bool(getattr(corpus, "synthetic", False))  # only synthetic rows share images
    hit = cache.get(blob) if shared else None
    if hit is not None:
        return hit
    pixels = _reduced_jpeg(blob, size, colour)
    if pixels is None:
        try:
            with Image.open(io.BytesIO(blob)) as image:
                image.draft(mode, (size, size))  # JPEG: DCT-domain downscale
                pixels = np.asarray(image.convert(mode))
        except (OSError, ValueError):  # raw pixels, or a format PIL cannot sniff
            pixels = as_mode(np.asarray(corpus.thumbnail(i), dtype=np.uint8), colour)
    face = resize(pixels, size)
    if shared and len(cache) < 4096:
        cache[blob] = face
    return face


_REDUCED = {  # (colour, factor): OpenCV's flag for a JPEG decoded at 1/factor scale
    (True, 1): cv2.IMREAD_COLOR, (True, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (True, 4): cv2.IMREAD_REDUCED_COLOR_4, (True, 8): cv2.IMREAD_REDUCED_COLOR_8,
    (False, 1): cv2.IMREAD_GRAYSCALE, (False, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (False, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4, (False, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def _reduced_jpeg(blob: bytes, size: int, colour: bool) -> np.ndarray | None:
    """A JPEG decoded in the DCT domain at the smallest 1/2^k scale still >= `size` (the pixels
    of PIL's draft mode, in half its time: 0.17 against 0.35 ms for a 256 px face at 64 px), RGB
    or gray (the JPEG's luminance); None if `blob` is no JPEG of at most MAX_THUMBNAIL_PIXELS."""
    frame = jpeg_frame_size(blob)
    if frame is None or frame[0] * frame[1] > MAX_THUMBNAIL_PIXELS:
        return None
    factor, side = 1, min(frame)
    while factor < 8 and side // (2 * factor) >= size:
        factor *= 2
    flags = _REDUCED[(colour, factor)] | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(blob, np.uint8), flags)
    if pixels is None:
        return None
    return np.ascontiguousarray(pixels[:, :, ::-1]) if colour else pixels


_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_frame_size(blob: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read without decoding; None if `blob` is not
    a JPEG or has no frame header before its data."""
    if blob[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(blob):
        if blob[at] != 0xFF:
            return None
        marker = blob[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _FRAMES:
            if at + 9 > len(blob):
                return None
            return (int.from_bytes(blob[at + 7 : at + 9], "big"),
                    int.from_bytes(blob[at + 5 : at + 7], "big"))
        if marker == 0xDA:  # the scan starts: no frame header came first
            return None
        at += 2 + int.from_bytes(blob[at + 2 : at + 4], "big")
    return None


def as_mode(pixels: np.ndarray, colour: bool) -> np.ndarray:
    """`pixels` (gray or RGB) as RGB (`colour`) or as ITU-R 601 luminance."""
    if colour:
        return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels
    if pixels.ndim == 2:
        return pixels
    weights = np.array([299, 587, 114], dtype=np.uint32)
    return ((pixels.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """A square (size, size[, 3]) uint8 image from any (h, w[, 3]) uint8 image (centre crop,
    area filter)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(np.ascontiguousarray(image[top : top + side, left : left + side]))
    return np.asarray(crop.resize((size, size), Image.Resampling.BOX if side > size
                                  else Image.Resampling.BICUBIC))


def spatial_order(xyz: np.ndarray, leaf: int = SHEET_COLUMNS**2) -> np.ndarray:
    """Rows in an order where every run of `leaf` (a sheet) is a compact cluster in 3-D.

    A k-d split: the widest axis is cut at a multiple of `leaf` near its median, recursively,
    so each sheet is one leaf; the 3-D view streams nearby faces in sheet by sheet."""
    order = np.arange(len(xyz))
    stack = [(0, len(xyz))]
    while stack:
        lo, hi = stack.pop()
        n = hi - lo
        if n <= leaf:
            continue
        block = order[lo:hi]
        points = xyz[block]
        axis = int(np.argmax(points.max(axis=0) - points.min(axis=0)))
        leaves = -(-n // leaf)
        k = leaf * ((leaves + 1) // 2)  # the first part: half the leaves, rounded up
        part = np.argpartition(points[:, axis], k - 1, kind="introselect")
        order[lo:hi] = block[part]
        stack += [(lo, lo + k), (lo + k, hi)]
    return order


def pool(stack: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscale of a (n, s, s[, 3]) uint8 stack by an integer `factor`."""
    if factor == 1:
        return stack
    n, s = stack.shape[:2]
    extra = stack.shape[3:]
    if s % factor == 0 and n * s < 2**31:  # area filter at an integer factor: exact box mean
        flat = np.ascontiguousarray(stack).reshape(n * s, s, *extra)
        t = s // factor
        small = cv2.resize(flat, (t, n * t), interpolation=cv2.INTER_AREA)
        return small.reshape(n, t, t, *extra)
    if factor & (factor - 1) == 0 and stack.shape[1] % factor == 0:  # power of two: halve
        out = stack
        while factor > 1:
            b = out.astype(np.uint16)
            out = ((b[:, 0::2, 0::2] + b[:, 1::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 1::2]
                    + 2) >> 2).astype(np.uint8)
            factor //= 2
        return out
    t = s // factor
    acc = stack[:, : t * factor, : t * factor].reshape(n, t, factor, t, factor, *extra)
    return (acc.mean(axis=(2, 4), dtype=np.float32) + 0.5).astype(np.uint8)


def write_sheets(
    corpus: Any,
    count: int,
    sheet_px: int,
    map_px: int,
    out_dir: Path,
    *,
    quality: int = SHEET_QUALITY,
    workers: int = 1,
    order: np.ndarray | None = None,
    colour: bool = False,
    small: np.ndarray | None = None,
) -> np.ndarray:
    """Write `out_dir/{s}.webp` sheets of faces at `sheet_px`, rows `order[s*256:(s+1)*256]` in
    sheet s (default: index order); return the faces at `map_px` in index order,
    (n, map_px, map_px[, 3]), for the tiles and the atlas, in `small` if given (e.g. a memmap).
    sheet_px must be a multiple of map_px. With `workers` > 1, sheets are made by forked
    processes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sheet = SHEET_COLUMNS * SHEET_COLUMNS
    order = np.arange(count) if order is None else np.asarray(order)
    if small is None:
        small = np.empty((count, map_px, map_px, *((3,) if colour else ())), dtype=np.uint8)
    sheets = range(-(-count // per_sheet))
    global _SHEET_JOB
    _SHEET_JOB = (corpus, order, sheet_px, map_px, out_dir, quality, colour, {})
    try:
        if workers > 1 and len(sheets) > 1 and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            with context.Pool(min(workers, len(sheets))) as pool:
                for sheet, faces in pool.imap_unordered(_write_sheet, sheets, chunksize=4):
                    small[order[sheet * per_sheet : sheet * per_sheet + len(faces)]] = faces
        else:
            for sheet in sheets:
                _, faces = _write_sheet(sheet)
                small[order[sheet * per_sheet : sheet * per_sheet + len(faces)]] = faces
    finally:
        _SHEET_JOB = None
    return small


_SHEET_JOB: tuple | None = None


def _write_sheet(sheet: int) -> tuple[int, np.ndarray]:
    """Write one sheet; its faces at map size (runs in a worker process or in place)."""
    assert _SHEET_JOB is not None
    corpus, order, sheet_px, map_px, out_dir, quality, colour, cache = _SHEET_JOB
    per_sheet = SHEET_COLUMNS * SHEET_COLUMNS
    rows = order[sheet * per_sheet : (sheet + 1) * per_sheet]
    faces = np.stack([decode_thumbnail(corpus, int(i), sheet_px, cache, colour=colour)
                      for i in rows])
    lines = -(-len(faces) // SHEET_COLUMNS)
    canvas = np.zeros((lines * sheet_px, SHEET_COLUMNS * sheet_px, *faces.shape[3:]),
                      dtype=np.uint8)
    for j, face in enumerate(faces):
        r, c = divmod(j, SHEET_COLUMNS)
        canvas[r * sheet_px : (r + 1) * sheet_px, c * sheet_px : (c + 1) * sheet_px] = face
    atomic_write_bytes(out_dir / f"{sheet}{SUFFIX}", encode_webp(canvas, quality), fsync=False)
    return sheet, pool(faces, sheet_px // map_px)


def atlas(
    faces: np.ndarray, max_side: int = 4096, max_cell: int = 64
) -> tuple[np.ndarray, int, int]:
    """One square texture holding every face (n, p, p[, 3]) in index order, row by row:
    (image, cell_px, columns). Its side is columns x cell, at most `max_side` (a WebGL texture
    without mipmaps needs no power-of-two size; the page filters it linearly)."""
    n, p = faces.shape[:2]
    extra = faces.shape[3:]
    columns = int(np.ceil(np.sqrt(max(n, 1))))
    cell = min(max_cell, p)
    while cell > 1 and columns * cell > max_side:
        cell //= 2
    rows = -(-n // columns)
    cells = np.zeros((rows * columns, cell, cell, *extra), dtype=np.uint8)
    for start in range(0, n, 16384):  # in blocks: the pooling temporaries stay small
        block = np.asarray(faces[start : start + 16384])
        if p % cell == 0:
            cells[start : start + len(block)] = pool(block, p // cell)
        else:
            cells[start : start + len(block)] = np.stack([resize(f, cell) for f in block])
    side = columns * cell
    image = np.zeros((side, side, *extra), dtype=np.uint8)
    order = (0, 2, 1, 3, *range(4, 4 + len(extra)))
    grid = cells.reshape(rows, columns, cell, cell, *extra).transpose(order)
    image[: rows * cell, : columns * cell] = grid.reshape(rows * cell, columns * cell, *extra)
    return image, cell, columns
