"""appliance.images: any photo in, RGB uint8 out; unusable files give a one-line ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import photos
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from appliance.images import ImageError, array_to_rgb, load_image, shrink


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """An asymmetric real photo (a crop keeps the tests fast)."""
    return np.ascontiguousarray(photos.astronaut()[40:240, 120:340])


def test_path_bytes_and_array_give_the_same_pixels(tmp_path, portrait):
    data = photos.encode(portrait, "PNG")
    path = tmp_path / "p.png"
    path.write_bytes(data)
    for source in (path, str(path), data, portrait):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == portrait.shape
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, portrait)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(portrait, orientation):
    stored = photos.encode(portrait, "PNG", orientation=orientation)
    if orientation in (5, 6, 7, 8):
        assert Image.open(io.BytesIO(stored)).size == (portrait.shape[0], portrait.shape[1])
    np.testing.assert_array_equal(load_image(stored), portrait)


def test_nonsense_orientation_keeps_the_pixels_as_stored(portrait):
    exif = Image.Exif()
    exif[0x0112] = 42
    buf = io.BytesIO()
    Image.fromarray(portrait).save(buf, "PNG", exif=exif)
    np.testing.assert_array_equal(load_image(buf.getvalue()), portrait)


def test_exif_orientation_in_jpeg(portrait):
    plain = load_image(photos.encode(portrait, "JPEG", quality=95))
    rotated = load_image(photos.encode(portrait, "JPEG", orientation=6, quality=95))
    assert rotated.shape == portrait.shape
    # Different 8x8 block grids, same picture: small differences only.
    assert np.abs(rotated.astype(int) - plain.astype(int)).mean() < 3


def test_grayscale_becomes_three_equal_channels(portrait):
    gray = np.asarray(Image.fromarray(portrait).convert("L"))
    out = load_image(photos.encode(gray, "PNG"))
    assert out.shape == (*gray.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_rgba_is_composited_on_white():
    rgb = np.array([[[200, 10, 50], [0, 0, 0], [30, 60, 90]]], np.uint8)
    alpha = np.array([[255, 0, 128]], np.uint8)
    out = load_image(photos.encode(np.dstack([rgb, alpha]), "PNG"))
    expected = rgb * (alpha[..., None] / 255) + 255 * (1 - alpha[..., None] / 255)
    assert np.abs(out.astype(float) - expected).max() <= 0.51


def test_la_and_palette_with_transparency():
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA")
    buf = io.BytesIO()
    la.save(buf, "PNG")
    np.testing.assert_array_equal(load_image(buf.getvalue())[0], [[255] * 3, [0] * 3])

    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=1)
    np.testing.assert_array_equal(load_image(buf.getvalue())[0], [[255, 0, 0], [255, 255, 255]])
    buf = io.BytesIO()
    pal.save(buf, "GIF")
    np.testing.assert_array_equal(load_image(buf.getvalue())[0], [[255, 0, 0], [0, 0, 255]])


def test_sixteen_bit_gray_png_uses_the_full_range():
    values = np.array([[0, 257, 32768, 65535]], np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    out = load_image(buf.getvalue())
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])


def test_sixteen_bit_rgb_png(tmp_path):
    import cv2

    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[0, 0] = (65535, 0, 0)
    rgb16[1, 1] = (0, 32896, 65535)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), rgb16[:, :, ::-1])  # OpenCV writes BGR
    out = load_image(path)
    np.testing.assert_allclose(out.astype(int), (rgb16 // 257).astype(int), atol=1)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 8), (255, 0, 0, 0))  # pure cyan
    cmyk.paste((0, 0, 0, 255), (8, 0, 16, 8))  # pure black on the right
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)
    out = load_image(buf.getvalue()).astype(int)
    assert np.abs(out[:, :6] - [0, 255, 255]).max() < 12
    assert out[:, 10:].max() < 12


def test_large_jpeg_is_decoded_downscaled(tmp_path, portrait):
    big = photos.rescaled(portrait, 12)  # 2640 x 2400
    path = tmp_path / "big.jpg"
    path.write_bytes(photos.encode(big, "JPEG", quality=90))
    small = load_image(path, max_side=300)
    assert max(small.shape[:2]) == 300
    assert small.shape[:2] == (round(2400 * 300 / 2640), 300)
    reference = photos.rescaled(load_image(path), 300 / 2640)
    assert np.abs(small.astype(int) - reference.astype(int)).mean() < 4
    # a rotated phone photo: the limit applies to the upright picture
    path.write_bytes(photos.encode(big, "JPEG", orientation=6, quality=90))
    assert load_image(path, max_side=300).shape[:2] == small.shape[:2]


def test_tiny_images_load():
    for shape in [(1, 1, 3), (2, 3), (25, 25)]:
        pixels = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
        assert load_image(photos.encode(pixels, "PNG")).shape[:2] == shape[:2]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"hello, this is not a photo\n", "not an image or unsupported format"),
        ("truncated-jpeg", "truncated image file"),
        ("truncated-png", "truncated image file"),
    ],
)
def test_unusable_files_give_one_line_errors(tmp_path, portrait, content, reason):
    if content == "truncated-jpeg":
        full = photos.encode(portrait, "JPEG")
        content = full[: len(full) // 2]
    elif content == "truncated-png":
        full = photos.encode(portrait, "PNG")
        content = full[: len(full) // 2]
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert message == f"{path}: {reason}"
    assert "\n" not in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.jpg: no such file$"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_heic_without_plugin_names_the_package(tmp_path):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        with pytest.raises(ImageError, match="pillow-heif"):
            load_image(path)
    else:  # pragma: no cover - the plugin reads it (and finds it broken)
        with pytest.raises(ImageError):
            load_image(path)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageError, match=r"too many pixels.*decompression bomb") as info:
        load_image(_png_header_only(40000, 40000), name="bomb.png")
    assert str(info.value).startswith("bomb.png: ")
    with pytest.raises(ImageError, match=r"100x100 PNG is 10000 pixels, more than the 9999 "):
        load_image(photos.encode(np.zeros((100, 100), np.uint8)), max_pixels=9999)


def test_max_side_for_arrays(portrait):
    out = load_image(portrait, max_side=100)
    assert out.shape == (91, 100, 3)
    with pytest.raises(ValueError):
        load_image(portrait, max_side=0)


# ---------------------------------------------------------------------------------------------
# array_to_rgb against plain numpy references


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(3))))
def test_rgb_uint8_arrays_pass_unchanged(a):
    np.testing.assert_array_equal(array_to_rgb(a), a)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_uint16_gray_is_rounded_from_full_range(a):
    expected = np.floor(a.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    out = array_to_rgb(a)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], expected)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(4))))
def test_rgba_arrays_match_the_compositing_formula(a):
    alpha = a[:, :, 3:4] / 255.0
    expected = a[:, :, :3] * alpha + 255.0 * (1 - alpha)
    assert np.abs(array_to_rgb(a).astype(float) - expected).max() <= 0.5 + 1e-9


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6)),
              elements=st.floats(0, 1, width=32)))
def test_float_arrays_are_taken_as_zero_to_one(a):
    expected = np.floor(a.astype(np.float64) * 255 + 0.5)
    assert np.abs(array_to_rgb(a)[:, :, 0] - expected).max() <= 1


def test_bad_arrays():
    with pytest.raises(ImageError, match=r"array: expected an image array"):
        array_to_rgb(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="empty image"):
        array_to_rgb(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="NaN"):
        array_to_rgb(np.full((2, 2), np.nan))
    np.testing.assert_array_equal(array_to_rgb(np.ones((2, 2), bool))[..., 0], 255)
    np.testing.assert_array_equal(array_to_rgb(np.ones((2, 2, 1), np.uint8)), 1)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 12),
    st.integers(1, 12),
    st.randoms(use_true_random=False),
)
def test_shrink_by_powers_of_two_is_the_block_mean(levels, w, h, rnd):
    factor = 2**levels
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    a = rng.integers(0, 256, (h * factor, w * factor, 3), dtype=np.uint8)
    reference = a.reshape(h, factor, w, factor, 3).mean(axis=(1, 3))
    out = shrink(a, (w, h))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    assert np.abs(out - reference).max() <= 0.5 * levels + 1e-9  # one rounding per halving


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 300), st.integers(2, 300), st.floats(0.01, 1.0), st.integers(0, 255))
def test_shrink_any_factor_keeps_flat_colour_and_size(w, h, scale, value):
    a = np.full((h, w, 3), value, np.uint8)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = shrink(a, size)
    assert out.shape == (size[1], size[0], 3)
    assert np.all(out == value)


# ---------------------------------------------------------------------------------------------
# The decode budget (MAX_PIXELS): reduced JPEG decoding, refusal of other formats, strips


def bomb_png(side: int) -> bytes:
    """A real, valid side x side RGB PNG of zeros, compressed as it streams (0.5 MB at 13000)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = bytes(1 + 3 * side)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def test_png_over_the_budget_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(13000))
    assert path.stat().st_size < 600_000
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == (
        f"{path}: 13000x13000 PNG is 169 MP, more than the 36 MP a photo may decode to; "
        "refusing a possible decompression bomb (scale it down)")


def test_png_within_the_budget_is_decoded():
    out = load_image(bomb_png(300), max_pixels=300 * 300)
    assert out.shape == (300, 300, 3) and not out.any()


def test_jpeg_over_the_budget_is_decoded_at_a_reduced_scale(portrait):
    big = np.ascontiguousarray(np.repeat(np.repeat(portrait, 4, 0), 4, 1))  # 800x880
    data = photos.encode(big, "JPEG", quality=95)
    full = load_image(data)
    assert full.shape == big.shape
    halved = load_image(data, max_pixels=big.shape[0] * big.shape[1] // 4)  # exactly 1/2
    assert halved.shape == (400, 440, 3)
    quarter = load_image(data, max_pixels=big.shape[0] * big.shape[1] // 4 - 1)
    assert quarter.shape == (200, 220, 3)
    reference = photos.rescaled(full, 0.25).astype(int)
    assert np.abs(quarter.astype(int) - reference).mean() < 4
    # max_side asks for less still; the budget never asks for more
    assert load_image(data, max_side=100, max_pixels=10**9).shape[:2] == (91, 100)
    with pytest.raises(ImageError, match=r"880x800 JPEG is 704000 pixels, more than the 10000 "
                       r"pixels a photo may decode to, even at 1/8 scale"):
        load_image(data, max_pixels=10_000)


@pytest.mark.parametrize(
    ("shape", "dtype"), [((1500, 1000, 4), np.uint16), ((1500, 1000), np.int32),
                         ((1500, 1000, 3), np.float64)])
def test_large_arrays_are_converted_in_strips(shape, dtype):
    import tracemalloc

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, shape).astype(dtype) / (255 if dtype == np.float64 else 1)
    tracemalloc.start()
    try:
        out = array_to_rgb(a)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (*shape[:2], 3) and out.dtype == np.uint8
    assert peak < out.nbytes + 24 * (1 << 20)  # the output and a few strips' temporaries
    reference = array_to_rgb(a[:7])  # one strip: same arithmetic, no strip boundaries
    np.testing.assert_array_equal(out[:7], reference)


def test_phone_mpo_jpeg_over_the_budget_is_decoded_reduced_too(portrait):
    """Many phones write multi-picture JPEGs (Pillow: format MPO): libjpeg reduces them too."""
    image = Image.fromarray(np.ascontiguousarray(np.repeat(np.repeat(portrait, 4, 0), 4, 1)))
    buf = io.BytesIO()
    image.save(buf, "MPO", save_all=True, append_images=[image], quality=90)
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    assert load_image(buf.getvalue(), max_pixels=800 * 880 // 4).shape == (400, 440, 3)
