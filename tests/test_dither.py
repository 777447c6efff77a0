"""The C dithering kernels against short pure-Python references, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import ConfigError
from appliance.ticket.dither import (
    Tone,
    bayer_matrix,
    bayer_thresholds,
    dither,
    prepare,
    render,
    to_bitmap,
    tone_curve,
    unsharp_mask,
)

FS = [(1, 7), (-1 + 1j, 3), (1j, 5), (1 + 1j, None)]  # (dx + dy·i, weight/16; None = rest)
ATKINSON = [1, 2, -1 + 1j, 1j, 1 + 1j, 2j]  # each gets e >> 3


def reference_diffusion(gray: np.ndarray, kernel: str, serpentine: bool) -> np.ndarray:
    h, w = gray.shape
    acc = [[int(v) for v in row] for row in gray]
    out = np.zeros((h, w), dtype=np.uint8)
    for y in range(h):
        d = -1 if serpentine and y % 2 else 1
        for x in range(w) if d == 1 else range(w - 1, -1, -1):
            value = acc[y][x]
            printed = 255 if value >= 128 else 0
            out[y, x] = printed
            e = value - printed
            if kernel == "fs":
                given_away = 0
                shares = []
                for offset, weight in FS:
                    share = e - given_away if weight is None else (e * weight) // 16
                    given_away += share
                    shares.append((offset, share))
            else:
                shares = [(offset, e // 8) for offset in ATKINSON]
            for offset, share in shares:
                nx, ny = x + d * int(offset.real), y + int(offset.imag)
                if 0 <= nx < w and ny < h:
                    acc[ny][nx] += share
    return out


def reference_ordered(gray: np.ndarray, size: int) -> np.ndarray:
    m = bayer_matrix(size)
    n2 = size * size
    out = np.zeros_like(gray)
    for (y, x), g in np.ndenumerate(gray):
        out[y, x] = 255 if 2 * n2 * int(g) >= (2 * int(m[y % size, x % size]) + 1) * 255 else 0
    return out


shapes = st.one_of(
    st.tuples(st.just(1), st.integers(1, 40)),
    st.tuples(st.integers(1, 40), st.just(1)),
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
)


@st.composite
def gray_images(draw):
    h, w = draw(shapes)
    seed = draw(st.integers(0, 2**32 - 1))
    style = draw(st.sampled_from(["uniform", "extremes", "flat", "ramp"]))
    rng = np.random.default_rng(seed)
    if style == "uniform":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if style == "extremes":
        return rng.choice(np.array([0, 1, 127, 128, 254, 255], np.uint8), (h, w))
    if style == "flat":
        return np.full((h, w), rng.integers(0, 256), np.uint8)
    return (np.add.outer(np.arange(h), np.arange(w)) * 255 // max(1, h + w - 2)).astype(np.uint8)


@settings(max_examples=150, deadline=None)
@given(gray_images(), st.booleans())
def test_floyd_steinberg_matches_reference(gray, serpentine):
    got = dither(gray, "floyd-steinberg", serpentine=serpentine)
    assert np.array_equal(got, reference_diffusion(gray, "fs", serpentine))


@settings(max_examples=150, deadline=None)
@given(gray_images(), st.booleans())
def test_atkinson_matches_reference(gray, serpentine):
    got = dither(gray, "atkinson", serpentine=serpentine)
    assert np.array_equal(got, reference_diffusion(gray, "atkinson", serpentine))


@settings(max_examples=100, deadline=None)
@given(gray_images(), st.sampled_from([2, 4, 8, 16]))
def test_bayer_matches_reference(gray, size):
    assert np.array_equal(dither(gray, "bayer", bayer_size=size), reference_ordered(gray, size))


def test_bayer_matrix_is_a_permutation_and_thresholds_span_the_range():
    for size in (2, 4, 8, 16):
        m = bayer_matrix(size)
        assert sorted(m.ravel().tolist()) == list(range(size * size))
        t = bayer_thresholds(size)
        assert t.min() >= 1 and t.max() <= 255  # black stays black, white stays white
    assert bayer_matrix(2).tolist() == [[0, 2], [3, 1]]
    with pytest.raises(ValueError, match="power of two"):
        bayer_matrix(6)


@pytest.mark.parametrize(("method", "tolerance"),
                         [("floyd-steinberg", 4), ("bayer", 4), ("atkinson", 24)])
def test_mean_tone_is_preserved(method, tolerance):
    """Each 64-level band prints about as dark as it is (Atkinson drops 1/4 of the error)."""
    ramp = np.tile(np.linspace(0, 255, 256).astype(np.uint8), (64, 1))
    bits = dither(ramp, method)
    for lo in range(0, 256, 64):
        band = ramp[:, lo:lo + 64].mean()
        printed = bits[:, lo:lo + 64].mean()
        assert abs(band - printed) < tolerance, (lo, band, printed)


def test_non_contiguous_input_and_bad_input():
    gray = np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)
    view = gray[:, ::2]
    assert np.array_equal(dither(view, "floyd-steinberg"), dither(view.copy(), "floyd-steinberg"))
    with pytest.raises(ValueError, match="2-D"):
        dither(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        dither(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="unknown method 'sierra'"):
        dither(gray, "sierra")


def test_tone_curve_levels_and_gamma():
    identity = Tone(gamma=1.0, contrast=1.0)
    assert np.array_equal(tone_curve(identity), np.arange(256))
    levels = tone_curve(Tone(black=20, white=220, gamma=1.0, contrast=1.0))
    assert levels[20] == 0 and levels[220] == 255 and levels[0] == 0 and levels[255] == 255
    assert np.all(np.diff(levels.astype(int)) >= 0)
    lifted = tone_curve(Tone(gamma=1.5, contrast=1.0))
    assert lifted[128] > 128 and lifted[0] == 0 and lifted[255] == 255
    with pytest.raises(ConfigError, match=r"ticket\.tone\.white"):
        Tone(black=200, white=100)
    with pytest.raises(ConfigError, match=r"ticket\.tone\.bayer_size"):
        Tone(bayer_size=6)


def test_prepare_keeps_shape_and_sharpens_edges():
    gray = np.full((32, 32), 60, np.uint8)
    gray[:, 16:] = 200
    soft = prepare(gray, Tone(sharpen=0, autocontrast=0, face_level=0))
    sharp = prepare(gray, Tone(sharpen=200, autocontrast=0, face_level=0))
    assert soft.shape == sharp.shape == gray.shape and sharp.dtype == np.uint8
    assert sharp[:, 16].mean() > soft[:, 16].mean()  # overshoot on the light side of the edge
    assert sharp[:, 15].mean() < soft[:, 15].mean()  # and undershoot on the dark side
    flat = np.full((20, 20), 90, np.uint8)
    assert np.array_equal(unsharp_mask(flat, 2.0, 300), flat)  # nothing to sharpen


def test_render_resizes_and_to_bitmap_is_mode_1():
    gray = np.random.default_rng(2).integers(0, 256, (50, 40), dtype=np.uint8)
    bits = render(gray, Tone(), size=(80, 100))
    assert bits.shape == (100, 80) and set(np.unique(bits)) <= {0, 255}
    image = to_bitmap(bits)
    assert image.mode == "1" and image.size == (80, 100)
    assert np.array_equal(np.asarray(image), bits == 255)
