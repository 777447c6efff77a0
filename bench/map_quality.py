"""Bytes against quality of the map's images, on a real corpus: what chose the WebP qualities.

    .venv/bin/python bench/map_quality.py --corpus DIR [--faces 512] [--json out.json]

Sheets: `--faces` faces drawn at random (seed 0), decoded at the sheet size the way `sosie map`
does (the reference: the thumbnail area-filtered to that size), laid out 16x16 and encoded as
JPEG (OpenCV, what the map wrote before) and WebP (Pillow, effort `encoding.METHOD`) at several
qualities; per face: bytes, mean absolute difference to the reference (levels of 255) and SSIM
(scikit-image, the study extra), and the encoder's CPU time. Tiles: the 2-D pyramid of the first
`--tile-faces` faces, laid out as `sosie map` lays them out, every tile encoded both ways. The
anchor is the JPEG quality the map used before (sheets 82, tiles 80), in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import cpu_name, write_json  # noqa: E402 - bench/ is the script's folder

from appliance.cartography.encoding import METHOD, encode_webp  # noqa: E402
from appliance.cartography.sheets import decode_thumbnail  # noqa: E402
from appliance.cartography.site import world_transform  # noqa: E402
from appliance.cartography.tiles import choose_levels, render_pyramid  # noqa: E402
from appliance.corpus import Corpus  # noqa: E402
from appliance.images import encode_jpeg  # noqa: E402

SHEET_QUALITIES = {"jpeg": (70, 82, 90), "webp": (70, 75, 80, 85, 90)}
TILE_QUALITIES = {"jpeg": (80,), "webp": (70, 75, 80)}


def _decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


def _encode(kind: str, image: np.ndarray, quality: int) -> bytes:
    return encode_jpeg(image, quality) if kind == "jpeg" else encode_webp(image, quality)


def sheets(corpus: Corpus, rows: np.ndarray, px: int) -> list[dict]:
    from skimage.metrics import structural_similarity

    faces = np.stack([decode_thumbnail(corpus, int(i), px, {}, colour=True) for i in rows])
    count = len(faces) // 256 * 256
    grid = faces[:count].reshape(-1, 16, 16, px, px, 3).transpose(0, 1, 3, 2, 4, 5)
    canvases = grid.reshape(-1, 16 * px, 16 * px, 3)
    results = []
    for kind, qualities in SHEET_QUALITIES.items():
        for quality in qualities:
            size = cpu = 0.0
            mad, ssim = [], []
            for s, canvas in enumerate(canvases):
                started = time.process_time()
                data = _encode(kind, canvas, quality)
                cpu += time.process_time() - started
                size += len(data)
                got = _decode(data).reshape(16, px, 16, px, 3).transpose(0, 2, 1, 3, 4)
                got = got.reshape(256, px, px, 3)
                want = faces[s * 256 : (s + 1) * 256]
                mad.append(np.abs(got.astype(np.int16) - want).mean())
                ssim += [structural_similarity(g, w, channel_axis=2, data_range=255)
                         for g, w in zip(got[::4], want[::4], strict=True)]
            results.append({"face_px": px, "format": kind, "quality": quality,
                            "bytes_per_face": round(size / count),
                            "mad": round(float(np.mean(mad)), 2),
                            "ssim": round(float(np.mean(ssim)), 4),
                            "encode_ms_per_face": round(1000 * cpu / count, 3)})
    return results


def tiles(corpus: Corpus, count: int) -> list[dict]:
    from skimage.metrics import structural_similarity

    faces = np.stack([decode_thumbnail(corpus, i, 64, {}, colour=True) for i in range(count)])
    levels = choose_levels(count, 64, 256)  # the faces' density on a tile is as at 200k
    coords = np.asarray(corpus.coords2d[:count], np.float64)
    centres = world_transform(coords, 64 / (256 << levels))(coords)
    pyramid: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as scratch:
        render_pyramid(centres, faces, Path(scratch), levels=levels,
                       sink=lambda z, x, y, tile: pyramid.append(tile.copy()))
    results = []
    for kind, qualities in TILE_QUALITIES.items():
        for quality in qualities:
            size = cpu = 0.0
            ssim = []
            for k, tile in enumerate(pyramid):
                started = time.process_time()
                data = _encode(kind, tile, quality)
                cpu += time.process_time() - started
                size += len(data)
                if k % 8 == 0:
                    ssim.append(structural_similarity(_decode(data), tile, channel_axis=2,
                                                      data_range=255))
            results.append({"format": kind, "quality": quality, "tiles": len(pyramid),
                            "bytes_per_face": round(size / count),
                            "ssim": round(float(np.mean(ssim)), 4),
                            "encode_ms_per_face": round(1000 * cpu / count, 3)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus of real faces")
    parser.add_argument("--faces", type=int, default=512, help="faces in the sheets (x256)")
    parser.add_argument("--tile-faces", type=int, default=10000, help="faces in the tiles")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    corpus = Corpus.open(args.corpus)
    if not 256 <= args.faces <= corpus.count or not 1 <= args.tile_faces <= corpus.count:
        parser.error(f"--faces 256..{corpus.count} and --tile-faces 1..{corpus.count}")
    rows = np.sort(np.random.default_rng(0).choice(corpus.count, args.faces, replace=False))
    figures = {"cpu": cpu_name(), "webp_method": METHOD, "sheets": [], "tiles": []}
    print(f"map images: {corpus.count} faces of {args.corpus.name}, {cpu_name()}, WebP effort "
          f"{METHOD}")
    print(f"{'sheets':>8} {'format':>6} {'q':>3} {'B/face':>7} {'MAD':>5} {'SSIM':>7} "
          f"{'ms/face':>7}")
    for px in (64, 128):
        for r in sheets(corpus, rows, px):
            figures["sheets"].append(r)
            print(f"{r['face_px']:>5} px {r['format']:>6} {r['quality']:>3} "
                  f"{r['bytes_per_face']:>7} {r['mad']:>5} {r['ssim']:>7} "
                  f"{r['encode_ms_per_face']:>7}", flush=True)
    print(f"{'tiles':>8} {'format':>6} {'q':>3} {'B/face':>7} {'':>5} {'SSIM':>7} {'ms/face':>7}")
    for r in tiles(corpus, args.tile_faces):
        figures["tiles"].append(r)
        print(f"{r['tiles']:>8} {r['format']:>6} {r['quality']:>3} {r['bytes_per_face']:>7} "
              f"{'':>5} {r['ssim']:>7} {r['encode_ms_per_face']:>7}", flush=True)
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
