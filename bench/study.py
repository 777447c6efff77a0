"""`sosie study` at scale: 200k faces x 20 references, the whole study and its report.

    .venv/bin/python bench/study.py [--count 200000] [--second 20000] [--references 20]
                                    [--corpus DIR] [--json out.json]

Two synthetic corpora (`sosie corpus synth`: the large one, and a second of another seed, i.e.
another "generator"), 20 references drawn from the large one's descriptor model, then the study
as `sosie study` runs it (`appliance.study.run.run_study`, then the report), in one process.
Measures (same run): the wall time of each stage and of the whole; anchor: one pass of
numpy over the large corpus (`distance_matrix`: reading every float16 descriptor once), so the
stages are also given as multiples of that pass. The UMAP map is fitted on the first
`--map-faces` faces of each set (2000 by default, the command's default); its first fit in a
process includes numba's compilation (~20 s here), reported apart as `umap_first_call`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import cpu_name, write_json  # noqa: E402 - bench/ is the script's folder

from appliance.cartography.layouts import fit_umap  # noqa: E402
from appliance.corpus import Corpus, synth  # noqa: E402
from appliance.corpus.synth import descriptor_model, draw_descriptors  # noqa: E402
from appliance.paths import cache_dir  # noqa: E402
from appliance.study.doubles import distance_matrix  # noqa: E402
from appliance.study.inputs import Reference, open_set  # noqa: E402
from appliance.study.report import write_report  # noqa: E402
from appliance.study.run import StudyOptions, run_study  # noqa: E402


def corpus_at(path: Path, count: int, seed: int) -> Path:
    """A synthetic corpus of `count` faces, made once and reused."""
    try:
        with Corpus.open(path) as corpus:
            if corpus.count == count:
                return path
    except Exception:  # absent or stale: made again
        pass
    synth(path, count, seed=seed, overwrite=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--second", type=int, default=20_000)
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--map-faces", type=int, default=2000)
    parser.add_argument("--corpus", type=Path, default=None, help="where the corpora are kept")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    home = args.corpus or cache_dir() / "bench-study"
    large = corpus_at(home / f"synth-{args.count}", args.count, 0)
    second = corpus_at(home / f"synth-{args.second}-seed1", args.second, 1)
    rng = np.random.default_rng(0)
    offset, basis = descriptor_model(np.random.default_rng(0))  # the large corpus' model
    refs = draw_descriptors(rng, offset, basis, args.references)
    references = [Reference(f"r{i}", r, None, False) for i, r in enumerate(refs)]

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report"
        sets = [open_set("large", large, out, build_corpus=None, say=print),
                open_set("second", second, out, build_corpus=None, say=print)]
        started = time.perf_counter()
        fit_umap(np.asarray(sets[1].corpus.vectors[:200], np.float32), 2)
        umap_first = time.perf_counter() - started

        anchor = []
        for _ in range(3):
            t = time.perf_counter()
            distance_matrix(refs, sets[0].corpus.vectors)
            anchor.append(time.perf_counter() - t)
        one_pass = float(np.median(anchor))

        started = time.perf_counter()
        result = run_study(sets, references, StudyOptions(map_per_set=args.map_faces))
        studied = time.perf_counter() - started
        t = time.perf_counter()
        write_report(result, out)
        report = time.perf_counter() - t
        for s in sets:
            s.corpus.close()

    seconds = dict(result.study["seconds"], report=round(report, 3))
    total = studied + report
    print(f"CPU: {cpu_name()}; {args.count} + {args.second} faces x {args.references} references")
    print(f"anchor: one numpy pass over {args.count} descriptors {one_pass:.2f} s (median of 3)")
    print(f"{'stage':<18} {'seconds':>8} {'x pass':>8}")
    for name, value in seconds.items():
        print(f"{name:<18} {value:8.2f} {value / one_pass:8.1f}")
    print(f"{'total':<18} {total:8.2f} {total / one_pass:8.1f}   (goal: <= 120 s)")
    print(f"umap first call in a process (numba compilation, not in the total): {umap_first:.1f} s")
    for c in result.study["comparisons"]:
        print(f"verdict: {c['set']} versus {c['versus']}: {c['verdict']} {c['interval']}")
    if args.json:
        write_json(args.json, {"cpu": cpu_name(), "faces": args.count, "second": args.second,
                               "references": args.references, "one_pass_s": one_pass,
                               "seconds": seconds, "total_s": total,
                               "umap_first_call_s": umap_first})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
