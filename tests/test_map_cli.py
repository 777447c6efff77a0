"""`sosie map` end to end on the real demo corpus (dlib models), and its argument errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from appliance.cli import main


def _meta(out):
    text = (out / "data" / "meta.js").read_text()
    return json.loads(text[text.index("{") : text.rindex("}") + 1])


@pytest.mark.slow
def test_map_of_the_demo_corpus_marks_a_visitor_and_loads_in_chromium(tmp_path, astronaut, capsys):
    from appliance.corpus import Corpus, demo_corpus
    from appliance.faces.analyzer import FaceAnalyzer

    visitor = tmp_path / "visitor.png"
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(visitor)  # mirrored
    out = tmp_path / "map"
    assert main(["map", "demo", "--out", str(out), "--clusters", "3", "--mark", str(visitor)]) == 0
    assert "index.html" in capsys.readouterr().out
    meta = _meta(out)
    with Corpus.open(demo_corpus()) as corpus:
        assert meta["count"] == corpus.count
        nearest = meta["mark"]["neighbours"][0]
        assert corpus.source(nearest).startswith("dcgan:")  # generated faces only
        face = FaceAnalyzer().analyze(visitor)
        rows, distances = corpus.scanner(1).topk(face.descriptor, 1)
    assert nearest == rows[0] and meta["mark"]["label"] == "visitor.png"
    # not herself (she is not in the demo corpus): her true nearest generated face
    assert 0.3 < meta["mark"]["distances"][0] == pytest.approx(distances[0], abs=2e-3)
    assert len(meta["clusters"]) == 3

    from appliance.cartography.headless import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium; ./dev test does it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (test extra)")
    with Browser() as browser:
        browser.open((out / "index.html").as_uri())
        browser.wait_for("window.sosieMap && sosieMap.idle()")
        image = np.asarray(Image.open(__import__("io").BytesIO(browser.screenshot())).convert("L"))
        area = image[60:780, 20:880].astype(float)
        assert area.std() > 20
        browser.open((out / "vr.html").as_uri())
        browser.wait_for("window.sosie3d && sosie3d.ready && sosie3d.frames > 1")
        assert browser.log.errors == [] and browser.log.failed_requests == []


def test_map_reports_unusable_input_on_one_line(tmp_path, capsys):
    assert main(["map", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sosie map: ") and "nothing" in err and "\n" not in err
    assert main(["map", "demo", "--out", str(tmp_path / "o"), "--clusters", "-1"]) == 2
    assert "--clusters -1" in capsys.readouterr().err


@pytest.mark.slow
def test_map_refuses_a_mark_without_a_face(tmp_path, no_face_photo, capsys):
    photo = tmp_path / "wall.png"
    Image.fromarray(no_face_photo).save(photo)
    assert main(["map", "demo", "--out", str(tmp_path / "o"), "--mark", str(photo)]) == 2
    err = capsys.readouterr().err.strip()
    assert "wall.png: no usable face" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
