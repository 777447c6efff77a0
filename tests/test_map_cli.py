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
    assert main(["map", "demo", "--out", str(out), "--clusters", "3", "--mark", str(visitor),
                 "--mark-include-photo"]) == 0
    assert "index.html" in capsys.readouterr().out
    meta = _meta(out)
    with Corpus.open(demo_corpus()) as corpus:
        assert meta["count"] == corpus.count
        nearest = meta["marks"][0]["neighbours"][0]
        assert corpus.source(nearest).startswith("dcgan:")  # generated faces only
        face = FaceAnalyzer().analyze(visitor)
        rows, distances = corpus.scanner(1).topk(face.descriptor, 1)
    assert nearest == rows[0] and meta["marks"][0]["label"] == "visitor.png"
    assert meta["marks"][0]["image"].startswith("data:image/jpeg;base64,")
    # not herself (she is not in the demo corpus): her true nearest generated face
    assert 0.3 < meta["marks"][0]["distances"][0] == pytest.approx(distances[0], abs=2e-3)
    assert len(meta["clusters"]) == 3

    from support.headless import Browser, find_chromium

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


@pytest.mark.slow
def test_two_marks_on_one_map_and_no_path_of_the_machine(tmp_path, astronaut, generated_faces,
                                                         capsys):
    """--mark twice (the visitor and a double): both on the map, none replacing the other;
    without --mark-include-photo neither's crop nor file name; no map file names a path of
    this machine (the corpus's, the photos', the output's)."""
    from appliance.corpus import demo_corpus

    photos = tmp_path / "private-photos"
    photos.mkdir()
    visitor, double = photos / "visitor-anna.png", photos / "double-of-anna.png"
    Image.fromarray(astronaut).save(visitor)
    Image.fromarray(generated_faces[3]).resize((256, 256)).save(double)
    out = tmp_path / "map"
    assert main(["map", "demo", "--out", str(out), "--mark", str(visitor), "--mark",
                 str(double)]) == 0
    capsys.readouterr()
    marks = _meta(out)["marks"]
    assert [m["label"] for m in marks] == ["marked face 1", "marked face 2"]
    assert all(m["image"] is None for m in marks)
    assert marks[0]["world"] != marks[1]["world"]
    assert marks[0]["neighbours"] != marks[1]["neighbours"]
    secrets = [str(demo_corpus().resolve()), str(demo_corpus()), str(tmp_path), str(photos),
               "anna", str(__import__("pathlib").Path.home())]
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, (path, secret)
    from support.headless import Browser, find_chromium

    if find_chromium() is not None and __import__("importlib").util.find_spec("websocket"):
        with Browser() as browser:  # both pages show both marks, without their photos
            for page, ready in (("index.html", "window.sosieMap && sosieMap.idle()"),
                                ("vr.html", "window.sosie3d && sosie3d.ready && "
                                            "sosie3d.frames > 1")):
                browser.open((out / page).as_uri())
                browser.wait_for(ready)
                assert browser.evaluate("document.querySelectorAll('#mark .markhead').length") \
                    == 2
                assert browser.evaluate("document.querySelectorAll('#mark img').length") == 0
            assert browser.log.errors == [] and browser.log.failed_requests == []
    # with the option: each mark's crop and file name
    assert main(["map", "demo", "--out", str(out), "--mark", str(visitor), "--mark",
                 str(double), "--mark-include-photo"]) == 0
    marks = _meta(out)["marks"]
    assert [m["label"] for m in marks] == ["visitor-anna.png", "double-of-anna.png"]
    assert all(m["image"].startswith("data:image/jpeg;base64,") for m in marks)


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
