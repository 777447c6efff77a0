"""Shared fixtures: real photos (see tests/photos.py) and one dlib analyzer per test session."""

from __future__ import annotations

import os

import photos
import pytest

# The demo corpus the tests share: 400 generator draws (~290 faces, ~20 s to build) instead of
# the demo's 4,000; built the same way (appliance/corpus/demo.py).
os.environ.setdefault("SOSIE_DEMO_DRAWS", "400")


@pytest.fixture(scope="session")
def astronaut():
    """512x512 RGB uint8 portrait with one face (read-only)."""
    return photos.astronaut()


@pytest.fixture(scope="session")
def lfw_faces():
    """(100, 25, 25) uint8 gray LFW face crops (read-only)."""
    return photos.lfw_faces()


@pytest.fixture(scope="session")
def no_face_photo():
    """400x600 RGB photo without a face (read-only)."""
    return photos.no_face_photo()


@pytest.fixture(scope="session")
def generated_faces():
    """(48, 64, 64, 3) uint8 DCGAN faces as the generator makes them (read-only); skips when the
    gan-face-generate weights are not installed."""
    from appliance.generator.dcgan import WeightsNotFound

    try:
        return photos.generated_faces()
    except WeightsNotFound as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def analyzer():
    """A FaceAnalyzer with the default settings and the real dlib models (loaded once)."""
    from appliance.faces.analyzer import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture(scope="session")
def astronaut_face(analyzer, astronaut):
    """The astronaut's Face, descriptor computed (shared: do not mutate)."""
    from appliance.faces.face import Face

    face = analyzer.analyze(astronaut)
    assert isinstance(face, Face), face
    return face


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory):
    """A synthetic corpus of 300 rows (read-only: damage `corpus_copy` instead)."""
    from appliance.corpus import synth

    return synth(tmp_path_factory.mktemp("synth") / "c", 300, seed=5)


@pytest.fixture
def corpus_copy(synthetic_corpus, tmp_path):
    """A fresh copy of `synthetic_corpus` to damage."""
    import shutil

    return shutil.copytree(synthetic_corpus, tmp_path / "c")


@pytest.fixture(scope="module")
def shipped():
    """The DCGAN with the weights of the gan-face-generate wheel (skipped without them)."""
    from appliance.generator.dcgan import DCGAN

    try:
        return DCGAN.load()
    except LookupError as exc:
        pytest.skip(str(exc))
