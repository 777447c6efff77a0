"""Photos in: any file, bytes or array a camera or an installer's folder produces, as RGB uint8.

`load_image` honours EXIF orientation (phone photos), converts every Pillow mode (gray, RGBA and
LA composited on white, palette, 16-bit, CMYK with its ICC profile, ...) and, when asked for a
`max_side`, decodes JPEGs at a reduced scale (libjpeg DCT scaling) before resampling, so a
12 MP photo costs a fraction of a full decode. Anything unusable raises `ImageError` with one
line naming the file and the reason.

Memory budget. A Pi 4 has 2-4 GB, and `sosie build` runs one worker per core (four), each
beside its ~150 MB of models, so one photo may cost a process ~300 MB at most. Decoding costs
up to ~8 bytes per pixel at its peak (Pillow's 4-byte RGBX buffer, plus the RGB array or an
EXIF-rotated copy), so no photo is decoded to more than `MAX_PIXELS` = 36 MP (a 7360x4912
full-frame camera; 12 MP phones and the Pi's 12 MP HQ camera are far below). Larger JPEGs are
decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (no full-size buffer ever exists), which
costs nothing a face detector needs (up to Pillow's own ceiling of 179 MP). Larger images in
any other format (PNG, WebP, TIFF, ... cannot be decoded reduced) are refused before a pixel
is decoded, on one line naming the file: a 0.5 MB PNG of 13000x13000 would otherwise cost
~1.7 GB. Conversions of large arrays work in strips of rows so that no temporary exceeds a few
megabytes. `bench/bombs.py` measures the peak memory of every entry point.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from appliance.errors import one_line

try:  # HEIC/HEIF (iPhone photos) when the optional pillow-heif is installed
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

    register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass

Source = str | Path | bytes | bytearray | memoryview | np.ndarray

#: No photo is decoded to more pixels than this (see "Memory budget" above): larger JPEGs are
#: decoded at a reduced DCT scale, larger images of other formats are refused.
MAX_PIXELS = 36_000_000

#: Pixels converted at a time (strips of rows) when turning large arrays into RGB uint8.
STRIP_PIXELS = 1 << 18

#: JPEG DCT scale denominators libjpeg decodes at directly, and the formats it decodes (MPO:
#: the multi-picture JPEGs many phones write).
_JPEG_SCALES = (1, 2, 4, 8)
_JPEG_FORMATS = ("JPEG", "MPO")

_HEIF_SUFFIXES = {".heic", ".heif", ".avif"}


class ImageError(ValueError):
    """An unusable image, described on one line: `<file>: <reason>`."""


def load_image(
    source: Source,
    *,
    max_side: int | None = None,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """The photo in `source` as a (H, W, 3) uint8 RGB array, upright per its EXIF orientation.

    `max_side` downsamples so the longest side is at most that many pixels (area resampling;
    JPEGs are decoded at a reduced DCT scale first). `name` labels errors for bytes/arrays.
    """
    label = name or _label(source)
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if isinstance(source, np.ndarray):
        rgb = array_to_rgb(source, label)
        return _downscale_array(rgb, max_side) if max_side else rgb
    image = _open(source, label, max_pixels)
    try:
        return _decode(image, label, max_side, max_pixels)
    finally:
        image.close()


def array_to_rgb(array: np.ndarray, label: str = "array") -> np.ndarray:
    """A (H, W, 3) C-contiguous uint8 RGB view/copy of a gray, RGB or RGBA array of any dtype.

    Integers wider than 8 bits are scaled from their full range (uint16 / 257); floats are
    taken as 0..1. RGBA is composited on white.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"{label}: expected an image array (H, W), (H, W, 3) or (H, W, 4), "
                         f"got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{label}: empty image ({a.shape[1]}x{a.shape[0]})")
    return _rgb_by_strips(a, _uint8_converter(a, label))


def _rgb_by_strips(a: np.ndarray, to_uint8: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 from gray/RGB/RGBA `a`, converted STRIP_PIXELS at a time, so that the
    wider temporaries (uint16/uint32 arithmetic) never hold more than a strip."""
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:
        return np.ascontiguousarray(a)
    height, width = a.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    step = max(1, STRIP_PIXELS // width)
    for top in range(0, height, step):
        strip = to_uint8(a[top : top + step])
        if strip.ndim == 2:
            out[top : top + step] = strip[:, :, None]
        elif strip.shape[2] == 4:  # composited on white, rounded
            alpha = strip[:, :, 3:4].astype(np.uint16)
            out[top : top + step] = (strip[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255
        else:
            out[top : top + step] = strip
    return out


def _uint8_converter(a: np.ndarray, label: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping strips of `a` to uint8 (decided once for the whole array)."""
    if a.dtype == np.uint8:
        return lambda strip: strip
    if a.dtype == np.bool_:
        return lambda strip: strip.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        def from_float(strip: np.ndarray) -> np.ndarray:
            if not np.isfinite(strip).all():
                raise ImageError(f"{label}: image array contains NaN or infinity")
            return (np.clip(strip, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return from_float
    if a.dtype == np.uint16:
        return _from_uint16
    if np.issubdtype(a.dtype, np.integer):
        low, high = a.min(), a.max()
        if low >= 0 and high <= 255:
            return lambda strip: strip.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return lambda strip: _from_uint16(strip.astype(np.uint16))
        raise ImageError(f"{label}: integer pixel values outside 0..65535")
    raise ImageError(f"{label}: unsupported array dtype {a.dtype}")


def _from_uint16(strip: np.ndarray) -> np.ndarray:
    return ((strip.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


# ---------------------------------------------------------------------------------------------


def _label(source: Source) -> str:
    if isinstance(source, str | Path):
        return str(source)
    if isinstance(source, np.ndarray):
        return "array"
    return "image bytes"


def _open(source: Source, label: str, max_pixels: int) -> Image.Image:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise ImageError(f"{label}: empty file (0 bytes)")
        stream: io.BytesIO | Path = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ImageError(f"{label}: no such file") from None
        except OSError as exc:
            raise ImageError(f"{label}: cannot read ({exc.strerror or exc})") from None
        if path.is_dir():
            raise ImageError(f"{label}: is a directory, not an image")
        if size == 0:
            raise ImageError(f"{label}: empty file (0 bytes)")
        stream = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except UnidentifiedImageError:
        hint = ""
        if isinstance(stream, Path) and stream.suffix.lower() in _HEIF_SUFFIXES:
            hint = " (HEIC/AVIF needs the optional package pillow-heif)"
        raise ImageError(f"{label}: not an image or unsupported format{hint}") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{label}: too many pixels (over {_mp(2 * (Image.MAX_IMAGE_PIXELS or 0))}); "
            "refusing a possible decompression bomb (scale it down)"
        ) from None
    except OSError as exc:
        raise ImageError(f"{label}: cannot read ({exc.strerror or one_line(exc)})") from None
    except Exception as exc:  # Pillow plugins raise ValueError, SyntaxError, struct.error ...
        raise ImageError(f"{label}: unreadable image ({one_line(exc)})") from None
    width, height = image.size
    jpeg = image.format in _JPEG_FORMATS
    if width * height > max_pixels * (_JPEG_SCALES[-1] ** 2 if jpeg else 1):
        image.close()
        reduced = ", even at 1/8 scale" if jpeg else ""
        raise ImageError(
            f"{label}: {width}x{height} {image.format or 'image'} is {_mp(width * height)}, "
            f"more than the {_mp(max_pixels)} a photo may decode to{reduced}; refusing a "
            "possible decompression bomb (scale it down)"
        )
    if width == 0 or height == 0:
        image.close()
        raise ImageError(f"{label}: empty image ({width}x{height})")
    return image


def _decode(image: Image.Image, label: str, max_side: int | None, max_pixels: int) -> np.ndarray:
    try:
        if image.format in _JPEG_FORMATS:
            want = _jpeg_draft_size(image.size, max_side, max_pixels)
            if want != image.size:
                image.draft(image.mode if image.mode in ("L", "RGB") else None, want)
        image.load()
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text or "image file is" in text:
            raise ImageError(f"{label}: truncated image file") from None
        raise ImageError(f"{label}: cannot decode ({one_line(exc)})") from None
    except Exception as exc:
        raise ImageError(f"{label}: cannot decode ({one_line(exc)})") from None
    with contextlib.suppress(Exception):  # corrupt EXIF: keep the pixels as stored
        ImageOps.exif_transpose(image, in_place=True)  # no copy when already upright
    rgb = _to_rgb_array(image, label)
    return _downscale_array(rgb, max_side) if max_side else rgb


def _jpeg_draft_size(size: tuple[int, int], max_side: int | None,
                     max_pixels: int) -> tuple[int, int]:
    """The size to ask libjpeg for: the largest DCT scale (1/1 ... 1/8) whose result still has
    `max_side` pixels on its longest side, and at least the one that fits `max_pixels`."""
    width, height = size
    fits = next((k for k in _JPEG_SCALES
                 if math.ceil(width / k) * math.ceil(height / k) <= max_pixels), 8)
    scale = fits
    if max_side and max(size) > max_side:
        scale = max([k for k in _JPEG_SCALES if max(size) / k >= max_side] + [fits])
    # Pillow picks the largest scale <= min(width // w, height // h): ask for floors.
    return (max(1, width // scale), max(1, height // scale))


def _mp(pixels: float) -> str:
    return f"{pixels / 1e6:.0f} MP" if pixels >= 1e6 else f"{pixels:.0f} pixels"


def _to_rgb_array(image: Image.Image, label: str) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if mode == "L":
        return array_to_rgb(np.asarray(image), label)
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float gray
        a = np.asarray(image)
        if mode == "F":  # scaled by its maximum when above 1; NaN black, infinities clipped
            top = float(np.nanmax(a)) if a.size else 1.0
            top = top if top > 1.0 else 1.0
            return _rgb_by_strips(a, lambda strip: (np.clip(
                np.nan_to_num(strip.astype(np.float32) / top), 0.0, 1.0) * 255.0 + 0.5
            ).astype(np.uint8))
        return _rgb_by_strips(a, lambda strip: _from_uint16(np.clip(strip, 0, 65535)))
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(image), dtype=np.uint8)
    if mode == "P":
        has_alpha = "transparency" in image.info or image.palette.mode == "RGBA"
        image = image.convert("RGBA" if has_alpha else "RGB")
        return _to_rgb_array(image, label)
    if mode in ("RGBA", "LA", "La", "RGBa", "PA", "RGBX") or "A" in mode:
        if mode != "RGBA":
            image = image.convert("RGBA")
        return array_to_rgb(np.asarray(image), label)
    if mode == "1":
        return array_to_rgb(np.asarray(image.convert("L")), label)
    try:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    except Exception as exc:
        raise ImageError(f"{label}: unsupported pixel mode {mode} ({one_line(exc)})") from None


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    """CMYK to sRGB through the embedded ICC profile when there is one, else Pillow's formula."""
    profile = image.info.get("icc_profile")
    if profile:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(image, src, dst, outputMode="RGB")
            if out is not None:
                return out
        except Exception:  # a broken profile: fall back to the plain conversion
            pass
    return image.convert("RGB")


def _downscale_array(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(rgb.shape[:2]) <= max_side:
        return rgb
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    return shrink(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))


def shrink(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`rgb` area-averaged down to `size` (width, height).

    Exact 2x halvings first (OpenCV's fast path; an odd last row/column is dropped), then one
    area resize: ~4x faster than a single arbitrary-factor area resize of a 12 MP frame, with
    the same anti-aliasing.
    """
    import cv2

    width, height = size
    while rgb.shape[1] >= 2 * width and rgb.shape[0] >= 2 * height:
        half_h, half_w = rgb.shape[0] // 2, rgb.shape[1] // 2
        rgb = cv2.resize(rgb[: 2 * half_h, : 2 * half_w], (half_w, half_h),
                         interpolation=cv2.INTER_AREA)
    if (rgb.shape[1], rgb.shape[0]) != (width, height):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def encode_jpeg(image: np.ndarray, quality: int, *, optimize: bool = False) -> bytes:
    """Baseline JPEG of a uint8 gray (h, w) or RGB (h, w, 3) image (colour: 4:2:0 chroma), by
    OpenCV's libjpeg-turbo: Pillow's very bytes for the same options; `optimize` computes the
    Huffman tables for this image (~5 % smaller, ~2x the encoding time)."""
    import cv2

    image = np.ascontiguousarray(image, dtype=np.uint8)
    ordered = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    done, data = cv2.imencode(".jpg", ordered, [cv2.IMWRITE_JPEG_QUALITY, int(quality),
                                                cv2.IMWRITE_JPEG_OPTIMIZE, int(optimize)])
    if not done:
        raise ValueError(f"could not encode a {image.shape} image as JPEG")
    return data.tobytes()
