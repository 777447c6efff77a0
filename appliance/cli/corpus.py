"""`sosie build` and `sosie corpus info|verify|synth|import|demo`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.cli import UsageError
from appliance.errors import one_line


def register(sub: Any) -> None:
    p = sub.add_parser(
        "build",
        help="build a corpus from a folder of face images (parallel, resumable)",
        description="Walk IMAGES_DIR recursively, describe every face with dlib (one process "
        "per core) and write the corpus to CORPUS_DIR. Interrupted builds resume where they "
        "stopped when run again; unusable files are listed in CORPUS_DIR/rejected.tsv. "
        "dcgan:COUNT[:SEED] instead of a folder draws COUNT faces with the DCGAN generator "
        "and builds from them without writing image files (sources.tsv names dcgan:SEED:i).",
    )
    p.add_argument("images_dir", metavar="IMAGES_DIR|dcgan:COUNT[:SEED]")
    p.add_argument("corpus_dir", metavar="CORPUS_DIR", type=Path)
    p.add_argument("--workers", type=int, help="processes (default: corpus.workers, 0 = cores)")
    p.add_argument("--chunk-size", type=int, help="images per resumable chunk (default 256)")
    p.add_argument("--config", type=Path, help="YAML file overriding appliance/defaults.yaml")
    p.add_argument("--force", action="store_true", help="replace a finished corpus")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--weights", type=Path, help="dcgan: the weights file (default: "
                   "generator.weights, else the gan-face-generate wheel's)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the chunks on this Dask cluster instead of local processes "
                   "(default: corpus.scheduler; needs pip install 'sosie[cluster]')")
    p.add_argument("--cluster-files", choices=("auto", "shared", "stream"), default="auto",
                   help="with --scheduler, how workers get a folder's files: read at the same "
                   "path (shared file system), streamed from here, or auto (shared when a "
                   "worker sees them; default)")
    # Tests and CI: a fast stand-in for dlib (appliance.corpus.engines.MockEngine).
    p.add_argument("--engine", choices=("dlib", "mock"), default="dlib", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_build)

    corpus = sub.add_parser("corpus", help="inspect, verify or synthesise corpora")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    info = csub.add_parser("info", help="summary of a corpus")
    info.add_argument("corpus_dir", metavar="CORPUS_DIR", type=Path)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.add_argument("--weights", type=Path, help="a generator weights file to recognise "
                      "(generator.weights and the shipped weights are always looked at)")
    info.set_defaults(func=cmd_info)
    verify = csub.add_parser("verify", help="full checksums; exit status 1 on any problem")
    verify.add_argument("corpus_dir", metavar="CORPUS_DIR", type=Path)
    verify.add_argument("--no-model-check", action="store_true",
                        help="do not compare the model checksums with this appliance's")
    verify.add_argument("--repair", action="store_true",
                        help="an intact corpus built before the scan layout files gets them "
                        "(then its scanner opens without laying the sketch out again)")
    verify.set_defaults(func=cmd_verify)
    synth = csub.add_parser("synth", help="write a synthetic corpus (benchmarks, tests)")
    synth.add_argument("corpus_dir", metavar="CORPUS_DIR", type=Path)
    synth.add_argument("--count", type=int, default=200_000, help="rows (default 200000)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--config", type=Path, help="YAML file overriding appliance/defaults.yaml")
    synth.add_argument("--force", action="store_true", help="replace an existing corpus")
    synth.set_defaults(func=cmd_synth)
    imp = csub.add_parser("import", help="make a corpus from an (N, 128) float .npy array",
                          description="Store the rows of VECTORS.npy (float16/32/64, N x 128, "
                          "finite, |value| <= 1024; no pickles) as a corpus: float16 rows, "
                          "norms, PCA and the search's sketch as a build writes them, "
                          "placeholder thumbnails.")
    imp.add_argument("vectors", metavar="VECTORS.npy", type=Path)
    imp.add_argument("corpus_dir", metavar="CORPUS_DIR", type=Path)
    imp.add_argument("--config", type=Path, help="YAML file overriding appliance/defaults.yaml")
    imp.add_argument("--force", action="store_true", help="replace an existing corpus")
    imp.set_defaults(func=cmd_import)
    demo = csub.add_parser("demo", help="print the path of the embedded demo corpus (build it)")
    demo.set_defaults(func=cmd_demo)


def _settings(config: Path | None) -> tuple[Any, Any]:
    from appliance import config as cfg
    from appliance.corpus import CorpusSettings

    try:
        data = cfg.load(config)
        corpus = cfg.section(data, "corpus", CorpusSettings)
        faces = None
        if "faces" in data:
            from appliance.faces.settings import FaceSettings

            faces = cfg.section(data, "faces", FaceSettings)
    except cfg.ConfigError as exc:
        raise UsageError(str(exc)) from None
    return corpus, faces


def _fail(exc: Exception, folder: Path | None = None) -> int:
    """One line; an OSError that names no file (a full disk mid-write) names `folder`."""
    if isinstance(exc, OSError) and exc.errno and not exc.filename and folder is not None:
        from appliance.files import write_error

        exc = write_error(folder, exc)
    print(f"sosie: {one_line(exc)}", file=sys.stderr)
    return 1


def cmd_build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from appliance.compute.pool import single_threaded_process

    single_threaded_process()  # before numpy loads
    from appliance.corpus import CorpusError, DlibEngine, MockEngine, build

    settings, faces = _settings(args.config)
    if args.chunk_size is not None:
        if args.chunk_size < 1:
            raise UsageError(f"--chunk-size {args.chunk_size}: expected a positive integer")
        settings = replace(settings, chunk_size=args.chunk_size)
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers {args.workers}: expected 0 (one per core) or more")
    scheduler = _scheduler(args.scheduler, settings.scheduler)
    if args.cluster_files != "auto" and not scheduler:
        raise UsageError(f"--cluster-files {args.cluster_files} is for a build on a cluster "
                         "(--scheduler or corpus.scheduler)")
    try:
        source = _source(args)
    except (OSError, ValueError, LookupError) as exc:  # weights missing or refused
        return _fail(exc)
    try:
        report = build(
            source,
            args.corpus_dir,
            workers=args.workers,
            settings=settings,
            engine=MockEngine() if args.engine == "mock" else DlibEngine(faces),
            progress=not args.quiet,
            force=args.force,
            scheduler=scheduler,
            cluster_files=args.cluster_files,
        )
    except (CorpusError, OSError, RuntimeError) as exc:
        return _fail(exc, args.corpus_dir)
    except KeyboardInterrupt:
        print(f"sosie build: interrupted; {interrupted_build(args.corpus_dir)}", file=sys.stderr)
        return 130
    resumed = f", {report.reused_chunks} of {report.total_chunks} chunks reused" if (
        report.reused_chunks) else ""
    print(
        f"{report.corpus_dir}: {report.faces} faces from {report.files} "
        f"{'files' if isinstance(source, Path) else 'draws'}, "
        f"{report.rejected} rejected (see rejected.tsv){resumed}, {report.seconds:.1f} s"
        + (f" {report.where}" if report.where else "")
    )
    return 0


def interrupted_build(corpus_dir: Path) -> str:
    """What an interrupted build of `corpus_dir` keeps, and what the same command then does."""
    from appliance.corpus.build import WORK_DIR, kept
    from appliance.words import plural

    chunks, faces = kept(corpus_dir)
    if not chunks:
        return "no chunk was finished, nothing is kept; the same command starts again"
    return (f"{plural(chunks, 'finished chunk')} ({plural(faces, 'face')}) kept in "
            f"{Path(corpus_dir) / WORK_DIR}; run the same command again to resume")


def _scheduler(option: str | None, configured: str | None) -> str | None:
    """`--scheduler`, else `corpus.scheduler`, checked (None: build on this machine)."""
    from appliance.compute.dask_session import parse_address

    if option is None and configured is None:
        return None
    key = "--scheduler" if option is not None else "config key 'corpus.scheduler' ="
    try:
        return parse_address(option if option is not None else configured, key)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _source(args: argparse.Namespace) -> Any:
    """The folder, or the generator `dcgan:COUNT[:SEED]` names (its weights checked here)."""
    from appliance.cli.generate import weights_path
    from appliance.corpus import format as fmt
    from appliance.corpus.synth import corpus_bytes
    from appliance.files import check_room
    from appliance.generator.source import GeneratorSource, looks_like_spec

    folder = Path(args.images_dir)
    if looks_like_spec(args.images_dir) and not folder.is_dir():
        try:
            source = GeneratorSource.parse(args.images_dir, weights_path(args.weights,
                                                                         args.config))
        except ValueError as exc:
            if type(exc) is not ValueError:  # WeightsFormatError: a bad file, not bad usage
                raise
            raise UsageError(str(exc)) from None
        if source.count > fmt.MAX_COUNT:
            raise UsageError(f"{args.images_dir}: {source.count} draws: a corpus holds at most "
                             f"{fmt.MAX_COUNT} faces")
        check_room(args.corpus_dir, corpus_bytes(source.count),
                   f"a corpus of up to {source.count} faces in {args.corpus_dir}")
        return source
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (or dcgan:COUNT[:SEED])")
    return folder


def cmd_info(args: argparse.Namespace) -> int:
    from appliance.corpus import Corpus, CorpusError
    from appliance.corpus.info import summary

    if args.weights is not None and not args.weights.is_file():
        raise UsageError(f"--weights {args.weights}: no such weights file")
    try:
        with Corpus.open(args.corpus_dir, check_model=False) as corpus:
            data = summary(corpus, [args.weights, _configured_weights()])
    except CorpusError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    for key, value in data.items():
        print(f"{key + ':':<24}{value}")
    return 0


def _configured_weights() -> Path | None:
    """The config's `generator.weights` (None when unset or the config is unreadable)."""
    from appliance.cli.generate import weights_path

    try:
        return weights_path(None, None)
    except UsageError:
        return None


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.corpus import verify

    problems = verify(args.corpus_dir, check_model=not args.no_model_check)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{args.corpus_dir}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.corpus_dir}: OK (every checksum matches)")
    if args.repair:
        from appliance.corpus import CorpusError
        from appliance.corpus.writer import add_scan_layout

        try:
            added = add_scan_layout(args.corpus_dir)
        except (CorpusError, OSError) as exc:
            print(f"{args.corpus_dir}: cannot write the scan layout: {exc}", file=sys.stderr)
            return 1
        if added:
            print(f"{args.corpus_dir}: wrote the scan layout (sketch_blocks.u8, "
                  "sketch_records.u8) and its checksums")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import time

    from appliance.corpus import format as fmt
    from appliance.corpus import synth

    if not 1 <= args.count <= fmt.MAX_COUNT:
        raise UsageError(f"--count {args.count}: expected 1 to {fmt.MAX_COUNT} rows")
    settings, _ = _settings(args.config)
    start = time.monotonic()
    try:
        synth(args.corpus_dir, args.count, args.seed, settings=settings, overwrite=args.force)
    except (OSError, ValueError) as exc:  # a non-empty folder without --force, no room, a link
        return _fail(exc, args.corpus_dir)
    print(f"{args.corpus_dir}: synthetic corpus of {args.count} faces (seed {args.seed}), "
          f"{time.monotonic() - start:.1f} s")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import time

    from appliance.corpus.importer import import_descriptors

    settings, _ = _settings(args.config)
    start = time.monotonic()
    try:
        directory = import_descriptors(args.vectors, args.corpus_dir, settings=settings,
                                       overwrite=args.force)
    except (OSError, ValueError) as exc:  # a bad file, or a non-empty folder without --force
        return _fail(exc, args.corpus_dir)
    from appliance.corpus import Corpus

    with Corpus.open(directory) as corpus:
        count = corpus.count
    print(f"{directory}: imported {count} descriptors from {args.vectors}, "
          f"{time.monotonic() - start:.1f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from appliance.corpus import CorpusError, demo_corpus

    try:
        print(demo_corpus())
    except (CorpusError, OSError, RuntimeError) as exc:
        return _fail(exc)
    return 0
