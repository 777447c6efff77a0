"""Exact top-10 over a 200,000 x 128 float16 memmap: our scanner against the usual anchors.

    .venv/bin/python bench/scan.py [--rows 200000] [--reps 40] [--json bench/results/scan.json]

A seeded corpus is written once as a raw float16 file (bench/results/ by default) and memory
mapped. One query at a time, top-10, median ms per query of:

  floor            read the whole float16 file once from page cache (numpy sum of a uint64
                   view: the simplest vectorised read), i.e. the memory-bound limit
  ours <kernel>    appliance.search.Scanner with each kernel this CPU runs, 1 thread (and the
                   norm trick for the best kernel), and the best kernel with all threads
  numpy f32        float32 copy, ||x||^2 - 2 X q + argpartition (BLAS limited to 1 thread)
  faiss flat       faiss IndexFlatL2 on the float32 copy, 1 thread
  faiss SQfp16     faiss IndexScalarQuantizer(QT_fp16), 1 thread
  usearch f16      usearch exact search on the float16 matrix, 1 thread

Methods are interleaved within every repetition (the machine is shared and noisy) and each gets
the same queries; besides ratios of medians it reports medians of per-repetition ratios.
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

from appliance.search import Scanner, kernels  # noqa: E402

Method = Callable[[np.ndarray], np.ndarray]


def corpus_file(folder: Path, rows: int, dim: int, seed: int) -> Path:
    """A seeded face-descriptor-like float16 matrix on disk (written once)."""
    path = folder / f"scan-{rows}x{dim}-seed{seed}.f16"
    if path.exists() and path.stat().st_size == rows * dim * 2:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim) * 0.05  # dlib descriptors: norm ~1.46, std ~0.13
    tmp = path.with_suffix(".tmp")
    mm = np.memmap(tmp, np.float16, "w+", shape=(rows, dim))
    for start in range(0, rows, 50_000):
        block = centre + rng.standard_normal((min(50_000, rows - start), dim)) * 0.125
        mm[start : start + len(block)] = block
    mm.flush()
    del mm
    tmp.replace(path)
    return path


def paired(a: list[float], b: list[float]) -> float:
    """Median over repetitions of a/b (each repetition times both within a few ms)."""
    return float(np.median(np.asarray(a) / np.asarray(b)))


def exact_topk(vectors: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    d = ((vectors.astype(np.float64) - q.astype(np.float64)) ** 2).sum(axis=1)
    return np.lexsort((np.arange(len(d)), d))[:k]


def build_methods(mm: np.ndarray, k: int, threads: int, skip: set[str]) -> dict[str, Method]:
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


def run(args: argparse.Namespace) -> dict:
    path = corpus_file(Path(args.dir), args.rows, args.dim, args.seed)
    mm = np.memmap(path, np.float16, "r", shape=(args.rows, args.dim))
    _ = np.asarray(mm).view(np.uint64).sum()  # page cache + page tables warm
    threads = args.threads or len(os.sched_getaffinity(0))
    methods = build_methods(mm, args.k, threads, set(args.skip))
    rng = np.random.default_rng(args.seed + 1)
    picks = rng.integers(0, args.rows, args.reps)
    queries = (mm[picks].astype(np.float32) + rng.standard_normal((args.reps, args.dim)) * 0.05)
    queries = queries.astype(np.float32)

    times: dict[str, list[float]] = {name: [] for name in methods}
    answers: dict[str, list[np.ndarray]] = {name: [] for name in methods if name != "floor"}
    # Fast methods run back to back in a shuffled order each repetition, then the slow ones, so
    # the per-repetition ratios compare neighbours in time (robust to load drifting).
    slow = {name for name in methods if name in ("usearch f16", "ours serial")}
    fast = [name for name in methods if name not in slow]
    shuffle = random.Random(args.seed)
    for name in methods:  # warm-up round, not timed
        methods[name](queries[0])
    for rep in range(args.reps):
        shuffle.shuffle(fast)
        for name in [*fast, *sorted(slow)]:
            t0 = time.perf_counter()
            out = methods[name](queries[rep])
            times[name].append(time.perf_counter() - t0)
            if name != "floor":
                answers[name].append(np.asarray(out, np.int64))

    best = kernels()[0]
    ours_key = f"ours {best}"
    exact = all(
        np.array_equal(answers[ours_key][i], exact_topk(mm, queries[i], args.k))
        for i in range(min(args.reps, 5))
    )
    same = {
        name: all(set(a.tolist()) == set(b.tolist()) for a, b in zip(got, answers[ours_key],
                                                                       strict=True))
        for name, got in answers.items()
    }
    med = {name: median_ms(samples) for name, samples in times.items()}
    floor = med["floor"]
    many_key = f"ours {best} {threads} threads"
    result = {
        "floor_ms": floor,
        "ours_ms": med[ours_key],
        "ours_threads_ms": med.get(many_key, med[ours_key]),
        "ours_other_metric_ms": next(v for n, v in med.items() if n.startswith(f"ours {best} ")
                                     and not n.endswith("threads")),
        "ours_kernels_ms": {k: med[f"ours {k}"] for k in kernels() if f"ours {k}" in med},
        "numpy_ms": med.get("numpy f32"),
        "faiss_flat_ms": med.get("faiss flat"),
        "faiss_sq_fp16_ms": med.get("faiss SQfp16"),
        "usearch_ms": med.get("usearch f16"),
        "kernel": best,
        "threads": threads,
        "same_topk": all(same.values()) and exact,
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
        "reps": args.reps,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": len(os.sched_getaffinity(0)),
    }
    print_table(med, floor, med[ours_key], same, result)
    return result


def print_table(med: dict[str, float], floor: float, ours: float, same: dict[str, bool],
                result: dict) -> None:
    print(f"{result['rows']} x {result['dim']} float16, top-{result['k']}, one query at a time, "
          f"median of {result['reps']} interleaved repetitions "
          f"({result['cpus']} CPUs, load average {result['load_average'][0]:.1f})")
    print(f"| method | ms/query | vs floor | vs ours | same top-{result['k']} |")
    print("|---|---:|---:|---:|:---:|")
    for name, ms in sorted(med.items(), key=lambda item: item[1]):
        mark = "" if name == "floor" else ("yes" if same[name] else "NO")
        print(f"| {name} | {ms:.2f} | {ms / floor:.2f}x | {ms / ours:.2f}x | {mark} |")
    print(f"ours/floor = {result['ours_vs_floor']:.3f} "
          f"(paired per repetition: {result['paired_ours_vs_floor']:.3f})", end="")
    if result["faiss_sq_fp16_vs_ours"] is not None:
        print(f"   faiss-SQfp16/ours = {result['faiss_sq_fp16_vs_ours']:.2f} "
              f"(paired: {result['paired_faiss_sq_fp16_vs_ours']:.2f})", end="")
    print()
    print(f"same_topk = {result['same_topk']} (ours == float64 reference: "
          f"{result['exact_vs_float64']})")


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
                        choices=["numpy", "faiss", "usearch", "serial"])
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    for name in ("rows", "k", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: expected 1 or more")
    if args.dim < 8 or args.dim % 8:
        parser.error(f"--dim {args.dim}: expected a positive multiple of 8")
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: expected 0 (all CPUs) or more")
    result = run(args)
    if args.json:
        write_json(args.json, result)
    return 0 if result["same_topk"] else 1


if __name__ == "__main__":
    sys.exit(main())
