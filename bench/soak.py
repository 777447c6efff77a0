"""Soak: N simulated presses through the real pipeline, watching memory (RSS) and failures.

    .venv/bin/python bench/soak.py [--presses 10000] [--corpus DIR] [--count 200000]
                                   [--frame 320x240] [--no-face-every 10] [--json PATH]

The service loop, state machine, dlib, SIMD scan, ticket layout, dithering, ESC/POS encoding and
EscposPrinter run for real; the button, camera and printer cable are simulated
(bench/simulated.py). Every `--no-face-every`-th frame is blank, so the no-face ticket
path is soaked too. RSS is sampled after a warm-up and then every `--every` presses; progress
lines go to stderr (and to --json as it runs), so a long run can be followed and stopped.

Anchor, measured in the same run: the RSS growth allowed by the closing note (5 MB).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from figures import write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ALLOWED_GROWTH_MB = 5.0


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory in MB: VmRSS (all), RssAnon (heap: where leaks show) or RssFile
    (mapped files: libraries, models, the corpus; comes and goes with the page cache)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def frame_size(text: str) -> tuple[int, int]:
    """argparse type for --frame: 'WxH' with positive integers."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 320x240, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive WxH, got {text!r}")
    return width, height


def soak_frames(width: int, height: int, no_face_every: int) -> list[np.ndarray]:
    """The astronaut's head and shoulders framed like a visitor at arm's length, plus blanks."""
    from latency import camera_frame

    face = camera_frame("arm", width, height)
    frames = [face]
    if no_face_every:
        frames = [face] * (no_face_every - 1) + [np.full_like(face, 128)]
    return frames


def main(argv: list[str] | None = None) -> int:
    from latency import synthetic_corpus
    from simulated import SimulatedAppliance  # bench/ is the script's folder

    from appliance.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=200_000, help="synthetic corpus size")
    parser.add_argument("--corpus", type=Path, help="use this corpus instead")
    parser.add_argument("--frame", type=frame_size, default="320x240",
                        help="camera frame size WxH")
    parser.add_argument("--no-face-every", type=int, default=10,
                        help="every n-th frame has no face (0: never)")
    parser.add_argument("--warmup", type=int, default=50, help="presses before the start RSS")
    parser.add_argument("--every", type=int, default=250, help="RSS sample interval (presses)")
    parser.add_argument("--paper", choices=("58", "80"), default="80",
                        help="paper width in mm: 80 = 576 dots (default), 58 = 384 dots")
    parser.add_argument("--lookalikes", type=int, default=None,
                        help="lookalikes per ticket (default: ticket.lookalikes)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    width, height = args.frame

    corpus = args.corpus or synthetic_corpus(args.count)
    frames = soak_frames(width, height, args.no_face_every)
    settings = load_settings(search=False)
    if args.paper == "58":
        settings = settings.replace(printer=dataclasses.replace(settings.printer, width=384))
    if args.lookalikes:
        settings = settings.replace(
            ticket=dataclasses.replace(settings.ticket, lookalikes=args.lookalikes))
    app = SimulatedAppliance(settings, frames, corpus)
    rss_boot = rss_mb()
    app.start()
    rss_ready = rss_mb()
    print(f"ready: RSS {rss_boot:.1f} MB before start, {rss_ready:.1f} MB after models+corpus",
          file=sys.stderr)

    samples: list[tuple[int, float]] = []
    anon: list[tuple[int, float]] = []
    latencies: list[float] = []
    failures: list[str] = []
    started = time.monotonic()
    figures: dict = {}

    def record(done: int) -> None:
        gc.collect()
        samples.append((done, rss_mb()))
        anon.append((done, rss_mb("RssAnon")))
        elapsed = time.monotonic() - started
        start_rss = samples[0][1]
        print(f"{done:>6} presses  {elapsed / 60:6.1f} min  RSS {samples[-1][1]:7.1f} MB "
              f"({samples[-1][1] - start_rss:+.2f} since warm-up; heap {anon[-1][1]:.1f} MB, "
              f"{anon[-1][1] - anon[0][1]:+.2f})  failures {len(failures)}",
              file=sys.stderr, flush=True)
        figures.update(summary(done, elapsed))
        if args.json:
            write_json(args.json, figures)

    def summary(done: int, elapsed: float) -> dict:
        start_rss, end_rss = samples[0][1], samples[-1][1]
        half = [s for s in samples if s[0] >= samples[-1][0] / 2]
        slope = 0.0
        if len(half) >= 2:
            x = np.array([s[0] for s in half], float)
            y = np.array([s[1] for s in half], float)
            slope = float(np.polyfit(x, y, 1)[0]) * 1000  # MB per 1000 presses
        return {
            "presses": done, "target_presses": args.presses, "minutes": round(elapsed / 60, 1),
            "seconds_per_press": round(elapsed / max(1, done - args.warmup), 3),
            "rss_boot_mb": round(rss_boot, 1), "rss_ready_mb": round(rss_ready, 1),
            "rss_start_mb": round(start_rss, 1), "rss_end_mb": round(end_rss, 1),
            "rss_growth_mb": round(end_rss - start_rss, 2),
            "rss_max_mb": round(max(s[1] for s in samples), 1),
            "heap_start_mb": round(anon[0][1], 1), "heap_end_mb": round(anon[-1][1], 1),
            "heap_growth_mb": round(anon[-1][1] - anon[0][1], 2), "heap_samples": anon,
            "rss_slope_mb_per_1000_second_half": round(slope, 3),
            "failures": len(failures), "failure_examples": failures[:5],
            "first_byte_median_ms": round(1000 * statistics.median(latencies), 1)
            if latencies else None,
            "tickets_printed": app.service.machine.counters.tickets_printed,
            "no_face": app.service.machine.counters.no_face,
            "samples": samples, "frame": f"{width}x{height}", "corpus": str(corpus),
            "paper_mm": args.paper, "lookalikes": settings.ticket.lookalikes,
        }

    try:
        for i in range(1, args.presses + 1):
            try:
                latency, _ = app.visit()
                latencies.append(latency)
                del latencies[:-2000]
            except RuntimeError as exc:
                failures.append(f"press {i}: {exc}")
                app.service.wait_for(lambda s: s.state.value == "ready", 120)
            if i == args.warmup:
                started = time.monotonic()
                record(i)
            elif i > args.warmup and (i % args.every == 0 or i == args.presses):
                record(i)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        app.stop()

    if not samples:
        return 1
    s = figures
    print(f"\nsoak: {s['presses']} presses in {s['minutes']} min "
          f"({s['seconds_per_press']} s/press), frame {args.frame}, corpus {Path(corpus).name}, "
          f"{args.paper} mm paper, {s['lookalikes']} lookalikes\n")
    print(f"| {'figure':<34} | {'value':>12} |")
    print(f"|{'-' * 36}|{'-' * 14}|")
    rows = [
        ("RSS after models + corpus (MB)", s["rss_ready_mb"]),
        (f"RSS after {args.warmup} warm-up presses (MB)", s["rss_start_mb"]),
        ("RSS at end (MB)", s["rss_end_mb"]),
        ("RSS growth (MB)", s["rss_growth_mb"]),
        ("heap (RssAnon) growth (MB)", s["heap_growth_mb"]),
        ("RSS slope, 2nd half (MB/1000)", s["rss_slope_mb_per_1000_second_half"]),
        ("anchor: allowed growth (MB)", ALLOWED_GROWTH_MB),
        ("tickets printed", s["tickets_printed"]),
        ("no-face tickets", s["no_face"]),
        ("failures", s["failures"]),
        ("press -> first byte median (ms)", s["first_byte_median_ms"]),
    ]
    for name, value in rows:
        print(f"| {name:<34} | {value!s:>12} |")
    ok = s["rss_growth_mb"] < ALLOWED_GROWTH_MB and not failures
    print(f"\ngrowth / allowed = {s['rss_growth_mb'] / ALLOWED_GROWTH_MB:.2f}: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
