"""Aligned crops of a face beyond the photo's edge (`aligned_crop`: the photo grown with a soft
border by `edge_extended` where the crop leaves it), and luminance (`to_gray`)."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

#: The surround is blurred on a grid of about this many cells across the extended photo.
SURROUND_CELLS = 48


def aligned_crop(pixels: np.ndarray, shape: Any, size: int, padding: float) -> np.ndarray:
    """dlib's size x size chip of `pixels` aligned by the landmarks `shape` (eyes level, at fixed
    places; `padding` as `dlib.get_face_chip`), with a soft surround where it leaves the photo.

    A crop inside the photo is `dlib.get_face_chip`'s own. One that leaves it (or whose border
    dlib's image pyramid reads leaves it: `surround_margin`) is cut, with the same geometry,
    from `edge_extended`'s photo: by `cv2.warpAffine` (bilinear, as dlib) when dlib would cut
    it straight from the image, by dlib itself when it would shrink the image first (a crop
    much smaller than the face: dlib's image pyramid).
    """
    import cv2
    import dlib

    details = dlib.get_face_chip_details(shape, size=size, padding=padding)
    margin = surround_margin(details, *pixels.shape[:2])
    if not margin:
        return dlib.get_face_chip(pixels, shape, size=size, padding=padding)
    neutral = edge_colour(pixels)
    extended, margin = edge_extended(pixels, margin, neutral)
    if pyramid_border(details) > 2:  # dlib shrinks the photo first: its pyramid, its chip
        moved = dlib.full_object_detection(
            dlib.rectangle(shape.rect.left() + margin, shape.rect.top() + margin,
                           shape.rect.right() + margin, shape.rect.bottom() + margin),
            [dlib.point(p.x + margin, p.y + margin) for p in shape.parts()],
        )
        return dlib.get_face_chip(extended, moved, size=size, padding=padding)
    transform = chip_transform(details)
    transform[:, 2] += margin
    return cv2.warpAffine(extended, transform, (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=neutral)


def chip_transform(details: Any) -> np.ndarray:
    """(2, 3) float64: a chip's pixel (u, v, 1) -> the photo's (x, y), as dlib's
    `extract_image_chip` maps them (the chip's centre on the rectangle's, rotated by its angle,
    (width - 1) / (cols - 1) photo pixels a chip pixel)."""
    rect, angle = details.rect, details.angle
    scale_x = (rect.width() - 1) / (details.cols - 1)
    scale_y = (rect.height() - 1) / (details.rows - 1)
    cos, sin = math.cos(angle), math.sin(angle)
    linear = np.array([[cos * scale_x, -sin * scale_y], [sin * scale_x, cos * scale_y]])
    chip_centre = np.array([(details.cols - 1) / 2, (details.rows - 1) / 2])
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    return np.hstack([linear, (centre - linear @ chip_centre)[:, None]])


def surround_margin(details: Any, height: int, width: int) -> int:
    """How many pixels the photo must grow on each side to hold the crop `details` (dlib's
    chip details) and the border dlib reads around it (`pyramid_border`), 0 when both stay
    inside the photo."""
    rect, angle = details.rect, details.angle
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    half = np.array([rect.width() / 2, rect.height() / 2])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    corners = centre + (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half) @ rotation.T
    overshoot = max(
        -corners.min(),
        (corners[:, 0] - (width - 1)).max(),
        (corners[:, 1] - (height - 1)).max(),
    )
    border = pyramid_border(details)
    # dlib reads past the crop's corners only through its pyramid (2 is slack otherwise)
    reach = overshoot + border if border > 2 else overshoot
    return math.ceil(overshoot) + border if reach > 0.0 else 0


def pyramid_border(details: Any) -> int:
    """The border (photo pixels) the photo needs around the crop `details`: 2 when dlib would
    cut it from the photo itself; when dlib shrinks the photo first (an image pyramid: a crop
    much smaller than the face), twice the border dlib grows its crop by (2, then twice that
    plus 2 a level), since its levels' black edges reach up to 1.4 times as far and would show
    along the crop's edges. The levels are counted from a 0.8 area ratio, a little before
    dlib's own 1.0: one level too many only widens the border."""
    area = details.rect.width() * details.rect.height() / 4
    grow = 2
    while area > 0.8 * details.rows * details.cols:
        area /= 4
        grow = 2 * grow + 2
    return grow if grow == 2 else 2 * grow


def edge_colour(pixels: np.ndarray) -> list[float]:
    """The mean colour of the photo's outermost pixels (one value per channel)."""
    edges = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    channels = edges.shape[-1] if pixels.ndim == 3 else 1
    return [float(v) for v in edges.reshape(-1, channels).mean(axis=0)]


def edge_extended(
    pixels: np.ndarray, margin: int, neutral: list[float]
) -> tuple[np.ndarray, int]:
    """`pixels` grown by at least `margin` on each side with a soft border, and the margin
    used (`margin` rounded up to whole cells of the surround's grid).

    A face near the photo's edge (a tight crop, a tiny LFW photo, a generated face filling its
    frame) would otherwise print with black wedges where the rotated crop leaves the photo; on
    thermal paper those are solid ink. The border is neutral: `neutral` (the mean colour of the
    photo's edge), the photo's own colours fading into it, never edge pixels repeated into
    bands. It is made at low resolution, cheap at any size: the photo shrunk to cells
    (`SURROUND_CELLS` across the extended photo), bordered by `neutral`, blurred, and brought
    back up in one resize. Inside it the photo's own pixels, exactly, but for a thin frame
    (`feather_frame`) where they fade into the border: no hard line where the photo ends.
    """
    import cv2

    height, width = pixels.shape[:2]
    # the blur of the surround, in photo pixels: half the margin, at least 2 and 1/48 of the
    # extended photo (what blurring a 96-px copy of it by 2 pixels spreads)
    sigma = max(2.0, (max(height, width) + 2 * margin) / 48, margin / 2)
    cell = max(1, (max(height, width) + 2 * margin) // SURROUND_CELLS)
    border = math.ceil(margin / cell)
    margin = border * cell
    # whole cells (OpenCV's fast integer shrink): the width % cell columns (and rows) left over
    # are left out, half on each side, a shift of under half a cell in a blur of several
    across, down = max(1, width // cell), max(1, height // cell)
    left, top = max(0, width - across * cell) // 2, max(0, height - down * cell) // 2
    small = cv2.resize(pixels[top:top + down * cell, left:left + across * cell], (across, down),
                       interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(small, border, border, border, border, cv2.BORDER_CONSTANT,
                               value=neutral)
    kernel = gaussian_kernel(round(sigma / cell, 1))
    small = cv2.sepFilter2D(small, -1, kernel, kernel)
    extended = cv2.resize(small, (width + 2 * margin, height + 2 * margin),
                          interpolation=cv2.INTER_LINEAR)
    inner = extended[margin:margin + height, margin:margin + width]
    band, strips = feather_frame(height, width)
    inner[band:height - band, band:width - band] = pixels[band:height - band, band:width - band]
    for frame, weight, rest in strips:
        inner[frame] = cv2.blendLinear(pixels[frame], inner[frame], weight, rest)
    return extended, margin


@functools.lru_cache(maxsize=16)
def gaussian_kernel(sigma: float) -> np.ndarray:
    """A Gaussian's taps (a column, float64, +-3 sigma), for `cv2.sepFilter2D`; read-only, as
    it is kept and shared (crops may be cut on several threads)."""
    import cv2

    kernel = cv2.getGaussianKernel(2 * math.ceil(3 * sigma) + 1, sigma)
    kernel.flags.writeable = False
    return kernel


#: One strip of the frame `edge_extended` blends: (slice, the photo's weight there, 1 - weight).
Strip = tuple[Any, np.ndarray, np.ndarray]


@functools.lru_cache(maxsize=4)
def feather_frame(height: int, width: int) -> tuple[int, tuple[Strip, ...]]:
    """The frame of a height x width photo where `edge_extended` fades it into its surround: the
    frame's width and its four strips, the weights float32 (as `cv2.blendLinear` takes them),
    contiguous and read-only. Made once per photo size (a build's faces all have one): 8 bytes
    a pixel of the frame, 0.12 MB at 256 px."""
    feather = max(2.0, min(height, width) / 16)
    rows = np.minimum(np.arange(height), np.arange(height)[::-1])[:, None]
    cols = np.minimum(np.arange(width), np.arange(width)[::-1])[None, :]
    weight = np.clip((np.minimum(rows, cols) + 1) / feather, 0.0, 1.0).astype(np.float32)
    band = min(math.ceil(feather), (min(height, width) + 1) // 2)
    strips = []
    for frame in (np.s_[:band], np.s_[height - band:], np.s_[band:height - band, :band],
                  np.s_[band:height - band, width - band:]):
        part = np.ascontiguousarray(weight[frame])
        rest = np.float32(1.0) - part
        part.flags.writeable = rest.flags.writeable = False
        strips.append((frame, part, rest))
    return band, tuple(strips)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance of an RGB uint8 image, as uint8 (the same weights as Pillow's "L")."""
    weights = np.array([299, 587, 114], dtype=np.uint32)
    return ((rgb.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)
