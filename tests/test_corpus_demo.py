"""The embedded demo corpus: faces drawn by the DCGAN generator only, built once, reused,
rebuilt if broken; the demo's visitor is not among them.

The tests build a small one ($SOSIE_DEMO_DRAWS, set in conftest.py); `./dev demo` builds the
full size (`demo.DEMO_DRAWS`) the same way.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from appliance.corpus import Corpus, demo
from appliance.corpus import format as fmt
from appliance.faces.analyzer import FaceAnalyzer
from appliance.faces.face import Face, descriptor_distance
from appliance.images import load_image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_path(generated_faces):  # (skips without the generator's weights)
    return demo.demo_corpus()


def test_the_demo_corpus_holds_generated_faces_only(demo_path):
    draws = demo.demo_draws()
    with Corpus.open(demo_path) as c:
        assert not c.synthetic
        assert 0.6 * draws <= c.count < draws  # ~70 % of draws have a face dlib finds
        sources = [c.source(i) for i in range(c.count)]
        rejected = [p for p, _ in c.rejected()]
        assert sorted(sources + rejected, key=lambda s: int(s.rsplit(":", 1)[1])) == [
            f"dcgan:{demo.DEMO_SEED}:{i}" for i in range(draws)]
        assert not any(re.search("lfw|astronaut|visitor", s, re.I) for s in sources + rejected)
        assert c.manifest["source"]["generator"] == "dcgan"
        assert c.thumbnail(0).shape == (256, 256)
        assert np.all(np.isfinite(c.coords3d))


def test_any_demo_row_is_its_generated_face(demo_path):
    source = demo.demo_source()
    analyzer = FaceAnalyzer(source.face_settings())  # how a build looks at drawn faces
    with Corpus.open(demo_path) as c:
        for row in (0, c.count // 2, c.count - 1):
            face = analyzer.analyze(source.face(c.source(row)))
            assert isinstance(face, Face)
            # the build described it in a batch: equal up to float32 rounding, then float16's
            np.testing.assert_allclose(c.vectors[row], face.descriptor.astype(np.float16),
                                       rtol=0, atol=5e-4)


def test_the_demo_visitor_is_not_in_the_demo_corpus(demo_path):
    visitor = FaceAnalyzer().analyze(demo.visitor_photo())
    assert isinstance(visitor, Face)
    with Corpus.open(demo_path) as c:
        rows, distances = c.scanner(1).topk(visitor.descriptor, 3)
        # the same person reframed or recompressed is < 0.25 away (tests/test_faces.py)
        assert distances[0] > 0.3
        assert descriptor_distance(c.vectors[rows[0]], visitor.descriptor) > 0.3


def test_the_demo_visitor_ships_with_the_package(astronaut):
    photo = demo.visitor_photo()
    assert photo.is_file() and photo.parent == ROOT / "appliance" / "data"
    assert photo.stat().st_size < 100_000
    pixels = load_image(photo).astype(int)
    assert pixels.shape == astronaut.shape and np.abs(pixels - astronaut).mean() < 4
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "data/*" in project["tool"]["setuptools"]["package-data"]["appliance"]
    runtime = " ".join(project["project"]["dependencies"])
    assert "scikit-image" not in runtime  # only the tests use its sample photos


def test_demo_corpus_is_reused(demo_path):
    stamp = (demo_path / fmt.MANIFEST).stat().st_mtime_ns
    assert demo.demo_corpus() == demo_path
    assert (demo_path / fmt.MANIFEST).stat().st_mtime_ns == stamp


def test_broken_demo_corpus_is_rebuilt(tmp_path, monkeypatch, generated_faces):
    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path))
    monkeypatch.setenv(demo.DRAWS_ENV, "6")
    first = demo.demo_corpus(workers=1)
    assert first == tmp_path / "demo-corpus-6"
    good = (first / fmt.DESCRIPTORS).read_bytes()
    (first / fmt.DESCRIPTORS).write_bytes(good[:-10])  # truncated: invalid
    again = demo.demo_corpus(workers=1)
    assert again == first and (again / fmt.DESCRIPTORS).read_bytes() == good


def test_a_demo_corpus_drawn_by_another_renderer_is_drawn_again(tmp_path, monkeypatch,
                                                                generated_faces):
    from appliance.generator import dcgan

    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path))
    monkeypatch.setenv(demo.DRAWS_ENV, "4")
    first = demo.demo_corpus(workers=1)
    stamp = (first / fmt.MANIFEST).stat().st_mtime_ns
    monkeypatch.setattr(dcgan, "RENDERER", f"{dcgan.RENDERER}-changed")
    again = demo.demo_corpus(workers=1)
    assert again == first and (again / fmt.MANIFEST).stat().st_mtime_ns != stamp
    with Corpus.open(again) as corpus:
        assert corpus.manifest["source"]["renderer"] == dcgan.RENDERER


@pytest.mark.parametrize("value", ["0", "-3", "many", "2000000"])
def test_a_bad_demo_size_is_named(monkeypatch, value):
    monkeypatch.setenv(demo.DRAWS_ENV, value)
    with pytest.raises(ValueError, match=f"SOSIE_DEMO_DRAWS='{value}': expected an integer"):
        demo.demo_draws()


def test_the_full_demo_corpus_has_its_own_place(monkeypatch, tmp_path):
    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path))
    monkeypatch.delenv(demo.DRAWS_ENV, raising=False)
    assert demo.demo_draws() == demo.DEMO_DRAWS
    assert demo.demo_corpus_dir() == tmp_path / "demo-corpus"
    assert demo.demo_corpus_dir(400) == tmp_path / "demo-corpus-400"
