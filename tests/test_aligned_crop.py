"""`crops.aligned_crop` cuts dlib's chip itself: the same geometry as `dlib.get_face_chip`
(checked on images whose pixels are their own coordinates), the same pixels within a grey level
on real faces, the photo's own pixels exactly inside it, and a surround (`edge_extended`) that
keeps the photo, settles to the edge's colour and never goes black. The JPEG thumbnails are
Pillow's very bytes."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.corpus.thumbs import encode
from appliance.faces.crops import (
    aligned_crop,
    chip_transform,
    edge_colour,
    edge_extended,
    feather_frame,
    pyramid_border,
    surround_margin,
)

FLAGS_LINEAR_INVERSE = 1 | 16  # cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


def _moved(shape, by: int):
    import dlib

    return dlib.full_object_detection(
        dlib.rectangle(shape.rect.left() + by, shape.rect.top() + by,
                       shape.rect.right() + by, shape.rect.bottom() + by),
        [dlib.point(p.x + by, p.y + by) for p in shape.parts()])


@pytest.fixture(scope="module")
def faces(generated_faces, analyzer, astronaut, astronaut_face):
    """Real faces whose aligned crops leave the photo: generated ones and a tight astronaut."""
    found = [face for face in map(analyzer.analyze, generated_faces[:12])
             if hasattr(face, "descriptor")]
    left, top, right, bottom = astronaut_face.box
    tight = analyzer.analyze(np.ascontiguousarray(astronaut[top:bottom, left:right]))
    assert len(found) >= 6 and hasattr(tight, "descriptor")
    return [*found[:6], tight]


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 6), size=st.integers(8, 400), padding=st.floats(0.0, 1.0))
def test_the_chip_geometry_is_dlibs(faces, index, size, padding):
    """`chip_transform` maps chip pixels where dlib takes them from: dlib's chip of an image
    holding its own x (and y) coordinates, in 1/64 px, reads back the transform's points."""
    import dlib

    face = faces[index]
    details = dlib.get_face_chip_details(face.shape, size=size, padding=padding)
    if pyramid_border(details) > 2:
        return  # dlib resamples a smaller copy: aligned_crop leaves such crops to dlib
    offset = 2 + math.ceil(max(details.rect.width(), details.rect.height()))
    height, width = (np.array(face.pixels.shape[:2]) + 2 * offset)
    rows, cols = np.mgrid[0:height, 0:width]
    moved = _moved(face.shape, offset)
    read_x = dlib.get_face_chip((cols * 64).astype(np.uint16), moved, size=size,
                                padding=padding) / 64 - offset
    read_y = dlib.get_face_chip((rows * 64).astype(np.uint16), moved, size=size,
                                padding=padding) / 64 - offset
    v, u = np.mgrid[0:size, 0:size]
    transform = chip_transform(details)
    x = transform[0, 0] * u + transform[0, 1] * v + transform[0, 2]
    y = transform[1, 0] * u + transform[1, 1] * v + transform[1, 2]
    assert np.abs(x - read_x).max() < 0.05 and np.abs(y - read_y).max() < 0.05


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 6), size=st.integers(8, 300), padding=st.floats(0.0, 0.8),
       gray=st.booleans())
def test_the_crop_is_dlibs_chip_of_the_extended_photo(faces, index, size, padding, gray):
    """What `aligned_crop` warps is what dlib would cut from `edge_extended`'s photo: within a
    grey level on average, never far anywhere (OpenCV and dlib round the bilinear weights
    differently)."""
    import dlib

    face = faces[index]
    pixels = face.pixels if not gray else np.ascontiguousarray(face.pixels[:, :, 1])
    details = dlib.get_face_chip_details(face.shape, size=size, padding=padding)
    crop = aligned_crop(pixels, face.shape, size, padding)
    margin = surround_margin(details, *pixels.shape[:2])
    if margin:
        pixels, margin = edge_extended(pixels, margin, edge_colour(pixels))
    expected = dlib.get_face_chip(pixels, _moved(face.shape, margin), size=size, padding=padding)
    assert crop.shape == expected.shape and crop.dtype == np.uint8
    difference = np.abs(crop.astype(int) - expected)
    assert difference.mean() < 0.6 and difference.max() <= 3, (difference.mean(),
                                                                 difference.max())


@settings(max_examples=40, deadline=None)
@given(index=st.integers(0, 6), size=st.integers(8, 160), padding=st.floats(0.0, 2.0))
def test_a_crop_dlib_shrinks_for_has_no_black_edges(faces, index, size, padding):
    """A crop much smaller than the face is cut by dlib from its image pyramid, whose levels
    read past the crop (`pyramid_border`) and come out black where the photo ends: the photo
    grows by that much too, so a photo of one grey gives a crop of that grey, edges included."""
    face = faces[index]
    grey = np.full_like(face.pixels, 128)
    crop = aligned_crop(grey, face.shape, size, padding)
    assert crop.min() >= 126 and crop.max() <= 130, (crop.min(), crop.max())


def test_inside_the_photo_the_crop_is_the_photos_own_pixels(faces):
    """Where a chip pixel's bilinear neighbours all lie inside the photo, past the feathered
    frame, it is the photo warped alone, exactly; beyond the photo it is the surround."""
    import cv2
    import dlib

    for face in faces:
        details = dlib.get_face_chip_details(face.shape, size=256, padding=0.4)
        transform = chip_transform(details)
        crop = aligned_crop(face.pixels, face.shape, 256, 0.4)
        height, width = face.pixels.shape[:2]
        _, margin = edge_extended(face.pixels, surround_margin(details, height, width),
                                  edge_colour(face.pixels))
        alone = np.zeros((height + 2 * margin, width + 2 * margin, 3), np.uint8)
        alone[margin:margin + height, margin:margin + width] = face.pixels  # on nothing
        shifted = transform + np.array([[0, 0, margin], [0, 0, margin]])  # as the crop rounds
        alone = cv2.warpAffine(alone, shifted, (256, 256), flags=FLAGS_LINEAR_INVERSE)
        v, u = np.mgrid[0:256, 0:256]
        x = transform[0, 0] * u + transform[0, 1] * v + transform[0, 2]
        y = transform[1, 0] * u + transform[1, 1] * v + transform[1, 2]
        band, _ = feather_frame(height, width)
        inside = (x >= band + 1) & (y >= band + 1) & (x <= width - band - 2) & (
            y <= height - band - 2)
        outside = (x < -2) | (y < -2) | (x > width + 1) | (y > height + 1)
        assert inside.sum() > 0.15 * 256 * 256 and outside.sum() > 500
        np.testing.assert_array_equal(crop[inside], alone[inside])
        # the surround is no copy of the photo's edge warped outwards (as BORDER_REPLICATE is)
        replicated = cv2.warpAffine(face.pixels, transform, (256, 256),
                                    flags=FLAGS_LINEAR_INVERSE, borderMode=cv2.BORDER_REPLICATE)
        assert np.abs(crop[outside].astype(int) - replicated[outside]).mean() > 2


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 120), width=st.integers(1, 120), margin=st.integers(1, 150),
       channels=st.sampled_from([0, 3]), seed=st.integers(0, 2**16))
def test_the_extended_photo_keeps_the_photo_and_fades_to_its_edge_colour(
        height, width, margin, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels else (height, width)
    pixels = rng.integers(60, 200, shape, dtype=np.uint8)
    neutral = edge_colour(pixels)
    extended, used = edge_extended(pixels, margin, neutral)
    assert used >= margin and extended.shape == (height + 2 * used, width + 2 * used,
                                                 *shape[2:])
    assert extended.dtype == np.uint8
    band, _ = feather_frame(height, width)
    inner = extended[used:used + height, used:used + width]
    np.testing.assert_array_equal(inner[band:height - band, band:width - band],
                                  pixels[band:height - band, band:width - band])
    # nothing darker or brighter than the photo and its edge colour: no black wedges
    low, high = min(int(pixels.min()), min(neutral)), max(int(pixels.max()), max(neutral))
    assert extended.min() >= low - 1 and extended.max() <= high + 1
    # the outermost ring settles to the edge's colour when the margin is wide
    if used >= 3 * max(height, width, 16):
        ring = np.concatenate([extended[0], extended[-1], extended[:, 0], extended[:, -1]])
        assert np.abs(ring.reshape(-1, channels or 1) - neutral).max() <= 2


@settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 90), width=st.integers(1, 90), gray=st.booleans(),
       quality=st.integers(1, 100), seed=st.integers(0, 2**16))
def test_jpeg_thumbnails_are_pillows_bytes(height, width, gray, quality, seed):
    """The JPEG encoder (OpenCV's libjpeg-turbo) writes what Pillow's optimized baseline JPEG
    writes, byte for byte: corpora built before and after it hold the same kind of file."""
    import cv2

    rng = np.random.default_rng(seed)
    pixels = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (3, 3),
                              0)
    pixels = pixels[:, :, 0].copy() if gray else pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, optimize=True)
    assert encode(pixels, "jpeg", quality) == buffer.getvalue()
