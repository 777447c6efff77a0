"""The training set: every face in a folder of photos, aligned at the generator's own framing.

The shipped DCGAN draws its faces at one framing: measured on 150 of its faces in which dlib
finds one (`bench/train.py --framing`), the square it fills is dlib's aligned chip at padding
0.35 (median; 0.30-0.45 for 80 % of faces) whose centre sits 0.23 face widths above the chip's
centre (the generator shows more forehead than dlib's chip). Each photo's faces are cut out the
same way with the appliance's own aligner (`Face.aligned`: eyes level, edges extended softly),
at 64 pixels, so that the networks learn faces and not a new framing.

Every regular file is looked at, as `sosie build` does; what gives no face is listed in
RUN_DIR/rejected.tsv with its reason (unreadable, no face, face too small, weak detection:
a training set is better without the badges and patterns the detector takes for faces at a low
score).
The aligned faces are kept in RUN_DIR/faces.npy (reused while the folder's listing is
unchanged), the first 64 shown in RUN_DIR/faces.png.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.corpus import format as fmt
from appliance.corpus.walk import list_sources
from appliance.files import atomic_write_bytes
from appliance.generator.dcgan import SIDE
from appliance.train.pictures import grid, save_png
from appliance.words import plural

#: The generator's square around a face, in face widths of dlib's chip: its padding ...
FRAME_PADDING = 0.35
#: ... and how far its centre sits above the chip's centre.
FRAME_RAISE = 0.23
#: Faces narrower than this in the photo (detector box, pixels) would be enlarged into the crop.
MIN_FACE_WIDTH = 32
#: The crop is cut at this size, then reduced to the generator's 64 pixels by pixel area.
CUT_SIDE = 256
FACES = "faces.npy"
FACES_LISTING = "faces.json"
REJECTED = "rejected.tsv"
PREVIEW_FILE = "faces.png"  # the first PREVIEW aligned faces, to check the framing at a glance
PREVIEW = 64


class DatasetError(ValueError):
    """No usable face in the folder (one line)."""


@dataclass(frozen=True)
class Dataset:
    """(n, 64, 64, 3) uint8 RGB aligned faces, their names (`photo` or `photo#k`), rejects."""

    faces: np.ndarray
    names: list[str]
    rejected: list[tuple[str, str]]

    def digest(self) -> str:
        """sha256 of the faces' pixels: what a resumed run must train on again."""
        return hashlib.sha256(np.ascontiguousarray(self.faces).tobytes()).hexdigest()


def frame(face: Any) -> np.ndarray:
    """(64, 64, 3) uint8: `face` (an analyzer `Face`) cut at the generator's framing."""
    import cv2

    chip_padding = FRAME_PADDING + FRAME_RAISE  # the chip that holds the whole frame
    chip_side = 1 + 2 * chip_padding
    frame_side = 1 + 2 * FRAME_PADDING
    size = round(CUT_SIDE * chip_side / frame_side)
    chip = face.aligned(size, padding=chip_padding)
    unit = size / chip_side
    left = round(FRAME_RAISE * unit)
    cut = chip[:CUT_SIDE, left:left + CUT_SIDE]
    return cv2.resize(np.ascontiguousarray(cut), (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def load_dataset(photos_dir: Path, run_dir: Path, analyzer: Any, progress: bool) -> Dataset:
    """Align every face of `photos_dir` (or reuse RUN_DIR's copy); DatasetError if none."""
    files, problems = list_sources(photos_dir, exclude=run_dir)
    listing = hashlib.sha256(json.dumps([(f.rel, f.size, f.mtime_ns) for f in files]).encode(
        "utf-8", "surrogateescape")).hexdigest()
    cached = _cached(run_dir, listing)
    if cached is not None:
        return cached
    from appliance.images import ImageError
    from appliance.progress import progress_bar

    faces: list[np.ndarray] = []
    names: list[str] = []
    rejected = list(problems)
    bar = progress_bar(len(files), 0, progress, unit="photo", desc="aligning")
    for source in files:
        bar.update(1)
        try:
            found = analyzer.faces(photos_dir / source.rel)
        except ImageError as exc:
            rejected.append((source.rel, str(exc).removeprefix(f"{photos_dir / source.rel}: ")))
            continue
        if not found:
            rejected.append((source.rel, "no face found"))
            continue
        for k, face in enumerate(found):
            width = face.box[2] - face.box[0]
            name = source.rel if len(found) == 1 else f"{source.rel}#{k}"
            if face.score < analyzer.settings.weak_score:
                rejected.append((name, f"weak detection (score {face.score:.2f}, "
                                       f"faces.weak_score is {analyzer.settings.weak_score})"))
                continue
            if width < MIN_FACE_WIDTH:
                rejected.append((name, f"face too small ({width} px wide, at least "
                                       f"{MIN_FACE_WIDTH} needed)"))
                continue
            faces.append(frame(face))
            names.append(name)
    bar.close()
    rejected.sort()
    dataset = Dataset(np.stack(faces) if faces else np.zeros((0, SIDE, SIDE, 3), np.uint8),
                      names, rejected)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / REJECTED, fmt.tsv_bytes(("path", "reason"), rejected))
    if not faces:
        reasons = sorted({reason.split(" (")[0] for _, reason in rejected})
        raise DatasetError(f"{photos_dir}: no usable face in {plural(len(files), 'file')}"
                           f"{' (' + '; '.join(reasons[:3]) + ')' if reasons else ''}"
                           f"; see {run_dir / REJECTED}")
    _save(run_dir, dataset, listing)
    return dataset


def _save(run_dir: Path, dataset: Dataset, listing: str) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, dataset.faces, allow_pickle=False)
    atomic_write_bytes(run_dir / FACES, buffer.getvalue())
    save_png(grid(dataset.faces[:PREVIEW]), run_dir / PREVIEW_FILE)
    record = {"listing": listing, "names": dataset.names, "digest": dataset.digest()}
    atomic_write_bytes(run_dir / FACES_LISTING, json.dumps(record).encode("utf-8",
                                                                           "surrogateescape"))


def _cached(run_dir: Path, listing: str) -> Dataset | None:
    """RUN_DIR's aligned faces when made from the same listing and intact, else None."""
    try:
        record = json.loads((run_dir / FACES_LISTING).read_bytes().decode("utf-8",
                                                                            "surrogateescape"))
        if not isinstance(record, dict) or record.get("listing") != listing:
            return None
        faces = np.load(run_dir / FACES, allow_pickle=False)
        rejected = [(row[0], row[1]) for row in fmt.read_tsv(run_dir / REJECTED, 2)]
    except (OSError, ValueError, fmt.CorpusError):
        return None
    names = record.get("names")
    if (faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[1:] != (SIDE, SIDE, 3)
            or not isinstance(names, list) or len(names) != len(faces)):
        return None
    dataset = Dataset(faces, [str(n) for n in names], rejected)
    return dataset if dataset.digest() == record.get("digest") else None
