"""`sosie map` at scale: build time on a synthetic corpus, and the pages in headless Chromium.

    .venv/bin/python bench/map.py [--count 200000] [--corpus DIR] [--out DIR] [--json out.json]

Measures (same run): the wall time of `sosie map` (and its stages); the 2-D page's load time
(navigation to load event, and to every visible tile drawn); its frame times while it is panned
and zoomed programmatically from the whole cloud down to single faces and back
(requestAnimationFrame intervals and the draw cost per frame); click-to-neighbours latency; the
3-D page's load time and frame interval. Anchor: drawing every face individually per frame
(what a viewer without level of detail does), timed in the same browser on the same canvas.
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

from appliance.cartography.headless import Browser  # noqa: E402
from appliance.paths import cache_dir  # noqa: E402

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
  sosie3d.setSpin(true);
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
        browser.open((out / "vr.html").as_uri())
        browser.wait_for("window.sosie3d && sosie3d.timings.firstFrame", timeout=300)
        timings = browser.evaluate("sosie3d.timings")  # ms since navigation start
        figures["load_3d_s"] = round(timings["firstFrame"] / 1000, 3)
        figures["texture_3d_s"] = round(timings["texture"] / 1000, 3)
        frames3 = browser.evaluate(FRAMES_3D_JS % {"frames": 20})
        errors += browser.log.errors + browser.log.failed_requests

    figures.update({
        "frame_interval_ms_median": round(statistics.median(pan["intervals"]), 2),
        "frame_interval_ms_p95": round(pct(pan["intervals"], 0.95), 2),
        "draw_ms_median": round(statistics.median(pan["draws"]), 2),
        "draw_ms_p95": round(pct(pan["draws"], 0.95), 2),
        "tiles_requested": pan["requested"],
        "naive_draw_all_faces_ms": round(statistics.median(naive), 1),
        "click_first_ms": round(clicks[0], 1),
        "click_next_ms": round(statistics.median(clicks[1:]), 1),
        "frame_3d_ms_median": round(statistics.median(frames3), 2),
        "frame_3d_ms_p95": round(pct(frames3, 0.95), 2),
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
        ("3-D load (first frame drawn)", f"{figures['load_3d_s'] * 1000:.0f} ms "
         f"(atlas ready {figures['texture_3d_s'] * 1000:.0f})", ""),
        ("3-D frame interval (SwiftShader)", f"{figures['frame_3d_ms_median']:.1f} ms "
         f"(p95 {figures['frame_3d_ms_p95']:.1f})", ""),
    ]
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


if __name__ == "__main__":
    raise SystemExit(main())
