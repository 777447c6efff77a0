"""Press -> first byte to the printer, with a per-stage breakdown, on a 200k synthetic corpus.

    .venv/bin/python bench/latency.py [--presses 30] [--corpus DIR] [--count 200000] [--json P]

The appliance runs for real (service loop, state machine, camera interface, dlib, SIMD scan,
ticket layout, dithering, ESC/POS encoding, EscposPrinter) on simulated ends: the camera serves
a 640x480 frame of the astronaut portrait, the printer connection notes when its first and last
bytes arrive (bench/simulated.py). The ticket streams: its first band (the header art)
is composed and encoded, written, and only then the bands below, while the printer prints; so
the table splits the stages into those before the first byte and those after it. Anchors
measured in the same run:

* dlib descriptor alone: dlib's own `compute_face_descriptor` on the aligned chip (dlib-bin has no
  BLAS), which by itself took longer than the whole press -> first byte now that the same network
  runs on numpy (`faces.descriptor_engine`);
* naive photo -> nearest faces (no ticket): what a face_recognition-style script does: HOG with
  one upsampling on the full frame, 68-point landmarks, descriptor, then numpy float32
  `norm(X - q)` over the whole corpus and a full argsort.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from figures import median_ms, write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FACE = ("detect", "landmarks", "descriptor")  # and whatever else the analyzer times
TICKET = ("first band: compose", "first band: encode")
AFTER = ("rest: thumbnails", "rest: layout", "rest: dither", "rest: encode")
NOT_STAGES = {"total", "print"}


def synthetic_corpus(count: int) -> Path:
    from appliance.corpus.store import Corpus
    from appliance.corpus.synth import synth
    from appliance.paths import cache_dir

    path = cache_dir() / f"bench-synth-{count // 1000}k"
    try:
        with Corpus.open(path) as corpus:
            if corpus.count == count:
                return path
    except Exception:
        pass
    print(f"writing a {count}-face synthetic corpus to {path} (once)...", file=sys.stderr)
    return synth(path, count, seed=0, overwrite=True)


def camera_frame(framing: str = "arm", width: int = 640, height: int = 480) -> np.ndarray:
    """A camera frame (640x480 by default): the astronaut at arm's length (face ~40 % of the
    frame width) or the whole photo."""
    from skimage import data

    from appliance.parts.camera import fit_inside

    photo = data.astronaut()
    if framing == "arm":
        photo = photo[0:300, 80:380]  # head and shoulders, as a visitor facing the box
    return fit_inside(photo, width, height)


def before_stages(timings: dict[str, float]) -> tuple[str, ...]:
    """The stages before the ticket, in the order the visit ran them (face stages vary)."""
    names = [k for k in timings if k not in NOT_STAGES and k not in (*TICKET, *AFTER)]
    return tuple(dict.fromkeys(["capture", *FACE, *names]))


def measure_pipeline(frame: np.ndarray, corpus: Path, presses: int,
                     detect_max_side: int | None = None) -> dict[str, list[float]]:
    from simulated import SimulatedAppliance  # bench/ is the script's folder

    from appliance.settings import load_settings

    settings = load_settings(search=False)
    if detect_max_side is not None:
        import dataclasses

        faces = dataclasses.replace(settings.faces, detect_max_side=detect_max_side)
        settings = settings.replace(faces=faces)
    app = SimulatedAppliance(settings, frame, corpus)
    started = time.perf_counter()
    app.start()
    print(f"appliance ready in {time.perf_counter() - started:.1f} s "
          f"(startup: {app.appliance.startup_seconds})", file=sys.stderr)
    out: dict[str, list[float]] = {s: [] for s in (*TICKET, *AFTER, "first_byte", "last_byte",
                                                    "lookup_to_first_byte", "visit_total")}
    cpu: list[float] = []  # CPU seconds of the worker thread per visit (immune to other load)
    looked_up: list[float] = []  # when the lookup (search and all) handed its result back
    appliance = app.appliance
    look_up, print_visit = appliance.look_up, appliance.print_visit

    def cpu_lookup(frame):
        t = time.thread_time()
        try:
            return look_up(frame)
        finally:
            cpu.append(time.thread_time() - t)
            looked_up.append(time.perf_counter())

    def cpu_print(result):
        t = time.thread_time()
        try:
            return print_visit(result)
        finally:
            cpu[-1] += time.thread_time() - t

    appliance.look_up, appliance.print_visit = cpu_lookup, cpu_print
    try:
        app.visit()  # first visit: lazy imports, caches
        cpu.clear()
        for _ in range(presses):
            latency, record = app.visit()
            out["first_byte"].append(latency)
            out["lookup_to_first_byte"].append(app.connection.first_byte - looked_up[-1])
            out["last_byte"].append(app.last_byte_latency)
            out["visit_total"].append(record.timings.get("total", float("nan")))
            for stage in before_stages(record.timings):
                out.setdefault(stage, []).append(record.timings.get(stage, 0.0))
            for stage in (*TICKET, *AFTER):  # recorded by the service, as `sosie status` shows
                out[stage].append(record.timings[stage])
        out["before"] = [*before_stages(record.timings), *TICKET]  # type: ignore[list-item]
        out["visit_cpu"] = list(cpu)
        out["kernel"] = [appliance.scanner.kernel]  # type: ignore[list-item]
        out.update(cpu_profile(appliance, frame, max(5, presses // 2)))
    finally:
        app.stop()
    return out


CPU_STAGES = ("cpu: face (detect+landmarks+descriptor)", "cpu: search", "cpu: prepare",
              "cpu: first band (compose+encode)", "cpu: rest of the ticket")


def cpu_profile(appliance, frame: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """CPU seconds per stage, measured in this thread with the service's own objects.

    Wall-clock stage times swing with other processes on a shared machine; thread CPU time
    does not (much). Lookup.run is timed whole; "prepare" is its remainder.
    """
    from appliance.parts.printer import BandEncoder, StreamJob, encode_ticket

    out: dict[str, list[float]] = {k: [] for k in (*CPU_STAGES, "one_shot")}
    lookup, k = appliance.lookup, appliance.settings.ticket.lookalikes
    encoder = BandEncoder(appliance.printer.settings, appliance.paper)
    for _ in range(repeats):
        c1 = time.thread_time()
        face = appliance.analyzer.analyze(frame)
        q = face.descriptor  # computed by analyze or here, either way counted
        c2 = time.thread_time()
        appliance.scanner.topk(q, k)
        c3 = time.thread_time()
        result = lookup.look_up(frame)
        c4 = time.thread_time()
        segments = iter(StreamJob(result.ticket, encoder))
        next(segments)  # INIT: written once the first band is composed and encoded
        c5 = time.thread_time()
        for _segment in segments:
            pass
        c6 = time.thread_time()
        out["cpu: face (detect+landmarks+descriptor)"].append(c2 - c1)
        out["cpu: search"].append(c3 - c2)
        out["cpu: prepare"].append(max(0.0, (c4 - c3) - (c3 - c1)))
        out["cpu: first band (compose+encode)"].append(c5 - c4)
        out["cpu: rest of the ticket"].append(c6 - c5)
        out["one_shot"].append(one_shot_ticket(lookup, frame, appliance.printer, encode_ticket))
        del face, q, result, segments
    return out


def one_shot_ticket(lookup, frame: np.ndarray, printer, encode_ticket) -> float:
    """Wall seconds the unstreamed design spent between the lookup and the first byte:
    compose the whole ticket, then encode it whole with a fresh python-escpos encoder."""
    result = lookup.look_up(frame)
    start = time.perf_counter()
    encode_ticket(result.ticket.image(), printer.settings, printer.width)
    return time.perf_counter() - start


def measure_anchors(frame: np.ndarray, corpus_path: Path, repeats: int) -> dict[str, list[float]]:
    import dlib

    from appliance.corpus.store import Corpus
    from appliance.faces.model_files import default_models_dir

    models = default_models_dir()
    detector = dlib.get_frontal_face_detector()
    sp68 = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
    sp5 = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    with Corpus.open(corpus_path) as corpus:
        x32 = np.asarray(corpus.vectors, dtype=np.float32)
    out: dict[str, list[float]] = {"descriptor_alone": [], "naive": []}
    rects = detector(frame, 0)
    chip = dlib.get_face_chip(frame, sp5(frame, rects[0]), size=150)
    out["descriptor_cpu"] = []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.thread_time()
        net.compute_face_descriptor(chip)
        out["descriptor_alone"].append(time.perf_counter() - t)
        out["descriptor_cpu"].append(time.thread_time() - c)
    out["naive_cpu"] = []
    for _ in range(max(3, repeats // 3)):
        t, c = time.perf_counter(), time.thread_time()
        faces = detector(frame, 1)
        shape = sp68(frame, faces[0])
        q = np.asarray(net.compute_face_descriptor(frame, shape), dtype=np.float32)
        order = np.argsort(np.linalg.norm(x32 - q, axis=1))[:10]
        out["naive"].append(time.perf_counter() - t)
        out["naive_cpu"].append(time.thread_time() - c)
        del order
    return out


def row(name: str, value: float | str = "", share: float | str = "", *,
        header: bool = False) -> None:
    """One line of the markdown table."""
    ms = value if isinstance(value, str) else f"{value:8.1f}"
    part = share if isinstance(share, str) else f"{share:6.1%}"
    print(f"| {name:<32} | {ms:>8} | {part:>6} |")
    if header:
        print(f"|{'-' * 34}|{'-' * 10}|{'-' * 8}|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--count", type=int, default=200_000, help="synthetic corpus size")
    parser.add_argument("--corpus", type=Path, help="use this corpus instead")
    parser.add_argument("--framing", choices=("arm", "full"), default="arm",
                        help="arm: head and shoulders fill the frame (default); full: the "
                        "whole astronaut photo")
    parser.add_argument("--detect-max-side", type=int, default=None,
                        help="faces.detect_max_side for the run (default: the config's)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)

    corpus = args.corpus or synthetic_corpus(args.count)
    frame = camera_frame(args.framing)
    run = measure_pipeline(frame, corpus, args.presses, args.detect_max_side)
    anchors = measure_anchors(frame, corpus, max(10, args.presses // 2))
    kernel = run.pop("kernel")[0]
    before = tuple(run.pop("before"))

    first = median_ms(run["first_byte"])
    last = median_ms(run["last_byte"])
    p90 = 1000 * float(np.percentile(run["first_byte"], 90))
    stage_ms = {s: median_ms(run[s]) for s in (*before, *AFTER)}
    desc = median_ms(anchors["descriptor_alone"])
    naive = median_ms(anchors["naive"])
    side = args.detect_max_side or "config"
    print(f"\npress -> first printer byte, {args.presses} presses, 640x480 capture ({args.framing}"
          f" framing, detect_max_side {side}), corpus {corpus.name} ({kernel} kernel); "
          "medians in ms\n")
    row("stage", "ms", "share", header=True)
    for stage in before:
        row(stage, stage_ms[stage], stage_ms[stage] / first)
    other = first - sum(stage_ms[s] for s in before if stage_ms[s] == stage_ms[s])
    row("(untimed: analysis, hand-offs)", other, other / first)
    row("press -> first byte", first)
    row("  p90", p90)
    row("after the first byte:", "", "")
    for stage in AFTER:
        row(stage, stage_ms[stage], stage_ms[stage] / last)
    row("press -> last byte", last)
    one_shot = median_ms(run["one_shot"])
    row("anchor: one-shot ticket", one_shot)
    row("anchor: dlib descriptor alone", desc)
    row("anchor: naive photo->nearest", naive)
    visit_cpu = median_ms(run["visit_cpu"])
    desc_cpu = median_ms(anchors["descriptor_cpu"])
    cpu_ms = {k: median_ms(run[k]) for k in CPU_STAGES}
    cpu_sum = sum(cpu_ms.values())
    for key in CPU_STAGES:
        row(key, cpu_ms[key], cpu_ms[key] / cpu_sum)
    row("visit CPU time (worker)", visit_cpu)
    row("dlib descriptor alone, CPU time", desc_cpu)
    naive_cpu = median_ms(anchors["naive_cpu"])
    ours_cpu = sum(cpu_ms[k] for k in CPU_STAGES[:2])
    row("naive photo->nearest, CPU", naive_cpu)
    after_search = median_ms(run["lookup_to_first_byte"])
    print(f"\nlookup result -> first byte: {after_search:.1f} ms (measured: hand-off to the "
          "printer job, first band composed and encoded, first write); the one-shot ticket "
          f"(compose all, encode all) would put {one_shot:.1f} ms there: "
          f"{one_shot / after_search:.0f}x")
    print(f"CPU-time ratio (load-independent): whole visit / dlib descriptor alone = "
          f"{visit_cpu / desc_cpu:.2f}x")
    face_search = sum(stage_ms[s] for s in before[: before.index("search") + 1])
    print(f"CPU-time ratio photo->nearest faces: naive {naive_cpu:.0f} ms / ours {ours_cpu:.0f} ms "
          f"= {naive_cpu / ours_cpu:.2f}x")
    print(f"ratios: press->first byte / dlib descriptor alone = {first / desc:.2f}x; "
          f"photo->nearest "
          f"faces: naive {naive:.0f} ms / ours {face_search:.0f} ms = {naive / face_search:.1f}x; "
          f"goal < 200 ms: {'met' if first < 200 else 'NOT met'}")
    if args.json:
        figures = {
            "presses": args.presses, "corpus": str(corpus), "kernel": kernel,
            "framing": args.framing, "detect_max_side": args.detect_max_side,
            "stages_ms": stage_ms, "first_byte_ms": first, "first_byte_p90_ms": p90,
            "last_byte_ms": last, "lookup_to_first_byte_ms": after_search,
            "anchor_one_shot_ticket_ms": one_shot,
            "visit_total_ms": median_ms(run["visit_total"]),
            "anchor_descriptor_ms": desc, "anchor_naive_ms": naive,
            "visit_cpu_ms": visit_cpu, "descriptor_cpu_ms": desc_cpu, "cpu_stages_ms": cpu_ms,
            "naive_cpu_ms": naive_cpu, "ours_photo_to_nearest_cpu_ms": ours_cpu,
            "ratio_vs_descriptor": first / desc, "face_search_ms": face_search,
            "speedup_vs_naive_face_search": naive / face_search,
        }
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
