"""`sosie study`: the artist's questions asked of sets of generated faces (workstation only).

    sosie study --out DIR --reference PHOTO_OR_NPY ... --set NAME=CORPUS_OR_FOLDER ...

Writes DIR/index.html (open it from the file system), DIR/study.json and CSVs: each reference's
best doubles, set against set comparisons with confidence intervals, clusters (or none) and each
set's "type", and whether the doubles are more alike among themselves. Needs the study extra
(scipy, scikit-learn, umap-learn, matplotlib): pip install 'sosie[study]'.

Exit status: 0 on success, 1 when an input cannot be used, 2 on unusable arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from appliance.cli import UsageError
from appliance.words import plural

EXTRA = "pip install 'sosie[study]'"


def register(subparsers: Any) -> None:
    s = subparsers.add_parser(
        "study",
        help="answer questions about sets of faces with numbers, intervals and pictures",
        description="Compare sets of faces (corpora, or folders of images described here) "
        "against reference faces (photos, or .npy descriptors): each reference's best doubles; "
        "whether one set's doubles are closer than another's (bootstrap interval, signed-rank "
        "test, sets compared at equal size); clusters (HDBSCAN, which may answer none) and each "
        "set's type; whether the doubles are more alike among themselves (permutation test). "
        "Writes OUT/index.html (opens offline), OUT/study.json and CSVs. "
        f"Needs the study extra: {EXTRA}.",
    )
    s.add_argument("--out", metavar="DIR", type=Path, required=True, help="report folder")
    s.add_argument("--reference", metavar="PHOTO_OR_NPY", type=Path, action="append",
                   required=True, help="a reference photo, or a .npy of one (128,) or N (N, 128) "
                   "descriptors (repeat the option for more)")
    s.add_argument("--set", metavar="NAME=CORPUS_OR_FOLDER", action="append", required=True,
                   dest="sets", help="a named set: a corpus directory or a folder of images "
                   "(repeat the option for more)")
    s.add_argument("--doubles", metavar="N", type=int, default=12,
                   help="best doubles listed per reference (default 12)")
    s.add_argument("--cluster-sample", metavar="N", type=int, default=3000,
                   help="faces of each set clustered (a random sample; default 3000)")
    s.add_argument("--map-faces", metavar="N", type=int, default=2000,
                   help="faces of each set on the maps (default 2000)")
    s.add_argument("--no-umap", action="store_true", help="PCA map only (no UMAP)")
    s.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    s.add_argument("--title", help="report title")
    s.add_argument("--workers", metavar="N", type=int, default=None,
                   help="processes describing folders (default: corpus.workers setting)")
    s.add_argument("--config", metavar="FILE", type=Path,
                   help="configuration file (faces and corpus sections)")
    s.set_defaults(func=run_study_command)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_args(args: argparse.Namespace) -> None:
    bounds = (("--doubles", args.doubles, 1, 100), ("--cluster-sample", args.cluster_sample,
              30, 20000), ("--map-faces", args.map_faces, 10, 50000))
    for option, value, low, high in bounds:
        if not low <= value <= high:
            raise UsageError(f"{option} {value}: expected {low}..{high}")
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers {args.workers}: expected 0 (one per core) or more")
    if len(args.reference) > 1000:
        raise UsageError(f"--reference given {len(args.reference)} times: at most 1000")
    if len(args.sets) > 10:
        raise UsageError(f"--set given {len(args.sets)} times: at most 10")


def _stage_bar(stages: tuple[str, ...]) -> Any:
    """A callable announcing each stage: a tqdm bar on a terminal, else one line per stage."""
    if not sys.stderr.isatty():
        return lambda name: _say(f"study: {name}")
    from tqdm import tqdm

    bar = tqdm(total=len(stages), desc="study", unit="stage", file=sys.stderr,
               bar_format="{desc}: {n_fmt}/{total_fmt} {bar} {elapsed} {postfix}")

    def stage(name: str) -> None:
        if bar.n < bar.total and name != stages[0]:
            bar.update(1)
        bar.set_postfix_str(name)
        if name == "done":
            bar.update(bar.total - bar.n)
            bar.close()

    return stage


def run_study_command(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
        import umap  # noqa: F401
    except ImportError as exc:
        print(f"sosie study: needs the study extra ({exc.name} is missing): {EXTRA}",
              file=sys.stderr)
        return 1
    from appliance.cartography.rank import build_folder_corpus
    from appliance.cli.cartography import face_and_corpus_settings
    from appliance.study import inputs
    from appliance.study.clusters import ClusterOptions
    from appliance.study.compare import CompareOptions
    from appliance.study.inputs import StudyError
    from appliance.study.report import prepare_out, write_report
    from appliance.study.run import STAGES, StudyOptions, run_study

    _check_args(args)
    started = time.perf_counter()
    face_settings, corpus_settings = face_and_corpus_settings(args.config)
    sets: list[Any] = []
    try:
        parsed = [inputs.parse_set_argument(text) for text in args.sets]
        names = [n for n, _ in parsed]
        if len(set(names)) != len(names):
            repeated = next(n for n in names if names.count(n) > 1)
            raise StudyError(f"--set {repeated}: the name is given twice")
        references = _references(args.reference, face_settings)
        try:
            prepare_out(args.out)
        except OSError as exc:
            raise StudyError(f"--out {exc}") from None

        def build_corpus(folder: Path, target: Path) -> Any:
            return build_folder_corpus(folder, target, workers=args.workers,
                                       settings=corpus_settings, face_settings=face_settings,
                                       progress=sys.stderr.isatty())

        for name, path in parsed:
            sets.append(inputs.open_set(name, path, args.out, build_corpus=build_corpus, say=_say))
            if sets[-1].rejected:
                left, (first, why) = len(sets[-1].rejected), sets[-1].rejected[0]
                what = "draw" if first.startswith("dcgan:") else "file"  # a generated corpus
                _say(f"set {name}: {plural(left, what)} left out by its build (no usable face or "
                     f"unreadable), e.g. {first}: {why}")
        photo_model = None
        if any(r.described for r in references):
            from appliance.faces.model_files import model_checksums

            photo_model = model_checksums(face_settings)
        notes = inputs.check_models(sets, photo_model)
        for note in notes:
            _say(f"note: {note}")
        options = StudyOptions(
            doubles=args.doubles, compare=CompareOptions(seed=args.seed),
            clusters=ClusterOptions(sample=args.cluster_sample, seed=args.seed),
            map_per_set=args.map_faces, umap=not args.no_umap)
        stage = _stage_bar((*STAGES, "report"))
        result = run_study(sets, references, options, stage=stage, notes=notes)
        stage("report")
        page = write_report(result, args.out, args.title)
        stage("done")
    except (StudyError, OSError) as exc:
        print(f"sosie study: {exc}", file=sys.stderr)
        return 1
    finally:
        for s in sets:
            s.corpus.close()
    _print_answers(result.study)
    _say(f"total {time.perf_counter() - started:.1f} s")
    print(f"open {page}")
    return 0


def _references(paths: list[Path], face_settings: Any) -> list[Any]:
    from appliance.study import inputs
    from appliance.study.inputs import StudyError

    analyzer = None
    out = []
    for path in paths:
        if not path.is_file():
            raise StudyError(f"--reference {path}: no such file")
        if path.suffix.lower() == ".npy":
            out.extend(inputs.load_npy_references(path))
            continue
        if analyzer is None:
            from appliance.faces.analyzer import FaceAnalyzer

            analyzer = FaceAnalyzer(face_settings)
        out.append(inputs.load_photo_reference(path, analyzer))
    if len(out) > inputs.MAX_REFERENCES:
        raise StudyError(f"--reference: {len(out)} references, at most {inputs.MAX_REFERENCES}")
    return inputs.unique_names(out)


def _print_answers(study: dict[str, Any]) -> None:
    """The verdicts, one line each, on stdout."""
    for b in study["best_doubles"][:5]:
        d = b["doubles"][0]
        print(f"best double of {b['reference']}: {d['set']} {d['file']} at {d['distance']:.3f}")
    if len(study["best_doubles"]) > 5:
        print(f"  … {len(study['best_doubles']) - 5} more references in best_doubles.csv")
    for c in study["comparisons"]:
        interval = c.get("interval")
        shown = f" [{interval[0]:+.4f}, {interval[1]:+.4f}], p = {c['p']:.3g}" if interval else ""
        print(f"{c['set']} versus {c['versus']}: {c['verdict']}{shown}")
    for name, c in study["clusters"].items():
        print(f"clusters in {name}: {c['clusters']} ({c['verdict']}; HDBSCAN found {c['found']}, "
              f"noise {c['noise']}, silhouette {c['silhouette']}, stability {c['stability']})")
    for name, a in study["doubles_among_themselves"].items():
        p = "–" if a.get("p") is None else f"{a['p']:.3g}"
        print(f"doubles among themselves in {name}: {a['verdict']} (p = {p})")
