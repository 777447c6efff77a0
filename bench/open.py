"""Opening a corpus's scanner: the scan layout memory-mapped from the build's files, against
laying the sketch out in memory as every start did before the files (the anchor).

    .venv/bin/python bench/open.py [--count 2000000] [--corpus DIR] [--reps 5] [--queries 40]

The corpus (`sosie corpus synth`, cached under <cache>/bench-open-N unless `--corpus`) is opened
`--reps` times per method, methods interleaved. Each repetition times `Corpus.open`, the rows'
finiteness pass (`check_rows`, which `warm` runs, on a thread at `sosie run`'s start since
`Corpus.check_in_background`: once per opened corpus, the same pass the scanner used to make)
and the scanner (`bench/startup.py` measures the whole corpus start-up on a cold card):

  mapped     `Corpus.scanner()`: the layout files memory-mapped, nothing read again
  in memory  the scanner as opening made it before the files: `Scanner(vectors, norms,
             sketch=...)` lays the codes out in memory (a pass over every code, ~150 MB at 2M
             rows) and checks the stored norms against the rows (a pass over every row)

Then the same top-10 queries through both scanners, interleaved (identical answers checked):
the mapped layout must not make a query slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import cpu_name, median_ms, write_json  # noqa: E402 - bench/ is the script's folder

from appliance.corpus import Corpus, synth  # noqa: E402
from appliance.paths import cache_dir  # noqa: E402
from appliance.search import Scanner  # noqa: E402


def corpus_dir(count: int) -> Path:
    path = cache_dir() / f"bench-open-{count}"
    if not (path / "manifest.yaml").is_file():
        print(f"writing a {count}-row synthetic corpus to {path} ...", file=sys.stderr)
        synth(path, count, seed=0)
    return path


def open_once(path: Path, mapped: bool) -> tuple[dict[str, float], Corpus, Scanner]:
    start = time.perf_counter()
    corpus = Corpus.open(path, check_model=False)
    opened = time.perf_counter()
    corpus.check_rows()
    checked = time.perf_counter()
    if mapped:
        scanner = corpus.scanner()
    else:
        scanner = Scanner(corpus.vectors, corpus.norms, sketch=corpus.sketch())
    done = time.perf_counter()
    return ({"open": opened - start, "rows check": checked - opened, "scanner": done - checked,
             "total": done - start}, corpus, scanner)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2_000_000)
    parser.add_argument("--corpus", type=Path, help="use this corpus (with its layout files)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    path = args.corpus or corpus_dir(args.count)
    with Corpus.open(path, check_model=False) as corpus:
        if corpus.scan_layout() is None:
            print(f"{path}: no scan layout files (sosie corpus verify --repair {path})",
                  file=sys.stderr)
            return 1
        rows = corpus.count
    times: dict[str, dict[str, list[float]]] = {"mapped": {}, "in memory": {}}
    for rep in range(args.reps):
        for name in (("mapped", "in memory") if rep % 2 else ("in memory", "mapped")):
            stages, corpus, scanner = open_once(path, name == "mapped")
            for stage, seconds in stages.items():
                times[name].setdefault(stage, []).append(seconds)
            del scanner
            corpus.close()

    corpus = Corpus.open(path, check_model=False)
    corpus.warm()
    scanners = {"mapped": corpus.scanner(),
                "in memory": Scanner(corpus.vectors, sketch=corpus.sketch(), finite=True)}
    rng = np.random.default_rng(1)
    query_times: dict[str, list[float]] = {name: [] for name in scanners}
    for i in range(args.queries):
        q = (np.asarray(corpus.vectors[int(rng.integers(rows))], np.float32)
             + rng.normal(0, 0.02, corpus.dim).astype(np.float32))
        answers = []
        for name in (list(scanners) if i % 2 else list(scanners)[::-1]):
            start = time.perf_counter()
            found, _ = scanners[name].topk(q, 10)
            query_times[name].append(time.perf_counter() - start)
            answers.append(found.tolist())
        if answers[0] != answers[1]:
            raise SystemExit(f"query {i}: the two layouts answer differently")

    cpu = cpu_name()
    print(f"\n{rows:,} rows, {path}; medians of {args.reps} opens, {args.queries} queries; {cpu}")
    print(f"| {'ms':<24} | {'mapped':>10} | {'in memory':>10} | {'ratio':>7} |")
    print(f"|{'-' * 26}|{'-' * 12}|{'-' * 12}|{'-' * 9}|")
    figures: dict[str, dict[str, float]] = {}
    for stage in ("open", "rows check", "scanner", "total"):
        a, b = median_ms(times["mapped"][stage]), median_ms(times["in memory"][stage])
        figures[stage] = {"mapped_ms": a, "in_memory_ms": b}
        print(f"| {stage:<24} | {a:>10.1f} | {b:>10.1f} | {a / b:>6.3f}x |")
    a, b = median_ms(query_times["mapped"]), median_ms(query_times["in memory"])
    per_query = statistics.median(x / y for x, y in
                                  zip(query_times["mapped"], query_times["in memory"],
                                      strict=True))
    figures["query"] = {"mapped_ms": a, "in_memory_ms": b, "median_ratio": per_query}
    print(f"| {'top-10 query':<24} | {a:>10.2f} | {b:>10.2f} | {per_query:>6.3f}x |")
    print("(ratio: mapped / in memory; the query's is the median of per-query ratios)")
    if args.json:
        write_json(args.json, {"rows": rows, "cpu": cpu, **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
