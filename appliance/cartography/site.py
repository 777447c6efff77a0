"""`sosie map`: write a static, offline site that maps a corpus in 2-D and 3-D.

Layout of the output directory::

    index.html, vr.html, assets/     the hand-written page code (copied from appliance/web)
    data/meta.js                     geometry, PCA axes and their extreme faces, clusters, marks
    data/points.js                   2-D positions (uint16), 3-D positions (int16), clusters,
                                     mean colours, sheet places, the sheets' bounding spheres
    data/atlas3d.js                  every face in one small texture for the 3-D view (data: URL)
    data/faces/{c}.js                names and nearest neighbours, in chunks loaded on demand
    data/descriptors.js              8-bit descriptors (large corpora: neighbours found on click)
    tiles/{z}/{x}/{y}.webp           the 2-D map's level-of-detail quadtree
    sheets/{s}.webp                  16x16 faces at 64-128 px (the panel's large view, and the
                                     3-D view's detail near the viewer), each sheet a compact
                                     cluster in 3-D (`sheets.spatial_order`)

Tiles and sheets are lossy WebP; the 3-D atlas and a marked face's crop are JPEG (`encoding`).

Faces are in colour when the corpus thumbnails are (gray corpora map in gray).

No file of the site holds a path of the machine that made it (the corpus is named by its
folder's name). A marked face (`marks`) is in the site as its place, its nearest corpus faces
with their distances and its label; its crop (`MarkedFace.thumbnail`) only if given.

Everything is loaded with <script> and <img> elements, so the site works from file:// (where
fetch() is refused) as well as from any static server, and nothing comes from the internet.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance import likeness as likeness_module
from appliance.cartography import sheets as face_images
from appliance.cartography.encoding import (
    ATLAS_JPEG_QUALITY,
    SHEET_QUALITY,
    TILE_QUALITY,
    data_url,
)
from appliance.cartography.kmeans import kmeans
from appliance.cartography.knn import EXACT_LIMIT, neighbours, quantize
from appliance.cartography.tiles import choose_levels, render_pyramid
from appliance.files import WriteError, atomic_write_bytes, refuse_links, remove_tree
from appliance.images import encode_jpeg

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CHUNK = 4096  # faces per data/faces/{c}.js file
EXTREMES = 6  # faces shown at each end of each principal axis
FACE_STACK = ".faces.tmp.npy"  # the map-size faces of a large corpus while the site is made
MARKER = ".sosie-map"  # what says a folder is a map (with data/meta.js)
_TREES = ("tiles", "sheets", "data", "assets")
_GENERATED = (*_TREES, "index.html", "vr.html", MARKER, FACE_STACK)
_BUILDING, _OLD = ".building-", ".old-"  # folders beside the site while it is built, swapped
MARKER_GRAY = 96  # the level of a marked face shown without its crop (3-D view, colours)


@dataclass(frozen=True)
class MapOptions:
    """How `build_site` draws the map."""

    neighbours: int = 12  # nearest neighbours listed per face (0: none)
    clusters: int = 0  # k-means clusters with their centre face (0: none)
    title: str | None = None
    map_face_px: int | None = None  # face size at the deepest tile level (None: by corpus size)
    sheet_face_px: int | None = None  # face size of the large view (None: by corpus size)
    atlas_face_px: int = 64  # largest face size in the 3-D view's atlas (smaller above 4096 px)
    tile_px: int = 256
    tile_quality: int = TILE_QUALITY  # WebP quality of the tiles, 0-100
    sheet_quality: int = SHEET_QUALITY  # and of the sheets
    seed: int = 0
    exact_limit: int = EXACT_LIMIT  # above this many faces the page finds neighbours on click
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class MarkedFace:
    """A face to highlight on the map (a reference or visitor photo), not part of the corpus.

    Without `thumbnail` the site shows a plain marker: nothing of the photo's pixels."""

    label: str
    descriptor: np.ndarray  # float32 (d,)
    thumbnail: np.ndarray | None = None  # uint8 gray (h, w) or RGB (h, w, 3)


@dataclass
class SiteSummary:
    """What `build_site` wrote, and how long each stage took (seconds)."""

    out_dir: Path
    count: int
    levels: int
    tiles: int
    bytes: int
    neighbour_method: str  # "exact" (precomputed) or "browser" (found on click)
    timings: dict[str, float] = field(default_factory=dict)


def build_site(
    corpus: Any,
    out_dir: str | Path,
    *,
    mark: MarkedFace | None = None,
    marks: Sequence[MarkedFace] = (),
    options: MapOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> SiteSummary:
    """Write the map site of `corpus` (see the module doc) into `out_dir`, with every face of
    `mark` and `marks` (in that order) marked on it.

    The site is built in a new folder beside `out_dir` that takes its place once complete (the
    files of `out_dir` that are not a map's own are moved into it first); the previous site is
    removed after. An interrupted build leaves the previous site whole (and its own folder
    removed, or removed by the next build). An `out_dir` that is a link (say, into a web
    server's folder) stays a link: the site it points to is the one replaced."""
    n = int(corpus.count)
    if n < 1:
        raise ValueError(f"{getattr(corpus, 'path', 'corpus')}: has no faces to map")
    given = Path(out_dir)
    target = given.resolve() if given.is_symlink() else given
    staging = _staging(target)
    try:
        summary = _build(corpus, staging, mark, marks, options, progress)
        clock = time.perf_counter()
        old = _swap_in(staging, target)
    except WriteError as exc:  # named as the file of OUT it was to become
        remove_tree(staging, ignore_errors=True)
        raise WriteError(exc.errno, str(exc).replace(str(staging), str(target), 1)) from None
    except BaseException:
        remove_tree(staging, ignore_errors=True)
        raise
    swapped = time.perf_counter()
    summary.timings["swap"] = round(swapped - clock, 3)
    if old is not None:
        (progress or (lambda _msg: None))("removing the previous site")
        remove_tree(old)
        summary.timings["previous site removed"] = round(time.perf_counter() - swapped, 3)
    summary.out_dir = given
    return summary


def _build(
    corpus: Any,
    out: Path,
    mark: MarkedFace | None,
    marks: Sequence[MarkedFace],
    options: MapOptions | None,
    progress: Callable[[str], None] | None,
) -> SiteSummary:
    """build_site's work, into the new empty folder `out`."""
    options = options or MapOptions()
    all_marks = ([mark] if mark is not None else []) + list(marks)
    say = progress or (lambda _msg: None)
    n = int(corpus.count)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    atomic_write_bytes(out / MARKER, b"generated by sosie map\n", fsync=False)

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    vectors = np.asarray(corpus.vectors, dtype=np.float32)
    coords2 = np.asarray(corpus.coords2d, dtype=np.float64)
    coords3 = np.asarray(corpus.coords3d, dtype=np.float64)
    marked = [_mark_info(corpus, vectors, m, options) for m in all_marks]
    map_px = options.map_face_px or (128 if n <= 2000 else 64)
    sheet_px = options.sheet_face_px or (128 if n <= 30000 else 64)
    sheet_px = max(map_px, sheet_px // map_px * map_px)
    levels = choose_levels(n, map_px, options.tile_px, spacing=1.4 if n <= 2000 else 2.0)
    world = options.tile_px << levels
    extra = np.array([m["pca"][:2] for m in marked]).reshape(-1, 2)
    to_world = world_transform(np.vstack([coords2, extra]), map_px / world)
    centres = to_world(coords2)
    lap("prepare")

    colour = face_images.colour_of(corpus)
    scale3 = _scale3(coords3)
    order = face_images.spatial_order(coords3 * scale3)
    say(f"faces: {n} {'colour' if colour else 'gray'} thumbnails at {sheet_px} px (sheets) "
        f"and {map_px} px (map)")
    stack = _face_stack(out, n + len(marked), map_px, colour)  # the last rows: marked faces
    small = stack[:n]
    face_images.write_sheets(
        corpus, n, sheet_px, map_px, out / "sheets", quality=options.sheet_quality,
        workers=options.workers, order=order, colour=colour, small=small,
    )
    lap("thumbnails")

    say(f"tiles: {levels + 1} levels, deepest {world} px square")
    pyramid = render_pyramid(
        centres, small, out / "tiles", levels=levels, tile_px=options.tile_px,
        quality=options.tile_quality, workers=options.workers,
    )
    lap("tiles")

    k = min(options.neighbours, n - 1)
    if n <= options.exact_limit:
        say(f"neighbours: {k} per face, exact")
        found = neighbours(vectors, k)
        method = "exact"
    else:
        say(f"neighbours: {k} per face, found by the page from 8-bit descriptors")
        found = None
        method = "browser"
        codes, mean, scale = quantize(vectors)
        _write_js(out / "data" / "descriptors.js", "SOSIE_DESCRIPTORS", {
            "mean": [float(v) for v in mean], "scale": [float(v) for v in scale],
            "codes": _b64(codes),
        })
    lap("neighbours")

    clusters = _clusters(vectors, corpus.pca, options, to_world) if options.clusters else None
    lap("clusters")

    mark_large: list[np.ndarray | None] = []
    for row, m in enumerate(all_marks, n):
        if m.thumbnail is None:  # a plain marker: a flat face, nothing of the photo
            stack[row] = MARKER_GRAY
            mark_large.append(None)
            continue
        pixels = face_images.as_mode(np.asarray(m.thumbnail, dtype=np.uint8), colour)
        stack[row] = face_images.resize(pixels, map_px)
        mark_large.append(face_images.resize(pixels, sheet_px))
    atlas_faces = stack[: n + len(marked)]
    atlas, cell, columns = face_images.atlas(atlas_faces, max_cell=options.atlas_face_px)
    channels = 3 if colour else 1
    means = np.concatenate([  # in blocks: a memmap of 200k faces is not read at once; each
        # face's rounded mean by OpenCV's area filter (numpy's mean: 20x the time, 80 s at 200k)
        face_images.pool(np.asarray(atlas_faces[a : a + 16384]), map_px).reshape(-1, channels)
        for a in range(0, len(atlas_faces), 16384)])
    del atlas_faces, small, stack
    _release_face_stack(out)
    say("data files")
    _write_js(out / "data" / "atlas3d.js", "SOSIE_ATLAS", {
        "cell": cell, "columns": columns, "size": int(atlas.shape[0]),
        "src": data_url(encode_jpeg(atlas, ATLAS_JPEG_QUALITY), "jpeg"),
    })
    _write_points(out / "data" / "points.js", centres, coords3 * scale3, clusters,
                  means, order)
    _write_chunks(out / "data" / "faces", corpus, n, found)
    meta = _meta(corpus, options, n, pyramid, centres, coords2, coords3, scale3, sheet_px,
                 k, method, clusters, marked, to_world, mark_large)
    meta["colour"] = colour
    _write_js(out / "data" / "meta.js", "SOSIE_META", meta)
    _copy_web(out)
    lap("data")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return SiteSummary(out, n, levels, pyramid.count(), total, method, timings)


# ---------------------------------------------------------------------------------------------
# Geometry


def world_transform(coords: np.ndarray, face: float) -> Callable[[np.ndarray], np.ndarray]:
    """Map PCA (x, y) into the unit world square: aspect kept, centred, y pointing down."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = float(max(hi - lo)) or 1.0
    margin = face / 2 + 0.01
    usable = 1.0 - 2 * margin
    offset = (usable - (hi - lo) / span * usable) / 2

    def to_world(xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        u = margin + offset[0] + (xy[:, 0] - lo[0]) / span * usable
        v = margin + offset[1] + (hi[1] - xy[:, 1]) / span * usable
        return np.stack([u, v], axis=1)

    return to_world


def _scale3(coords3: np.ndarray) -> float:
    """Factor that brings the 3-D cloud to a radius of ~1 (99.5th percentile of distances)."""
    if not len(coords3):
        return 1.0
    radius = float(np.percentile(np.linalg.norm(coords3, axis=1), 99.5))
    return 1.0 / radius if radius > 0 else 1.0


# ---------------------------------------------------------------------------------------------
# Marked face, clusters


def _mark_info(corpus: Any, vectors: np.ndarray, mark: MarkedFace, options: MapOptions) -> dict:
    """A marked face's place and nearest corpus faces."""
    q = np.asarray(mark.descriptor, dtype=np.float32).reshape(-1)
    if q.shape[0] != vectors.shape[1]:
        raise ValueError(
            f"marked face descriptor has {q.shape[0]} values, corpus has {vectors.shape[1]}"
        )
    k = min(max(options.neighbours, 1), len(vectors))
    idx, dist = nearest_to(corpus, vectors, q, k)
    return {"label": mark.label, "pca": corpus.pca.project(q)[0], "indices": idx, "distances": dist}


def nearest_to(
    corpus: Any, vectors: np.ndarray, q: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest corpus rows to descriptor `q`: the corpus Scanner when available, else numpy."""
    try:
        scanner = corpus.scanner()
        idx, dist = scanner.topk(q.astype(np.float32), k)
        return np.asarray(idx, dtype=np.int64), np.asarray(dist, dtype=np.float32)
    except (ImportError, AttributeError):
        d = np.sqrt(np.maximum(((vectors - q) ** 2).sum(axis=1), 0))
        order = np.lexsort((np.arange(len(d)), d))[:k]
        return order.astype(np.int64), d[order].astype(np.float32)


def _clusters(vectors: np.ndarray, pca: Any, options: MapOptions, to_world: Callable) -> dict:
    k = min(options.clusters, len(vectors))
    centroids, labels = kmeans(vectors, k, seed=options.seed)
    sizes = np.bincount(labels, minlength=k)
    centres = []
    for j in range(k):
        members = np.flatnonzero(labels == j)
        if not len(members):
            centres.append(-1)
            continue
        d = ((vectors[members] - centroids[j]) ** 2).sum(axis=1)
        centres.append(int(members[int(np.argmin(d))]))
    projected = pca.project(centroids.astype(np.float64))
    return {"labels": labels, "sizes": sizes, "centres": centres, "pca": projected,
            "world": to_world(projected[:, :2])}


# ---------------------------------------------------------------------------------------------
# Data files


def _meta(corpus, options, n, pyramid, centres, coords2, coords3, scale3, sheet_px, k, method,
          clusters, marked, to_world, mark_faces) -> dict:
    pca = corpus.pca
    layout = getattr(corpus, "layout", "pca")  # "umap": cartography.layouts
    axes = []
    coords = np.hstack([coords2, coords3[:, 2:3]])
    for a in range(3):
        order = np.argsort(coords[:, a], kind="stable")
        axes.append({
            "name": f"PC{a + 1}" if layout == "pca" else f"{layout.upper()} {a + 1}",
            "variance": float(pca.explained_variance[a]),
            "ratio": float(pca.explained_variance_ratio[a]),
            "low": [int(i) for i in order[:EXTREMES]],
            "high": [int(i) for i in order[::-1][:EXTREMES]],
            "min": float(coords[:, a].min()),
            "max": float(coords[:, a].max()),
        })
    present = [_b64(np.packbits(p.reshape(-1), bitorder="little")) for p in pyramid.present]
    manifest = dict(getattr(corpus, "manifest", {}) or {})
    meta: dict[str, Any] = {
        "version": 1,
        "title": options.title or f"Sosie — {n:,} faces".replace(",", " "),
        "count": n,
        "corpus": {
            "name": Path(str(getattr(corpus, "path", "") or "")).name,  # never a machine's path
            "synthetic": bool(getattr(corpus, "synthetic", False)),
            "dim": int(corpus.dim),
            "built": str(manifest.get("built", "")),
        },
        "tiles": {"levels": pyramid.levels, "tile": pyramid.tile_px, "face": pyramid.face_px,
                  "world": pyramid.world_px, "present": present},
        "face_world": pyramid.face_px / pyramid.world_px,
        "bbox": [float(centres[:, 0].min()), float(centres[:, 1].min()),
                 float(centres[:, 0].max()), float(centres[:, 1].max())],
        "sheets": {"columns": face_images.SHEET_COLUMNS, "face": sheet_px},
        "chunk": CHUNK,
        "neighbours": {"k": int(k), "method": method},
        "likeness": {"threshold": likeness_module.SAME_PERSON_DISTANCE,
                     "slope": likeness_module.LIKENESS_SLOPE},
        "pca": {"axes": axes, "total_ratio": float(np.sum(pca.explained_variance_ratio[:3])),
                "scale3": scale3, "layout": layout},
        "clusters": None,
        "marks": [],
    }
    if clusters is not None:
        meta["clusters"] = [
            {"id": j, "size": int(clusters["sizes"][j]), "centre": clusters["centres"][j],
             "world": [float(v) for v in clusters["world"][j]],
             "xyz": [float(v) * scale3 for v in clusters["pca"][j]]}
            for j in range(len(clusters["sizes"]))
        ]
    for info, face in zip(marked, mark_faces, strict=True):
        world = to_world(info["pca"][None, :2])[0]
        meta["marks"].append({
            "label": info.get("label", ""),
            "world": [float(world[0]), float(world[1])],
            "xyz": [float(v) * scale3 for v in info["pca"][:3]],
            "neighbours": [int(i) for i in info["indices"]],
            "distances": [round(float(d), 5) for d in info["distances"]],
            "likeness": [round(likeness_module.likeness(float(d)), 2) for d in info["distances"]],
            "image": None if face is None else data_url(encode_jpeg(face, 90), "jpeg"),
        })
    return meta


def _write_points(path: Path, centres: np.ndarray, xyz: np.ndarray, clusters: dict | None,
                  means: np.ndarray, order: np.ndarray) -> None:
    """Positions (2-D uint16 in [0, 1], 3-D int16 in +-4), clusters, each face's mean colour
    (faces + mark; the 3-D view draws it for far, tiny faces), each face's place in the sheets
    (face i is cell place % 256 of sheet place // 256) and each sheet's bounding sphere in 3-D
    (x, y, z, radius; float32), from which the 3-D view picks the sheets near the viewer."""
    xy = np.clip(np.rint(centres * 65535), 0, 65535).astype("<u2")
    q3 = np.clip(np.rint(xyz / 4.0 * 32767), -32767, 32767).astype("<i2")  # range +-4
    rgb = np.clip(np.rint(means), 0, 255).astype(np.uint8)
    if rgb.shape[1] == 1:
        rgb = np.repeat(rgb, 3, axis=1)
    place = np.empty(len(order), dtype="<u4")
    place[order] = np.arange(len(order), dtype=np.uint32)
    stored = q3.astype(np.float64) * (4.0 / 32767)  # the positions the page will see
    per = face_images.SHEET_COLUMNS**2
    bricks = np.empty((-(-len(order) // per), 4), dtype="<f4")
    for s in range(len(bricks)):
        points = stored[order[s * per : (s + 1) * per]]
        centre = (points.min(axis=0) + points.max(axis=0)) / 2
        bricks[s, :3] = centre
        bricks[s, 3] = np.sqrt(((points - centre) ** 2).sum(axis=1).max()) + 1e-6
    data = {"xy": _b64(xy), "xyz": _b64(q3), "xyzRange": 4.0, "cluster": None,
            "rgb": _b64(rgb), "place": _b64(place), "bricks": _b64(bricks)}
    if clusters is not None:
        data["cluster"] = _b64(clusters["labels"].astype("<u2"))
    _write_js(path, "SOSIE_POINTS", data)


def _face_stack(out: Path, n: int, px: int, colour: bool) -> np.ndarray:
    """Room for every face at map size: in memory, or above 256 MB (200k colour faces at 64 px
    are 2.5 GB) in a temporary file inside `out` that the page cache backs."""
    shape = (n, px, px, *((3,) if colour else ()))
    if int(np.prod(shape)) <= 256 << 20:
        return np.empty(shape, dtype=np.uint8)
    return np.lib.format.open_memmap(out / FACE_STACK, mode="w+", dtype=np.uint8, shape=shape)


def _release_face_stack(out: Path) -> None:
    (out / FACE_STACK).unlink(missing_ok=True)


def _write_chunks(directory: Path, corpus: Any, n: int, found: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for c, start in enumerate(range(0, n, CHUNK)):
        stop = min(n, start + CHUNK)
        payload = {
            "chunk": c,
            "start": start,
            "names": [corpus.source(i) for i in range(start, stop)],
        }
        if found is not None:
            payload["knn"] = _b64(found.indices[start:stop].astype("<i4"))
            payload["dist"] = _b64(found.distances[start:stop].astype("<f4"))
        text = "sosieChunk(" + json.dumps(payload, separators=(",", ":")) + ");\n"
        atomic_write_bytes(directory / f"{c}.js", text.encode("utf-8"), fsync=False)


def _write_js(path: Path, name: str, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"window.{name} = " + json.dumps(value, separators=(",", ":"), allow_nan=False) + ";\n"
    atomic_write_bytes(path, text.encode("utf-8"), fsync=False)  # whole; errors name it


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _staging(out: Path) -> Path:
    """A new empty folder beside `out` for the site (refusing a non-empty `out` that is not a
    map, or that holds a link where the site has a file); folders that interrupted builds
    left there are removed, after putting back a previous site that a build killed between
    its two renames left aside."""
    if not os.path.lexists(out) and out.parent.is_dir():
        for name in sorted(os.listdir(out.parent)):
            aside = out.parent / name / "site"
            if name.startswith(f".{out.name}{_OLD}") and aside.is_dir() and not aside.is_symlink():
                os.rename(aside, out)
                break
    if out.exists() and any(out.iterdir()):
        if not (out / "data" / "meta.js").exists() and not (out / MARKER).exists():
            raise FileExistsError(f"{out}: not empty and not a Sosie map; refusing to overwrite")
        # a link in place of a generated folder goes with the old site (unlinked, not emptied)
        refuse_links(out, [m for m in os.listdir(out) if m not in _TREES], "sosie map")
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(out.parent):
        if name.startswith((f".{out.name}{_BUILDING}", f".{out.name}{_OLD}")):
            remove_tree(out.parent / name, ignore_errors=True)
    # mkdir, not mkdtemp (0700): the site is served as OUT was, or by the umask
    staging = out.parent / f".{out.name}{_BUILDING}{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    if out.is_dir():
        os.chmod(staging, stat.S_IMODE(os.stat(out).st_mode))
    return staging


def _swap_in(staging: Path, out: Path) -> Path | None:
    """Put the complete site `staging` in the place of `out` (keeping the files of `out` that
    are not a map's own); the folder holding the previous site, for the caller to remove."""
    if not out.exists():
        os.rename(staging, out)
        return None
    for name in os.listdir(out):
        if name not in _GENERATED and not os.path.lexists(staging / name):
            os.rename(out / name, staging / name)
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}{_OLD}", dir=out.parent))
    os.rename(out, old / "site")
    os.rename(staging, out)  # the previous site stays whole under `old` until here
    return old


def _copy_web(out: Path) -> None:
    for name in ("index.html", "vr.html"):
        shutil.copyfile(WEB_DIR / name, out / name)
    shutil.copytree(WEB_DIR / "assets", out / "assets", dirs_exist_ok=True)


__all__ = ["MapOptions", "MarkedFace", "SiteSummary", "build_site", "nearest_to"]
