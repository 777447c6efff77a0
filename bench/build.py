"""Benchmark `sosie build`: images/s, and its overhead over dlib's own per-image cost.

Anchor: `FaceAnalyzer.analyze(path)` on every image, one after the other in this process
(models loaded beforehand): decoding plus dlib detection, landmarks and descriptor, i.e. what
any tool must spend per image. Then the real build of the same folder with 1 worker (in this
process) and with one worker process per core. The build's extra work per image is reading and
hashing the file, the printable thumbnail (a 256 px aligned crop, JPEG-encoded), chunk files,
and at the end the assembly, norms, PCA and checksums. Methods are interleaved in every
repetition (the machine is shared and noisy); the table shows medians.

    .venv/bin/python bench/build.py                       # 300 images, 2 repetitions
    .venv/bin/python bench/build.py --images 100 --repeats 1 --json bench/results/build.json

Images: the 100 LFW faces of scikit-image (25x25, upscaled 8x so dlib finds them), plus
mirrored and brightness-shifted variants to reach `--images` distinct files.

Generated faces (`--generator dcgan:300:5`): `sosie build SPEC --workers W` of this tree against
the same command run from another checkout (`--baseline DIR`, e.g. a worktree of an older commit
with its extensions built in place), alternating, each in a fresh folder; the table gives median
wall seconds, median CPU seconds of the whole process tree (user + sys: what the machine's load
barely moves), faces, and faces per CPU second with its ratio; then the same build of one draw
(`dcgan:1:SEED`, run after each: start-up, models, assembly) and the CPU per face past that
fixed cost, whose ratio is the one of a large build such as 200k faces. Modules are compiled
once into a temporary cache, as an installed package has them. `--stages N` first times each
stage of both analysis versions over N draws in this process (CPU time):

    .venv/bin/python bench/build.py --generator dcgan:300:5 --baseline /tmp/sosie-baseline \\
        --repeats 5 --stages 300

A folder `sosie generate` made (`--folder DIR`): its build, which reuses what generate recorded
of each face, against the build of a bare copy of its images, alternating, CPU medians:

    .venv/bin/python bench/build.py --folder FACES_DIR --workers 1 --repeats 3

`--generator SPEC --loopback N`: N local processes against a loopback Dask cluster of N workers
(scheduler and workers on 127.0.0.1, models loaded before the first timed build).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import median_ms, write_json

from appliance.corpus import CorpusSettings, build
from appliance.corpus import format as fmt
from appliance.corpus.thumbs import encode
from appliance.paths import cache_dir


def bench_images(count: int) -> Path:
    """`count` distinct face images (PNG, 200x200) in the cache, made once."""
    from skimage import data

    folder = cache_dir() / f"bench-build-{count}"
    if folder.is_dir() and len(list(folder.glob("*.png"))) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir()))
    faces = data.lfw_subset()[:100]
    for i in range(count):
        face = Image.fromarray(np.clip(faces[i % 100] * 255 + 0.5, 0, 255).astype(np.uint8))
        face = face.resize((200, 200), Image.Resampling.BICUBIC)
        variant = i // 100
        if variant % 2:
            face = ImageOps.mirror(face)
        if variant >= 2:
            face = face.point(lambda v, s=variant: min(255, v + 6 * s))
        face.save(tmp / f"face-{i:04d}.png")
    tmp.rename(folder)
    return folder


def time_direct(folder: Path, analyzer) -> tuple[float, list[float], list[float], int]:
    """(total seconds, per-image analyze seconds, per-image seconds of the build's own extra
    steps, faces found) over the folder. The extra steps (hash of the file bytes, the 256 px
    aligned grayscale crop, its JPEG encoding) are timed separately, outside the total."""
    per_image, extra, found = [], [], 0
    total = 0.0
    for path in sorted(folder.glob("*.png")):
        t = time.perf_counter()
        outcome = analyzer.analyze(path)
        per_image.append(time.perf_counter() - t)
        total += per_image[-1]
        if hasattr(outcome, "descriptor"):
            found += 1
            t = time.perf_counter()
            hashlib.sha256(path.read_bytes()).hexdigest()
            encode(outcome.aligned(256, gray=True), "jpeg", 92)
            extra.append(time.perf_counter() - t)
    return total, per_image, extra, found


def time_build(folder: Path, workers: int) -> tuple[float, int]:
    """(seconds, faces) of a complete build of the folder into a fresh directory."""
    out = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        start = time.perf_counter()
        report = build(folder, out / "c", workers=workers, settings=CorpusSettings(),
                       progress=False)
        return time.perf_counter() - start, report.faces
    finally:
        shutil.rmtree(out, ignore_errors=True)


ROOT = Path(__file__).resolve().parent.parent


def cli_build(tree: Path, spec: str, workers: int,
              pycache: Path | None = None) -> tuple[float, float, int]:
    """(wall s, CPU s of the process tree, faces) of `sosie build SPEC` run from `tree`.

    `pycache`: compiled modules are kept there (PYTHONPYCACHEPREFIX), as an installed package
    has them, even where PYTHONDONTWRITEBYTECODE is set (this machine's: every process then
    compiles ~130 modules, ~0.1 CPU-s, in both trees)."""
    out = Path(tempfile.mkdtemp(prefix="bench-build-"))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache / tree.name)
    command = [sys.executable, "-m", "appliance", "build", spec, str(out / "c"), "--workers",
               str(workers), "--quiet"]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                              check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"(\d+) faces from", done.stdout)
    return wall, cpu, int(found.group(1)) if found else 0


def stage_profile(spec: str, draws: int) -> dict[str, dict[str, float]]:
    """CPU ms per face of each stage, for analysis version 1 (256 px then 512 px looks, one
    draw and one descriptor at a time) and this tree's (`GeneratorSource.face_settings`, draws
    and descriptors by groups), in this process. The chunk files and the assembly are left out
    (see the build's total)."""
    import cv2
    from threadpoolctl import threadpool_limits

    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.generator.dcgan import DCGAN, enlarge
    from appliance.generator.source import GeneratorSource, describe_groups

    source = GeneratorSource.parse(spec)
    net = DCGAN.load(source.weights)
    clock = time.process_time
    figures = {}
    threadpool_limits(1)
    cv2.setNumThreads(1)  # as a build's worker runs (appliance.compute.pool.single_threaded)
    for version, analyzer, groups in (
            ("analysis 1", FaceAnalyzer(), [[i] for i in range(draws)]),
            ("this tree", FaceAnalyzer(source.face_settings()), describe_groups(range(draws)))):
        spent: dict[str, float] = dict.fromkeys(
            ("draw", "upscale", "hash", "detect", "landmarks+chip", "descriptor", "thumbnail"),
            0.0)
        faces = 0
        for group in groups:
            found = []
            t = clock()  # a group's draws rendered together, as the build does
            smalls = net.render(np.stack([net.latent(source.seed, i) for i in group]))
            spent["draw"] += clock() - t
            for small in smalls:
                t = clock()
                face = enlarge(small[None], source.size)[0]
                spent["upscale"] += clock() - t
                t = clock()
                hashlib.sha256(face.tobytes()).hexdigest()
                spent["hash"] += clock() - t
                t = clock()  # FaceAnalyzer.locate, step by step
                usable = analyzer.detector.usable(analyzer.detector.detect(face, {}, one=True))
                spent["detect"] += clock() - t
                if usable:
                    t = clock()
                    found.append(analyzer.face_at(face, usable[0], {}))
                    spent["landmarks+chip"] += clock() - t
            if found:
                t = clock()
                if len(found) > 1:
                    analyzer.models.describe_many(np.stack([f.chip for f in found]))
                else:
                    analyzer.describe(found[0].chip)
                spent["descriptor"] += clock() - t
            for outcome in found:
                t = clock()
                encode(outcome.aligned(256), "jpeg", 92)
                spent["thumbnail"] += clock() - t
            faces += len(found)
        figures[version] = {k: 1000 * v / max(1, faces) for k, v in spent.items()}
        figures[version]["faces"] = faces
    return figures


def print_stages(figures: dict[str, dict[str, float]], draws: int) -> None:
    names = list(figures)
    kept = ", ".join(f"{n}: {figures[n]['faces']:.0f} faces" for n in names)
    print(f"\nCPU ms per kept face by stage over {draws} draws ({kept})")
    print(f"| {'stage':<14} | " + " | ".join(f"{n:>10}" for n in names) + " | share now |")
    print(f"|{'-' * 16}|" + "|".join("-" * 12 for _ in names) + "|-----------|")
    total = {n: sum(v for k, v in figures[n].items() if k != "faces") for n in names}
    for stage in figures[names[0]]:
        if stage == "faces":
            continue
        print(f"| {stage:<14} | " + " | ".join(f"{figures[n][stage]:>10.2f}" for n in names)
              + f" | {figures[names[-1]][stage] / total[names[-1]]:>8.0%}  |")
    print(f"| {'total':<14} | " + " | ".join(f"{total[n]:>10.2f}" for n in names) + " |"
          f" {total[names[0]] / total[names[-1]]:>6.2f}x  |")


def compare_generated(args: argparse.Namespace) -> int:
    """The side-by-side table of `--generator` (see the module docstring)."""
    trees = {"baseline": args.baseline.resolve(), "this tree": ROOT}
    if args.stages:
        figures = stage_profile(args.generator, args.stages)
        print_stages(figures, args.stages)
    if args.repeats < 1:
        return 0
    # the same command for one draw: what a build costs whatever its size (start-up, models,
    # assembly), subtracted to give the CPU per face of a large build such as 200k
    one = re.sub(r"^dcgan:\d+", "dcgan:1", args.generator)
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in trees}
    fixed: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        for tree in trees.values():  # untimed: modules compiled once, files in the page cache
            cli_build(tree, one, args.workers, Path(pycache))
        for rep in range(args.repeats):
            for name, tree in trees.items():
                runs[name].append(cli_build(tree, args.generator, args.workers, Path(pycache)))
                fixed[name].append(cli_build(tree, one, args.workers, Path(pycache))[1])
            print(f"repetition {rep + 1}/{args.repeats}: " + ", ".join(
                f"{n} {r[-1][0]:.1f} s wall {r[-1][1]:.1f} s CPU" for n, r in runs.items()),
                file=sys.stderr)
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text(
        ).splitlines() if line.startswith("model name")), platform.processor())
    medians = {n: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                   rs[-1][2]) for n, rs in runs.items()}
    start_up = {n: statistics.median(f) for n, f in fixed.items()}
    # CPU ms per face past the fixed cost (the one-draw build keeps its one face or not: ~1)
    per_face = {n: 1000 * (medians[n][1] - start_up[n]) / max(1, medians[n][2] - 1)
                for n in trees}
    anchor = medians["baseline"][2] / medians["baseline"][1]
    print(f"\nsosie build {args.generator} --workers {args.workers}, median of {args.repeats} "
          f"alternating runs, {os.cpu_count()} x {cpu}; baseline: {args.baseline}")
    print(f"| {'tree':<10} | wall s | CPU s | faces | faces/s wall | faces/CPU-s | ratio "
          "| fixed CPU s | CPU ms a face past it | ratio at scale |")
    print("|------------|--------|-------|-------|--------------|-------------|-------"
          "|-------------|-----------------------|----------------|")
    for name, (wall, cpu_s, faces) in medians.items():
        rate = faces / cpu_s
        print(f"| {name:<10} | {wall:>6.1f} | {cpu_s:>5.1f} | {faces:>5} | {faces / wall:>12.1f} "
              f"| {rate:>11.1f} | {rate / anchor:>4.2f}x | {start_up[name]:>11.2f} "
              f"| {per_face[name]:>21.2f} | {per_face['baseline'] / per_face[name]:>13.2f}x |")
    if args.json:
        write_json(args.json, {"spec": args.generator, "workers": args.workers, "cpu": cpu,
                               "runs": runs, "medians": medians, "fixed_cpu_s": fixed,
                               "cpu_ms_per_face_past_fixed": per_face,
                               "stages": figures if args.stages else None})
    return 0


def compare_generated_folder(args: argparse.Namespace) -> int:
    """`--folder DIR`: the build of a folder `sosie generate` made (its analyses reused) against
    the build of a bare copy of its images (everything analysed), alternating."""
    folder = args.folder.resolve()
    bare = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    try:
        for image in folder.iterdir():
            if image.is_file() and not image.name.startswith("."):
                shutil.copy2(image, bare / image.name)
        sources = {"records": str(folder), "bare copy": str(bare)}
        runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sources}
        for rep in range(args.repeats):
            for name, source in sources.items():
                runs[name].append(cli_build(ROOT, source, args.workers))
            print(f"repetition {rep + 1}/{args.repeats}: " + ", ".join(
                f"{n} {r[-1][1]:.1f} s CPU" for n, r in runs.items()), file=sys.stderr)
    finally:
        shutil.rmtree(bare, ignore_errors=True)
    anchor = statistics.median(r[1] for r in runs["bare copy"])
    print(f"\nsosie build {folder} --workers {args.workers}, median of {args.repeats}")
    print("| source                            | wall s | CPU s | faces | CPU ms/face | vs bare |")
    print("|-----------------------------------|--------|-------|-------|-------------|---------|")
    for name in ("bare copy", "records"):
        wall = statistics.median(r[0] for r in runs[name])
        cpu_s = statistics.median(r[1] for r in runs[name])
        faces = runs[name][-1][2]
        label = ("images only (everything analysed)" if name == "bare copy"
                 else "with generate's analyses")
        print(f"| {label:<33} | {wall:>6.1f} | {cpu_s:>5.1f} | {faces:>5} | "
              f"{1000 * cpu_s / max(1, faces):>11.1f} | {cpu_s / anchor:>6.2f}x |")
    return 0


def compare_loopback(args: argparse.Namespace) -> int:
    """`--generator SPEC --loopback N`: the build of SPEC with N local processes against a
    loopback Dask cluster of N single-threaded workers (tests' `LoopbackCluster`), alternating;
    the two corpora are compared byte for byte."""
    sys.path.insert(0, str(ROOT / "tests"))
    from cluster_helpers import LoopbackCluster

    def timed(out: Path, *extra: str) -> tuple[float, int]:
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "appliance", "build", args.generator,
                               str(out), "--quiet", "--chunk-size", str(args.chunk_size), *extra],
                              cwd=ROOT, capture_output=True, text=True, check=True)
        found = re.search(r"(\d+) faces from", done.stdout)
        return time.perf_counter() - start, int(found.group(1)) if found else 0

    work = Path(tempfile.mkdtemp(prefix="bench-loopback-"))
    runs: dict[str, list[float]] = {"local": [], "cluster": []}
    try:
        with LoopbackCluster(work / "cluster", workers=args.loopback) as cluster:
            timed(work / "warm", "--scheduler", cluster.address)  # models loaded once
            for _ in range(args.repeats):
                seconds, faces = timed(work / "local", "--workers", str(args.loopback))
                runs["local"].append(seconds)
                seconds, faces = timed(work / "cluster", "--scheduler", cluster.address)
                runs["cluster"].append(seconds)
        same = all((work / "local" / f.name).read_bytes() == f.read_bytes()
                   for f in (work / "cluster").iterdir() if f.is_file()
                   and f.name != fmt.MANIFEST)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nsosie build {args.generator} --chunk-size {args.chunk_size}: {faces} faces, "
          f"median of {args.repeats} (wall s); same corpus: {same}")
    for name, label in (("local", f"{args.loopback} local processes"),
                        ("cluster", f"loopback cluster, {args.loopback} workers (warm)")):
        seconds = statistics.median(runs[name])
        print(f"| {label:<36} | {seconds:>7.1f} s | {faces / seconds:>6.1f} faces/s |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="images (default 300)")
    parser.add_argument("--repeats", type=int, default=2, help="repetitions (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the parallel build (default: all cores)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--generator", metavar="SPEC",
                        help="compare `sosie build SPEC` (e.g. dcgan:300:5) with --baseline's")
    parser.add_argument("--baseline", type=Path, help="with --generator: the other checkout")
    parser.add_argument("--stages", type=int, default=0, metavar="DRAWS",
                        help="with --generator: time each stage over DRAWS draws first")
    parser.add_argument("--folder", type=Path, metavar="DIR",
                        help="compare the build of a folder `sosie generate` made with the build "
                        "of a bare copy of its images")
    parser.add_argument("--loopback", type=int, default=0, metavar="N",
                        help="with --generator: N local processes against a loopback Dask "
                        "cluster of N workers (needs sosie[cluster])")
    parser.add_argument("--chunk-size", type=int, default=64, help="with --loopback (64)")
    args = parser.parse_args()
    if args.generator and args.loopback:
        return compare_loopback(args)
    if args.folder:
        return compare_generated_folder(args)
    if args.generator:
        if args.baseline is None:
            parser.error("--generator needs --baseline DIR")
        return compare_generated(args)

    from appliance.faces.analyzer import FaceAnalyzer

    folder = bench_images(args.images)
    analyzer = FaceAnalyzer()
    analyzer.analyze(next(folder.glob("*.png")))  # models loaded and warm
    runs: dict[str, list[float]] = {"direct": [], "build1": [], "buildN": []}
    per_image: list[float] = []
    extra_work: list[float] = []
    faces = {}
    for rep in range(args.repeats):
        seconds, times, extra, found = time_direct(folder, analyzer)
        runs["direct"].append(seconds)
        per_image += times
        extra_work += extra
        faces["direct"] = found
        for key, workers in (("build1", 1), ("buildN", args.workers)):
            seconds, found = time_build(folder, workers)
            runs[key].append(seconds)
            faces[key] = found
        print(f"repetition {rep + 1}/{args.repeats}: " + ", ".join(
            f"{k} {v[-1]:.1f} s" for k, v in runs.items()), file=sys.stderr)

    n = args.images
    med = {k: statistics.median(v) for k, v in runs.items()}
    rows = [
        ("FaceAnalyzer.analyze, 1 process (anchor)", med["direct"], 1.0),
        ("sosie build, 1 worker", med["build1"], med["build1"] / med["direct"]),
        (f"sosie build, {args.workers} workers", med["buildN"], med["buildN"] / med["direct"]),
    ]
    print(f"\n{n} images ({faces['direct']} faces found by analyze, {faces['build1']} kept by "
          f"the build), median of {args.repeats}; per-image analyze median "
          f"{median_ms(per_image):.1f} ms")
    print(f"| {'method':<42} | {'seconds':>8} | {'images/s':>8} | {'vs anchor':>9} |")
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 10}|{'-' * 11}|")
    for name, seconds, ratio in rows:
        print(f"| {name:<42} | {seconds:>8.2f} | {n / seconds:>8.2f} | {ratio:>8.3f}x |")
    overhead = med["build1"] / med["direct"] - 1
    extra_ms = statistics.median(extra_work) * 1000 if extra_work else 0.0
    analyze_ms = median_ms(per_image)
    print(f"\nbuild overhead over dlib's own cost (1 worker vs anchor, end to end): "
          f"{overhead:+.1%} (goal < 10 %)")
    print(f"build's own per-face work (hash + 256 px aligned crop + JPEG), timed in the anchor "
          f"pass: {extra_ms:.2f} ms = {extra_ms / analyze_ms:.1%} of analyze's median")
    print(f"parallel speed-up ({args.workers} workers vs 1): {med['build1'] / med['buildN']:.2f}x")
    if args.json:
        write_json(args.json, {
            "images": n,
            "repeats": args.repeats,
            "workers": args.workers,
            "faces_direct": faces["direct"],
            "faces_build": faces["build1"],
            "direct_s": med["direct"],
            "build_1_worker_s": med["build1"],
            "build_all_workers_s": med["buildN"],
            "direct_images_per_s": n / med["direct"],
            "build_1_worker_images_per_s": n / med["build1"],
            "build_all_workers_images_per_s": n / med["buildN"],
            "analyze_median_ms": median_ms(per_image),
            "overhead_1_worker": overhead,
            "extra_work_median_ms": extra_ms,
            "extra_work_share": extra_ms / analyze_ms,
            "runs": runs,
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
