"""Benchmark `sosie generate`: faces/s made here, against describing as many existing files.

    .venv/bin/python bench/generate.py                       # 150 faces, 2 repetitions
    .venv/bin/python bench/generate.py --faces 60 --repeats 1 --json bench/results/generate.json

Anchor, measured in the same run: `FaceAnalyzer.analyze` of `--faces` existing 256 px PNG face
files (the faces of the first run, read from disk and decoded), in one process and in W worker
processes (the build's pool) - what any pipeline that is handed generated faces must spend.
Against it, the real `generate()` into a fresh folder (its workers' start-up included):

- generate alone: render at 64 px, Lanczos to 256 px, PNG, atomic write, journal; every draw
  kept (an analyzer that accepts without looking), 1 and W workers;
- generate + describe: the same with dlib finding (or not) the face in every draw, which is what
  `sosie generate` does; faces/s counts kept faces, so rejected draws cost time too.

Methods are interleaved within each repetition; the table shows medians of the wall time, and
of the CPU time of the run and its worker processes (per face: what the machine's load barely
moves, the figure to compare on a shared machine). Also printed: the
network's load time, ms per face of the forward pass alone (64 px, one BLAS thread) and with
the upscale, the acceptance rate (faces / draws), and the spread of the descriptors of the kept
faces (median and smallest distance between two of them: a collapsed generator draws the same
face again and again).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import median_ms, write_json

from appliance.compute.pool import run_tasks
from appliance.corpus.engines import DlibEngine
from appliance.generator.dcgan import DCGAN, default_weights_path
from appliance.generator.draws import DcganDrawer, DcganJob
from appliance.generator.job import generate

SEED = 2026


@dataclass(frozen=True)
class Found:
    descriptor: Any = None


class AcceptAll:
    """An analyzer that keeps every draw without looking: generate's own cost alone."""

    def analyze(self, image: np.ndarray) -> Found:
        return Found()


@dataclass(frozen=True)
class NoAnalysis:
    def checksums(self) -> dict[str, str]:
        return {"none": "0" * 64}

    def settings(self) -> dict[str, Any]:
        return {"engine": "accept-all"}

    def create(self) -> AcceptAll:
        return AcceptAll()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def time_generate(count: int, workers: int, engine: Any, weights: Path,
                  keep: Path | None = None) -> tuple[float, float, int]:
    """(seconds, CPU seconds, draws) of a fresh `generate` run; `keep` receives the folder."""
    out = Path(tempfile.mkdtemp(prefix="bench-generate-")) / "faces"
    try:
        drawer = DcganDrawer(DcganJob(SEED, 256, "png", weights), engine, workers=workers)
        start, cpu = time.perf_counter(), cpu_seconds()
        report = generate(out, count, drawer, progress=False)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        if keep is not None and not keep.exists():
            shutil.copytree(out, keep)
        return seconds, cpu, report.draws
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


_analyzer: Any = None


def _init(engine: Any) -> None:
    global _analyzer
    _analyzer = engine.create()


def _describe(task: tuple[str]) -> np.ndarray | None:
    outcome = _analyzer.analyze(Path(task[0]))
    return np.asarray(outcome.descriptor) if hasattr(outcome, "descriptor") else None


def time_describe(files: list[Path], workers: int) -> tuple[float, float, list[np.ndarray]]:
    """(seconds, CPU seconds, descriptors) of analysing every file; models loaded before the
    clock starts with one process, included (as in generate) with several."""
    tasks = [(str(p),) for p in files]
    if workers <= 1:
        _init(DlibEngine())
        _describe(tasks[0])  # warm
        start, cpu = time.perf_counter(), cpu_seconds()
        found = [_describe(t) for t in tasks]
    else:
        start, cpu = time.perf_counter(), cpu_seconds()
        found = list(run_tasks(tasks, workers, _init, (DlibEngine(),), _describe,
                               lambda task, code: None))
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return seconds, cpu, [d for d in found if d is not None]


def network_figures(weights: Path) -> dict[str, float]:
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        net = DCGAN.load(weights)
        loads.append(time.perf_counter() - start)
    forward, upscaled = [], []
    for i in range(60):
        start = time.perf_counter()
        net.faces(SEED, [i], size=64)
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        net.faces(SEED, [i], size=256)
        upscaled.append(time.perf_counter() - start)
    return {"load_ms": median_ms(loads), "forward_64_ms": median_ms(forward),
            "forward_256_ms": median_ms(upscaled)}


def spread(descriptors: list[np.ndarray]) -> tuple[float, float, float]:
    """(median, smallest, share under 0.6) of the distances between two kept faces."""
    x = np.asarray(descriptors, dtype=np.float64)
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0))
    pairs = d[np.triu_indices(len(x), 1)]
    return float(np.median(pairs)), float(pairs.min()), float((pairs < 0.6).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=150, help="faces per run (default 150)")
    parser.add_argument("--repeats", type=int, default=2, help="repetitions (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="W, processes of the parallel runs (default: all cores)")
    parser.add_argument("--weights", type=Path, help="DCGAN weights (default: the wheel's)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    weights = args.weights or default_weights_path()
    n, w = args.faces, args.workers

    net = network_figures(weights)
    scratch = Path(tempfile.mkdtemp(prefix="bench-generate-files-"))
    files_dir = scratch / "faces"
    keys = ("describe1", "describeW", "alone1", "aloneW", "full1", "fullW")
    runs: dict[str, list[float]] = {k: [] for k in keys}
    cpus: dict[str, list[float]] = {k: [] for k in keys}
    draws: list[int] = []
    descriptors: list[np.ndarray] = []
    try:
        for rep in range(args.repeats):
            for key, workers in (("full1", 1), ("fullW", w)):
                seconds, cpu, made = time_generate(n, workers, DlibEngine(), weights,
                                                   keep=files_dir)
                runs[key].append(seconds)
                cpus[key].append(cpu)
                draws.append(made)
            files = sorted(p for p in files_dir.iterdir() if p.suffix == ".png")
            for key, workers in (("describe1", 1), ("describeW", w)):
                seconds, cpu, descriptors = time_describe(files, workers)
                runs[key].append(seconds)
                cpus[key].append(cpu)
            for key, workers in (("alone1", 1), ("aloneW", w)):
                seconds, cpu, _ = time_generate(n, workers, NoAnalysis(), weights)
                runs[key].append(seconds)
                cpus[key].append(cpu)
            print(f"repetition {rep + 1}/{args.repeats}: " + ", ".join(
                f"{k} {v[-1]:.1f} s" for k, v in runs.items()), file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in runs.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    anchor, cpu_anchor = med["describe1"], cpu["describe1"]
    acceptance = n / statistics.median(draws)
    rows = [
        (f"describe {n} existing files, 1 process (anchor)", "describe1"),
        (f"describe {n} existing files, {w} processes", "describeW"),
        ("generate alone (render, 256 px, PNG), 1 worker", "alone1"),
        (f"generate alone, {w} workers", "aloneW"),
        ("generate + describe (sosie generate), 1 worker", "full1"),
        (f"generate + describe, {w} workers", "fullW"),
    ]
    print(f"\n{n} faces per run, median of {args.repeats}; DCGAN load {net['load_ms']:.0f} ms, "
          f"forward {net['forward_64_ms']:.1f} ms/face at 64 px ({net['forward_256_ms']:.1f} "
          f"with the 256 px upscale), one BLAS thread")
    print(f"| {'method':<50} | {'seconds':>8} | {'faces/s':>8} | {'vs anchor':>9} | "
          f"{'CPU ms/face':>11} | {'CPU vs anchor':>13} |")
    print(f"|{'-' * 52}|{'-' * 10}|{'-' * 10}|{'-' * 11}|{'-' * 13}|{'-' * 15}|")
    for name, key in rows:
        s, c = med[key], cpu[key]
        print(f"| {name:<50} | {s:>8.2f} | {n / s:>8.1f} | {s / anchor:>8.2f}x | "
              f"{1000 * c / n:>11.1f} | {c / cpu_anchor:>12.2f}x |")
    distances = spread(descriptors) if len(descriptors) > 1 else (float("nan"),) * 3
    print(f"\nacceptance: {acceptance:.1%} of draws hold a face dlib finds at 256 px "
          f"({n} faces from {statistics.median(draws):.0f} draws)")
    print(f"descriptor distances between kept faces: median {distances[0]:.2f}, smallest "
          f"{distances[1]:.2f}, {distances[2]:.0%} of pairs under 0.6")
    if args.json:
        write_json(args.json, {
            "faces": n, "repeats": args.repeats, "workers": w, **net,
            "acceptance": acceptance,
            "distance_median": distances[0], "distance_min": distances[1],
            "distance_share_under_0_6": distances[2],
            **{f"{k}_s": v for k, v in med.items()},
            **{f"{k}_faces_per_s": n / v for k, v in med.items()},
            **{f"{k}_cpu_ms_per_face": 1000 * v / n for k, v in cpu.items()},
            "runs": runs, "cpu_runs": cpus,
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
