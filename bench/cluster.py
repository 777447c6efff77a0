"""Benchmark `sosie build --scheduler`: images/s on a loopback Dask cluster against local builds.

Anchors, measured in the same run and interleaved in every repetition (the machine is shared
and noisy; the table shows medians): the local build with 1 process (in this process) and with
2 worker processes. Then the same build on a Dask cluster on 127.0.0.1 (a `dask scheduler`
and `dask worker --nthreads 1` processes, started once) with 1 and with 2 workers, the files
read at the same path (`shared`) and, with 2 workers, streamed from the client (`stream`).
Cluster workers keep their models loaded between builds (local worker processes load them for
every build): a warm-up build runs first on each cluster.

The scheduler's overhead per chunk is measured two ways: the round trip of an empty task
(submit -> result, one at a time, median), and, for the 1-worker cluster build, its wall time
less the time its worker spent computing chunks (Dask's task stream), per chunk: an upper bound,
since it also holds the client's listing and assembly of the corpus. Note that the 1-process
local build runs in this process with BLAS on every core, cluster workers (like local worker
processes) with one BLAS thread each.

    .venv/bin/python bench/cluster.py                          # 96 images, dlib, 2 repetitions
    .venv/bin/python bench/cluster.py --images 48 --repeats 1  # a quick look
    .venv/bin/python bench/cluster.py --engine mock            # the cluster's own cost only

Images: bench/build.py's (the 100 LFW faces of scikit-image, upscaled, with variants).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the loopback cluster the tests use

from cluster_helpers import LoopbackCluster  # noqa: E402
from figures import write_json  # noqa: E402

from appliance.corpus import CorpusSettings, DlibEngine, MockEngine, build  # noqa: E402
from build import bench_images  # noqa: E402


def timed_build(folder: Path, engine, settings: CorpusSettings, watch=None,
                **where) -> tuple[float, int, float]:
    """(seconds, faces, seconds the cluster's workers computed, if `watch` is its client)."""
    from distributed import get_task_stream

    out = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        with get_task_stream(watch) if watch is not None else contextlib.nullcontext() as ts:
            start = time.perf_counter()
            report = build(folder, out / "c", settings=settings, engine=engine, progress=False,
                           **where)
            seconds = time.perf_counter() - start
        computed = sum(s["stop"] - s["start"] for task in (ts.data if ts else [])
                       for s in task["startstops"] if s["action"] == "compute")
        return seconds, report.faces, computed
    finally:
        shutil.rmtree(out, ignore_errors=True)


def connect_ms(address: str) -> float:
    """ms to connect a build's client and learn the workers (paid once per build)."""
    from appliance.compute.dask_session import Session

    start = time.perf_counter()
    with Session(address) as session:
        session.wait_for_workers()
        return (time.perf_counter() - start) * 1000


def round_trip_ms(address: str, count: int = 50) -> float:
    """Median ms of submit -> result of an empty task, one at a time."""
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        times = []
        for i in range(count):
            start = time.perf_counter()
            client.submit(int, i, pure=False).result(timeout=60)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96, help="images (default 96)")
    parser.add_argument("--repeats", type=int, default=2, help="repetitions (default 2)")
    parser.add_argument("--chunk-size", type=int, default=16, help="images per chunk (16)")
    parser.add_argument("--engine", choices=("dlib", "mock"), default="dlib")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    folder = bench_images(args.images)
    engine = DlibEngine() if args.engine == "dlib" else MockEngine()
    settings = CorpusSettings(chunk_size=args.chunk_size)
    chunks = -(-args.images // args.chunk_size)
    scratch = Path(tempfile.mkdtemp(prefix="bench-cluster-procs-"))
    try:
        with LoopbackCluster(scratch / "one", workers=1) as one, \
                LoopbackCluster(scratch / "two", workers=2) as two:
            warm = scratch / "warm-up"  # one image per task: every worker loads its models
            warm.mkdir()
            for path in sorted(folder.glob("*.png"))[:8]:
                shutil.copy(path, warm / path.name)
            for cluster in (one, two):
                timed_build(warm, engine, CorpusSettings(chunk_size=1), scheduler=cluster.address)
            methods = {
                "local, 1 process (anchor)": dict(workers=1),
                "local, 2 processes": dict(workers=2),
                "cluster, 1 worker": dict(scheduler=one.address, cluster_files="shared"),
                "cluster, 2 workers": dict(scheduler=two.address, cluster_files="shared"),
                "cluster, 2 workers, streamed": dict(scheduler=two.address,
                                                     cluster_files="stream"),
            }
            from distributed import Client

            watch = Client(one.address, timeout=30, set_as_default=False)
            runs: dict[str, list[float]] = {name: [] for name in methods}
            outside: list[float] = []
            faces: dict[str, int] = {}
            trips: list[float] = []
            connects: list[float] = []
            for rep in range(args.repeats):
                for name, where in methods.items():
                    seconds, faces[name], computed = timed_build(
                        folder, engine, settings,
                        watch if name == "cluster, 1 worker" else None, **where)
                    runs[name].append(seconds)
                    if computed:
                        outside.append((seconds - computed) / chunks * 1000)
                trips.append(round_trip_ms(two.address))
                connects.append(connect_ms(two.address))
                print(f"repetition {rep + 1}/{args.repeats}: " + ", ".join(
                    f"{k} {v[-1]:.1f} s" for k, v in runs.items()), file=sys.stderr)
            watch.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    n = args.images
    med = {k: statistics.median(v) for k, v in runs.items()}
    anchor = med["local, 1 process (anchor)"]
    print(f"\n{n} images, {args.engine} engine, chunks of {args.chunk_size} ({chunks} chunks), "
          f"median of {args.repeats}; faces kept: {sorted(set(faces.values()))}")
    print(f"| {'method':<30} | {'seconds':>8} | {'images/s':>8} | {'speed-up':>8} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for name, seconds in med.items():
        print(f"| {name:<30} | {seconds:>8.2f} | {n / seconds:>8.2f} | {anchor / seconds:>7.2f}x |")
    trip = statistics.median(trips)
    connect = statistics.median(connects)
    per_chunk = statistics.median(outside)
    work = med["cluster, 1 worker"] * 1000 / chunks
    print(f"\nscheduler round trip of an empty task: {trip:.1f} ms (median); connecting a "
          f"build's client: {connect:.0f} ms once per build")
    print(f"1-worker cluster build, time outside the worker's compute per chunk (upper bound "
          f"of the overhead): {per_chunk:.1f} ms = {per_chunk / work:.1%} of a chunk's "
          f"{work:.0f} ms")
    if args.json:
        write_json(args.json, {
            "images": n, "repeats": args.repeats, "engine": args.engine,
            "chunk_size": args.chunk_size, "chunks": chunks, "faces": faces,
            "seconds": med, "images_per_s": {k: n / v for k, v in med.items()},
            "round_trip_ms": trip, "connect_ms": connect, "overhead_per_chunk_ms": per_chunk,
            "runs": runs,
        })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
