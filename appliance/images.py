"""Photos in: any file, bytes or array a camera or an installer's folder produces, as RGB uint8.

`load_image` honours EXIF orientation (phone photos), converts every Pillow mode (gray, RGBA and
LA composited on white, palette, 16-bit, CMYK with its ICC profile, ...) and, when asked for a
`max_side`, decodes JPEGs at a reduced scale (libjpeg DCT scaling) before resampling, so a
12 MP photo costs a fraction of a full decode. Anything unusable raises `ImageError` with one
line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF (iPhone photos) when the optional pillow-heif is installed
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

    register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass

Source = str | Path | bytes | bytearray | memoryview | np.ndarray

#: Refuse images with more pixels than this (decompression bombs): Pillow's own hard limit.
MAX_PIXELS = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)

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
        return _decode(image, label, max_side)
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
    a = _to_uint8(a, label)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.uint16)
        a = ((a[:, :, :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255).astype(
            np.uint8
        )
    return np.ascontiguousarray(a)


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
            f"{label}: too many pixels (over {MAX_PIXELS / 1e6:.0f} MP); "
            "refusing a possible decompression bomb"
        ) from None
    except OSError as exc:
        raise ImageError(f"{label}: cannot read ({exc.strerror or _first_line(exc)})") from None
    except Exception as exc:  # Pillow plugins raise ValueError, SyntaxError, struct.error ...
        raise ImageError(f"{label}: unreadable image ({_first_line(exc)})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageError(
            f"{label}: too many pixels ({width}x{height} = {width * height / 1e6:.0f} MP, "
            f"limit {max_pixels / 1e6:.0f} MP); refusing a possible decompression bomb"
        )
    if width == 0 or height == 0:
        image.close()
        raise ImageError(f"{label}: empty image ({width}x{height})")
    return image


def _decode(image: Image.Image, label: str, max_side: int | None) -> np.ndarray:
    try:
        if max_side and image.format == "JPEG" and max(image.size) > max_side:
            scale = max_side / max(image.size)
            want = (math.ceil(image.width * scale), math.ceil(image.height * scale))
            image.draft(image.mode if image.mode in ("L", "RGB") else None, want)
        image.load()
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text or "image file is" in text:
            raise ImageError(f"{label}: truncated image file") from None
        raise ImageError(f"{label}: cannot decode ({_first_line(exc)})") from None
    except Exception as exc:
        raise ImageError(f"{label}: cannot decode ({_first_line(exc)})") from None
    with contextlib.suppress(Exception):  # corrupt EXIF: keep the pixels as stored
        ImageOps.exif_transpose(image, in_place=True)  # no copy when already upright
    rgb = _to_rgb_array(image, label)
    return _downscale_array(rgb, max_side) if max_side else rgb


def _to_rgb_array(image: Image.Image, label: str) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if mode == "L":
        return array_to_rgb(np.asarray(image), label)
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float gray
        a = np.asarray(image)
        if mode == "F":
            a = a.astype(np.float32)
            top = float(np.nanmax(a)) if a.size else 1.0
            a = a / (top if top > 1.0 else 1.0)
            return array_to_rgb(np.nan_to_num(a), label)
        return array_to_rgb(np.clip(a.astype(np.int64), 0, 65535).astype(np.uint16), label)
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
        raise ImageError(f"{label}: unsupported pixel mode {mode} ({_first_line(exc)})") from None


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


def _to_uint8(a: np.ndarray, label: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError(f"{label}: image array contains NaN or infinity")
        return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if a.min() >= 0 and a.max() <= 255:
            return a.astype(np.uint8)
        if a.min() >= 0 and a.max() <= 65535:
            return _to_uint8(a.astype(np.uint16), label)
        raise ImageError(f"{label}: integer pixel values outside 0..65535")
    raise ImageError(f"{label}: unsupported array dtype {a.dtype}")


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
