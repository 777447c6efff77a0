"""The `sosie` command line: one subcommand module per concern in this package.

Each module `appliance.cli.<name>` defines `register(subparsers)`, which adds its parser(s) and
sets `func` (called with the parsed arguments, returns an exit status). Heavy imports (dlib,
OpenCV, escpos) belong inside the handlers so `sosie --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from appliance import __version__

COMMAND_MODULES = (
    "describe",  # sosie describe, sosie align          (faces)
    "corpus",  # sosie build, sosie corpus info|verify|synth
    "ticket",  # sosie ticket                            (layout + virtual printer)
    "service",  # sosie run, demo, doctor, status, press  (the appliance)
    "cartography",  # sosie rank, sosie map
    "generate",  # sosie generate                        (faces that do not exist)
    "conjure",  # sosie conjure                         (a face made to look like a photo)
    "study",  # sosie study                           (questions asked of the generations)
    "train",  # sosie train                           (a generator of your own faces)
)


class UsageError(Exception):
    """Unusable arguments: reported on one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sosie",
        description="Find your doppelganger among faces that do not exist, and print it.",
    )
    parser.add_argument("--version", action="version", version=f"sosie {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"appliance.cli.{name}")
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name != f"appliance.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"sosie {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
