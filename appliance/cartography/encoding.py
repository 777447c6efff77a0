"""How the map's images are stored: lossy WebP (Chromium and the Meta Quest browser show it).

Qualities chosen on the 200k generated corpus against the thumbnail area-filtered to the same
size (bench/README.md, "map.py"): the lowest WebP quality that is as close to it as the JPEG it
replaces (SSIM and mean absolute difference). Sheets at 64 px a face: WebP 85 (effort 2), 670
bytes a face (SSIM 0.966, 2.6 levels off) where JPEG 82 took 777 (0.965, 2.6); tiles: WebP 75,
SSIM at least JPEG 80's in ~60 % of its bytes. A gray image is one luminance plane (flat
chroma: a few bytes).
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

SUFFIX = ".webp"  # of every tile and sheet (the pages ask for this suffix)
SHEET_QUALITY = 85  # libwebp quality of the sheets (the faces the panel and the 3-D view show)
TILE_QUALITY = 75  # of the 2-D map's tiles
ATLAS_QUALITY = 85  # of the 3-D view's atlas (every face at a few pixels: detail matters)
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


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG of a uint8 gray (h, w) or RGB (h, w, 3) image (colour: 4:2:0 chroma),
    for a marked face's crop (a photo, in the site only when asked)."""
    if image.ndim == 3:
        image = np.ascontiguousarray(image[:, :, ::-1])  # OpenCV writes BGR
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError("JPEG encoding failed")
    return data.tobytes()


def data_url(data: bytes, kind: str) -> str:
    """A `data:image/KIND;base64,...` URL of encoded image bytes."""
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")
