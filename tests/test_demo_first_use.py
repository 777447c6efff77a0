"""What a user meets first: the demo corpus built on first use, said at once, with progress;
rebuilt when its thumbnails' version changes. Tiny corpora (30 draws) in a private cache."""

from __future__ import annotations

import pytest

from appliance.corpus import demo
from appliance.corpus import format as fmt


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch, generated_faces):  # skips without the weights
    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(demo.DRAWS_ENV, "30")
    return tmp_path / "cache"


def test_a_demo_corpus_of_another_thumbnail_version_is_drawn_again(tiny_cache):
    path = demo.demo_corpus(progress=False)
    assert demo.demo_corpus_ready()
    version = path.with_name(f"{path.name}.version")
    assert version.read_text().strip() == str(demo.DEMO_VERSION)
    built = (path / fmt.MANIFEST).stat().st_mtime_ns
    assert demo.demo_corpus(progress=False) == path  # same version: reused
    assert (path / fmt.MANIFEST).stat().st_mtime_ns == built
    version.write_text("1\n")  # made by an older appliance (edge pixels in bands)
    assert not demo.demo_corpus_ready()
    assert demo.demo_corpus(progress=False) == path
    assert (path / fmt.MANIFEST).stat().st_mtime_ns != built
    assert demo.demo_corpus_ready()
