"""How the map's images are stored: lossy WebP (Chromium and the Meta Quest browser show it).

Qualities chosen on the 200k generated corpus (`bench/map_quality.py`, against each thumbnail
area-filtered to the sheet size): sheets at WebP 85 are as close to it at 64 px as the JPEG 82
they replace (670 bytes a face, SSIM 0.966, 2.6 levels off; JPEG: 777, 0.965, 2.6) and at 128 px
(corpora up to 30,000 faces) a little less sharp in 71 % of its bytes (1,454, 0.968, 2.0;
JPEG: 2,054, 0.975, 1.6; WebP 90 would match it in 1,942); tiles at WebP 75 take 45 % of JPEG
80's bytes (768 against 1,718 a face, SSIM 0.983 against 0.985). WebP costs ~5x the encoding
CPU. A gray image is one luminance plane (flat chroma: a few bytes). The 3-D atlas and a
marked face's crop stay JPEG (below).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

SUFFIX = ".webp"  # of every tile and sheet (the pages ask for this suffix)
SHEET_QUALITY = 85  # libwebp quality of the sheets (the faces the panel and the 3-D view show)
TILE_QUALITY = 75  # of the 2-D map's tiles
ATLAS_JPEG_QUALITY = 88  # the 3-D view's atlas stays JPEG: one 3584² image at 200k that the
# first frame waits for, decoded by Chromium in 431 ms where its WebP took 650-859 ms (WebP
# would save 0.9 MB of 8.9)
METHOD = 2  # libwebp's effort, 0-6: 2 writes 4-7 % more bytes than its default 4 in under half
# the time (tiles: 0.50 against 1.20 ms of CPU a face); 0 writes 30 % more


def encode_webp(image: np.ndarray, quality: int, method: int = METHOD) -> bytes:
    """Lossy WebP of a uint8 gray (h, w) or RGB (h, w, 3) image."""
    if not 0 <= quality <= 100:
        raise ValueError(f"WebP quality {quality}: expected 0..100")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, "WEBP", quality=int(quality),
                                                      method=int(method))
    return buffer.getvalue()


def data_url(data: bytes, kind: str) -> str:
    """A `data:image/KIND;base64,...` URL of encoded image bytes."""
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")
