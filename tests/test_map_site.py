"""`sosie map`: the generated site's files and data, and the pages in headless Chromium."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from appliance.cartography.knn import exact_neighbours
from appliance.cartography.site import MapOptions, MarkedFace, build_site


@dataclass(frozen=True)
class _PCA:
    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    def project(self, x):
        return (np.atleast_2d(np.asarray(x, np.float64)) - self.mean) @ self.components.T


class StandInCorpus:
    """A tiny in-memory corpus with the contract's attributes (for sizes `synth` refuses or
    that a PCA cannot be fitted to)."""

    def __init__(self, n: int, seed: int = 0, size: int = 96) -> None:
        rng = np.random.default_rng(seed)
        blobs = rng.standard_normal((5, 128)) * 0.25
        x = blobs[rng.integers(0, 5, n)] + rng.standard_normal((n, 128)) * 0.08
        self.vectors = x.astype(np.float16)
        self.count, self.dim, self.size = n, 128, size
        self.norms = np.linalg.norm(self.vectors.astype(np.float32), axis=1)
        v = self.vectors.astype(np.float64)
        mean = v.mean(axis=0)
        w, u = np.linalg.eigh(np.cov((v - mean).T))
        w, u = w[::-1], u[:, ::-1]
        self.pca = _PCA(mean, u[:, :3].T, w[:3], w[:3] / w.sum())
        p = self.pca.project(v)
        self.coords2d, self.coords3d = p[:, :2].astype(np.float32), p.astype(np.float32)
        self.manifest, self.synthetic, self.path = {}, True, Path("stand-in")

    def thumbnail(self, i: int) -> np.ndarray:
        rng = np.random.default_rng(i)
        s = self.size
        image = Image.new("L", (s, s), int(rng.integers(120, 250)))
        draw = ImageDraw.Draw(image)
        draw.ellipse([s * 0.2, s * 0.12, s * 0.8, s * 0.92], int(rng.integers(40, 200)))
        for ex in (0.36, 0.64):
            draw.ellipse([s * (ex - 0.06), s * 0.4, s * (ex + 0.06), s * 0.48], 15)
        draw.arc([s * 0.36, s * 0.58, s * 0.64, s * 0.76], 10, 170, 20, width=3)
        return np.asarray(image)

    def source(self, i: int) -> str:
        return f"faces/{i:05d}.jpg"


def _read_js(path: Path, name: str):
    text = path.read_text(encoding="utf-8")
    prefix = f"window.{name} = "
    assert text.startswith(prefix)
    return json.loads(text[len(prefix) :].rstrip().rstrip(";"))


def synthetic_corpus(directory: Path, n: int, seed: int = 0):
    """A real corpus (appliance.corpus format) of `n` synthetic faces."""
    from appliance.corpus import Corpus, CorpusSettings, synth

    synth(directory, n, seed, settings=CorpusSettings(thumbnail_size=96))
    return Corpus.open(directory)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    corpus = synthetic_corpus(tmp_path_factory.mktemp("corpus"), 400)
    out = tmp_path_factory.mktemp("site")
    mark = MarkedFace("me.jpg", corpus.vectors[7].astype(np.float32) + 0.001, corpus.thumbnail(7))
    summary = build_site(corpus, out, mark=mark, options=MapOptions(neighbours=6, clusters=4))
    return corpus, out, summary


def test_site_files_and_data_describe_the_corpus(site):
    corpus, out, summary = site
    meta = _read_js(out / "data" / "meta.js", "SOSIE_META")
    points = _read_js(out / "data" / "points.js", "SOSIE_POINTS")
    assert meta["count"] == corpus.count == summary.count
    # exactly the tiles marked present exist on disk (the page asks for nothing else)
    on_disk = {p.relative_to(out / "tiles").as_posix() for p in (out / "tiles").rglob("*.webp")}
    marked = set()
    for z, bits in enumerate(meta["tiles"]["present"]):
        n = 1 << z
        flags = np.unpackbits(np.frombuffer(base64.b64decode(bits), np.uint8), bitorder="little")
        for cell in np.flatnonzero(flags[: n * n]):
            marked.add(f"{z}/{cell % n}/{cell // n}.webp")
    assert marked == on_disk and len(on_disk) == summary.tiles
    # positions: 2-D keeps the PCA geometry (x right, y up on screen), 3-D too
    xy = np.frombuffer(base64.b64decode(points["xy"]), "<u2").reshape(-1, 2) / 65535
    ratio = np.linalg.norm(xy[1:] - xy[0], axis=1) / np.linalg.norm(
        corpus.coords2d[1:] - corpus.coords2d[0], axis=1)
    np.testing.assert_allclose(ratio, np.median(ratio), rtol=0.02, atol=1e-3)
    xyz = np.frombuffer(base64.b64decode(points["xyz"]), "<i2").reshape(-1, 3) * 4 / 32767
    np.testing.assert_allclose(xyz, corpus.coords3d * meta["pca"]["scale3"], atol=2e-3)
    # neighbours in the chunk files are the exact ones
    chunk = (out / "data" / "faces" / "0.js").read_text()
    payload = json.loads(re.fullmatch(r"sosieChunk\((.*)\);\n", chunk, re.S).group(1))
    knn = np.frombuffer(base64.b64decode(payload["knn"]), "<i4").reshape(-1, 6)
    want, _ = exact_neighbours(np.asarray(corpus.vectors, np.float32), 6)
    assert (knn == want).mean() > 0.99
    assert payload["names"][3] == corpus.source(3)
    # axes: explained variance and the faces at both ends, in order
    pc1 = meta["pca"]["axes"][0]
    assert pc1["ratio"] == pytest.approx(float(corpus.pca.explained_variance_ratio[0]))
    assert pc1["low"][0] == int(np.argmin(corpus.coords2d[:, 0]))
    assert pc1["high"][0] == int(np.argmax(corpus.coords2d[:, 0]))
    # clusters: sizes add up, centre faces belong to their cluster
    labels = np.frombuffer(base64.b64decode(points["cluster"]), "<u2")
    assert sum(c["size"] for c in meta["clusters"]) == corpus.count
    assert all(labels[c["centre"]] == c["id"] for c in meta["clusters"])
    # the marked face: its nearest corpus face is the one it was made from
    assert meta["marks"][0]["neighbours"][0] == 7 and meta["marks"][0]["likeness"][0] > 99
    assert meta["marks"][0]["image"].startswith("data:image/jpeg;base64,")
    # sheets hold every face; web assets copied; nothing refers to the internet
    assert len(list((out / "sheets").glob("*.webp"))) == -(-corpus.count // 256)
    for name in ("index.html", "vr.html"):  # every script a page loads is in the site
        scripts = re.findall(r"<script src=\"([^\"]+)\"", (out / name).read_text())
        assert "assets/common.js" in scripts and all((out / s).is_file() for s in scripts), name
    for path in [out / "index.html", out / "vr.html", *(out / "assets").rglob("*.js")]:
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", path.read_text()), path


def test_rebuilding_into_the_same_folder_replaces_it(site, tmp_path):
    corpus = StandInCorpus(30, seed=5)
    build_site(corpus, tmp_path / "m", options=MapOptions(neighbours=3))
    build_site(corpus, tmp_path / "m", options=MapOptions(neighbours=3))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a Sosie map"):
        build_site(corpus, tmp_path / "other")


class _FailingCorpus(StandInCorpus):
    """A corpus whose source names fail at one row: the build stops once its sheets and tiles
    are written, while it writes the data files."""

    def __init__(self, n: int, fail_at: int, error: BaseException) -> None:
        super().__init__(n, seed=6)
        self.fail_at, self.error = fail_at, error

    def source(self, i: int) -> str:
        if i == self.fail_at:
            raise self.error
        return super().source(i)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), KeyboardInterrupt()])
def test_an_interrupted_rebuild_leaves_the_previous_site_whole(tmp_path, error):
    out = tmp_path / "m"
    build_site(StandInCorpus(30, seed=5), out, options=MapOptions(neighbours=3))
    (out / "notes.txt").write_text("mine")  # not the map's: kept across rebuilds
    os.chmod(out, 0o751)  # kept too (a served folder stays readable)
    before = _files(out)
    with pytest.raises(type(error)):
        build_site(_FailingCorpus(300, 280, error), out, options=MapOptions(neighbours=3))
    assert _files(out) == before
    assert os.listdir(tmp_path) == ["m"]  # the new site's folder removed
    # a build killed outright leaves its folder beside the site: the next build removes it
    (tmp_path / ".m.building-killed" / "sheets").mkdir(parents=True)
    summary = build_site(StandInCorpus(300, seed=6), out, options=MapOptions(neighbours=3))
    assert summary.out_dir == out and summary.count == 300
    assert _read_js(out / "data" / "meta.js", "SOSIE_META")["count"] == 300
    assert (out / "notes.txt").read_text() == "mine"
    assert os.listdir(tmp_path) == ["m"]
    assert summary.timings["previous site removed"] >= 0
    assert os.stat(out).st_mode & 0o777 == 0o751


def test_a_build_killed_between_its_renames_gets_the_previous_site_back(tmp_path):
    """Killed after moving the old site aside and before moving the new one in: OUT is
    missing; the next build puts the previous site back (not deleted with the leftovers),
    so a failing build then still leaves it whole."""
    out = tmp_path / "m"
    build_site(StandInCorpus(30, seed=5), out, options=MapOptions(neighbours=3))
    before = _files(out)
    aside = tmp_path / ".m.old-killed"
    aside.mkdir()
    os.rename(out, aside / "site")
    with pytest.raises(OSError):
        build_site(_FailingCorpus(300, 280, OSError(5, "Input/output error")), out,
                   options=MapOptions(neighbours=3))
    assert _files(out) == before
    assert os.listdir(tmp_path) == ["m"]


def test_a_site_folder_given_as_a_link_stays_a_link(tmp_path):
    """An installer links OUT into a web server's folder: a rebuild replaces the site the link
    points to and keeps the link (a real folder in its place would leave the server showing
    the old site)."""
    served = tmp_path / "www" / "sosie"
    build_site(StandInCorpus(30, seed=5), served, options=MapOptions(neighbours=3))
    link = tmp_path / "map"
    link.symlink_to(served, target_is_directory=True)
    summary = build_site(StandInCorpus(40, seed=6), link, options=MapOptions(neighbours=3))
    assert summary.out_dir == link and link.is_symlink()
    assert os.readlink(link) == str(served)
    assert _read_js(served / "data" / "meta.js", "SOSIE_META")["count"] == 40
    assert sorted(os.listdir(tmp_path)) == ["map", "www"] and os.listdir(served.parent) == ["sosie"]


# ---------------------------------------------------------------------------------------------
# In headless Chromium


@pytest.fixture(scope="module")
def browser():
    from support.headless import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium; ./dev test does it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (test extra)")
    with Browser(width=1280, height=800) as b:
        yield b


def _faces_visible(png: bytes) -> tuple[float, int]:
    """(pixel standard deviation, number of 32x32 blocks with face-like detail) of the map area."""
    image = np.asarray(Image.open(__import__("io").BytesIO(png)).convert("L"), np.float64)
    area = image[60:780, 20:880]
    blocks = area[: area.shape[0] // 32 * 32, : area.shape[1] // 32 * 32]
    blocks = blocks.reshape(blocks.shape[0] // 32, 32, blocks.shape[1] // 32, 32).std(axis=(1, 3))
    return float(area.std()), int((blocks > 12).sum())


def _clean(log) -> None:
    assert log.errors == [], log.errors
    assert log.failed_requests == [], log.failed_requests
    assert not [u for u in log.requests if not u.startswith(("file:", "http://127.0.0.1"))]


def test_map_page_renders_faces_and_answers_clicks(site, browser, tmp_path):
    corpus, out, _ = site
    browser.log.__init__()
    browser.open((out / "index.html").as_uri())
    browser.wait_for("window.sosieMap && sosieMap.idle()")
    png = browser.screenshot(tmp_path / "map.png")
    spread, busy = _faces_visible(png)
    assert spread > 20 and busy > 40, (spread, busy)
    # click on a face: a real mouse click at its position on the canvas
    target = browser.evaluate("""(() => {
        const r = document.getElementById('map').getBoundingClientRect();
        const v = sosieMap.view, xy = Sosie.points.xy;
        for (let i = 0; i < Sosie.meta.count; i++) {
          const x = (xy[2*i] - v.x) * v.scale + r.width / 2;
          const y = (xy[2*i+1] - v.y) * v.scale + r.height / 2;
          const hit = sosieMap.pick(xy[2*i], xy[2*i+1], 0);
          if (hit === i && x > 40 && y > 60 && x < r.width - 40 && y < r.height - 40)
            return {i, x: x + r.left, y: y + r.top};
        }
      })()""")
    for kind in ("mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=target["x"], y=target["y"],
                     button="left", clickCount=1)
    browser.wait_for("sosieMap.neighbours.length === 6")
    assert browser.evaluate("sosieMap.selected") == target["i"]
    want, _ = exact_neighbours(np.asarray(corpus.vectors, np.float32), 6)
    assert browser.evaluate("sosieMap.neighbours") == [int(j) for j in want[target["i"]]]
    assert browser.evaluate("document.querySelectorAll('#selected .cell').length") == 6
    # find by file name, then by index, through the search box
    for query, want_index in (("0000123", 123), ("#42", 42)):
        browser.evaluate(f"document.getElementById('find').value = '{query}';"
                         "document.getElementById('findform').requestSubmit()")
        browser.wait_for(f"sosieMap.selected === {want_index}")
    browser.evaluate("document.getElementById('find').value = 'no such face';"
                     "document.getElementById('findform').requestSubmit()")
    browser.wait_for("document.getElementById('find').classList.contains('missing')")
    # zoom in on the marked face: deeper tiles load, the mark is drawn
    browser.evaluate("sosieMap.setView(Sosie.meta.marks[0].world[0], "
                     "Sosie.meta.marks[0].world[1], "
                     "260 / Sosie.meta.face_world)")
    browser.wait_for("sosieMap.idle() && sosieMap.level() === Sosie.meta.tiles.levels")
    spread, busy = _faces_visible(browser.screenshot())
    assert spread > 20 and busy > 40
    _clean(browser.log)


def test_3d_page_draws_with_webgl_and_explains_missing_webxr(site, browser, tmp_path):
    _, out, _ = site
    browser.log.__init__()
    browser.open((out / "vr.html").as_uri())
    browser.wait_for("window.sosie3d && (sosie3d.ready || sosie3d.error) && sosie3d.vr")
    assert browser.evaluate("sosie3d.error") is None
    browser.evaluate("sosie3d.setSpin(false)")
    browser.wait_for("sosie3d.frames > 2")
    spread, busy = _faces_visible(browser.screenshot(tmp_path / "3d.png"))
    assert spread > 15 and busy > 20, (spread, busy)
    # no headset here: the button is disabled and says why
    assert browser.evaluate("document.getElementById('enter-vr').disabled") is True
    assert "VR unavailable" in browser.evaluate("document.getElementById('vr-note').textContent")
    _clean(browser.log)


def test_large_corpora_get_exact_neighbours_from_the_page(browser, tmp_path):
    corpus = synthetic_corpus(tmp_path / "corpus", 500, seed=3)
    build_site(corpus, tmp_path / "site", options=MapOptions(neighbours=8, exact_limit=100))
    tmp_path = tmp_path / "site"
    assert (tmp_path / "data" / "descriptors.js").is_file()
    browser.log.__init__()
    browser.open((tmp_path / "index.html").as_uri())
    browser.wait_for("window.sosieMap && sosieMap.idle()")
    want, _ = exact_neighbours(np.asarray(corpus.vectors, np.float32), 8)
    agree = 0
    for i in (0, 17, 250, 499):
        got = browser.evaluate(f"Sosie.face({i}).then(f => f.neighbours.map(n => n.index))")
        assert i not in got and len(got) == 8
        agree += len(set(got) & set(want[i].tolist()))
    assert agree >= 0.9 * 32  # 8-bit codes may swap near-ties only
    _clean(browser.log)


def test_site_works_from_a_static_server(site, browser):
    _, out, _ = site
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.log.__init__()
        browser.open(f"http://127.0.0.1:{server.server_port}/index.html#face=5")
        browser.wait_for("window.sosieMap && sosieMap.neighbours.length === 6 && sosieMap.idle()")
        assert browser.evaluate("sosieMap.selected") == 5
        _clean(browser.log)
    finally:
        browser.open("about:blank")  # nothing left loading when the server goes
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_corpora_still_make_a_site(tmp_path, n):
    corpus = StandInCorpus(max(n, 3), seed=n)
    for name in ("vectors", "norms", "coords2d", "coords3d"):
        setattr(corpus, name, getattr(corpus, name)[:n])
    corpus.count = n
    summary = build_site(corpus, tmp_path, options=MapOptions(neighbours=12, clusters=5))
    meta = _read_js(tmp_path / "data" / "meta.js", "SOSIE_META")
    assert meta["count"] == n and summary.tiles >= 1
    assert meta["neighbours"]["k"] == n - 1
    assert len(meta["clusters"]) == n
    assert (tmp_path / "tiles" / "0" / "0" / "0.webp").is_file()


# ---------------------------------------------------------------------------------------------
# Colour (the VR session itself is tested on an emulated Quest 2 in test_vr.py)


def _kinds(directory: Path) -> set[tuple[str, str]]:
    """(format, 'colour' or 'gray') of the images in `directory` (WebP decodes to RGB: gray is
    three equal channels)."""
    kinds = set()
    for path in sorted(directory.rglob("*"))[:60]:
        if path.is_file():
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), np.int16)
                spread = int(np.ptp(pixels, axis=2).max())
                kinds.add((image.format, "gray" if spread <= 1 else "colour"))
    return kinds


def test_colour_corpora_map_in_colour_and_print_in_gray(site):
    corpus, out, _ = site
    meta = _read_js(out / "data" / "meta.js", "SOSIE_META")
    assert meta["colour"] is True
    assert _kinds(out / "tiles") == _kinds(out / "sheets") == {("WEBP", "colour")}
    # the sheet cell of a face is that face, in its colours
    points = _read_js(out / "data" / "points.js", "SOSIE_POINTS")
    place = np.frombuffer(base64.b64decode(points["place"]), "<u4")
    assert sorted(place) == list(range(corpus.count))
    i = 123
    sheet, j = divmod(int(place[i]), 256)
    px = meta["sheets"]["face"]
    with Image.open(out / "sheets" / f"{sheet}.webp") as image:
        cell = np.asarray(image.convert("RGB"), np.float64)[
            j // 16 * px : (j // 16 + 1) * px, j % 16 * px : (j % 16 + 1) * px]
    from appliance.corpus.thumbs import decode

    colour = decode(corpus.thumbnail_bytes(i), "jpeg", 96, colour=True)
    want = np.asarray(Image.fromarray(colour).resize((px, px), Image.Resampling.BOX), np.float64)
    assert np.abs(cell - want).mean() < 6
    assert np.abs(cell - cell.mean(axis=2, keepdims=True)).mean() > 5  # not gray
    # the mean colour per face (far faces in 3-D) is the face's own
    rgb = np.frombuffer(base64.b64decode(points["rgb"]), np.uint8).reshape(-1, 3)
    np.testing.assert_allclose(rgb[i], colour.reshape(-1, 3).mean(axis=0), atol=6)
    # what the ticket prints: the same face, gray (ITU-R 601 luminance)
    gray = corpus.thumbnail(i)
    assert gray.ndim == 2
    luma = colour.astype(np.float64) @ [0.299, 0.587, 0.114]
    assert np.abs(gray - luma).max() <= 1


def test_gray_corpora_still_map_in_gray(tmp_path):
    corpus = StandInCorpus(300, seed=2)  # gray thumbnails, no manifest (an older corpus)
    build_site(corpus, tmp_path, options=MapOptions(neighbours=3))
    meta = _read_js(tmp_path / "data" / "meta.js", "SOSIE_META")
    assert meta["colour"] is False
    assert _kinds(tmp_path / "tiles") == _kinds(tmp_path / "sheets") == {("WEBP", "gray")}
    points = _read_js(tmp_path / "data" / "points.js", "SOSIE_POINTS")
    rgb = np.frombuffer(base64.b64decode(points["rgb"]), np.uint8).reshape(-1, 3)
    assert (rgb == rgb[:, :1]).all()


def test_corpora_larger_than_one_block_get_every_mean_colour(tmp_path):
    corpus = StandInCorpus(16384 + 300, seed=4, size=8)
    build_site(corpus, tmp_path, options=MapOptions(neighbours=2, exact_limit=100,
                                                    map_face_px=8, sheet_face_px=8))
    points = _read_js(tmp_path / "data" / "points.js", "SOSIE_POINTS")
    rgb = np.frombuffer(base64.b64decode(points["rgb"]), np.uint8).reshape(-1, 3)
    assert len(rgb) == corpus.count
    last = corpus.thumbnail(corpus.count - 1).astype(np.float64).mean()
    assert abs(float(rgb[-1, 0]) - last) <= 1
