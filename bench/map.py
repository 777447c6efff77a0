"""`sosie map` at scale: build time and bytes on a corpus, and the pages in headless Chromium.

    .venv/bin/python bench/map.py [--count 200000 | --corpus DIR] [--out DIR] [--json out.json]
                                  [--anchor-build COMMIT]

Measures (same run): the wall and CPU time of `sosie map` (and its stages) and the peak RSS of
its largest process; the site's bytes, per face and per kind (sheets, tiles, atlas, 8-bit
descriptors, the rest); with `--anchor-build COMMIT`, the same for `sosie map` as it was at
that commit (its `appliance` package exported from git, run on the same corpus just before
ours: the anchor of the build figures, e.g. the JPEG site before WebP). A synthetic corpus
(`--count`, placeholder thumbnails shared by many rows) says nothing about image bytes: give
a real one with `--corpus`. The 2-D page's load time
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
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import cpu_name, write_json  # noqa: E402 - bench/ is the script's folder

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
  img.src = 'sheets/0.webp';
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


SITE_KINDS = (("sheets", "sheets/"), ("tiles", "tiles/"), ("atlas", "data/atlas3d.js"),
              ("descriptors", "data/descriptors.js"), ("points", "data/points.js"),
              ("names_neighbours", "data/faces/"))


def site_bytes(out: Path, count: int) -> dict:
    """The site's bytes: total, per face, and per kind (SITE_KINDS; 'rest': pages, meta)."""
    kinds = dict.fromkeys([k for k, _ in SITE_KINDS] + ["rest"], 0)
    for path in out.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(out).as_posix()
        if name.startswith("assets/vr-anchor") or name == "vr-anchor.html":
            continue  # the anchor page this bench adds
        kind = next((k for k, prefix in SITE_KINDS if name.startswith(prefix)), "rest")
        kinds[kind] += path.stat().st_size
    total = sum(kinds.values())
    return {"bytes": total, "bytes_per_face": round(total / count), "per_face": {
        k: round(v / count) for k, v in kinds.items()}, "mb": {
        k: round(v / 1e6, 1) for k, v in kinds.items()}}


def run_map(corpus: Path, out: Path, *, source: Path | None = None) -> dict:
    """`sosie map CORPUS --out OUT` in a process of its own (the package in `source` if given):
    wall and CPU seconds, peak RSS of its largest process, its stages; {} if it failed."""
    command = [sys.executable, "-m", "appliance", "map", str(corpus.resolve()), "--out",
               str(out.resolve())]
    say(" ".join(command) + (f"  (package from {source})" if source else ""))
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log, subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log, text=True,
            cwd=source or None) as run:  # -m finds `appliance` in the cwd first
        peak = {"anon_mb": 0.0, "file_mb": 0.0}
        while True:  # the process tree's resident memory, twice a second, until it ends
            anon, file = _tree_rss(run.pid)
            peak = {"anon_mb": max(peak["anon_mb"], anon), "file_mb": max(peak["file_mb"], file)}
            pid, status, usage = os.wait4(run.pid, os.WNOHANG)  # its own rusage: its workers'
            if pid:
                run.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.5)
        log.seek(0)
        stderr = log.read()
    figures: dict = {"map_seconds": round(time.perf_counter() - started, 2),
                     "map_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                     # its largest process (itself or a worker it waited for), in MB
                     "map_peak_rss_mb": round(usage.ru_maxrss / 1024),
                     # summed over the process tree, sampled: anonymous memory, and the
                     # file-backed pages (the map-size faces' memory-mapped file) resident
                     "map_tree_rss_mb": {k: round(v) for k, v in peak.items()},
                     "load_average": round(os.getloadavg()[0], 1)}
    if run.returncode:
        print(stderr, file=sys.stderr)
        return {}
    stages = re.search(r"neighbours [^;]*; (.*)$", stderr, re.M)
    figures["map_stages"] = stages.group(1) if stages else ""
    summary = re.search(r"map: (.*?);", stderr)
    figures["map_summary"] = summary.group(1) if summary else ""
    return figures


def _tree_rss(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) resident MB of process `pid` and its descendants (Linux)."""
    anon = file = 0.0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                kb = float(line.split()[1]) / 1024
                if line.startswith("RssAnon:"):
                    anon += kb
                else:
                    file += kb
        pending += [int(c) for c in children]
    return anon, file


def anchor_build(commit: str, corpus: Path, out: Path) -> dict:
    """`sosie map` as it was at `commit`, on the same corpus: its build figures and bytes."""
    source = cache_dir() / f"bench-map-package-{commit}"
    if not (source / "appliance").is_dir():
        archive = subprocess.run(["git", "archive", commit, "appliance"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        source.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
        for built in (ROOT / "appliance").glob("*.so"):  # the compiled kernels, as built here
            shutil.copy2(built, source / "appliance" / built.name)
    figures = run_map(corpus, out, source=source)
    if figures:
        figures["site"] = site_bytes(out, int(re.match(r"\d+", figures["map_summary"]).group()))
    return figures


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
    parser.add_argument("--anchor-build", metavar="COMMIT",
                        help="also build the site with `sosie map` of COMMIT (its bytes and "
                        "build time are the anchor of ours), into OUT-anchor")
    args = parser.parse_args(argv)
    if args.count < 1 and args.corpus is None:
        parser.error(f"--count {args.count}: expected 1 or more")
    if args.frames < 1:
        parser.error(f"--frames {args.frames}: expected 1 or more")

    corpus = ensure_corpus(args.count, args.corpus)
    out = args.out or cache_dir() / f"bench-map-{args.count}"
    figures: dict = {"corpus": str(corpus), "cpu": cpu_name(), "cores": os.cpu_count()}
    anchor_out = out.with_name(out.name + "-anchor")
    if args.anchor_build and not (args.reuse and (anchor_out / "data" / "meta.js").exists()):
        figures["anchor_build"] = anchor_build(args.anchor_build, corpus, anchor_out)
        figures["anchor_build"]["commit"] = args.anchor_build
    if not (args.reuse and (out / "data" / "meta.js").exists()):
        ours = run_map(corpus, out)
        if not ours:
            return 1
        figures.update(ours)

    with Browser(width=1280, height=800, timeout=300) as browser:
        load = browser.open((out / "index.html").as_uri())
        started = time.perf_counter()
        browser.wait_for("window.sosieMap && sosieMap.idle()", timeout=120)
        figures["load_2d_s"] = round(load, 3)
        figures["first_view_2d_s"] = round(load + time.perf_counter() - started, 3)
        figures["count"] = browser.evaluate("Sosie.meta.count")
        figures["site"] = site_bytes(out, figures["count"])
        figures["site_mb"] = round(figures["site"]["bytes"] / 1e6, 1)
        pan = browser.evaluate(PAN_ZOOM_JS % {"frames": args.frames})
        naive = browser.evaluate(NAIVE_JS % {"repeat": 3})
        clicks = []
        for i in (11, 12345 % figures["count"], figures["count"] - 1):
            t0 = time.perf_counter()
            browser.evaluate(f"Sosie.face({i})")
            clicks.append((time.perf_counter() - t0) * 1000)
        errors = browser.log.errors + browser.log.failed_requests
    if args.anchor_build and (anchor_out / "data" / "meta.js").exists():
        say("first views of our site and the anchor build's, alternately")
        figures["first_views"] = first_views({"ours": out, "anchor": anchor_out})
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
        *build_rows(figures),
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
    views = figures.get("first_views")
    if views:
        rows.append(("first view 2-D, ours (anchor build)", f"{views['ours']['2d']} ms "
                     f"({views['anchor']['2d']} ms)",
                     f"{views['ours']['2d'] / views['anchor']['2d']:.2f}"))
        rows.append(("first frame 3-D, ours (anchor build)", f"{views['ours']['3d']} ms "
                     f"({views['anchor']['3d']} ms)",
                     f"{views['ours']['3d'] / views['anchor']['3d']:.2f}"))
    rows += rows_3d(figures)
    print(f"sosie map bench: {figures['count']} faces, {figures['cpu']} ({figures['cores']} "
          "cores), headless Chromium 1280x800, --disable-gpu (SwiftShader WebGL)")
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


def build_rows(figures: dict) -> list[tuple[str, str, str]]:
    """The build's rows: ours, and the anchor build's where it ran (ratio: ours / anchor)."""
    nan = float("nan")
    old = figures.get("anchor_build") or {}
    tag = f" (anchor {old['commit']})" if old else ""

    def ratio(key: str, a: float) -> str:
        b = old.get(key) if key != "bytes_per_face" else old.get("site", {}).get(key)
        return f"{a / b:.2f}" if b else ""

    def build(f: dict) -> str:
        tree = f.get("map_tree_rss_mb", {})
        return (f"{f.get('map_seconds', nan):.0f} s, CPU {f.get('map_cpu_seconds', nan):.0f} s, "
                f"peak RSS {f.get('map_peak_rss_mb', nan)} MB (tree: anon "
                f"{tree.get('anon_mb')} + file {tree.get('file_mb')} MB; load "
                f"{f.get('load_average')})")

    site = figures["site"]
    rows = [("sosie map: wall, CPU, peak RSS", build(figures),
             ratio("map_cpu_seconds", figures.get("map_cpu_seconds", nan)))]
    if old:
        rows.append(("  anchor" + tag, build(old), "1"))
    kinds = ", ".join(f"{k} {v}" for k, v in site["per_face"].items())
    rows.append(("site bytes a face", f"{site['bytes_per_face']} B ({site['bytes'] / 1e6:.0f} "
                 f"MB; {kinds})", ratio("bytes_per_face", site["bytes_per_face"])))
    if old:
        o = old["site"]
        kinds = ", ".join(f"{k} {v}" for k, v in o["per_face"].items())
        rows.append(("  anchor" + tag, f"{o['bytes_per_face']} B ({o['bytes'] / 1e6:.0f} MB; "
                     f"{kinds})", "1"))
    return rows


def first_views(sites: dict[str, Path], rounds: int = 3) -> dict:
    """Medians over `rounds` alternating opens of each site: the 2-D page to every visible tile
    drawn (from file://), and the 3-D page to its first frame (served): each site with its own
    pages and images, in one browser, so the cache and the machine's load are shared."""
    times: dict[str, dict[str, list[float]]] = {k: {"2d": [], "3d": []} for k in sites}
    with Browser(width=1280, height=800, timeout=300) as browser:
        for _ in range(rounds):
            for key, site in sites.items():
                load = browser.open((site / "index.html").as_uri())
                started = time.perf_counter()
                browser.wait_for("window.sosieMap && sosieMap.idle()", timeout=120)
                times[key]["2d"].append(1000 * (load + time.perf_counter() - started))
                with serve(site) as url:
                    browser.open(f"{url}/vr.html")
                    browser.wait_for("window.sosie3d && sosie3d.timings.firstFrame", timeout=300)
                    times[key]["3d"].append(browser.evaluate("sosie3d.timings.firstFrame"))
    return {key: {kind: round(statistics.median(v)) for kind, v in kinds.items()}
            for key, kinds in times.items()}


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
