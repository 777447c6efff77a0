"""`sosie generate`: a folder of faces that do not exist, made here (or fetched politely)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from appliance.cli import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="make a folder of generated faces (DCGAN, offline; or a web endpoint)",
        description="Draw faces until COUNT of them hold a face the analyzer finds, and write "
        "those as images into OUT_DIR (rejected draws are counted with their reasons, not "
        "written). Face i is a pure function of (engine, seed, i): the same command makes the "
        "same files byte for byte, and a run killed at any moment resumes where it stopped "
        "when run again. The dcgan network was trained on DigiFace-1M (non-commercial research "
        "licence): an exhibition that sells tickets should bring its own generated faces.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    p.add_argument("--count", type=int, required=True, help="faces to write")
    p.add_argument("--seed", type=int, default=0, help="dcgan: which faces (default 0)")
    p.add_argument("--size", type=int, default=256,
                   help="dcgan: side in pixels, Lanczos-upscaled from 64 (default 256)")
    p.add_argument("--format", choices=("png", "jpeg"), default="png",
                   help="dcgan: file format (default png, lossless)")
    p.add_argument("--workers", type=int, default=0,
                   help="dcgan: processes (default 0 = one per core)")
    p.add_argument("--engine", choices=("dcgan", "url"), default="dcgan",
                   help="dcgan (offline, default) or url (one face per request to --url)")
    p.add_argument("--url", help="url: the endpoint answering each GET with a new face")
    p.add_argument("--rate", type=float, default=1.0,
                   help="url: requests per second at most (default 1)")
    p.add_argument("--weights", type=Path,
                   help="dcgan: the weights file (default: generator.weights, else the "
                   "gan-face-generate wheel's)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="dcgan: draw on this Dask cluster instead of local processes (default: "
                   "corpus.scheduler; needs pip install 'sosie[cluster]')")
    p.add_argument("--config", type=Path, help="YAML file overriding appliance/defaults.yaml")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # Tests and CI: a fast stand-in for dlib (appliance.corpus.engines.MockEngine).
    p.add_argument("--analyzer", choices=("dlib", "mock"), default="dlib", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_generate)


def weights_path(weights: Path | None, config: Path | None) -> Path | None:
    """`--weights`, else the config's `generator.weights`, else None (the wheel's copy)."""
    if weights is not None:
        return weights
    from appliance import config as cfg
    from appliance.generator.settings import GeneratorSettings

    try:
        return cfg.section(cfg.load(config), "generator", GeneratorSettings).weights
    except cfg.ConfigError as exc:
        raise UsageError(str(exc)) from None


def _analyzer(args: argparse.Namespace) -> Any:
    from appliance.corpus import DlibEngine, MockEngine

    if args.analyzer == "mock":
        return MockEngine()
    from appliance import config as cfg
    from appliance.faces.settings import FaceSettings

    try:
        return DlibEngine(cfg.section(cfg.load(args.config), "faces", FaceSettings))
    except cfg.ConfigError as exc:
        raise UsageError(str(exc)) from None


#: Faces one run may make: names hold a 7-digit draw index, and draws outnumber faces.
MAX_FACES = 5_000_000


def _check(args: argparse.Namespace) -> None:
    if args.count < 1:
        raise UsageError(f"--count {args.count}: expected a positive number of faces")
    if args.count > MAX_FACES:
        raise UsageError(f"--count {args.count}: expected 1 to {MAX_FACES} faces")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected an integer >= 0")
    if not 16 <= args.size <= 4096:
        raise UsageError(f"--size {args.size}: expected 16 to 4096 pixels")
    if args.workers < 0:
        raise UsageError(f"--workers {args.workers}: expected 0 (one per core) or more")
    if args.engine == "url" and not args.url:
        raise UsageError("--engine url needs --url URL")
    if args.engine == "url" and args.scheduler:
        raise UsageError("--scheduler is for --engine dcgan (the url engine is one polite client)")
    if args.engine == "dcgan" and args.url:
        raise UsageError("--url is for --engine url")


def _drawer(args: argparse.Namespace) -> Any:
    engine = _analyzer(args)
    if args.engine == "url":
        from appliance.generator.url import UrlDrawer, UrlSettings

        settings = UrlSettings(args.url, rate=args.rate)
        try:
            settings.check()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return UrlDrawer(settings, engine)
    from appliance.generator.dcgan import DCGAN
    from appliance.generator.draws import DcganDrawer, DcganJob

    net = DCGAN.load(weights_path(args.weights, args.config))  # refuses a bad file up front
    assert net.path is not None
    job = DcganJob(args.seed, args.size, args.format, net.path, net.checksum)  # hashed once
    scheduler = _scheduler(args)
    if scheduler:
        from appliance.generator.cluster_draws import ClusterDrawer

        return ClusterDrawer(job, engine, scheduler)
    return DcganDrawer(job, engine, workers=args.workers or os.cpu_count() or 1, net=net)


def _scheduler(args: argparse.Namespace) -> str | None:
    """`--scheduler`, else the config's `corpus.scheduler`, checked (None: this machine)."""
    from appliance.compute.dask_session import parse_address

    if args.scheduler is not None:
        key, value = "--scheduler", args.scheduler
    else:
        from appliance import config as cfg
        from appliance.corpus import CorpusSettings

        try:
            value = cfg.section(cfg.load(args.config), "corpus", CorpusSettings).scheduler
        except cfg.ConfigError as exc:
            raise UsageError(str(exc)) from None
        key = "config key 'corpus.scheduler' ="
    if value is None:
        return None
    try:
        return parse_address(value, key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def interrupted_generate(out_dir: Path) -> str:
    """How many faces an interrupted `sosie generate` keeps, from its journal."""
    import json

    from appliance.generator.journal import DRAWS, WORK_DIR
    from appliance.words import plural

    faces: dict[int, bool] = {}
    try:
        lines = (Path(out_dir) / WORK_DIR / DRAWS).read_bytes().splitlines()
    except OSError:
        lines = []
    for line in lines:  # the last line of a draw wins; a line cut short is not a face
        try:
            item = json.loads(line)
            faces[int(item["i"])] = bool(item.get("file"))
        except (ValueError, KeyError, TypeError):
            continue
    made = sum(faces.values())
    if not made:
        return "no face was finished, nothing is kept; the same command starts again"
    return (f"{plural(made, 'face')} kept in {out_dir}; run the same command again to resume "
            "(it makes only the missing ones)")


def cmd_generate(args: argparse.Namespace) -> int:
    from appliance.files import NoRoom, check_room
    from appliance.generator.dcgan import WeightsNotFound
    from appliance.generator.job import GenerateError, generate
    from appliance.generator.torch_zip import WeightsFormatError

    _check(args)
    try:  # a face's file takes at least a sixteenth of a byte per pixel
        check_room(args.out_dir, args.count * (args.size * args.size // 16),
                   f"{args.count} faces of {args.size} px in {args.out_dir}")
        drawer = _drawer(args)  # a missing or foreign weights file: one line, exit 1
        with drawer if hasattr(drawer, "__enter__") else contextlib.nullcontext():
            report = generate(args.out_dir, args.count, drawer, progress=not args.quiet)
    except (GenerateError, WeightsNotFound, WeightsFormatError, NoRoom, OSError,
            RuntimeError) as exc:
        lines = str(exc).strip().splitlines()
        print(f"sosie generate: {lines[0] if lines else type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sosie generate: interrupted; {interrupted_generate(args.out_dir)}",
              file=sys.stderr)
        return 130
    rejected = sum(report.rejected.values())
    reasons = ", ".join(f"{n} {reason}" for reason, n in report.rejected.most_common(3))
    more = ", ..." if len(report.rejected) > 3 else ""
    print(f"{report.out_dir}: {report.faces} faces from {report.draws} draws, {rejected} "
          f"rejected{f' ({reasons}{more})' if rejected else ''}; {report.drawn_now} drawn in "
          f"{report.seconds:.1f} s")
    return 0
