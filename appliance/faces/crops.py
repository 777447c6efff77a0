"""Aligned crops of a face beyond the photo's edge: the photo grown with a soft border
(`edge_extended`), and luminance (`to_gray`)."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np


def edge_extended(
    pixels: np.ndarray, shape: Any, size: int, padding: float
) -> tuple[np.ndarray, Any]:
    """`pixels` grown with a soft border where the aligned crop would leave them.

    A face near the photo's edge (a tight crop, a tiny LFW photo) would otherwise print with
    black wedges where the rotated crop leaves the photo; on thermal paper those are solid ink.
    The border is neutral: the mean colour of the photo's edge, the photo's own colours fading
    into it (blurred at low resolution, cheap at any size), never edge pixels repeated into
    bands; when the crop stays inside the photo, `pixels` and `shape` come back untouched.
    """
    import cv2
    import dlib

    height, width = pixels.shape[:2]
    details = dlib.get_face_chip_details(shape, size=size, padding=padding)
    rect, angle = details.rect, details.angle
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    half = np.array([rect.width() / 2, rect.height() / 2])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    corners = centre + (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half) @ rotation.T
    overshoot = max(
        0.0,
        -corners.min(),
        (corners[:, 0] - (width - 1)).max(),
        (corners[:, 1] - (height - 1)).max(),
    )
    if overshoot <= 0.0:
        return pixels, shape
    margin = math.ceil(overshoot) + 2
    # Not the edge pixels repeated outwards (they smear into bands): the edge's mean colour,
    # with the photo's own colours fading into it (a blur of both at low resolution).
    edges = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    neutral = edges.reshape(-1, edges.shape[-1] if pixels.ndim == 3 else 1).mean(axis=0)
    extended = cv2.copyMakeBorder(pixels, margin, margin, margin, margin, cv2.BORDER_CONSTANT,
                                  value=[float(v) for v in neutral])
    full = (extended.shape[1], extended.shape[0])
    factor = min(1.0, 96 / max(full))
    small = cv2.resize(extended, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(2.0, margin * factor / 2))
    extended = cv2.resize(small, full, interpolation=cv2.INTER_LINEAR)
    # the photo's last few pixels fade into the surround: no hard line where the photo ends;
    # blended only in the frame where the photo's weight < 1 (inside it, its own pixels exactly)
    inner = extended[margin:margin + height, margin:margin + width]
    band, strips = feather_frame(height, width)
    inner[band:height - band, band:width - band] = pixels[band:height - band, band:width - band]
    for frame, weight, rest in strips:
        if pixels.ndim == 3:
            weight, rest = weight[:, :, None], rest[:, :, None]
        inner[frame] = np.rint(pixels[frame] * weight + inner[frame] * rest).astype(pixels.dtype)
    moved = dlib.full_object_detection(
        dlib.rectangle(shape.rect.left() + margin, shape.rect.top() + margin,
                       shape.rect.right() + margin, shape.rect.bottom() + margin),
        [dlib.point(p.x + margin, p.y + margin) for p in shape.parts()],
    )
    return extended, moved


#: One strip of the frame `edge_extended` blends: (slice, the photo's weight there, 1 - weight).
Strip = tuple[Any, np.ndarray, np.ndarray]


@functools.lru_cache(maxsize=4)
def feather_frame(height: int, width: int) -> tuple[int, tuple[Strip, ...]]:
    """The frame of a height x width photo where `edge_extended` fades it into its surround: the
    frame's width and its four strips, the weights float64 and read-only. Made once per photo
    size (a build's faces all have one): 16 bytes a pixel of the frame, 0.25 MB at 256 px."""
    feather = max(2.0, min(height, width) / 16)
    rows = np.minimum(np.arange(height), np.arange(height)[::-1])[:, None]
    cols = np.minimum(np.arange(width), np.arange(width)[::-1])[None, :]
    weight = np.clip((np.minimum(rows, cols) + 1) / feather, 0.0, 1.0)
    band = min(math.ceil(feather), (min(height, width) + 1) // 2)
    strips = []
    for frame in (np.s_[:band], np.s_[height - band:], np.s_[band:height - band, :band],
                  np.s_[band:height - band, width - band:]):
        part = weight[frame].copy()
        rest = 1.0 - part
        part.flags.writeable = rest.flags.writeable = False
        strips.append((frame, part, rest))
    return band, tuple(strips)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance of an RGB uint8 image, as uint8 (the same weights as Pillow's "L")."""
    weights = np.array([299, 587, 114], dtype=np.uint32)
    return ((rgb.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)
