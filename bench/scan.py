"""Exact top-10 over a 200,000 x 128 float16 memmap: our scanner against the usual anchors.

    .venv/bin/python bench/scan.py [--rows 200000] [--reps 40] [--json bench/results/scan.json]
    .venv/bin/python bench/scan.py --frame faces.npy --photos --axes 32 48 64   # the sketch

A seeded corpus is written once as a raw float16 file (bench/results/ by default) and memory
mapped. Its rows are drawn from the synthetic corpus model (`appliance.corpus.synth`: the
principal variances of real descriptors in a random orientation) or, with `--frame
DESCRIPTORS.npy`, from a Gaussian fitted to those descriptors (mean, axes and variances; make
them with `python -m appliance.corpus.spectrum --save-descriptors faces.npy`). One query at a
time, top-10, median ms per query of:

  floor            read the whole float16 file once from page cache (numpy sum of a uint64
                   view: the simplest vectorised read), i.e. the memory-bound limit
  ours <kernel>    appliance.search.Scanner with each kernel this CPU runs, 1 thread (and the
                   norm trick for the best kernel), and the best kernel with all threads
  numpy f32        float32 copy, ||x||^2 - 2 X q + argpartition (BLAS limited to 1 thread)
  faiss flat       faiss IndexFlatL2 on the float32 copy, 1 thread
  faiss SQfp16     faiss IndexScalarQuantizer(QT_fp16), 1 thread
  usearch f16      usearch exact search on the float16 matrix, 1 thread
  ours <kernel> sketch m=M   Scanner with the int8 sketch of the M leading principal axes
                   (appliance.corpus.sketch): the sketch pass, then only the float16 rows its
                   certified bound cannot rule out (their share is reported)

Query kinds (`--queries`, each its own table): `same` fresh draws from the corpus model,
`faces` the `--frame` descriptors themselves (real descriptors of generated faces), `photos`
real photos' descriptors (scikit-image's astronaut and LFW faces through FaceAnalyzer, with
`--photos`; needs `--frame` so that the corpus lives where real descriptors do).

Methods are interleaved within every repetition (the machine is shared and noisy) and each gets
the same queries; besides ratios of medians it reports medians of per-repetition ratios. On a
machine so busy that the process waits for a core, `--clock thread` times the calling thread's
CPU time instead of the wall clock (multi-threaded rows are then left out).
Every method's top-10 is compared with ours (`same_topk`); ours is also compared, in order,
with a float64 reference.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded anchors (must precede numpy/faiss)

import argparse  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import median_ms, write_json  # noqa: E402 - bench/ is the script's folder

from appliance.corpus.sketch import SKETCH_AXES, Sketch, build_sketch  # noqa: E402
from appliance.corpus.synth import descriptor_model, draw_descriptors  # noqa: E402
from appliance.search import Scanner, kernels  # noqa: E402

BLOCK = 65536

Method = Callable[[np.ndarray], np.ndarray]


class Model:
    """Where the bench corpus and its `same` queries come from (see the module docstring)."""

    def __init__(self, seed: int, frame: np.ndarray | None) -> None:
        self.tag = "synth"
        if frame is None:
            self.offset, self.basis = descriptor_model(np.random.default_rng(seed))
            return
        x = np.asarray(frame, np.float64)
        variances, axes = np.linalg.eigh(np.cov(x.T))
        self.offset = x.mean(axis=0).astype(np.float32)
        self.basis = (axes * np.sqrt(np.clip(variances, 0, None))).astype(np.float32)
        self.tag = f"frame{len(x)}"

    def draw(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        if self.tag == "synth":
            return draw_descriptors(rng, self.offset, self.basis, rows)
        z = rng.standard_normal((rows, self.basis.shape[1]), dtype=np.float32)
        return self.offset + z @ self.basis.T


def corpus_file(folder: Path, rows: int, dim: int, seed: int, model: Model) -> Path:
    """A seeded face-descriptor-like float16 matrix on disk (written once)."""
    tag = model.tag if dim == 128 else "iso"
    path = folder / f"scan-{rows}x{dim}-seed{seed}-{tag}.f16"
    if path.exists() and path.stat().st_size == rows * dim * 2:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim) * 0.05  # other dims: isotropic, norm ~1.46
    tmp = path.with_suffix(".tmp")
    mm = np.memmap(tmp, np.float16, "w+", shape=(rows, dim))
    for start in range(0, rows, BLOCK):
        n = min(BLOCK, rows - start)
        if dim == 128:
            mm[start : start + n] = model.draw(rng, n)
        else:
            mm[start : start + n] = centre + rng.standard_normal((n, dim)) * 0.125
    mm.flush()
    del mm
    tmp.replace(path)
    return path


def photo_descriptors(folder: Path) -> np.ndarray:
    """Descriptors of real photos (astronaut + LFW faces, FaceAnalyzer), cached in `folder`."""
    path = folder / "photo-descriptors.npy"
    if path.exists():
        return np.load(path)
    from PIL import Image
    from skimage import data

    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.faces.face import NoFaceFound

    analyzer = FaceAnalyzer()
    photos = [data.astronaut()]
    for crop in (data.lfw_subset()[:100] * 255).round().astype(np.uint8):
        gray = np.asarray(Image.fromarray(crop).resize((200, 200), Image.Resampling.BICUBIC))
        photos.append(np.repeat(gray[:, :, None], 3, axis=2))
    found = [face.descriptor for face in map(analyzer.analyze, photos)
             if not isinstance(face, NoFaceFound)]
    out = np.asarray(found, np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def paired(a: list[float], b: list[float]) -> float:
    """Median over repetitions of a/b (each repetition times both within a few ms)."""
    return float(np.median(np.asarray(a) / np.asarray(b)))


def exact_topk(vectors: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    d = np.concatenate([((np.asarray(vectors[s : s + BLOCK], np.float64) - q.astype(np.float64))
                         ** 2).sum(axis=1) for s in range(0, len(vectors), BLOCK)])
    return np.lexsort((np.arange(len(d)), d))[:k]


def build_methods(mm: np.ndarray, k: int, threads: int, skip: set[str],
                  sketches: dict[int, Sketch], reads: dict[str, list[int]]) -> dict[str, Method]:
    methods: dict[str, Method] = {}
    words = mm.reshape(-1).view(np.uint64) if mm.nbytes % 8 == 0 else mm.reshape(-1).view(np.uint16)
    methods["floor"] = lambda q: words.sum()
    best = kernels()[0]
    for kernel in kernels():
        if kernel in skip:
            continue
        scanner = Scanner(mm, kernel=kernel)
        methods[f"ours {kernel}"] = lambda q, s=scanner: s.topk(q, k)[0]
    other = Scanner(mm, kernel=best, norm_trick=not Scanner(mm[:8], kernel=best).norm_trick)
    label = "norm-trick" if other.norm_trick else "direct"
    methods[f"ours {best} {label}"] = lambda q: other.topk(q, k)[0]
    for axes, sketch in sketches.items():
        for kernel in kernels():
            if kernel in skip or (kernel != best and len(sketches) > 1):
                continue
            name = f"ours {kernel} sketch m={axes}"
            scanner = Scanner(mm, kernel=kernel, sketch=sketch)

            def sketched(q: np.ndarray, s: Scanner = scanner, name: str = name) -> np.ndarray:
                rows = s.topk(q, k)[0]
                reads.setdefault(name, []).append(s.rows_read)
                reads.setdefault(f"{name} bytes", []).append(s.bytes_read)
                return rows

            methods[name] = sketched
    if threads > 1:
        many = Scanner(mm, kernel=best, threads=threads)
        methods[f"ours {best} {threads} threads"] = lambda q: many.topk(q, k)[0]
    x32 = np.asarray(mm, dtype=np.float32)
    if "numpy" not in skip:
        n2 = np.einsum("ij,ij->i", x32, x32)

        def numpy_f32(q: np.ndarray) -> np.ndarray:
            d = n2 - 2.0 * (x32 @ q)
            top = np.argpartition(d, k)[:k]
            return top[np.argsort(d[top], kind="stable")]

        methods["numpy f32"] = numpy_f32
    if "faiss" not in skip:
        try:
            import faiss
        except ImportError:
            print("faiss not installed (pip install -e .[bench]): skipped", file=sys.stderr)
        else:
            faiss.omp_set_num_threads(1)
            flat = faiss.IndexFlatL2(mm.shape[1])
            flat.add(x32)
            sq = faiss.IndexScalarQuantizer(mm.shape[1], faiss.ScalarQuantizer.QT_fp16)
            sq.train(x32[:1000])
            sq.add(x32)
            methods["faiss flat"] = lambda q: flat.search(q[None], k)[1][0]
            methods["faiss SQfp16"] = lambda q: sq.search(q[None], k)[1][0]
    if "usearch" not in skip:
        try:
            from usearch.index import MetricKind, search
        except ImportError:
            print("usearch not installed (pip install -e .[bench]): skipped", file=sys.stderr)
        else:
            f16 = np.ascontiguousarray(mm)

            def usearch_f16(q: np.ndarray) -> np.ndarray:
                found = search(f16, q.astype(np.float16), k, MetricKind.L2sq, exact=True,
                               threads=1)
                return np.asarray(found.keys)

            methods["usearch f16"] = usearch_f16
    return methods


def query_sets(args: argparse.Namespace, model: Model, frame: np.ndarray | None,
               mm: np.ndarray) -> dict[str, np.ndarray]:
    """{kind: (reps, d) float32 queries} for the kinds asked for (and possible)."""
    rng = np.random.default_rng(args.seed + 1)
    out: dict[str, np.ndarray] = {}
    for kind in args.queries:
        if kind == "same":
            if args.dim == 128:
                out[kind] = model.draw(rng, args.reps).astype(np.float32)
            else:  # a row plus noise
                picks = rng.integers(0, args.rows, args.reps)
                noise = rng.standard_normal((args.reps, args.dim)) * 0.05
                out[kind] = (mm[picks].astype(np.float32) + noise).astype(np.float32)
        elif frame is None or args.dim != 128:
            print(f"--queries {kind} needs --frame (and --dim 128): skipped", file=sys.stderr)
        elif kind == "faces":
            out[kind] = frame[rng.choice(len(frame), args.reps, len(frame) < args.reps)]
        else:
            photos = photo_descriptors(Path(args.dir))
            out[kind] = photos[rng.choice(len(photos), args.reps, len(photos) < args.reps)]
    return {kind: np.ascontiguousarray(q, np.float32) for kind, q in out.items()}


def run(args: argparse.Namespace) -> dict:
    frame = np.load(args.frame).astype(np.float32) if args.frame else None
    model = Model(args.seed, frame)
    path = corpus_file(Path(args.dir), args.rows, args.dim, args.seed, model)
    mm = np.memmap(path, np.float16, "r", shape=(args.rows, args.dim))
    _ = np.asarray(mm).view(np.uint64).sum()  # page cache + page tables warm
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.clock == "thread":
        threads = 1  # the other threads' CPU time would not be counted
    started = time.perf_counter()
    sketches = {m: build_sketch(mm, m) for m in args.axes if m <= args.dim}
    sketch_seconds = (time.perf_counter() - started) / max(1, len(sketches))
    reads: dict[str, list[int]] = {}
    methods = build_methods(mm, args.k, threads, set(args.skip), sketches, reads)
    kinds = query_sets(args, model, frame, mm)
    results = {kind: measure(args, mm, methods, queries, reads, sketches, threads)
               for kind, queries in kinds.items()}
    first = next(iter(results.values()))
    out = {**first, "query_kind": next(iter(results)),
           "kinds": {kind: result for kind, result in results.items()},
           "sketch_build_seconds": round(sketch_seconds, 2),
           "sketch_variance_explained": {m: round(s.variance_explained, 4)
                                         for m, s in sketches.items()},
           "corpus_model": model.tag}
    out["same_topk"] = all(r["same_topk"] for r in results.values())
    for kind, result in results.items():
        print_table(kind, result)
    return out


def measure(args: argparse.Namespace, mm: np.ndarray, methods: dict[str, Method],
            queries: np.ndarray, reads: dict[str, list[int]], sketches: dict[int, Sketch],
            threads: int) -> dict:
    """Every method on every query, interleaved; medians, ratios and checks."""
    for samples in reads.values():
        samples.clear()
    times: dict[str, list[float]] = {name: [] for name in methods}
    answers: dict[str, list[np.ndarray]] = {name: [] for name in methods if name != "floor"}
    # Fast methods run back to back in a shuffled order each repetition, then the slow ones, so
    # the per-repetition ratios compare neighbours in time (robust to load drifting).
    slow = {name for name in methods if name in ("usearch f16", "ours serial")
            or name.startswith("ours serial sketch")}
    fast = [name for name in methods if name not in slow]
    shuffle = random.Random(args.seed)
    for name in methods:  # warm-up round, not timed
        methods[name](queries[0])
    for samples in reads.values():
        samples.clear()
    reps = len(queries)
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    for rep in range(reps):
        shuffle.shuffle(fast)
        for name in [*fast, *sorted(slow)]:
            t0 = clock()
            out = methods[name](queries[rep])
            times[name].append(clock() - t0)
            if name != "floor":
                answers[name].append(np.asarray(out, np.int64))

    best = kernels()[0]
    ours_key = f"ours {best}"
    checked = range(min(reps, args.check))
    exact = all(np.array_equal(answers[ours_key][i], exact_topk(mm, queries[i], args.k))
                for i in checked)
    same = {
        name: all(set(a.tolist()) == set(b.tolist()) for a, b in zip(got, answers[ours_key],
                                                                       strict=True))
        for name, got in answers.items()
    }
    # ours (with or without a sketch) must give the same ordered rows on every query
    for name in answers:
        if name.startswith("ours"):
            same[name] = same[name] and all(
                np.array_equal(a, b) for a, b in zip(answers[name], answers[ours_key],
                                                     strict=True))
    med = {name: median_ms(samples) for name, samples in times.items()}
    floor = med["floor"]
    many_key = f"ours {best} {threads} threads"
    n, d = mm.shape
    sketch_rows = {}
    for name, samples in reads.items():
        if name.endswith(" bytes"):
            continue
        axes = int(name.rsplit("=", 1)[1])
        rows = float(np.median(samples))
        touched = float(np.median(reads[f"{name} bytes"]))
        sketch_rows[name] = {
            "ms": med[name],
            "vs_floor": med[name] / floor,
            "paired_vs_floor": paired(times[name], times["floor"]),
            "axes": axes,
            "rows_rescored_median": rows,
            "rows_rescored_max": int(max(samples)),
            "rows_read_fraction": rows / n,
            "bytes_per_query": int(touched),
            "bytes_vs_float16": touched / (n * 2 * d),
        }
    main_sketch = f"ours {best} sketch m={SKETCH_AXES if SKETCH_AXES in sketches else 0}"
    if main_sketch not in sketch_rows and sketch_rows:
        main_sketch = next(iter(sketch_rows))
    chosen = sketch_rows.get(main_sketch, {})
    result = {
        "floor_ms": floor,
        "ours_ms": med[ours_key],
        "ours_threads_ms": med.get(many_key, med[ours_key]),
        "ours_other_metric_ms": next(v for n_, v in med.items() if n_.startswith(f"ours {best} ")
                                     and not n_.endswith("threads") and "sketch" not in n_),
        "ours_kernels_ms": {k: med[f"ours {k}"] for k in kernels() if f"ours {k}" in med},
        "sketch_ms": chosen.get("ms"),
        "sketch_vs_floor": chosen.get("vs_floor"),
        "sketch_axes": chosen.get("axes"),
        "sketch_bytes_per_query": chosen.get("bytes_per_query"),
        "rows_rescored_median": chosen.get("rows_rescored_median"),
        "sketches": sketch_rows,
        "numpy_ms": med.get("numpy f32"),
        "faiss_flat_ms": med.get("faiss flat"),
        "faiss_sq_fp16_ms": med.get("faiss SQfp16"),
        "usearch_ms": med.get("usearch f16"),
        "ms": med,
        "kernel": best,
        "threads": threads,
        "same_topk": all(same.values()) and exact,
        "ours_exact": exact and all(v for n_, v in same.items() if n_.startswith("ours")),
        "same": same,
        "exact_vs_float64": exact,
        "ours_vs_floor": med[ours_key] / floor,
        "faiss_sq_fp16_vs_ours": (med["faiss SQfp16"] / med[ours_key])
        if "faiss SQfp16" in med else None,
        "paired_ours_vs_floor": paired(times[ours_key], times["floor"]),
        "paired_faiss_sq_fp16_vs_ours": paired(times["faiss SQfp16"], times[ours_key])
        if "faiss SQfp16" in times else None,
        "rows": args.rows,
        "dim": args.dim,
        "k": args.k,
        "reps": reps,
        "clock": args.clock,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": len(os.sched_getaffinity(0)),
    }
    return result


def print_table(kind: str, result: dict) -> None:
    med, floor, ours = result["ms"], result["floor_ms"], result["ours_ms"]
    same, sketches = result["same"], result["sketches"]
    print(f"\n{result['rows']} x {result['dim']} float16, top-{result['k']}, {kind} queries, "
          f"one at a time, median {result['clock']} time of {result['reps']} interleaved "
          f"repetitions "
          f"({result['cpus']} CPUs, load average {result['load_average'][0]:.1f})")
    print(f"| method | ms/query | vs floor | vs ours f16 | rows read in f16 | bytes vs f16 | "
          f"same top-{result['k']} |")
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for name, ms in sorted(med.items(), key=lambda item: item[1]):
        mark = "" if name == "floor" else ("yes" if same[name] else "NO")
        extra = sketches.get(name)
        read = f"{100 * extra['rows_read_fraction']:.3f} %" if extra else ""
        size = f"{extra['bytes_vs_float16']:.3f}" if extra else ""
        print(f"| {name} | {ms:.3f} | {ms / floor:.3f}x | {ms / ours:.3f}x | {read} | {size} "
              f"| {mark} |")
    print(f"ours/floor = {result['ours_vs_floor']:.3f} "
          f"(paired per repetition: {result['paired_ours_vs_floor']:.3f})", end="")
    if result["faiss_sq_fp16_vs_ours"] is not None:
        print(f"   faiss-SQfp16/ours = {result['faiss_sq_fp16_vs_ours']:.2f} "
              f"(paired: {result['paired_faiss_sq_fp16_vs_ours']:.2f})", end="")
    print()
    for name, extra in sketches.items():
        print(f"{name}: {extra['ms']:.3f} ms = {extra['vs_floor']:.3f}x floor (paired "
              f"{extra['paired_vs_floor']:.3f}), rows read median "
              f"{extra['rows_rescored_median']:.0f} (max {extra['rows_rescored_max']}), "
              f"{extra['bytes_per_query'] / 1e6:.2f} MB/query")
    print(f"same_topk = {result['same_topk']} (ours == float64 reference: "
          f"{result['exact_vs_float64']}; every ours row, sketch or not, the same ordered "
          f"top-{result['k']}: {result['ours_exact']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--reps", type=int, default=40, help="queries per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="for 'all threads' (0: all CPUs)")
    parser.add_argument("--dir", default=str(ROOT / "bench" / "results"),
                        help="where the corpus file is kept")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["numpy", "faiss", "usearch", "serial", "avx2", "avx512"])
    parser.add_argument("--axes", type=int, nargs="*", default=[SKETCH_AXES],
                        help="sketch axes to compare (multiples of 8; none: no sketch)")
    parser.add_argument("--queries", nargs="+", default=["same"],
                        choices=["same", "faces", "photos"])
    parser.add_argument("--frame", type=Path, help="(n, 128) descriptors to fit the corpus to")
    parser.add_argument("--photos", action="store_true", help="also --queries photos")
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall",
                        help="thread: the calling thread's CPU time (time.thread_time), robust "
                        "to a machine so loaded that the process waits for a core")
    parser.add_argument("--check", type=int, default=5,
                        help="queries also checked against a float64 reference")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    for name in ("rows", "k", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: expected 1 or more")
    if args.dim < 8 or args.dim % 8:
        parser.error(f"--dim {args.dim}: expected a positive multiple of 8")
    if any(m < 8 or m % 8 for m in args.axes):
        parser.error(f"--axes {args.axes}: expected multiples of 8")
    if args.photos and "photos" not in args.queries:
        args.queries.append("photos")
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: expected 0 (all CPUs) or more")
    result = run(args)
    if args.json:
        write_json(args.json, result)
    return 0 if result["same_topk"] else 1


if __name__ == "__main__":
    sys.exit(main())
