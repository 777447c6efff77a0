"""Thumbnails never smear: where an aligned crop runs past its source (the DCGAN's 64-px faces
with padding 0.4), the surround is neutral, not edge pixels repeated into bands.

Repeated edge pixels are constant along the direction leaving the source and vary along its
edge: their gradient across the edge is nil while the gradient along it is not. The test maps
every thumbnail pixel back into the source (dlib's chip geometry) and compares both gradients
over the pixels outside it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.corpus.analysis import item_of_drawn_face
from appliance.corpus.thumbs import decode
from appliance.faces.crops import to_gray

SIZE, PADDING = 256, 0.4


def outside_distance(face, size: int = SIZE, padding: float = PADDING) -> np.ndarray:
    """(size, size): how far (source pixels) each thumbnail pixel lies outside the source."""
    import dlib

    details = dlib.get_face_chip_details(face.shape, size=size, padding=padding)
    rect, angle = details.rect, details.angle
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    half = np.array([rect.width() / 2, rect.height() / 2])
    v, u = np.mgrid[0:size, 0:size]
    unit = np.stack([(u + 0.5) / size * 2 - 1, (v + 0.5) / size * 2 - 1], axis=-1)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    source = centre + (unit * half) @ rotation.T
    h, w = face.pixels.shape[:2]
    x, y = source[..., 0], source[..., 1]
    return np.maximum.reduce([-x, -y, x - (w - 1), y - (h - 1)])


def banding(thumb: np.ndarray, distance: np.ndarray) -> float:
    """Mean gradient along the source's edge over mean gradient across it, outside the
    source: >> 1 for repeated edge pixels (bands), < 1 for a surround fading out."""
    import cv2

    gray = thumb.astype(np.float64)
    gx, gy = cv2.Sobel(gray, cv2.CV_64F, 1, 0), cv2.Sobel(gray, cv2.CV_64F, 0, 1)
    nx, ny = cv2.Sobel(distance, cv2.CV_64F, 1, 0), cv2.Sobel(distance, cv2.CV_64F, 0, 1)
    norm = np.hypot(nx, ny) + 1e-9
    nx, ny = nx / norm, ny / norm
    across, along = np.abs(gx * nx + gy * ny), np.abs(gy * nx - gx * ny)
    outside = distance > 2
    return float(along[outside].mean() / (across[outside].mean() + 1e-3))


@pytest.fixture(scope="module")
def overshooting(generated_faces, analyzer):
    """(face, rgb) of the generated faces whose 0.4-padded crop runs well past the source."""
    found = []
    for rgb in generated_faces:
        face = analyzer.analyze(rgb)
        if hasattr(face, "descriptor") and (outside_distance(face) > 2).sum() >= 500:
            found.append((face, rgb))
    assert len(found) >= 10
    return found


def test_no_replicated_border_bands(overshooting):
    scores = [banding(to_gray(face.aligned(SIZE, padding=PADDING)), outside_distance(face))
              for face, _ in overshooting]
    assert max(scores) < 1.0, [round(s, 2) for s in scores]


def test_the_surround_is_neutral_far_from_the_source(overshooting):
    """Well outside the source the thumbnail settles to one colour (the edge's mean)."""
    for face, _ in overshooting:
        distance = outside_distance(face)
        far = distance > 12
        if far.sum() < 200:
            continue
        thumb = to_gray(face.aligned(SIZE, padding=PADDING)).astype(np.float64)
        assert thumb[far].std() < 12


def test_the_build_stores_such_thumbnails(overshooting, analyzer):
    """What a corpus build stores (`item_of_drawn_face`, as `sosie build dcgan:` and the demo
    corpus do): the same crop, without bands."""
    face, rgb = overshooting[0]
    result = item_of_drawn_face(rgb, analyzer, SIZE, "png", 92)
    thumb = decode(result.thumbnail, "png", SIZE)
    assert banding(thumb, outside_distance(face)) < 1.0
