"""`sosie describe` (faces and descriptors of photos) and `sosie align` (aligned face crops).

    sosie describe PHOTO... [--json] [--chips DIR] [--chip-size N] [--config FILE]
    sosie align IN_DIR OUT_DIR [--size 256] [--padding P] [--gray] [--one] [--recursive]

Exit status: 0 when every photo could be read (with or without a face), 1 when some photo was
unreadable (it is reported and skipped), 2 on unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.cli import UsageError

if TYPE_CHECKING:
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.faces.face import Face

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
     ".pgm", ".pnm", ".heic", ".heif"}
)


def register(subparsers: Any) -> None:
    describe = subparsers.add_parser(
        "describe",
        help="find the faces in photos and print their boxes, scores and descriptors",
        description="Find the faces in photos (files or folders of photos) and print each face's "
        "box, detector score and whether it is the one the appliance would use. Photos without "
        "a face are reported, not errors.",
    )
    describe.add_argument("photos", nargs="+", metavar="PHOTO", type=Path,
                          help="image file, or folder of image files")
    describe.add_argument("--json", action="store_true",
                          help="print one JSON document with every face's 128-D descriptor")
    describe.add_argument("--chips", metavar="DIR", type=Path,
                          help="write each face's aligned chip as DIR/<photo>-<n>.png "
                          "(n = 0 is the chosen face)")
    describe.add_argument("--chip-size", metavar="N", type=int, default=None,
                          help="size of the written chips (default: the 150 px chip the "
                          "descriptor is computed from)")
    describe.add_argument("--config", metavar="FILE", type=Path,
                          help="configuration file overriding the faces section defaults")
    describe.set_defaults(func=run_describe)

    align = subparsers.add_parser(
        "align",
        help="write an aligned crop of every face in a folder of photos",
        description="Write an aligned square crop (eyes level, at fixed positions) of every face "
        "found in the photos of IN_DIR into OUT_DIR, as <photo>.png (<photo>_<n>.png when a "
        "photo has several faces): the usual preparation of a face dataset. Photos without a "
        "face, and unreadable ones, are skipped and listed.",
    )
    align.add_argument("in_dir", metavar="IN_DIR", type=Path, help="folder of photos")
    align.add_argument("out_dir", metavar="OUT_DIR", type=Path,
                       help="folder for the crops (created)")
    align.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    align.add_argument("--padding", type=float, default=None,
                       help="margin around the face in dlib units (default: faces."
                       "aligned_padding, 0.4; dlib's chip uses 0.25)")
    align.add_argument("--gray", action="store_true", help="write grayscale crops")
    align.add_argument("--one", action="store_true",
                       help="only the chosen face of each photo (largest, then most central)")
    align.add_argument("--recursive", action="store_true",
                       help="also photos in subfolders (their crops keep the subfolder path)")
    align.add_argument("--format", choices=("png", "jpg"), default="png",
                       help="output format (default png, lossless)")
    align.add_argument("--config", metavar="FILE", type=Path,
                       help="configuration file overriding the faces section defaults")
    align.set_defaults(func=run_align)


# ---------------------------------------------------------------------------------------------
# sosie describe


def run_describe(args: argparse.Namespace) -> int:
    if args.chip_size is not None and not 8 <= args.chip_size <= 4096:
        raise UsageError(f"--chip-size {args.chip_size}: expected a size from 8 to 4096 pixels")
    photos = list(expand_photos(args.photos))
    analyzer = make_analyzer(args.config)
    from appliance.images import ImageError

    if args.chips:
        _make_dir(args.chips, "--chips")
        stems = _chip_stems(photos)
    results = []
    failed = False
    for photo in photos:
        entry: dict[str, Any] = {"path": str(photo), "faces": [], "error": None}
        try:
            faces = analyzer.faces(photo)
        except ImageError as exc:
            entry["error"] = _reason(exc, photo)
            failed = True
            faces = []
        for n, face in enumerate(faces):
            entry["faces"].append({
                "box": list(face.box),
                "score": round(face.score, 4),
                "chosen": n == 0,
                "descriptor": [float(v) for v in face.descriptor],
            })
            if args.chips:
                chip = face.chip if args.chip_size is None else face.aligned(args.chip_size)
                _write_image(chip, args.chips / f"{stems[photo]}-{n}.png")
        results.append(entry)
        if not args.json:
            _print_text(entry, faces)
    if args.json:  # one photo per line: greppable, and still one JSON document
        _write("[\n" + ",\n".join(json.dumps(entry) for entry in results) + "\n]\n")
    return 1 if failed else 0


def _reason(exc: Exception, photo: Path) -> str:
    """The error without the leading "<path>: " (the entry already names the photo)."""
    text = str(exc)
    prefix = f"{photo}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `sosie describe ... | head`: the reader has gone, so have we
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit


def _print_text(entry: dict[str, Any], faces: list[Face]) -> None:
    path = entry["path"]
    if entry["error"]:
        lines = [f"{path}: unreadable: {entry['error']}"]
    elif not faces:
        lines = [f"{path}: no face found"]
    else:
        lines = [f"{path}: {len(faces)} face{'s' if len(faces) > 1 else ''}"]
        for n, face in enumerate(faces):
            left, top, right, bottom = face.box
            mark = "  chosen" if n == 0 else ""
            lines.append(f"  face {n}: box {left},{top},{right},{bottom} "
                         f"({right - left}x{bottom - top}) score {face.score:.2f}{mark}")
    _write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# sosie align


def run_align(args: argparse.Namespace) -> int:
    if not 8 <= args.size <= 4096:
        raise UsageError(f"--size {args.size}: expected a size from 8 to 4096 pixels")
    if args.padding is not None and not 0.0 <= args.padding <= 2.0:
        raise UsageError(f"--padding {args.padding}: expected a number from 0 to 2")
    in_dir: Path = args.in_dir
    if not in_dir.is_dir():
        what = "does not exist" if not in_dir.exists() else "is not a folder"
        raise UsageError(f"IN_DIR {in_dir}: {what}")
    out_dir: Path = args.out_dir
    if out_dir.resolve() == in_dir.resolve():
        raise UsageError(f"OUT_DIR {out_dir}: must differ from IN_DIR")
    photos = sorted(_photos_in(in_dir, args.recursive, exclude=out_dir))
    analyzer = make_analyzer(args.config)
    from appliance.images import ImageError

    _make_dir(out_dir, "OUT_DIR")
    written = 0
    no_face: list[str] = []
    unreadable: list[str] = []
    for photo in photos:
        relative = photo.relative_to(in_dir)
        try:
            faces = analyzer.faces(photo)
        except ImageError as exc:
            unreadable.append(str(exc))
            continue
        if not faces:
            no_face.append(str(relative))
            continue
        if args.one:
            faces = faces[:1]
        for n, face in enumerate(faces):
            suffix = "" if len(faces) == 1 else f"_{n}"
            target = out_dir / relative.parent / f"{relative.stem}{suffix}.{args.format}"
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_image(face.aligned(args.size, args.gray, padding=args.padding), target)
            written += 1
    print(f"{written} aligned face{'s' if written != 1 else ''} from {len(photos)} photo"
          f"{'s' if len(photos) != 1 else ''} written to {out_dir}")
    if no_face:
        print(f"{len(no_face)} without a face: {', '.join(no_face)}")
    for line in unreadable:
        print(f"skipped {line}", file=sys.stderr)
    return 1 if unreadable else 0


# ---------------------------------------------------------------------------------------------
# shared


def make_analyzer(config_file: Path | None) -> FaceAnalyzer:
    """A FaceAnalyzer from the packaged defaults plus `config_file`; bad config/models exit 2."""
    from appliance import config
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.faces.model_files import ModelError
    from appliance.faces.settings import FaceSettings

    try:
        settings = config.section(config.load(config_file), "faces", FaceSettings)
        return FaceAnalyzer(settings)
    except (config.ConfigError, ModelError) as exc:
        raise UsageError(str(exc)) from None


def expand_photos(paths: Iterable[Path]) -> Iterable[Path]:
    """Each path; a folder stands for its image files (sorted). Missing paths are UsageErrors."""
    for path in paths:
        if path.is_dir():
            yield from sorted(_photos_in(path, recursive=False))
        elif path.exists():
            yield path
        else:
            raise UsageError(f"{path}: no such file or folder")


def _photos_in(folder: Path, recursive: bool, exclude: Path | None = None) -> Iterable[Path]:
    pattern = "**/*" if recursive else "*"
    skip = exclude.resolve() if exclude is not None else None
    for path in folder.glob(pattern):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        if path.is_file():
            yield path


def _chip_stems(photos: list[Path]) -> dict[Path, str]:
    """Each photo's name without suffix, disambiguated (.0, .1, ...) when photos share it."""
    by_stem: dict[str, list[Path]] = {}
    for photo in photos:
        by_stem.setdefault(photo.stem, []).append(photo)
    stems: dict[Path, str] = {}
    for stem, same in by_stem.items():
        for n, photo in enumerate(same):
            stems.setdefault(photo, stem if len(same) == 1 else f"{stem}.{n}")
    return stems


def _make_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot create ({exc.strerror or exc})") from None


def _write_image(pixels: Any, path: Path) -> None:
    from PIL import Image

    from appliance.files import atomic_output

    image = Image.fromarray(pixels)
    with atomic_output(path, fsync=False) as fh:  # whole or absent; errors name `path`
        if path.suffix == ".jpg":
            image.save(fh, format="JPEG", quality=95)
        else:
            image.save(fh, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
