"""Every face prints legibly: ink inside the double's frame, read back from the printer's bytes.

The thumbnails are aligned crops of generated faces, as a corpus build stores them; the ink is
counted on the paper decoded from the ESC/POS bytes (`appliance.ticket.ink`).
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.ticket import TicketLayout
from appliance.ticket.dither import Tone, face_region, face_tone_curve, prepare
from appliance.ticket.ink import double_ink

LEGIBLE = (0.25, 0.75)


def face_luminance(thumb: np.ndarray) -> float:
    return float(thumb[face_region(*thumb.shape)].mean())


@pytest.fixture(scope="module")
def extremes(generated_faces, analyzer):
    """The darkest and brightest of the generated faces' thumbnails, and a darker and a more
    washed-out version of them (low contrast, as the worst draws of a large corpus)."""
    thumbs = []
    for rgb in generated_faces:
        face = analyzer.analyze(rgb)
        if hasattr(face, "descriptor"):
            thumbs.append(face.aligned(256, gray=True))
    thumbs.sort(key=face_luminance)
    dark, bright = thumbs[0], thumbs[-1]
    darker = np.rint(dark * 0.4).astype(np.uint8)
    washed = np.rint(255 - (255 - bright.astype(np.float64)) * 0.35).astype(np.uint8)
    return {"darkest": dark, "brightest": bright, "darker": darker, "washed out": washed}


@pytest.mark.parametrize("layout", ["classic", "mugshot"])
@pytest.mark.parametrize("width", [384, 576])
def test_darkest_and_brightest_faces_print_with_25_to_75_percent_ink(extremes, layout, width):
    for name, thumb in extremes.items():
        ink = double_ink(thumb, TicketLayout(layout=layout), width)
        assert LEGIBLE[0] <= ink <= LEGIBLE[1], f"{name} face: {ink:.0%} ink ({layout}, {width})"


def test_without_face_normalisation_a_bright_face_washes_out(extremes):
    """The measurement can fail: with the whole-photo autocontrast of before, the brightest
    faces print with too little ink on the mugshot's chart."""
    old = TicketLayout(layout="mugshot", tone=Tone(face_level=0.0))
    assert double_ink(extremes["brightest"], old, 576) < LEGIBLE[0]
    assert double_ink(extremes["washed out"], old, 576) < LEGIBLE[0]


def test_a_dark_low_contrast_face_gets_its_contrast_back(extremes):
    """The face region is stretched over the whole range: its darkest and lightest percent
    print as full ink and bare paper, whatever the photo's levels were."""
    prepared = prepare(extremes["darker"], Tone(sharpen=0))
    face = prepared[face_region(*prepared.shape)]
    assert np.percentile(face, 0.5) <= 10 and np.percentile(face, 99.5) >= 245
    assert np.ptp(extremes["darker"][face_region(*prepared.shape)]) < 110


def test_a_flat_picture_is_left_flat():
    for level in (0, 90, 255):
        flat = np.full((64, 64), level, np.uint8)
        assert face_tone_curve(flat, Tone()) is None
    assert (prepare(np.zeros((64, 64), np.uint8), Tone()) == 0).all()
    assert (prepare(np.full((64, 64), 255, np.uint8), Tone()) == 255).all()


@pytest.mark.parametrize("level", [0.3, 0.5, 0.7])
def test_face_level_sets_the_mean_of_face_and_photo(level):
    rng = np.random.default_rng(0)
    gray = np.clip(rng.normal(40, 12, (96, 96)), 0, 255).astype(np.uint8)
    gray[:20] = 200  # a bright band of background
    tone = Tone(face_level=level)
    curve = face_tone_curve(gray, tone)
    assert curve is not None
    region = face_region(96, 96)
    mean = (curve[gray[region]].mean() + curve[gray].mean()) / 2
    assert abs(mean - 255 * level) <= 3
