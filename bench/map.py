"""`sosie map` at scale: build time on a synthetic corpus, and the pages in headless Chromium.

    .venv/bin/python bench/map.py [--count 200000] [--corpus DIR] [--out DIR] [--json out.json]

Measures (same run): the wall time of `sosie map` (and its stages); the 2-D page's load time
(navigation to load event, and to every visible tile drawn); its frame times while it is panned
and zoomed programmatically from the whole cloud down to single faces and back
(requestAnimationFrame intervals and the draw cost per frame); click-to-neighbours latency.
Anchor: drawing every face individually per frame (what a viewer without level of detail does),
timed in the same browser on the same canvas.

The 3-D page, served on 127.0.0.1 (as VR needs): time to first frame, frame interval over the
whole cloud and close to a face, the close face (the quad half the view high: a quarter of it)
and the image pixels behind it, the time its sheet takes to stream in, the texture memory
(allocated by the page, counted by wrapping texImage2D) against its budget after a flight
through the whole cloud, and frame intervals in an immersive session on an emulated Meta Quest 2
(npm `iwer`, both eyes; skipped without it). Anchor: the same figures for the 3-D page as it was
before colour and detail (point sprites, commit 79239ad), in the same browser.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import write_json  # noqa: E402 - bench/ is the script's folder

from appliance.paths import cache_dir  # noqa: E402
from tests.support.headless import (  # noqa: E402 - the tests' headless Chromium driver
    TEXTURE_LOG_SCRIPT,
    Browser,
    quest2_scripts,
    serve,
)

PAN_ZOOM_JS = """(async () => {
  const M = Sosie.meta, m = sosieMap, frames = %(frames)d;
  m.fitView();
  const [x0, y0, x1, y1] = M.bbox, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const s0 = m.view.scale, s1 = 120 / M.face_world;           // whole cloud -> faces at 120 px
  const intervals = [], draws = [];
  let last = performance.now();
  await new Promise((done) => {
    let f = 0;
    function step(now) {
      intervals.push(now - last); last = now;
      const t = f / frames, e = t < 0.5 ? 2 * t : 2 - 2 * t;   // zoom in, then out
      const scale = Math.exp(Math.log(s0) + (Math.log(s1) - Math.log(s0)) * e);
      const a = 6.28 * t;                                      // wander around the centre
      const t0 = performance.now();
      const dx = 0.12 * Math.cos(a) * (x1 - x0) * e, dy = 0.12 * Math.sin(a) * (y1 - y0) * e;
      m.setView(cx + dx, cy + dy, scale);
      draws.push(performance.now() - t0);
      if (++f < frames) requestAnimationFrame(step); else done();
    }
    requestAnimationFrame(step);
  });
  return {intervals: intervals.slice(1), draws, requested: m.stats.requested};
})()"""

NAIVE_JS = """(async () => {
  const img = new Image();
  img.src = 'sheets/0.jpg';
  await img.decode();
  const ctx = document.getElementById('map').getContext('2d');
  const n = Sosie.meta.count, xy = Sosie.points.xy, cols = Sosie.meta.sheets.columns;
  const f = Sosie.meta.sheets.face, times = [];
  for (let r = 0; r < %(repeat)d; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const j = i %% 256;
      const sx = (j %% cols) * f, sy = Math.floor(j / cols) * f;
      ctx.drawImage(img, sx, sy, f, f, xy[2*i] * 800, xy[2*i+1] * 800, 2, 2);
    }
    await new Promise((r) => requestAnimationFrame(r));  // until the next frame is due
    times.push(performance.now() - t0);
  }
  return times;
})()"""

FRAMES_3D_JS = """(async () => {
  if (%(spin)s) sosie3d.setSpin(true);
  const intervals = [];
  let last = performance.now();
  await new Promise((done) => {
    let f = 0;
    (function step(now) {
      intervals.push(now - last); last = now;
      if (++f < %(frames)d) requestAnimationFrame(step); else done();
    })(last);
  });
  return intervals.slice(2);
})()"""

ANCHOR_COMMIT = "79239ad"  # the 3-D page before colour and detail: point sprites, one atlas

CLOSE_JS = """(() => {
  const i = %(face)d, p = Sosie.points.xyz, t = [p[3*i], p[3*i+1], p[3*i+2]];
  sosie3d.setSpin(false);
  sosie3d.setCamera([t[0], t[1], t[2] + sosie3d.faceSize / Math.tan(25 * Math.PI / 180)], t);
  return document.getElementById('gl').getBoundingClientRect().height / 2;
})()"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ensure_corpus(count: int, path: Path | None) -> Path:
    if path is not None:
        return path
    path = cache_dir() / f"bench-synth-{count}"
    if not (path / "manifest.yaml").exists():
        print(f"[bench] sosie corpus synth {count} -> {path}", file=sys.stderr)
        from appliance.corpus import synth

        synth(path, count, seed=0, overwrite=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="synthetic corpus size")
    parser.add_argument("--corpus", type=Path, help="use this corpus instead of a synthetic one")
    parser.add_argument("--out", type=Path, help="site folder (default: cache/bench-map-N)")
    parser.add_argument("--reuse", action="store_true", help="skip `sosie map` if OUT exists")
    parser.add_argument("--frames", type=int, default=240, help="frames of pan/zoom to time")
    parser.add_argument("--frames-3d", type=int, default=40, help="3-D frames to time per case")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.count < 1 and args.corpus is None:
        parser.error(f"--count {args.count}: expected 1 or more")
    if args.frames < 1:
        parser.error(f"--frames {args.frames}: expected 1 or more")

    corpus = ensure_corpus(args.count, args.corpus)
    out = args.out or cache_dir() / f"bench-map-{args.count}"
    figures: dict = {"corpus": str(corpus)}
    if not (args.reuse and (out / "data" / "meta.js").exists()):
        command = [sys.executable, "-m", "appliance", "map", str(corpus), "--out", str(out)]
        print("[bench] " + " ".join(command), file=sys.stderr)
        started = time.perf_counter()
        cpu_before = _children_cpu()
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        figures["map_seconds"] = round(time.perf_counter() - started, 2)
        figures["map_cpu_seconds"] = round(_children_cpu() - cpu_before, 2)
        figures["load_average"] = round(os.getloadavg()[0], 1)
        if run.returncode:
            print(run.stderr, file=sys.stderr)
            return run.returncode
        stages = re.search(r"neighbours [^;]*; (.*)$", run.stderr, re.M)
        figures["map_stages"] = stages.group(1) if stages else ""
        summary = re.search(r"map: (.*?);", run.stderr)
        figures["map_summary"] = summary.group(1) if summary else ""
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    figures["site_mb"] = round(size / 1e6, 1)

    with Browser(width=1280, height=800, timeout=300) as browser:
        load = browser.open((out / "index.html").as_uri())
        started = time.perf_counter()
        browser.wait_for("window.sosieMap && sosieMap.idle()", timeout=120)
        figures["load_2d_s"] = round(load, 3)
        figures["first_view_2d_s"] = round(load + time.perf_counter() - started, 3)
        figures["count"] = browser.evaluate("Sosie.meta.count")
        pan = browser.evaluate(PAN_ZOOM_JS % {"frames": args.frames})
        naive = browser.evaluate(NAIVE_JS % {"repeat": 3})
        clicks = []
        for i in (11, 12345 % figures["count"], figures["count"] - 1):
            t0 = time.perf_counter()
            browser.evaluate(f"Sosie.face({i})")
            clicks.append((time.perf_counter() - t0) * 1000)
        errors = browser.log.errors + browser.log.failed_requests
    errors += bench_3d(out, figures, args.frames_3d)
    figures.update({
        "frame_interval_ms_median": round(statistics.median(pan["intervals"]), 2),
        "frame_interval_ms_p95": round(pct(pan["intervals"], 0.95), 2),
        "draw_ms_median": round(statistics.median(pan["draws"]), 2),
        "draw_ms_p95": round(pct(pan["draws"], 0.95), 2),
        "tiles_requested": pan["requested"],
        "naive_draw_all_faces_ms": round(statistics.median(naive), 1),
        "click_first_ms": round(clicks[0], 1),
        "click_next_ms": round(statistics.median(clicks[1:]), 1),
        "page_errors": errors,
    })
    anchor = figures["naive_draw_all_faces_ms"]
    rows = [
        ("sosie map (wall)", f"{figures.get('map_seconds', float('nan')):.1f} s "
         f"(CPU {figures.get('map_cpu_seconds', float('nan')):.0f} s, "
         f"load {figures.get('load_average', float('nan'))})", ""),
        ("site size", f"{figures['site_mb']:.0f} MB", ""),
        ("2-D load (to load event)", f"{figures['load_2d_s'] * 1000:.0f} ms", ""),
        ("2-D first view (tiles drawn)", f"{figures['first_view_2d_s'] * 1000:.0f} ms", ""),
        ("2-D frame interval, pan+zoom", f"{figures['frame_interval_ms_median']:.1f} ms "
         f"(p95 {figures['frame_interval_ms_p95']:.1f})",
         f"{figures['frame_interval_ms_median'] / anchor:.3f}"),
        ("2-D draw per frame",
         f"{figures['draw_ms_median']:.2f} ms (p95 {figures['draw_ms_p95']:.2f})",
         f"{figures['draw_ms_median'] / anchor:.4f}"),
        ("anchor: draw every face once", f"{anchor:.0f} ms", "1"),
        ("click -> neighbours (first)", f"{figures['click_first_ms']:.0f} ms", ""),
        ("click -> neighbours (next)", f"{figures['click_next_ms']:.0f} ms", ""),
    ]
    rows += rows_3d(figures)
    print(f"sosie map bench: {figures['count']} faces, headless Chromium 1280x800, "
          "--disable-gpu (SwiftShader WebGL)")
    if figures.get("map_stages"):
        print(f"stages: {figures['map_stages']}")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median':<28} ratio to anchor")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:<28} {ratio}")
    if errors:
        print(f"page errors: {errors}")
    if args.json:
        write_json(args.json, figures)
    return 1 if errors else 0


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else float("nan")


def _write_anchor_page(out: Path) -> bool:
    """vr-anchor.html: the 3-D page of commit ANCHOR_COMMIT on this site's data."""
    try:
        old = subprocess.run(["git", "show", f"{ANCHOR_COMMIT}:appliance/web/assets/vr.js"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print(f"[bench] no git history for {ANCHOR_COMMIT}: no anchor page", file=sys.stderr)
        return False
    (out / "assets" / "vr-anchor.js").write_text(old, encoding="utf-8")
    page = (out / "vr.html").read_text(encoding="utf-8")
    # today's view is assets/vr/*.js (classic scripts in order); the anchor's was one file
    ours = re.compile(r'<script src="assets/vr/[^"]+"></script>\n?')
    anchor = '<script src="assets/vr-anchor.js"></script>\n'
    page = ours.sub("", page).replace("</body>", anchor + "</body>", 1)
    (out / "vr-anchor.html").write_text(page, encoding="utf-8")
    return True


SETTLE_JS = """new Promise((done) => { sosie3d.draw();
  requestAnimationFrame(() => requestAnimationFrame(() => done(
    [sosie3d.detail.loading, sosie3d.detail.loads]))); })"""


def _settle(browser: Browser, timeout: float = 120.0) -> None:
    """Draw until no sheet is loading and the plan wants no new one."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        loading, loads = browser.evaluate(SETTLE_JS)
        if not loading and loads == previous:
            return
        previous = loads
        time.sleep(0.05)


def _enter_vr(browser: Browser) -> None:
    browser.wait_for("window.sosie3d && sosie3d.vr", timeout=120)
    box = browser.evaluate("(() => { const r = document.getElementById('enter-vr')"
                           ".getBoundingClientRect(); return {x: r.x + 5, y: r.y + 5}; })()")
    for kind in ("mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                     button="left", clickCount=1)
    browser.wait_for("document.getElementById('enter-vr').textContent === 'Exit VR'",
                     timeout=120)


def _page_3d(browser: Browser, url: str, frames: int) -> dict:
    """Open a 3-D page: time to first frame and frame intervals over the turning cloud."""
    browser.open(url)
    browser.wait_for("window.sosie3d && sosie3d.timings.firstFrame", timeout=300)
    timings = browser.evaluate("sosie3d.timings")  # ms since navigation start
    intervals = browser.evaluate(FRAMES_3D_JS % {"frames": frames, "spin": "true"})
    return {"first_frame_ms": round(timings["firstFrame"]),
            "atlas_ms": round(timings["texture"]), "frame_ms": _median(intervals)}


def bench_3d(out: Path, figures: dict, frames: int) -> list[str]:
    """The 3-D figures (see the module doc) into `figures`; returns page errors."""
    errors: list[str] = []
    anchor = _write_anchor_page(out)
    quest = quest2_scripts()
    with serve(out) as url, Browser(width=1280, height=800, timeout=300) as browser:
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=TEXTURE_LOG_SCRIPT)
        say("3-D: the page, whole cloud")
        ours = _page_3d(browser, f"{url}/vr.html", frames)
        figures["vr_page"] = ours
        # close to the front face: its quad is half the view high
        face = browser.evaluate("(() => { const p = Sosie.points.xyz; let best = 0;"
                                " for (let i = 0; i < Sosie.meta.count; i++)"
                                " if (p[3*i+2] > p[3*best+2]) best = i; return best; })()")
        say("3-D: close to a face")
        quad_px = browser.evaluate(CLOSE_JS % {"face": face})
        started = time.perf_counter()
        browser.wait_for(f"sosie3d.detail.source({face}) === 'detail' || "
                         "!sosie3d.detail.enabled", timeout=120)
        stream_ms = (time.perf_counter() - started) * 1000
        _settle(browser)
        close = browser.evaluate(FRAMES_3D_JS % {"frames": frames, "spin": "false"})
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        browser.screenshot(ROOT / "bench" / "results" / "vr-close.png")
        detail = browser.evaluate("(() => { const d = sosie3d.detail; return {face: d.facePx, "
                                  "cell: d.atlasCellPx, slots: d.slots, side: d.side, "
                                  "budget: d.budgetBytes, atlas: d.atlasBytes, "
                                  "enabled: d.enabled}; })()")
        figures["vr_close"] = {
            "quad_px": round(quad_px), "image_px": detail["face"], "atlas_px": detail["cell"],
            "screen_px_per_texel": round(quad_px / detail["face"], 1),
            "screen_px_per_texel_atlas": round(quad_px / detail["cell"], 1),
            "sheet_streamed_ms": round(stream_ms), "frame_ms": _median(close),
        }
        # fly through the whole cloud; the page's textures never exceed its budget
        say("3-D: a flight through the whole cloud")
        for axis in ([1, 0, 0], [0, 0, 1]):
            for t in (-1.0, 0.0, 1.0):
                eye = [t * a for a in axis]
                target = [e + 0.2 * a for e, a in zip(eye, axis, strict=True)]
                browser.evaluate(f"sosie3d.setCamera({eye}, {target})")
                _settle(browser)
        log = browser.evaluate("({peak: textureLog.peak, loads: sosie3d.detail.loads, "
                               "evictions: sosie3d.detail.evictions})")
        figures["vr_textures"] = {
            "budget_mb": round(detail["budget"] / 2**20, 1),
            "atlas_mb": round(detail["atlas"] / 2**20, 1),
            "detail_mb": round((detail["budget"] - detail["atlas"]) / 2**20, 1),
            "detail_slots": detail["slots"], "faces_in_detail": detail["slots"] * 256,
            "peak_allocated_mb": round(log["peak"] / 2**20, 1),
            "sheets_loaded": log["loads"], "evictions": log["evictions"],
        }
        errors += browser.log.errors + browser.log.failed_requests
        if anchor:
            say("3-D: the anchor page")
            figures["vr_anchor_page"] = _page_3d(browser, f"{url}/vr-anchor.html", frames)
            figures["vr_anchor_textures_mb"] = round(
                browser.evaluate("textureLog.peak") / 2**20, 1)
    if quest is None:
        print("[bench] iwer not installed (./dev test installs it): no emulated Quest 2",
              file=sys.stderr)
        return errors
    pages = [("vr_quest2", "vr.html")] + ([("vr_anchor_quest2", "vr-anchor.html")] if anchor
                                           else [])
    for key, page in pages:
        say(f"emulated Quest 2: {page}")
        with serve(out) as url, Browser(width=1280, height=800, timeout=300) as browser:
            for source in quest:
                browser.call("Page.addScriptToEvaluateOnNewDocument", source=source)
            browser.open(f"{url}/{page}")
            browser.wait_for("window.sosie3d && sosie3d.ready", timeout=300)
            started = time.perf_counter()
            _enter_vr(browser)
            intervals = browser.evaluate(FRAMES_3D_JS % {"frames": frames, "spin": "false"})
            figures[key] = {"enter_ms": round((time.perf_counter() - started) * 1000),
                            "frame_ms": _median(intervals)}
            errors += browser.log.errors + browser.log.failed_requests
    return errors


def rows_3d(figures: dict) -> list[tuple[str, str, str]]:
    ours, anchor = figures["vr_page"], figures.get("vr_anchor_page")

    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:.2f}" if b else ""

    close, tex = figures["vr_close"], figures["vr_textures"]
    rows = [
        ("3-D first frame (anchor: points)", f"{ours['first_frame_ms']} ms "
         f"({anchor['first_frame_ms'] if anchor else '-'} ms)",
         ratio(ours["first_frame_ms"], anchor and anchor["first_frame_ms"])),
        ("3-D frame, whole cloud (anchor)", f"{ours['frame_ms']} ms "
         f"({anchor['frame_ms'] if anchor else '-'} ms)",
         ratio(ours["frame_ms"], anchor and anchor["frame_ms"])),
        ("3-D frame, close to a face", f"{close['frame_ms']} ms", ""),
        ("close face: quad / image px", f"{close['quad_px']} px from {close['image_px']} px "
         f"(atlas {close['atlas_px']} px)", ""),
        ("close face: screen px per texel", f"{close['screen_px_per_texel']} "
         f"(atlas {close['screen_px_per_texel_atlas']})", ""),
        ("close face: its sheet streamed in", f"{close['sheet_streamed_ms']} ms", ""),
        ("textures: budget (atlas+detail)", f"{tex['budget_mb']} MB ({tex['atlas_mb']}"
         f"+{tex['detail_mb']}; {tex['faces_in_detail']} faces)", ""),
        ("textures: peak allocated, flight", f"{tex['peak_allocated_mb']} MB "
         f"({tex['sheets_loaded']} sheets, {tex['evictions']} evicted)",
         ratio(tex["peak_allocated_mb"], tex["budget_mb"])),
    ]
    if "vr_anchor_textures_mb" in figures:
        rows.append(("textures: anchor page", f"{figures['vr_anchor_textures_mb']} MB", ""))
    quest, old = figures.get("vr_quest2"), figures.get("vr_anchor_quest2")
    if quest:
        rows.append(("Quest 2 (iwer) frame, 2 eyes", f"{quest['frame_ms']} ms "
                     f"({old['frame_ms'] if old else '-'} ms)",
                     ratio(quest["frame_ms"], old and old["frame_ms"])))
        rows.append(("Quest 2 (iwer) enter VR", f"{quest['enter_ms']} ms", ""))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
