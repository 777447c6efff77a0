"""`sosie train`: a generator of your own faces, fine-tuned on a folder of photos (workstation).

    sosie train PHOTOS_DIR --out RUN_DIR [--steps N] [--from shipped|scratch|WEIGHTS]
                [--seed S] [--batch B] [--lr R] [--r1 G] [--augment P|ada] [--ema DECAY]
                [--d-width C] [--train-layers K] [--batch-norm batch|running]
                [--track N [--track-photo PHOTO]]

JAX, optax and safetensors (the `train` extra) are imported inside the handler only: the
appliance itself never loads them, and runs the result with numpy
(`--weights RUN_DIR/generator.safetensors`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from appliance.cli import UsageError
from appliance.errors import one_line

MAX_STEPS = 10_000_000
MAX_BATCH = 1024
MISSING_EXTRA = "needs the training extra: pip install 'sosie[train]'"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train the face generator on a folder of photos (workstation; sosie[train])",
        description="Find and align every face in PHOTOS_DIR at the generator's framing (files "
        "without a usable face are listed in RUN_DIR/rejected.tsv), then fine-tune the DCGAN "
        "generator against a new discriminator with DiffAugment, on JAX (CPU, or a GPU where "
        "JAX finds one). Checkpoints every --checkpoint-every steps and on Ctrl-C or SIGTERM: "
        "the same command resumes and ends with the same bytes as an uninterrupted run. RUN_DIR "
        "gets sample grids (samples/), losses.png, generator.safetensors and summary.json; use the "
        "weights with `sosie generate/build/conjure --weights RUN_DIR/generator.safetensors`.",
    )
    p.add_argument("photos_dir", metavar="PHOTOS_DIR", type=Path, help="folder of photos")
    p.add_argument("--out", metavar="RUN_DIR", type=Path, required=True,
                   help="the run's folder (created; resumed if it holds a checkpoint)")
    p.add_argument("--steps", type=int, default=1000, help="training steps in all (default 1000)")
    p.add_argument("--from", dest="start", metavar="shipped|scratch|WEIGHTS", default="shipped",
                   help="start from the shipped generator (default), from scratch, or from a "
                   "weights file (torch.save or safetensors of this network)")
    p.add_argument("--seed", type=int, default=0, help="randomness of the run (default 0)")
    p.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    p.add_argument("--lr", type=float, default=None, metavar="RATE",
                   help="the generator's Adam rate (default 5e-5 when fine-tuning, 2e-4 from "
                   "scratch; the discriminator's is 2e-4)")
    p.add_argument("--r1", type=float, default=0.0, metavar="GAMMA",
                   help="R1 gradient penalty on the discriminator at the real images (default 0: "
                   "none; ~0.1 at 64 px and batch 8)")
    p.add_argument("--augment", default="1", metavar="P|ada",
                   help="DiffAugment's probability per image and operation: a number from 0 to "
                   "1 (default 1: always, DiffAugment's way), or ada: adapted to the "
                   "discriminator's overfitting as ADA does, from 0 (see --ada-target)")
    p.add_argument("--ada-target", type=float, default=0.6, metavar="R",
                   help="with --augment ada: the overfitting E[sign(D(real))] p is held at "
                   "(default 0.6)")
    p.add_argument("--ema", type=float, default=0.99, metavar="DECAY",
                   help="the written generator is a moving average of the trained one with this "
                   "decay, ramped up as min(DECAY, (1+k)/(10+k)) at step k (default 0.99)")
    p.add_argument("--d-width", type=int, default=64, metavar="C",
                   help="the discriminator's first layer's channels, doubling thrice (default 64, "
                   "DCGAN's; 32: a quarter of the weights, less to memorise a few photos with)")
    p.add_argument("--train-layers", type=int, default=5, metavar="K",
                   help="only the generator's first K of its 5 layers learn (default 5: all); "
                   "3 keeps the two that draw the 32- and 64-pixel detail as shipped, where a new "
                   "discriminator's gradients leave a checkerboard")
    p.add_argument("--batch-norm", choices=("batch", "running"), default="batch",
                   help="the generator's batch norm while it trains: on each batch's statistics, "
                   "the running ones following (default, as DCGAN trains), or on the running "
                   "statistics, frozen (it then trains exactly the function the appliance runs, "
                   "and may draw one person for every latent)")
    p.add_argument("--track", type=int, default=0, metavar="N",
                   help="every N steps, describe 100 faces of the moving average with dlib and "
                   "append the share with a face, their median distance to --track-photo (or "
                   "to the nearest training face) and their diversity to RUN_DIR/track.jsonl "
                   "(default 0: never)")
    p.add_argument("--track-photo", type=Path, metavar="PHOTO",
                   help="with --track: the photo of the person the faces should come close to")
    p.add_argument("--checkpoint-every", type=int, default=25, metavar="N",
                   help="steps between checkpoints (default 25)")
    p.add_argument("--sample-every", type=int, default=100, metavar="K",
                   help="steps between sample grids and loss curves (default 100)")
    p.add_argument("--config", type=Path, help="YAML file overriding appliance/defaults.yaml")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.steps <= MAX_STEPS:
        raise UsageError(f"--steps {args.steps}: expected 1 to {MAX_STEPS} steps")
    if not 1 <= args.batch <= MAX_BATCH:
        raise UsageError(f"--batch {args.batch}: expected 1 to {MAX_BATCH} images")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed {args.seed}: expected 0 to {2**32 - 1}")
    if not 0 <= args.r1 <= 1000:
        raise UsageError(f"--r1 {args.r1}: expected a weight from 0 to 1000")
    if args.lr is not None and not 0 < args.lr <= 0.1:
        raise UsageError(f"--lr {args.lr}: expected a rate above 0 and at most 0.1")
    if args.augment != "ada":
        try:
            args.augment_p = float(args.augment)
        except ValueError:
            args.augment_p = -1.0
        if not 0 <= args.augment_p <= 1:
            raise UsageError(f"--augment {args.augment}: expected a probability from 0 to 1, "
                             f"or ada")
    else:
        args.augment_p = None
    if not 0 <= args.ada_target <= 1:
        raise UsageError(f"--ada-target {args.ada_target}: expected 0 to 1")
    if not 0 <= args.ema < 1:
        raise UsageError(f"--ema {args.ema}: expected a decay from 0 to below 1")
    if not 4 <= args.d_width <= 256:
        raise UsageError(f"--d-width {args.d_width}: expected 4 to 256 channels")
    if not 1 <= args.train_layers <= 5:
        raise UsageError(f"--train-layers {args.train_layers}: expected 1 to 5 layers")
    if args.track < 0:
        raise UsageError(f"--track {args.track}: expected 0 (never) or more steps")
    if args.track_photo is not None and not args.track_photo.is_file():
        raise UsageError(f"--track-photo {args.track_photo}: no such file")
    for option, value in (("--checkpoint-every", args.checkpoint_every),
                          ("--sample-every", args.sample_every)):
        if value < 1:
            raise UsageError(f"{option} {value}: expected 1 or more steps")
    if not args.photos_dir.is_dir():
        what = "does not exist" if not args.photos_dir.exists() else "is not a folder"
        raise UsageError(f"PHOTOS_DIR {args.photos_dir}: {what}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    if args.start not in ("shipped", "scratch") and not Path(args.start).is_file():
        raise UsageError(f"--from {args.start}: expected shipped, scratch or a weights file")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_train(args: argparse.Namespace) -> int:
    _check(args)
    try:
        import jax
        import optax  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError:
        print(f"sosie train: {MISSING_EXTRA}", file=sys.stderr)
        return 2
    from appliance.cli.describe import make_analyzer
    from appliance.generator.dcgan import WeightsNotFound
    from appliance.generator.torch_zip import WeightsFormatError
    from appliance.images import ImageError
    from appliance.train.checkpoint import CheckpointError
    from appliance.train.dataset import DatasetError, load_dataset
    from appliance.train.loop import TrainError, TrainOptions, train

    options = TrainOptions(steps=args.steps, start=args.start, seed=args.seed, batch=args.batch,
                           checkpoint_every=args.checkpoint_every,
                           sample_every=args.sample_every, learning_rate=args.lr,
                           r1_gamma=args.r1, augment_p=args.augment_p,
                           ada_target=args.ada_target, ema_decay=args.ema,
                           d_width=args.d_width, track_every=args.track,
                           train_layers=args.train_layers,
                           frozen_bn=args.batch_norm == "running")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` checkpoints as Ctrl-C does
    try:
        if args.start != "scratch":  # a bad --from file: one line before minutes of aligning
            from appliance.train.loop import starting_generator

            starting_generator(args.start, jax.random.PRNGKey(0))
        analyzer = make_analyzer(args.config)
        dataset = load_dataset(args.photos_dir, args.out, analyzer, not args.quiet)
        tracker = None
        if args.track:
            from appliance.train import track

            reference = (track.photo_reference(analyzer, args.track_photo) if args.track_photo
                         else track.faces_reference(analyzer, dataset.faces))
            tracker = track.Tracker(analyzer, reference)
        summary = train(dataset, args.out, options, progress=not args.quiet, tracker=tracker,
                        data_name=args.photos_dir.resolve().name)
    except (DatasetError, TrainError, CheckpointError, WeightsNotFound, WeightsFormatError,
            ImageError, OSError) as exc:
        print(f"sosie train: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sosie train: interrupted; checkpoint saved in {args.out}, run the same command "
              "again to resume", file=sys.stderr)
        return 130
    session = summary["this_session"]
    speed = (f"; {session['steps']} steps in {session['seconds']:.0f} s "
             f"({session['images_per_second']} images/s)" if session["steps"] else "")
    print(f"{args.out / summary['generator']['path']}: {summary['steps']} steps on "
          f"{summary['faces']} faces ({summary['rejected']} files rejected, see "
          f"{args.out / 'rejected.tsv'}){speed}")
    return 0
