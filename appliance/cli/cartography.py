"""`sosie map` (a static offline site mapping a corpus in 2-D and 3-D/VR) and `sosie rank`
(rank a folder of lookalikes against a reference photo, with a map of the folder).

    sosie map CORPUS_DIR|demo --out DIR [--mark PHOTO]... [--mark-include-photo] [--clusters K]
              [--neighbours K] [--layout pca|umap]
    sosie rank REFERENCE_PHOTO FOLDER [--out DIR] [--top N] [--no-map] [--clusters K]
               [--mark-include-photo]

A marked face is on the map as its place and its nearest faces; its crop and its file name
only with --mark-include-photo. No map file holds a path of this machine.

Exit status: 0 on success, 1 when the corpus or a photo cannot be used, 2 on unusable arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from appliance.cli import UsageError


def register(subparsers: Any) -> None:
    m = subparsers.add_parser(
        "map",
        help="write a static offline site mapping a corpus in 2-D and 3-D/VR",
        description="Write a static site (open OUT/index.html from the file system or any "
        "static server; nothing is fetched from the internet): a 2-D PCA map of every face "
        "with level-of-detail tiles, a 3-D view with a WebXR 'Enter VR' button, each face's "
        "nearest neighbours, the principal axes and optional k-means clusters.",
    )
    m.add_argument("corpus", metavar="CORPUS_DIR", help="corpus directory, or 'demo'")
    m.add_argument("--out", metavar="DIR", type=Path, required=True, help="output folder")
    _site_options(m)
    m.add_argument("--layout", choices=("pca", "umap"), default="pca",
                   help="2-D layout: the corpus' PCA (default) or UMAP, which keeps "
                   "neighbourhoods (needs the study extra: pip install 'sosie[study]')")
    m.set_defaults(func=run_map)

    r = subparsers.add_parser(
        "rank",
        help="rank a folder of lookalikes by face distance to a reference photo",
        description="Describe the reference photo and every image in FOLDER (through the corpus "
        "build into OUT/corpus: parallel, resumable, unreadable or faceless files skipped and "
        "listed), print the ranking (rank, distance, likeness, file), write OUT/ranking.csv "
        "and OUT/ranking.json, and a map of the folder with the reference on it (OUT/map).",
    )
    r.add_argument("reference", metavar="REFERENCE_PHOTO", type=Path)
    r.add_argument("folder", metavar="FOLDER", type=Path, help="folder of images to rank")
    r.add_argument("--out", metavar="DIR", type=Path, default=None,
                   help="output folder (default: ./rank-<FOLDER name>)")
    r.add_argument("--top", metavar="N", type=int, default=20,
                   help="rows to print (default 20; 0 = all); the files hold every row")
    r.add_argument("--no-map", action="store_true", help="skip the map site")
    r.add_argument("--workers", metavar="N", type=int, default=None,
                   help="processes describing the folder (default: corpus.workers setting)")
    r.add_argument("--config", metavar="FILE", type=Path,
                   help="configuration file (faces and corpus sections)")
    _site_options(r, mark=False)
    r.set_defaults(func=run_rank)


def _site_options(parser: argparse.ArgumentParser, mark: bool = True) -> None:
    if mark:
        parser.add_argument("--mark", metavar="PHOTO", type=Path, action="append", default=[],
                            help="highlight this photo's face (a reference, a visitor, a "
                            "conjured double) on the map; repeat for several")
        parser.add_argument("--config", metavar="FILE", type=Path,
                            help="configuration file (faces section, for --mark)")
    parser.add_argument("--mark-include-photo", action="store_true",
                        help="put the marked faces' crops and file names in the map (by "
                        "default only their places and nearest faces, labelled by number)")
    parser.add_argument("--clusters", metavar="K", type=int, default=0,
                        help="k-means clusters to show with their centre face (default 0: none)")
    parser.add_argument("--neighbours", metavar="K", type=int, default=12,
                        help="nearest neighbours listed per face (default 12)")
    parser.add_argument("--title", help="page title")


def _check_site_args(args: argparse.Namespace) -> None:
    if not 0 <= args.clusters <= 1000:
        raise UsageError(f"--clusters {args.clusters}: expected 0..1000")
    if not 0 <= args.neighbours <= 100:
        raise UsageError(f"--neighbours {args.neighbours}: expected 0..100")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def face_and_corpus_settings(config: Path | None) -> tuple[Any, Any]:
    """(FaceSettings, CorpusSettings) from the packaged defaults and `config`."""
    from appliance.config import ConfigError, load, section
    from appliance.corpus import CorpusSettings
    from appliance.faces.settings import FaceSettings

    try:
        merged = load(config)
        return section(merged, "faces", FaceSettings), section(merged, "corpus", CorpusSettings)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _analyzer(face_settings: Any) -> Any:
    from appliance.faces.analyzer import FaceAnalyzer

    return FaceAnalyzer(face_settings)


def marked_face(number: int, photo: Path, descriptor: Any, thumb: Any, include: bool) -> Any:
    """Marked face `number` of the map: with the photo's crop and file name only if `include`
    (else "marked face N", no pixels)."""
    from appliance.cartography.site import MarkedFace

    if include:
        return MarkedFace(photo.name, descriptor, thumb)
    return MarkedFace(f"marked face {number}", descriptor, None)


def describe_photo(analyzer: Any, photo: Path, size: int) -> Any:
    """(descriptor, aligned colour thumbnail) of the face in `photo`, or a one-line UsageError
    (the map shows it in gray when the corpus is gray)."""
    from appliance.faces.face import NoFaceFound
    from appliance.images import ImageError

    if not photo.is_file():
        raise UsageError(f"{photo}: no such file")
    try:
        face = analyzer.analyze(photo)
    except ImageError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(face, NoFaceFound):
        raise UsageError(f"{photo}: no usable face ({face.reason})")
    return face.descriptor, face.aligned(size)


def _print_summary(summary: Any) -> None:
    mb = summary.bytes / 1e6
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.timings.items())
    how = "precomputed" if summary.neighbour_method == "exact" else "found by the page on click"
    _say(f"map: {summary.count} faces, {summary.levels + 1} tile levels, {summary.tiles} tiles, "
         f"{mb:.1f} MB; neighbours {how}; {stages}")
    print(f"open {summary.out_dir / 'index.html'}  (3-D / VR: {summary.out_dir / 'vr.html'})")


def run_map(args: argparse.Namespace) -> int:
    from appliance.cartography.site import MapOptions, build_site
    from appliance.corpus import Corpus, CorpusError, demo_corpus

    _check_site_args(args)
    path = demo_corpus() if args.corpus == "demo" else Path(args.corpus)
    try:
        corpus = Corpus.open(path)
    except CorpusError as exc:
        print(f"sosie map: {exc}", file=sys.stderr)
        return 1
    marks = []
    if args.mark:
        size = int(corpus.manifest.get("thumbnails", {}).get("size", 256) or 256)
        face_settings, _ = face_and_corpus_settings(args.config)
        analyzer = _analyzer(face_settings)
        for k, photo in enumerate(args.mark, 1):
            descriptor, thumb = describe_photo(analyzer, photo, size)
            marks.append(marked_face(k, photo, descriptor, thumb, args.mark_include_photo))
    options = MapOptions(neighbours=args.neighbours, clusters=args.clusters, title=args.title)
    started = time.perf_counter()
    try:
        laid_out = corpus if args.layout == "pca" else _umap_layout(corpus)
        summary = build_site(laid_out, args.out, marks=marks, options=options, progress=_say)
    except (OSError, ValueError) as exc:  # e.g. OUT holds other files, or is not writable
        print(f"sosie map: {exc}", file=sys.stderr)
        return 1
    finally:
        corpus.close()
    _print_summary(summary)
    _say(f"total {time.perf_counter() - started:.1f} s")
    return 0


def _umap_layout(corpus: Any) -> Any:
    """The corpus laid out by UMAP, or a UsageError naming the missing extra."""
    try:
        import umap  # noqa: F401

        from appliance.cartography.layouts import umap_corpus
    except ImportError:
        raise UsageError("--layout umap needs the study extra: pip install 'sosie[study]'") \
            from None
    return umap_corpus(corpus, progress=_say)


def run_rank(args: argparse.Namespace) -> int:
    from appliance.cartography.rank import (
        build_folder_corpus,
        format_table,
        rank_corpus,
        write_ranking,
    )
    from appliance.cartography.site import MapOptions, MarkedFace, build_site
    from appliance.corpus import CorpusError

    _check_site_args(args)
    if not args.folder.is_dir():
        raise UsageError(f"{args.folder}: not a folder")
    if args.top < 0:
        raise UsageError(f"--top {args.top}: expected 0 or more")
    out = args.out or Path(f"rank-{args.folder.resolve().name}")
    if out.resolve().is_relative_to(args.folder.resolve()):
        raise UsageError(f"--out {out}: must not be inside FOLDER {args.folder}")
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers {args.workers}: expected 0 (one per core) or more")
    face_settings, corpus_settings = face_and_corpus_settings(args.config)
    descriptor, thumb = describe_photo(
        _analyzer(face_settings), args.reference, corpus_settings.thumbnail_size
    )
    _say(f"describing {args.folder} into {out / 'corpus'} …")
    try:
        corpus = build_folder_corpus(
            args.folder, out / "corpus", workers=args.workers, settings=corpus_settings,
            face_settings=face_settings, progress=True,
        )
    except CorpusError as exc:
        print(f"sosie rank: {exc}", file=sys.stderr)
        return 1
    try:
        ranking = rank_corpus(corpus, descriptor, str(args.reference), str(args.folder))
        csv_path, json_path = write_ranking(ranking, out)
        print(format_table(ranking, args.top or None))
        if ranking.skipped:
            _say(f"skipped {len(ranking.skipped)} file(s) (listed in ranking.json):")
            for name, reason in ranking.skipped[:10]:
                _say(f"  {name}: {reason}")
        _say(f"wrote {csv_path} and {json_path}")
        if not args.no_map and corpus.count:
            include = args.mark_include_photo
            mark = MarkedFace(f"reference: {args.reference.name}" if include else "reference",
                              descriptor, thumb if include else None)
            against = args.reference.name if include else "the reference photo"
            title = args.title or f"{args.folder.name} against {against}"
            options = MapOptions(neighbours=args.neighbours, clusters=args.clusters, title=title)
            summary = build_site(corpus, out / "map", mark=mark, options=options, progress=_say)
            _print_summary(summary)
    except (OSError, ValueError) as exc:  # e.g. OUT/map holds other files, or is not writable
        print(f"sosie rank: {exc}", file=sys.stderr)
        return 1
    finally:
        corpus.close()
    return 0 if ranking.faces else 1
