"""The 3-D/VR page at work: colour faces from their sheets up close, a texture budget that holds
while moving through the whole cloud, and the immersive path on an emulated Meta Quest 2.

The pages are served on 127.0.0.1 (WebXR needs a secure context, and WebGL reads the sheets
only from the page's own origin). The headset is Meta's Immersive Web Emulation Runtime (npm
`iwer`, installed by `./dev test` into .cache/npm), injected into the page by the test only.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.cartography.site import MapOptions, build_site

COUNT = 3000  # 12 sheets of 128 px faces; the detail texture holds 4 of them
NEIGHBOURS = 6


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from appliance.corpus import Corpus, CorpusSettings, synth

    directory = tmp_path_factory.mktemp("corpus")
    synth(directory, COUNT, 4, settings=CorpusSettings(thumbnail_size=128))
    corpus = Corpus.open(directory)
    out = tmp_path_factory.mktemp("site")
    # an 8 px atlas, as a 200k corpus gets: up close, the sheets must make the difference
    build_site(corpus, out, options=MapOptions(neighbours=NEIGHBOURS, atlas_face_px=8))
    return corpus, out


@pytest.fixture(scope="module")
def server(site):
    from support.headless import serve

    with serve(site[1]) as url:
        yield url


def _browser(scripts: list[str], width: int = 1280, height: int = 800):
    from support.headless import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium; ./dev test does it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (test extra)")
    browser = Browser(width=width, height=height, timeout=120)
    try:
        browser.start()
        for source in scripts:
            browser.call("Page.addScriptToEvaluateOnNewDocument", source=source)
    except BaseException:
        browser.close()
        raise
    return browser


@pytest.fixture
def desktop():
    from support.headless import TEXTURE_LOG_SCRIPT

    browser = _browser([TEXTURE_LOG_SCRIPT])
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def quest():
    from support.headless import TEXTURE_LOG_SCRIPT, quest2_scripts

    scripts = quest2_scripts()
    if scripts is None:
        pytest.skip("iwer is not installed (./dev test installs it with npm; is npm missing?)")
    browser = _browser([*scripts, TEXTURE_LOG_SCRIPT])
    try:
        yield browser
    finally:
        browser.close()


def _clean(log) -> None:
    assert log.errors == [], log.errors
    assert log.failed_requests == [], log.failed_requests
    assert not [u for u in log.requests if not u.startswith(("data:", "http://127.0.0.1"))]


def _open_3d(browser, server: str) -> None:
    browser.open(f"{server}/vr.html")
    browser.wait_for("window.sosie3d && (sosie3d.ready || sosie3d.error)")
    assert browser.evaluate("sosie3d.error") is None
    browser.evaluate("sosie3d.setSpin(false)")
    browser.wait_for("sosie3d.frames > 2")


def _settle(browser, timeout: float = 60.0) -> None:
    """Draw until the detail texture exists, no sheet is loading or waiting to be retried after
    a failed load, and the plan wants nothing new."""
    deadline = time.monotonic() + timeout
    while True:
        loads = browser.evaluate("sosie3d.detail.loads")
        browser.evaluate("new Promise((r) => { sosie3d.draw(); requestAnimationFrame(() => "
                         "requestAnimationFrame(r)); })")
        if browser.evaluate("(({enabled, loading, retrying, textureMade, loads}) => !loading"
                            f" && !retrying && (textureMade || !enabled) && loads === {loads})"
                            "(sosie3d.detail)"):
            return
        assert time.monotonic() < deadline, "sheets kept loading"
        time.sleep(0.05)


def _canvas_crop(browser, half: float) -> np.ndarray:
    """RGB pixels of the square of half-side `half` CSS px at the centre of the 3-D canvas."""
    box = browser.evaluate("(() => { const r = document.getElementById('gl')"
                           ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
    image = np.asarray(Image.open(io.BytesIO(browser.screenshot())).convert("RGB"), np.float64)
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    h = int(half * 0.9)  # inside the face's frame
    return image[int(cy) - h : int(cy) + h, int(cx) - h : int(cx) + h]


def _sheet_face(out: Path, place: int, px: int) -> np.ndarray:
    sheet, j = divmod(place, 256)
    with Image.open(out / "sheets" / f"{sheet}.webp") as image:
        pixels = np.asarray(image.convert("RGB"))
    r, c = divmod(j, 16)
    return pixels[r * px : (r + 1) * px, c * px : (c + 1) * px]


def test_a_close_face_is_drawn_in_colour_from_its_sheet(site, server, desktop):
    """Close enough that the face fills a quarter of the view, it is drawn from its 128 px sheet
    (not the 8 px atlas cell) and in its colours."""
    _, out = site
    _open_3d(desktop, server)
    meta = desktop.evaluate("({face: Sosie.meta.sheets.face, cell: sosie3d.detail.atlasCellPx,"
                            " colour: Sosie.meta.colour})")
    assert meta == {"face": 128, "cell": 8, "colour": True}
    i = int(np.argmax(_xyz(desktop)[:, 2]))  # the front face on the +z side: nothing before it
    # camera on the +z side of the face, at the distance where its quad is half the view high
    half = desktop.evaluate(f"""(() => {{
      const i = {i}, p = Sosie.points.xyz, t = [p[3*i], p[3*i+1], p[3*i+2]];
      const d = sosie3d.faceSize / Math.tan(25 * Math.PI / 180);
      sosie3d.setCamera([t[0], t[1], t[2] + d], t);
      return document.getElementById('gl').getBoundingClientRect().height / 4; }})()""")
    _settle(desktop)
    assert desktop.evaluate(f"sosie3d.detail.source({i})") == "detail"
    drawn = _canvas_crop(desktop, half)
    place = int(desktop.evaluate(f"Sosie.points.place[{i}]"))
    truth = _sheet_face(out, place, 128)
    side = drawn.shape[0]
    margin = (1 - 0.9) / 2 * 128
    core = truth[int(margin) : 128 - int(margin), int(margin) : 128 - int(margin)]
    want = np.asarray(Image.fromarray(core).resize((side, side), Image.Resampling.BICUBIC),
                      np.float64)
    blurred = np.asarray(Image.fromarray(core).resize((8, 8), Image.Resampling.BOX).resize(
        (side, side), Image.Resampling.BILINEAR), np.float64)
    error = np.abs(drawn - want).mean()
    assert error < 10, error
    # the drawn face has the detail of the sheet, which the 8 px atlas cell does not
    detail = np.abs(drawn - blurred).mean()
    assert detail > 1.5 * error, (detail, error)
    # in colour: the channels differ as in the source image
    assert np.abs(drawn - drawn.mean(axis=2, keepdims=True)).mean() > 8
    np.testing.assert_allclose(drawn.mean(axis=(0, 1)), want.mean(axis=(0, 1)), atol=8)
    _clean(desktop.log)


def test_moving_through_the_whole_cloud_stays_within_the_texture_budget(site, server, desktop):
    _open_3d(desktop, server)
    budget = desktop.evaluate("sosie3d.detail.budgetBytes")
    slots = desktop.evaluate("sosie3d.detail.slots")
    sheets = -(-COUNT // 256)
    assert slots < sheets  # so that moving around must evict
    _settle(desktop)  # the detail texture is made at the first frame after the first view
    allocated = desktop.evaluate("textureLog.bytes")
    assert 0 < allocated <= budget
    # fly through the cloud along its three axes and a diagonal, close to the faces
    resident_max = 0
    for axis in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.6, 0.5]):
        for t in np.linspace(-1.2, 1.2, 9):
            eye = [float(t * a) for a in axis]
            target = [e + 0.2 * a for e, a in zip(eye, axis, strict=True)]
            desktop.evaluate(f"sosie3d.setCamera({eye}, {target})")
            _settle(desktop)
            resident = desktop.evaluate("sosie3d.detail.resident")
            resident_max = max(resident_max, resident)
            assert resident <= slots
            assert desktop.evaluate("textureLog.bytes") <= budget
    log = desktop.evaluate("({loads: sosie3d.detail.loads, evictions: sosie3d.detail.evictions,"
                           " peak: textureLog.peak, allocations: textureLog.allocations,"
                           " failed: sosie3d.detail.failed(), failures: sosie3d.detail.failures,"
                           " decodeRejections: sosie3d.detail.decodeRejections})")
    assert log["loads"] > slots and log["evictions"] > 0, log  # it did stream
    assert log["peak"] == allocated <= budget, (log, allocated, budget)
    assert log["allocations"] == 2  # the atlas and the detail texture, once each
    assert resident_max == slots, log
    assert not [f for f in log["failed"] if f["givenUp"]], log  # no sheet left to the atlas
    _clean(desktop.log)


class _Refusing:
    """Answers 503 Service Unavailable to the first REFUSALS requests for each sheet (a busy
    server, a headset's Wi-Fi): the page asks for a sheet once for its cluster legend (CSS) and
    once for the detail texture, in either order; `refused` counts them by path."""

    REFUSALS = 2

    def __init__(self) -> None:
        import threading

        self.refused: dict[str, int] = {}
        self.lock = threading.Lock()

    def refuse(self, path: str) -> bool:
        with self.lock:
            if not path.startswith("/sheets/") or self.refused.get(path, 0) >= self.REFUSALS:
                return False
            self.refused[path] = self.refused.get(path, 0) + 1
            return True


@pytest.fixture(scope="module")
def flaky_server(site):
    """The site served by a server that can refuse each sheet once; yields (url, _Refusing)."""
    import functools
    import http.server
    import threading

    refusing = _Refusing()

    class Flaky(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if refusing.refuse(self.path):
                self.send_error(503)
            else:
                super().do_GET()

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")  # every load of a sheet asks
            super().end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Flaky, directory=str(site[1])))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", refusing
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_sheet_that_failed_to_load_is_shown_later(flaky_server, desktop):
    """Every sheet's first requests are refused: each is tried again after a short wait and
    shown, and sosie3d.detail counts the failures."""
    url, refusing = flaky_server
    _open_3d(desktop, url)
    _settle(desktop)
    detail = desktop.evaluate("(({resident, slots, failures, recovered}) => ({resident, slots,"
                              " failures, recovered, failed: sosie3d.detail.failed(),"
                              " sheets: sosie3d.detail.sheets()}))(sosie3d.detail)")
    assert detail["resident"] == detail["slots"], detail
    assert not [f for f in detail["failed"] if f["givenUp"]], detail  # others wait to be wanted
    shown = {f"/sheets/{s}.webp" for s in detail["sheets"]}
    assert all(refusing.refused.get(p) == refusing.REFUSALS for p in shown), refusing.refused
    # each sheet shown failed at least once (its first or second request), then loaded
    assert detail["recovered"] >= len(shown) and detail["failures"] >= detail["recovered"], detail
    # what the page reported: the refused requests only
    assert all("503" in e for e in desktop.log.errors), desktop.log.errors
    assert desktop.log.failed_requests == []


def _model_point(xyz: np.ndarray, yaw: float, scale: float, centre: np.ndarray) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    rotated = np.array([c * xyz[0] + s * xyz[2], xyz[1], -s * xyz[0] + c * xyz[2]])
    return centre + scale * rotated


def _first_along(xyz: np.ndarray, origin: np.ndarray, direction: np.ndarray, reach: float):
    v = xyz - origin
    t = v @ direction
    perp2 = (v * v).sum(axis=1) - t * t
    hits = np.flatnonzero((t > 0) & (perp2 < reach * reach))
    return int(hits[np.argmin(t[hits])]) if len(hits) else -1


def _frames_later(browser, n: int = 3) -> None:
    start = browser.evaluate("sosie3d.frames")
    browser.wait_for(f"sosie3d.frames >= {start + n}", timeout=60)


def test_immersive_session_on_an_emulated_quest_2(server, quest):
    """Enter VR, both eyes rendered; the trigger picks the face the ray points at (panel: that
    face and its neighbours); grip + move turns the cloud; thumbsticks scale and move it;
    leaving VR gives the page back."""
    _open_3d(quest, server)
    quest.wait_for("sosie3d.vr")
    assert quest.evaluate("sosie3d.vr") == "available"
    button = quest.evaluate("(() => { const r = document.getElementById('enter-vr')"
                            ".getBoundingClientRect(); return {x: r.x + 5, y: r.y + 5}; })()")
    for kind in ("mousePressed", "mouseReleased"):  # a real click: a user activation
        quest.call("Input.dispatchMouseEvent", type=kind, x=button["x"], y=button["y"],
                   button="left", clickCount=1)
    quest.wait_for("sosie3d.xr.sessions === 1 && sosie3d.xr.views.length === 2", timeout=60)
    assert quest.evaluate("document.getElementById('enter-vr').textContent") == "Exit VR"
    _frames_later(quest, 5)
    # both eyes: left and right halves of the layer, each with the cloud drawn in it
    views = quest.evaluate("sosie3d.xr.views")
    assert [v["eye"] for v in views] == ["left", "right"]
    assert views[0]["x"] == 0 and views[1]["x"] == views[0]["width"] > 0
    box = quest.evaluate("(() => { const r = document.getElementById('gl')"
                         ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
    shot = np.asarray(Image.open(io.BytesIO(quest.screenshot())).convert("L"), np.float64)
    x, y, w, h = (round(v) for v in box)
    halves = (shot[y : y + h, x : x + w // 2], shot[y : y + h, x + w // 2 : x + w])
    pixels = [float((half > 60).mean()) for half in halves]
    assert all(0.01 < share < 0.95 for share in pixels), pixels
    # aim the right controller at the face nearest the viewer and pull the trigger
    state = quest.evaluate("({yaw: sosie3d.xr.yaw, scale: sosie3d.xr.scale, floor: "
                           "sosie3d.xr.floor, head: sosie3d.xr.head, size: sosie3d.faceSize})")
    xyz = _xyz(quest)
    centre = np.array([0.0, 1.35 if state["floor"] else 0.0, -1.1])
    model = np.array([_model_point(p, state["yaw"], state["scale"], centre) for p in xyz])
    origin = np.array([0.15, 1.3, -0.2])
    target = int(np.argmax(model[:, 2]))
    direction = (model[target] - origin) / np.linalg.norm(model[target] - origin)
    local = (xyz - (origin - centre) / state["scale"])  # yaw is 0: model space = scaled space
    assert state["yaw"] == 0
    expected = _first_along(local, np.zeros(3), direction, state["size"] * 0.6)
    assert expected >= 0
    quest.evaluate(f"aimController('right', {origin.tolist()}, {model[target].tolist()})")
    _frames_later(quest)
    quest.evaluate("xrDevice.controllers.right.updateButtonValue('trigger', 1)")
    quest.wait_for("sosie3d.xrPicked !== undefined", timeout=30)
    quest.evaluate("xrDevice.controllers.right.updateButtonValue('trigger', 0)")
    assert quest.evaluate("sosie3d.xrPicked") == expected
    quest.wait_for(f"document.querySelectorAll('#selected .cell').length === {NEIGHBOURS}")
    assert f"#{expected} " in quest.evaluate("document.querySelector('#selected .name')"
                                             ".textContent")
    # the ray brought the sheet of the face it points at into the detail texture
    quest.wait_for(f"sosie3d.detail.source({expected}) === 'detail'", timeout=60)
    # grip held, hand moved 10 cm to the right: the cloud turns by 0.4 rad; released, it stays
    quest.evaluate("xrDevice.controllers.right.updateButtonValue('squeeze', 1)")
    _frames_later(quest)
    quest.evaluate(f"aimController('right', {(origin + np.array([0.1, 0, 0])).tolist()}, "
                   f"{model[target].tolist()})")
    _frames_later(quest)
    quest.evaluate("xrDevice.controllers.right.updateButtonValue('squeeze', 0)")
    _frames_later(quest)
    yaw = quest.evaluate("sosie3d.xr.yaw")
    assert yaw == pytest.approx(0.4, abs=0.02)
    quest.evaluate(f"aimController('right', {origin.tolist()}, {model[target].tolist()})")
    _frames_later(quest)
    assert quest.evaluate("sosie3d.xr.yaw") == yaw
    # right thumbstick pushed forward: the cloud grows; left thumbstick forward: it comes closer
    quest.evaluate("xrDevice.controllers.right.updateAxes('thumbstick', 0, -1)")
    _frames_later(quest, 6)
    quest.evaluate("xrDevice.controllers.right.updateAxes('thumbstick', 0, 0)")
    _frames_later(quest)
    assert quest.evaluate("sosie3d.xr.scale") > state["scale"] * 1.02
    head = quest.evaluate("sosie3d.xr.head")
    before = quest.evaluate("sosie3d.xr.offset")
    quest.evaluate("xrDevice.controllers.left.updateAxes('thumbstick', 0, -1)")
    _frames_later(quest, 6)
    quest.evaluate("xrDevice.controllers.left.updateAxes('thumbstick', 0, 0)")
    _frames_later(quest)
    after = quest.evaluate("sosie3d.xr.offset")
    cloud = np.array([0.0, 0.0, -1.1])
    assert (np.linalg.norm(cloud + after - head) < np.linalg.norm(cloud + before - head) - 0.01)
    # leave VR: the session ends, the button says so, the page draws on its own again
    quest.evaluate("document.getElementById('enter-vr').click()")
    quest.wait_for("document.getElementById('enter-vr').textContent === 'Enter VR'")
    assert quest.evaluate("xrDevice.activeSession === undefined") is True
    quest.evaluate("sosie3d.setSpin(true)")
    _frames_later(quest, 3)
    assert quest.evaluate("sosie3d.xr.views.length") == 0
    assert quest.evaluate("textureLog.bytes <= sosie3d.detail.budgetBytes") is True
    _clean(quest.log)


def _xyz(browser) -> np.ndarray:
    return np.array(browser.evaluate("Array.from(Sosie.points.xyz)"), np.float64).reshape(-1, 3)
