"""Real face photos for tests, made at test time from scikit-image's bundled data (never committed).

- `astronaut()`: NASA portrait of Eileen Collins, 512x512 RGB, public domain; one frontal face
  (looked at: forehead to chin x ~180-265, y ~80-175) and a round mission badge on the suit that
  the HOG detector sometimes mistakes for a weak face.
- `lfw_faces()`: the 100 face crops (25x25 gray) of `skimage.data.lfw_subset()` (Labeled Faces
  in the Wild); `lfw_photo(i)` upscales one to a photo-like RGB image. No identity labels.
- `no_face_photo()`: `skimage.data.coffee()`, a cup of coffee (no face, no detection).
- `camera_frame()`: a photo placed in a 12 MP (4056x3040) camera frame.
- `generated_faces()`: faces that do not exist, 64x64 RGB as the DCGAN generator makes them.
- `with_small_face()`: a face crop shrunk to a given face size somewhere in a larger photo.
- `write_lfw_images()`: a folder of LFW faces as PNG photos (build and rank tests).
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image

#: Where the astronaut's face is, in the 512x512 image (checked by eye): left, top, right, bottom.
ASTRONAUT_FACE_REGION = (170, 60, 275, 190)

#: The Pi HQ camera's full 12.3 MP frame.
TWELVE_MP = (4056, 3040)

# EXIF orientation -> how a camera stores the upright picture `a` (the inverse of what viewers
# apply), written out with numpy from the EXIF 2.3 definitions, independent of Pillow.
STORED_FOR_ORIENTATION = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1, :],  # mirrored upside down
    5: lambda a: a.transpose(1, 0, 2),  # 0th row is the left side, 0th column the top
    6: lambda a: np.rot90(a, 1),  # 0th row is the right side (phone held upright)
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # 0th row is the right side, column bottom
    8: lambda a: np.rot90(a, -1),  # 0th row is the left side, 0th column the bottom
}


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@cache
def astronaut() -> np.ndarray:
    from skimage import data

    return _frozen(data.astronaut())


@cache
def lfw_faces() -> np.ndarray:
    """(100, 25, 25) uint8 gray face crops."""
    from skimage import data

    return _frozen((data.lfw_subset()[:100] * 255).round().astype(np.uint8))


@cache
def lfw_non_faces() -> np.ndarray:
    """(100, 25, 25) uint8 gray crops without a face (the second half of lfw_subset)."""
    from skimage import data

    return _frozen((data.lfw_subset()[100:] * 255).round().astype(np.uint8))


def lfw_photo(index: int, side: int = 200) -> np.ndarray:
    """LFW face `index` upscaled (bicubic) to side x side RGB."""
    gray = Image.fromarray(lfw_faces()[index]).resize((side, side), Image.Resampling.BICUBIC)
    return _frozen(np.repeat(np.asarray(gray)[:, :, None], 3, axis=2))


@cache
def no_face_photo() -> np.ndarray:
    from skimage import data

    return _frozen(data.coffee())


def camera_frame(photo: np.ndarray, size: tuple[int, int] = TWELVE_MP) -> tuple[np.ndarray, float,
                                                                                  tuple[int, int]]:
    """`photo` scaled (bicubic) to the frame's height and centred on mid-gray.

    Returns the frame, the scale and the (x, y) offset of the photo in it.
    """
    width, height = size
    scale = height / photo.shape[0]
    new_w = round(photo.shape[1] * scale)
    scaled = np.asarray(
        Image.fromarray(photo).resize((new_w, height), Image.Resampling.BICUBIC)
    )
    frame = np.full((height, width, 3), 128, np.uint8)
    x0 = (width - new_w) // 2
    frame[:, x0:x0 + new_w] = scaled
    return _frozen(frame), scale, (x0, 0)


def encode(pixels: np.ndarray, fmt: str = "PNG", *, orientation: int | None = None,
           **save: object) -> bytes:
    """`pixels` encoded as `fmt`; with `orientation`, stored the way a camera would with that
    EXIF tag, so a viewer honouring the tag shows `pixels` again."""
    image = Image.fromarray(np.ascontiguousarray(
        STORED_FOR_ORIENTATION[orientation](pixels) if orientation else pixels
    ))
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save["exif"] = exif
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def rescaled(pixels: np.ndarray, factor: float) -> np.ndarray:
    image = Image.fromarray(pixels)
    size = (round(image.width * factor), round(image.height * factor))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


@cache
def generated_faces(count: int = 48, seed: int = 0) -> np.ndarray:
    """(count, 64, 64, 3) uint8 faces of `appliance.generator.dcgan` (raises WeightsNotFound
    without the gan-face-generate package)."""
    from appliance.generator.dcgan import DCGAN

    return _frozen(DCGAN.load().faces(seed, list(range(count)), size=64))


def with_small_face(crop: np.ndarray, face_side: float, target: int,
                    size: tuple[int, int], at: tuple[float, float]) -> np.ndarray:
    """A `size` (width, height) RGB photo: the coffee photo as background and a face crop
    (gray or RGB; its face about `face_side` px wide, e.g. an LFW crop: the whole crop) padded
    by reflection, scaled (Lanczos) so the face is `target` px and centred at `at`."""
    import cv2

    rgb = crop if crop.ndim == 3 else np.repeat(crop[:, :, None], 3, axis=2)
    pad = max(1, max(rgb.shape[:2]) // 2)
    padded = cv2.copyMakeBorder(np.ascontiguousarray(rgb), pad, pad, pad, pad,
                                cv2.BORDER_REFLECT_101)
    k = target / face_side
    scaled = np.asarray(Image.fromarray(padded).resize(
        (round(padded.shape[1] * k), round(padded.shape[0] * k)), Image.Resampling.LANCZOS))
    photo = np.array(Image.fromarray(no_face_photo()).resize(size, Image.Resampling.BILINEAR))
    dx = round(at[0] - scaled.shape[1] / 2)
    dy = round(at[1] - scaled.shape[0] / 2)
    x0, y0 = max(0, dx), max(0, dy)
    x1, y1 = min(size[0], dx + scaled.shape[1]), min(size[1], dy + scaled.shape[0])
    photo[y0:y1, x0:x1] = scaled[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return _frozen(photo)


def write_lfw_images(folder, count: int = 100, upscale: int = 8):  # type: ignore[no-untyped-def]
    """Write the first `count` LFW faces as gray PNGs `lfw-000.png`... into `folder`, upscaled
    `upscale` times (bicubic) so dlib finds most of them; returns the folder."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, face in enumerate(lfw_faces()[:count]):
        path = folder / f"lfw-{i:03d}.png"
        if not path.exists():
            gray = Image.fromarray(face)
            gray.resize((gray.width * upscale, gray.height * upscale),
                        Image.Resampling.BICUBIC).save(path)
    return folder
