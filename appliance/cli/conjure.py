"""`sosie conjure`: make a face that does not exist and looks like the one in a photo.

    sosie conjure PHOTO --out DIR [--budget SECONDS] [--evaluations N] [--seed S] [--doubles N]
                  [--corpus DIR | --no-corpus] [--starts K] [--weights FILE] [--config FILE]
                  [--sheet-photo]

Describes the photo, finds its nearest faces in the corpus (their latents are the starting
points when the DCGAN generator made them), then searches the generator's latent space with
CMA-ES until the budget ends. Writes DIR/conjured.png (at the ticket's face size),
DIR/conjured-64.png (the network's own output), DIR/conjured.npy (its latent), DIR/sheet.png,
DIR/curve.png and DIR/summary.json (see appliance/conjure/outputs.py); nothing of the photo
itself unless --sheet-photo puts its face on the sheet.

Exit status: 0 on success, 1 when the photo, corpus or generator cannot be used, 2 on unusable
arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from appliance.cli import UsageError

DEFAULT_BUDGET = 30.0
MAX_BUDGET = 24 * 3600.0
MAX_EVALUATIONS = 10_000_000
MAX_DOUBLES = 10


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "conjure",
        help="search the face generator for a new face that looks like the one in a photo",
        description="Describe the face in PHOTO, then search the DCGAN generator's latent space "
        "(CMA-ES, starting from the nearest corpus faces' latents when the generator made them, "
        "else from random draws) for the face whose descriptor is closest, until the budget "
        "ends. Writes DIR/conjured.png (the double at the ticket's face size; usable as `sosie "
        "map ... --mark DIR/conjured.png`), DIR/conjured-64.png (the network's own output), "
        "DIR/conjured.npy (its latent), DIR/sheet.png (the nearest corpus face and the doubles "
        "with their distances), DIR/curve.png and DIR/summary.json. The photo and its "
        "descriptor are never written (the photo's face goes on the sheet only with "
        "--sheet-photo). Distances are dlib's face-descriptor distances (under 0.6: the same "
        "person to dlib), likeness a curve of them: a machine's measure, not a human's.",
    )
    p.add_argument("photo", metavar="PHOTO", type=Path, help="a photo with a face")
    p.add_argument("--out", metavar="DIR", type=Path, required=True, help="output folder")
    p.add_argument("--budget", metavar="SECONDS", type=float, default=None,
                   help=f"search time (default {DEFAULT_BUDGET:g} s unless --evaluations "
                   "is given)")
    p.add_argument("--evaluations", metavar="N", type=int, default=None,
                   help="stop after N generated faces (with --seed: the same result every run)")
    p.add_argument("--seed", metavar="S", type=int, default=0,
                   help="seed of the search's random numbers (default 0)")
    p.add_argument("--doubles", metavar="N", type=int, default=1,
                   help=f"conjure N distinct doubles (1-{MAX_DOUBLES}, default 1), ranked best "
                   "first: N searches sharing the budget, each from its own starting face")
    p.add_argument("--sheet-photo", action="store_true",
                   help="put the photo's face on sheet.png (otherwise nothing of it is written)")
    p.add_argument("--corpus", metavar="DIR", type=Path, default=None,
                   help="corpus giving the nearest face and the starting latents (default: "
                   "corpus.path from the config, else the demo corpus)")
    p.add_argument("--no-corpus", action="store_true",
                   help="no corpus: start from random draws, no comparison line")
    p.add_argument("--starts", metavar="K", type=int, default=8,
                   help="nearest corpus faces whose latents are tried first (default 8)")
    p.add_argument("--size", metavar="PX", type=int, default=None,
                   help="side of the generated faces as they are described (default: the "
                   "corpus's, when a generator built it, else 256)")
    p.add_argument("--weights", metavar="FILE", type=Path, default=None,
                   help="DCGAN weights (default: generator.weights, else the gan-face-generate "
                   "wheel's)")
    p.add_argument("--config", metavar="FILE", type=Path,
                   help="configuration file (faces and corpus sections)")
    p.set_defaults(func=run_conjure)


def _check(args: argparse.Namespace) -> None:
    if args.budget is not None and not 0 < args.budget <= MAX_BUDGET:
        raise UsageError(f"--budget {args.budget:g}: expected seconds above 0, at most "
                         f"{MAX_BUDGET:g}")
    if args.evaluations is not None and not 1 <= args.evaluations <= MAX_EVALUATIONS:
        raise UsageError(f"--evaluations {args.evaluations}: expected 1 to {MAX_EVALUATIONS}")
    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed {args.seed}: expected an integer from 0 to 2**63 - 1")
    if not 1 <= args.doubles <= MAX_DOUBLES:
        raise UsageError(f"--doubles {args.doubles}: expected 1 to {MAX_DOUBLES}")
    if not 0 <= args.starts <= 256:
        raise UsageError(f"--starts {args.starts}: expected 0 to 256")
    if args.size is not None and not 64 <= args.size <= 1024:
        raise UsageError(f"--size {args.size}: expected 64 to 1024 pixels")
    if args.corpus is not None and args.no_corpus:
        raise UsageError("--corpus and --no-corpus: give one of them")
    _check_out(args.out)


def _check_out(out: Path) -> None:
    """Refuse an --out that could not be written, before any work (nothing is written here)."""
    expected = "expected a folder, existing or to be created"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder; {expected}")
    existing = out
    while not existing.exists():  # the nearest existing ancestor: mkdir creates the rest
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is not a folder; {expected}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {existing} is not writable; {expected}")


def _fail(message: str) -> int:
    print(f"sosie conjure: {message}", file=sys.stderr)
    return 1


def run_conjure(args: argparse.Namespace) -> int:
    _check(args)
    if not args.photo.is_file():
        return _fail(f"{args.photo}: no such file")
    import numpy as np

    from appliance import config
    from appliance.cartography.sheets import decode_thumbnail
    from appliance.conjure import Budget, LikenessObjective, corpus_start, outputs
    from appliance.conjure.objective import FACE_SIZE
    from appliance.conjure.search import MissingOptimiser, require_cma
    from appliance.corpus import Corpus, CorpusError, CorpusSettings, demo_corpus
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.faces.face import NoFaceFound
    from appliance.faces.model_files import ModelError
    from appliance.faces.settings import FaceSettings
    from appliance.generator.dcgan import DCGAN, WeightsNotFound
    from appliance.generator.settings import GeneratorSettings
    from appliance.generator.torch_zip import WeightsFormatError
    from appliance.images import ImageError
    from appliance.parts.printer import PrinterSettings, printer_width
    from appliance.ticket import TicketLayout, face_side, ticket_width

    seconds = args.budget if args.budget is not None else (
        DEFAULT_BUDGET if args.evaluations is None else None)
    budget = Budget(seconds=seconds, evaluations=args.evaluations)
    try:
        merged = config.load(args.config)
        face_settings = config.section(merged, "faces", FaceSettings)
        corpus_settings = config.section(merged, "corpus", CorpusSettings)
        weights = args.weights or config.section(merged, "generator", GeneratorSettings).weights
        layout = config.section(merged, "ticket", TicketLayout)
        paper_width = printer_width(config.section(merged, "printer", PrinterSettings))
        analyzer = FaceAnalyzer(face_settings)
    except (config.ConfigError, ModelError) as exc:
        raise UsageError(str(exc)) from None
    face_size = face_side(ticket_width(layout, paper_width), layout)
    try:
        require_cma()
        generator = DCGAN.load(weights)
    except (MissingOptimiser, WeightsNotFound, WeightsFormatError) as exc:
        return _fail(str(exc))

    try:
        face = analyzer.analyze(args.photo)
    except ImageError as exc:
        return _fail(str(exc))
    if isinstance(face, NoFaceFound):
        return _fail(f"{args.photo}: no usable face ({face.reason})")
    target = face.descriptor
    photo_face = face.aligned(outputs.SHEET_CELL) if args.sheet_photo else None
    del face  # its pixels are the visitor's: keep only the descriptor, in memory

    start = None
    corpus_path = None
    nearest_face = None
    if not args.no_corpus:
        try:
            corpus_path = args.corpus or corpus_settings.path or demo_corpus()
            with Corpus.open(corpus_path, face_settings=face_settings) as corpus:
                start = corpus_start(corpus, target, max(args.starts, args.doubles),
                                     generator.checksum)
                if len(start.rows):
                    nearest_face = decode_thumbnail(corpus, int(start.rows[0]),
                                                    outputs.SHEET_CELL, {}, colour=True)
        except (CorpusError, WeightsNotFound, WeightsFormatError) as exc:
            return _fail(str(exc))

    size = args.size or (start.face_size if start is not None else None) or FACE_SIZE
    objective = LikenessObjective(generator, analyzer, target, size)
    starts = start.latents if start is not None else np.zeros((0, objective.dim), np.float32)
    results = _search(objective, starts[:args.starts] if args.doubles == 1 else starts,
                      budget, args.seed, args.doubles,
                      start.nearest_distance if start else None)
    doubles = sorted((outputs.Double(r, generator.render(r.latent[None])[0]) for r in results),
                     key=lambda d: d.result.distance)
    info = outputs.summary(
        doubles, start, photo=str(args.photo), seed=args.seed,
        budget={"seconds": seconds, "evaluations": args.evaluations},
        corpus_path=None if corpus_path is None else str(corpus_path),
        weights_sha256=generator.checksum, face_size=face_size, scored_size=size,
    )
    faces = _sheet_faces(photo_face, nearest_face, info, doubles)
    try:
        written = outputs.write(args.out, doubles, info, face_size=face_size, sheet_faces=faces)
    except OSError as exc:
        return _fail(f"--out {args.out}: cannot write ({exc.strerror or exc})")
    _report(info, written[0])
    return 0


def _search(objective: Any, starts: Any, budget: Any, seed: int, count: int,
            nearest: float | None) -> list[Any]:
    """`count` searches sharing `budget`, search i from starting latent i (random draws of
    seed + i past the corpus's); Ctrl-C keeps the searches done and the best of the current."""
    from appliance.conjure import Budget, conjure

    share = Budget(seconds=None if budget.seconds is None else budget.seconds / count,
                   evaluations=None if budget.evaluations is None
                   else max(1, budget.evaluations // count))
    results: list[Any] = []
    with _Progress(budget, nearest) as progress:
        for i in range(count):
            mine = starts if count == 1 else starts[i:i + 1]
            try:
                results.append(conjure(objective, mine, budget=share if count > 1 else budget,
                                       seed=seed + i, dim=objective.dim,
                                       progress=progress.update))
            except KeyboardInterrupt:  # Ctrl-C: keep the best faces so far, if there are any
                if progress.latest is not None:
                    results.append(progress.latest)
                if not results:
                    raise
                print("interrupted: writing the best faces so far", file=sys.stderr)
                break
            progress.next_search()
    return results


def _sheet_faces(photo_face: Any, nearest_face: Any, info: dict[str, Any],
                 doubles: list[Any]) -> list[Any]:
    """The sheet: the photo's face (or why it is not there), the nearest corpus face, the
    doubles, each with its distance."""
    from appliance.conjure import outputs

    faces = [outputs.SheetFace(
        photo_face if photo_face is not None else outputs.placeholder(
            ["your photo: not written", "(--sheet-photo to show it)"]),
        ("the photo",))]
    nearest = info["nearest_corpus_distance"]
    if nearest_face is not None and nearest is not None:
        faces.append(outputs.SheetFace(nearest_face, (
            f"nearest of {info['corpus']['count']:,} corpus faces",
            outputs.distance_line(nearest))))
    for rank, double in enumerate(doubles, 1):
        faces.append(outputs.SheetFace(double.raw, (
            f"conjured double N°{rank}", outputs.distance_line(double.result.distance))))
    return faces


def _report(info: dict[str, Any], face: Path) -> None:
    if info["distance"] is None:
        print(f"no face found in {info['evaluations']} draws; wrote {face.parent}")
        return
    line = (f"conjured a face at distance {info['distance']:.3f} (dlib descriptors; likeness "
            f"{info['likeness']:.0f} %) in {info['evaluations']} evaluations, "
            f"{info['seconds']:.1f} s")
    nearest = info["nearest_corpus_distance"]
    if nearest is not None:
        closer = "closer than" if info["closer_than_corpus"] else "not closer than"
        line += (f"; {closer} the nearest of {info['corpus']['count']} corpus faces "
                 f"({nearest:.3f})")
    print(line)
    for double in info["doubles"][1:]:
        distance = "no face" if double["distance"] is None else f"{double['distance']:.3f}"
        print(f"double N°{double['rank']}: distance {distance} ({double['files']['face']})")
    print(f"wrote {face} ({info['face_size']} px; the network's own 64 px in "
          f"{info['files']['raw']}; its latent, sheet.png, curve.png and summary.json beside it)")


class _Progress:
    """A tqdm bar (on a terminal) over the budget, with the best distance so far."""

    def __init__(self, budget: Any, nearest: float | None) -> None:
        from tqdm import tqdm

        by_evaluations = budget.evaluations is not None and budget.seconds is None
        self._by_evaluations = by_evaluations
        self._nearest = nearest
        self.latest: Any = None  # the current search's state at its last report
        self._done = (0, 0.0)  # evaluations and seconds of the searches already finished
        self._best = float("inf")
        total = budget.evaluations if by_evaluations else budget.seconds
        self._bar = tqdm(total=total, unit="eval" if by_evaluations else "s", desc="conjuring",
                         disable=None, leave=False, file=sys.stderr,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def update(self, state: Any) -> None:
        self.latest = state
        evaluations = self._done[0] + state.evaluations
        self._best = min(self._best, state.distance)
        self._bar.n = evaluations if self._by_evaluations else min(
            self._done[1] + state.seconds, self._bar.total)
        postfix = f"best {self._best:.3f}"
        if self._nearest is not None:
            postfix += f" (corpus {self._nearest:.3f})"
        self._bar.set_postfix_str(f"{postfix}, {evaluations} evaluations", refresh=False)
        self._bar.refresh()

    def next_search(self) -> None:
        """The search reported last is finished: the next one counts on from it."""
        if self.latest is not None:
            self._done = (self._done[0] + self.latest.evaluations,
                          self._done[1] + self.latest.seconds)
        self.latest = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
