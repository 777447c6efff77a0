"""`sosie train`: a generator of your own faces, fine-tuned on a folder of photos (workstation).

    sosie train PHOTOS_DIR --out RUN_DIR [--steps N] [--from shipped|scratch|WEIGHTS]
                [--seed S] [--batch B]

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
    from appliance.train.checkpoint import CheckpointError
    from appliance.train.dataset import DatasetError, load_dataset
    from appliance.train.loop import TrainError, TrainOptions, train

    options = TrainOptions(steps=args.steps, start=args.start, seed=args.seed, batch=args.batch,
                           checkpoint_every=args.checkpoint_every,
                           sample_every=args.sample_every, learning_rate=args.lr,
                           r1_gamma=args.r1)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` checkpoints as Ctrl-C does
    try:
        if args.start != "scratch":  # a bad --from file: one line before minutes of aligning
            from appliance.train.loop import starting_generator

            starting_generator(args.start, jax.random.PRNGKey(0))
        analyzer = make_analyzer(args.config)
        dataset = load_dataset(args.photos_dir, args.out, analyzer, not args.quiet)
        summary = train(dataset, args.out, options, progress=not args.quiet)
    except (DatasetError, TrainError, CheckpointError, WeightsNotFound, WeightsFormatError,
            OSError) as exc:
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
