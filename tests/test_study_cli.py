"""`sosie study` and `sosie map --layout umap` from the command line: the report's files, bad
input on one line, the page in headless Chromium."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from appliance.cli import main
from tests import photos

pytest.importorskip("sklearn", reason="the study extra is not installed")

D = 128


def imported(tmp_path, name, vectors):
    from appliance.corpus.importer import import_descriptors

    np.save(tmp_path / f"{name}.npy", np.asarray(vectors, np.float32))
    import_descriptors(tmp_path / f"{name}.npy", tmp_path / name)
    return tmp_path / name


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Two imported sets (three blobs; one cloud) and 12 reference descriptors."""
    tmp = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 0.3, (3, D))
    a = imported(tmp, "a", np.vstack([c + rng.normal(0, 0.06, (100, D)) for c in centres]))
    b = imported(tmp, "b", rng.normal(0, 0.06, (400, D)))
    np.save(tmp / "refs.npy", rng.normal(0, 0.06, (12, D)).astype(np.float32))
    return tmp, a, b


@pytest.fixture(scope="module")
def report(synthetic):
    tmp, a, b = synthetic
    out = tmp / "report"
    status = main(["study", "--out", str(out), "--reference", str(tmp / "refs.npy"),
                   "--set", f"a={a}", "--set", f"b={b}", "--no-umap", "--doubles", "6"])
    assert status == 0
    return out


def one_line_error(capsys, argv, status=(1, 2)):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("sosie ")]
    assert code in status, err
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


# ---------------------------------------------------------------------------------------------
# The report


def test_report_files_hold_the_answers(report):
    study = json.loads((report / "study.json").read_text())
    assert set(study) >= {"sets", "comparisons", "clusters", "doubles_among_themselves"}
    assert study["sets"]["a"]["faces"] == 300 and study["sets"]["b"]["faces"] == 400
    (c,) = study["comparisons"]
    assert c["set"] == "b" and c["versus"] == "a" and c["verdict"] == "closer"
    assert c["interval"][1] < 0 and 0 < c["p"] <= 1
    assert study["clusters"]["a"]["clusters"] == 3 and study["clusters"]["b"]["clusters"] == 0
    with open(report / "best_doubles.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 * 6
    assert {r["set"] for r in rows if r["rank"] == "1"} == {"b"}  # the cloud holds the refs
    with open(report / "nearest.csv", newline="") as fh:
        nearest = list(csv.DictReader(fh))
    assert len(nearest) == 12 and float(nearest[0]["b"]) < float(nearest[0]["a"])


def test_report_page_links_only_files_it_wrote(report):
    page = (report / "index.html").read_text()
    links = re.findall(r"(?:src|href)='([^']+)'", page)
    assert len([x for x in links if x.startswith("sheets/")]) >= 12 + 1 + 3
    for link in links:
        assert not re.match(r"^[a-z]+:", link), link  # nothing fetched from anywhere
        assert (report / link).is_file(), link
    for png in (report / "figures").glob("*.png"):
        with Image.open(png) as image:
            assert image.width > 300 and np.asarray(image.convert("L")).std() > 5
    assert "closer" in page and "no clusters" in page


def test_a_second_run_into_the_report_folder_replaces_it(report, synthetic):
    tmp, a, _ = synthetic
    assert main(["study", "--out", str(report), "--reference", str(tmp / "refs.npy"),
                 "--set", f"a={a}", "--no-umap", "--doubles", "3"]) == 0
    study = json.loads((report / "study.json").read_text())
    assert list(study["sets"]) == ["a"] and study["comparisons"] == []
    assert len(list((report / "sheets").glob("doubles-*.jpg"))) == 12


# ---------------------------------------------------------------------------------------------
# Bad input: one line


def test_bad_arguments_get_one_line(tmp_path, capsys, synthetic):
    tmp, a, _ = synthetic
    refs = str(tmp / "refs.npy")
    out = str(tmp_path / "o")
    (tmp_path / "empty").mkdir()
    (tmp_path / "wide.npy").write_bytes(b"")
    np.save(tmp_path / "wide.npy", np.zeros((3, 64), np.float32))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    cases = {
        "expected NAME=CORPUS_OR_FOLDER": ["--set", str(a)],
        "name '../x'": ["--set", f"../x={a}"],
        "given twice": ["--set", f"a={a}", "--set", f"a={a}"],
        "empty folder": ["--set", f"e={tmp_path / 'empty'}"],
        "no such corpus or folder": ["--set", f"n={tmp_path / 'nope'}"],
    }
    for expected, argv in cases.items():
        line = one_line_error(capsys, ["study", "--out", out, "--reference", refs, *argv])
        assert expected in line, line
    line = one_line_error(capsys, ["study", "--out", out, "--reference",
                                   str(tmp_path / "wide.npy"), "--set", f"a={a}"])
    assert "wide.npy" in line and "128" in line
    line = one_line_error(capsys, ["study", "--out", out, "--reference",
                                   str(tmp_path / "missing.jpg"), "--set", f"a={a}"])
    assert "missing.jpg: no such file" in line
    line = one_line_error(capsys, ["study", "--out", str(tmp_path / "other"), "--reference",
                                   refs, "--set", f"a={a}"])
    assert "not a Sosie study" in line
    line = one_line_error(capsys, ["study", "--out", out, "--reference", refs, "--set",
                                   f"a={a}", "--doubles", "0"])
    assert "--doubles 0" in line


def test_a_missing_extra_is_named_with_its_install_command(monkeypatch, capsys, synthetic):
    import sys

    tmp, a, _ = synthetic
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    line = one_line_error(capsys, ["study", "--out", str(tmp / "x"), "--reference",
                                   str(tmp / "refs.npy"), "--set", f"a={a}"])
    assert "pip install 'sosie[study]'" in line


@pytest.mark.slow
def test_faceless_sets_references_and_mixed_models_get_one_line(tmp_path, capsys, synthetic):
    """Real dlib models: a folder without a face, a reference photo without a face, a set
    described by the face model beside an imported one."""
    tmp, a, _ = synthetic
    coffee = tmp_path / "coffee.png"
    coffee.write_bytes(photos.encode(photos.no_face_photo()))
    (tmp_path / "nofaces").mkdir()
    (tmp_path / "nofaces" / "cup.png").write_bytes(coffee.read_bytes())
    photos.write_lfw_images(tmp_path / "lfw", count=4)
    (tmp_path / "lfw" / ".journal").mkdir()  # as `sosie generate` keeps beside its faces
    (tmp_path / "lfw" / ".journal" / "log").write_text("x")
    out = str(tmp_path / "o")
    line = one_line_error(capsys, ["study", "--out", out, "--reference", str(tmp / "refs.npy"),
                                   "--set", f"cups={tmp_path / 'nofaces'}"])
    assert "cups" in line and "no usable face" in line
    line = one_line_error(capsys, ["study", "--out", out, "--reference", str(coffee),
                                   "--set", f"a={a}"])
    assert "coffee.png: no usable face" in line
    line = one_line_error(capsys, ["study", "--out", out, "--reference", str(tmp / "refs.npy"),
                                   "--set", f"lfw={tmp_path / 'lfw'}", "--set", f"a={a}"])
    assert "mixed descriptor models" in line and "lfw" in line
    # the folder described into OUT/sets/lfw is reused by the next run (not described again)
    manifest = tmp_path / "o" / "sets" / "lfw" / "manifest.yaml"
    before = manifest.stat().st_mtime_ns
    one_line_error(capsys, ["study", "--out", out, "--reference", str(tmp / "refs.npy"),
                            "--set", f"lfw={tmp_path / 'lfw'}", "--set", f"a={a}"])
    assert manifest.stat().st_mtime_ns == before


# ---------------------------------------------------------------------------------------------
# In headless Chromium


def test_report_opens_offline_in_headless_chromium(report, tmp_path):
    from support.headless import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium; ./dev test does it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (test extra)")
    with Browser(width=1280, height=900) as browser:
        browser.open((report / "index.html").as_uri())
        browser.wait_for("document.readyState === 'complete'")
        images = browser.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert len(images) >= 10 and min(images) > 0, images
        png = browser.screenshot(tmp_path / "study.png")
        assert len(png) > 10000
        assert browser.log.errors == [] and browser.log.failed_requests == []
        assert not [u for u in browser.log.requests if not u.startswith("file:")]


# ---------------------------------------------------------------------------------------------
# sosie map --layout umap


@pytest.mark.slow
def test_umap_map_shows_groups_that_the_pca_map_blurs(tmp_path):
    """Eight tight groups apart along axes of lower variance than two axes of noise: PCA's
    plane (the noise) mixes them, UMAP's keeps each face beside its own group."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 50)
    x = rng.normal(0, 0.02, (400, D))
    x[:, :2] += rng.normal(0, 0.2, (400, 2))  # the widest axes: noise
    x[np.arange(400), 10 + labels] += 0.5  # the groups: apart on eight other axes
    corpus = imported(tmp_path, "c", x)
    purity = {}
    for layout in ("pca", "umap"):
        out = tmp_path / f"map-{layout}"
        assert main(["map", str(corpus), "--out", str(out), "--layout", layout,
                     "--neighbours", "3"]) == 0
        text = (out / "data" / "points.js").read_text()
        points = json.loads(text[text.index("=") + 1 : text.rindex(";")])
        import base64

        xy = np.frombuffer(base64.b64decode(points["xy"]), "<u2").reshape(-1, 2).astype(float)
        d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        purity[layout] = float((labels[d.argmin(axis=1)] == labels).mean())
    assert purity["umap"] > 0.95 and purity["pca"] < 0.4, purity
    meta = (tmp_path / "map-umap" / "data" / "meta.js").read_text()
    assert '"layout":"umap"' in meta and '"name":"UMAP 1"' in meta
    browser_class = _browser()
    if browser_class is None:
        return
    with browser_class(width=1280, height=800) as browser:
        browser.open((tmp_path / "map-umap" / "index.html").as_uri())
        browser.wait_for("window.sosieMap && sosieMap.idle()")
        assert "UMAP of the 128-D" in browser.evaluate("document.body.textContent")
        assert browser.log.errors == [] and browser.log.failed_requests == []


def _browser():
    """The headless Chromium driver, or None without chromium or websocket-client."""
    import importlib.util

    try:  # the DevTools driver the map tests use, wherever it lives
        from tests.support.headless import Browser, find_chromium
    except ImportError:
        from appliance.cartography.headless import Browser, find_chromium
    if find_chromium() is None or importlib.util.find_spec("websocket") is None:
        return None
    return Browser
