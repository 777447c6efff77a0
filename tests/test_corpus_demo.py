"""The embedded demo corpus: built once from scikit-image's faces, reused, rebuilt if broken."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.corpus import Corpus, demo
from appliance.corpus import format as fmt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_path():
    return demo.demo_corpus()


def test_demo_corpus_holds_real_faces(demo_path):
    with Corpus.open(demo_path) as c:
        assert not c.synthetic
        assert 60 <= c.count <= demo.LFW_FACES + 1
        sources = {c.source(i) for i in range(c.count)}
        assert "astronaut.png" in sources
        assert sources | {p for p, _ in c.rejected()} == {
            f"lfw-{i:03d}.png" for i in range(demo.LFW_FACES)} | {"astronaut.png"}
        assert c.thumbnail(0).shape == (256, 256)
        assert np.all(np.isfinite(c.coords3d))


def test_demo_corpus_is_reused(demo_path):
    stamp = (demo_path / fmt.MANIFEST).stat().st_mtime_ns
    assert demo.demo_corpus() == demo_path
    assert (demo_path / fmt.MANIFEST).stat().st_mtime_ns == stamp


def test_broken_demo_corpus_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path))
    monkeypatch.setattr(demo, "LFW_FACES", 3)
    first = demo.demo_corpus(workers=1)
    good = (first / fmt.DESCRIPTORS).read_bytes()
    (first / fmt.DESCRIPTORS).write_bytes(good[:-10])  # truncated: invalid
    again = demo.demo_corpus(workers=1)
    assert again == first and (again / fmt.DESCRIPTORS).read_bytes() == good
    with Corpus.open(again) as c:
        assert "astronaut.png" in {c.source(i) for i in range(c.count)}
