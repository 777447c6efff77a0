"""Level-of-detail tiles of the 2-D map: a quadtree of pre-rendered WebP tiles.

The deepest level shows every face at `face_px` pixels at its PCA position; each level above is
the 2x2 box-filtered image of the one below, so zooming out shows what the faces add up to. Only
tiles that contain a face are written; `TilePyramid.present` says which exist (the page asks for
nothing else, so no request fails). The quadtree is walked depth first: memory stays at one
tile per level whatever the corpus size, and faces are filtered to each node with numpy.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from appliance.cartography.encoding import SUFFIX, TILE_QUALITY, encode_webp
from appliance.files import atomic_write_bytes

BACKGROUND = 17


@dataclass
class TilePyramid:
    """Geometry of the pyramid and which tiles exist (a bitmap per level, row-major)."""

    levels: int  # deepest level index (level z has 2^z x 2^z tiles)
    tile_px: int
    face_px: int
    present: list[np.ndarray] = field(default_factory=list)  # bool (2^z, 2^z) per level, [y, x]
    bytes_written: int = 0

    @property
    def world_px(self) -> int:
        """Side of the deepest level in pixels."""
        return self.tile_px << self.levels

    def count(self) -> int:
        return int(sum(int(p.sum()) for p in self.present))


def choose_levels(count: int, face_px: int, tile_px: int, spacing: float = 2.0) -> int:
    """Deepest level such that `count` faces of `face_px` have ~`spacing` faces of room each."""
    side = face_px * np.sqrt(max(count, 1)) * spacing
    return max(0, int(np.ceil(np.log2(max(side / tile_px, 1.0)) - 0.25)))


def render_pyramid(
    centres: np.ndarray,
    faces: np.ndarray,
    out_dir: Path,
    *,
    levels: int,
    tile_px: int = 256,
    quality: int = TILE_QUALITY,
    workers: int = 1,
    sink: Callable[[int, int, int, np.ndarray], None] | None = None,
) -> TilePyramid:
    """Write `out_dir/{z}/{x}/{y}.webp` for faces (n, p, p[, 3]) uint8 centred at `centres`
    (n, 2): gray or colour tiles as the faces are.

    `centres` are in world units [0, 1] (x right, y down). Faces are drawn in index order, so a
    higher index lies on top where faces overlap, as the page assumes when picking. `sink`, if
    given, also receives every tile as (z, x, y, uint8 array) before it is encoded. With
    `workers` > 1 the subtrees below level 2 are rendered by forked processes.
    """
    renderer = _Renderer(centres, faces, Path(out_dir), levels, tile_px, quality, sink)
    split = min(levels, 2)
    if workers <= 1 or split == 0 or sink is not None or not _can_fork():
        renderer.visit(0, 0, 0, np.arange(len(faces)))
        return renderer.pyramid
    global _ACTIVE
    _ACTIVE = renderer
    roots = [(split, x, y) for y in range(1 << split) for x in range(1 << split)]
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(roots))) as pool:
            results = pool.map(_render_subtree, roots)
    finally:
        _ACTIVE = None
    tiles: dict[tuple[int, int], np.ndarray] = {}
    for (_, x, y), (present, tile, written) in zip(roots, results, strict=True):
        for z in range(split, levels + 1):
            renderer.pyramid.present[z] |= present[z]
        renderer.pyramid.bytes_written += written
        if tile is not None:
            tiles[(x, y)] = tile
    for z in range(split - 1, -1, -1):  # the few levels above the subtrees
        above: dict[tuple[int, int], np.ndarray] = {}
        for y in range(1 << z):
            for x in range(1 << z):
                children = {(dx, dy): tiles.get((2 * x + dx, 2 * y + dy)) for dx in (0, 1)
                            for dy in (0, 1)}
                if all(c is None for c in children.values()):
                    continue
                block = np.full((2 * tile_px, 2 * tile_px, *faces.shape[3:]), BACKGROUND,
                                dtype=np.uint8)
                for (dx, dy), child in children.items():
                    if child is not None:
                        block[dy * tile_px : (dy + 1) * tile_px,
                              dx * tile_px : (dx + 1) * tile_px] = child
                above[(x, y)] = halve(block)
                renderer.writer.write(z, x, y, above[(x, y)])
        tiles = above
    return renderer.pyramid


_ACTIVE: _Renderer | None = None


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _render_subtree(root: tuple[int, int, int]) -> tuple[list[np.ndarray], np.ndarray | None, int]:
    renderer = _ACTIVE
    assert renderer is not None
    z, x, y = root
    before = renderer.pyramid.bytes_written
    tile = renderer.visit(z, x, y, np.arange(len(renderer.faces)))
    return renderer.pyramid.present, tile, renderer.pyramid.bytes_written - before


class _Renderer:
    """The depth-first quadtree walk (see the module doc)."""

    def __init__(self, centres, faces, out_dir, levels, tile_px, quality, sink) -> None:
        self.faces, self.levels, self.tile_px, self.sink = faces, levels, tile_px, sink
        self.face_px = faces.shape[1]
        self.channels = faces.shape[3:]  # () gray, (3,) RGB
        self.pyramid = TilePyramid(levels, tile_px, self.face_px)
        self.pyramid.present = [np.zeros((1 << z, 1 << z), dtype=bool) for z in range(levels + 1)]
        world = tile_px << levels
        self.x0 = np.rint(centres[:, 0] * world - self.face_px / 2).astype(np.int64)
        self.y0 = np.rint(centres[:, 1] * world - self.face_px / 2).astype(np.int64)
        self.writer = _TileWriter(out_dir, quality, self.pyramid)

    def visit(self, z: int, tx: int, ty: int, members: np.ndarray) -> np.ndarray | None:
        tile_px, face_px = self.tile_px, self.face_px
        span = tile_px << (self.levels - z)
        left, top = tx * span, ty * span
        x0, y0 = self.x0[members], self.y0[members]
        inside = (x0 < left + span) & (x0 + face_px > left)
        inside &= (y0 < top + span) & (y0 + face_px > top)
        members = members[inside]
        if not len(members):
            return None
        if z == self.levels:
            tile = np.full((tile_px, tile_px, *self.channels), BACKGROUND, dtype=np.uint8)
            for i in members:
                _paste(tile, self.faces[i], int(self.x0[i] - left), int(self.y0[i] - top))
        else:
            block = np.full((2 * tile_px, 2 * tile_px, *self.channels), BACKGROUND,
                            dtype=np.uint8)
            any_child = False
            for dy in (0, 1):
                for dx in (0, 1):
                    child = self.visit(z + 1, 2 * tx + dx, 2 * ty + dy, members)
                    if child is not None:
                        any_child = True
                        block[dy * tile_px : (dy + 1) * tile_px,
                              dx * tile_px : (dx + 1) * tile_px] = child
            if not any_child:
                return None
            tile = halve(block)
        if self.sink is not None:
            self.sink(z, tx, ty, tile)
        self.writer.write(z, tx, ty, tile)
        return tile


def _paste(tile: np.ndarray, face: np.ndarray, x: int, y: int) -> None:
    """Copy `face` into `tile` with its top-left corner at (x, y), clipped to the tile."""
    h, w = tile.shape[:2]
    p = face.shape[0]
    sx, sy = max(0, -x), max(0, -y)
    ex, ey = min(p, w - x), min(p, h - y)
    if sx < ex and sy < ey:
        tile[y + sy : y + ey, x + sx : x + ex] = face[sy:ey, sx:ex]


def halve(block: np.ndarray) -> np.ndarray:
    """2x2 box filter (rounded) of an even-sized uint8 image (OpenCV's exact area filter)."""
    h, w = block.shape[:2]
    return cv2.resize(block, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


class _TileWriter:
    def __init__(self, root: Path, quality: int, pyramid: TilePyramid) -> None:
        self.root, self.quality, self.pyramid = root, quality, pyramid
        self._dirs: set[tuple[int, int]] = set()

    def write(self, z: int, x: int, y: int, tile: np.ndarray) -> None:
        if (z, x) not in self._dirs:
            (self.root / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
            self._dirs.add((z, x))
        data = encode_webp(tile, self.quality)
        atomic_write_bytes(self.root / str(z) / str(x) / f"{y}{SUFFIX}", data, fsync=False)
        self.pyramid.present[z][y, x] = True
        self.pyramid.bytes_written += len(data)
