"""What `sosie generate` learned of each face it kept, reused by `sosie build` of its folder.

generate analyses every draw to decide whether to keep it. For a kept face its journal line
(`.sosie-generate/draws.jsonl`) also holds that analysis (`record`): the detection, the
landmarks, the sha256 of the analysed pixels and of the aligned chip, and the float32
descriptor. `sosie build` of the folder with the same face models and settings (`recorded`)
reuses it (`reuse`) for a file whose sha256 is the journal's and whose decoded pixels are the
analysed ones: it runs only the landmark predictor inside the recorded detection, checks that
the chip has the recorded sha256 and takes the recorded descriptor, skipping the detector and
the descriptor network. Anything else (a changed file, a JPEG whose decoded pixels differ, a
damaged line, other models) is analysed afresh, so the corpus has the same bytes either way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from appliance.generator.journal import DRAWS, FACE_NAME, JOB, WORK_DIR

#: Bumped when a record's fields or meaning change (older records are then ignored).
VERSION = 1
_HEX = re.compile(r"[0-9a-f]{64}")
#: A journal line longer than this is not one `sosie generate` wrote (read line by line).
MAX_LINE = 16_384


def record(outcome: Any, pixels: np.ndarray) -> dict[str, Any] | None:
    """The journal's analysis of a kept face (`outcome`: a `Face` with its descriptor, found in
    `pixels`); None when the analyzer keeps no detection (e.g. the tests' mock)."""
    detection = getattr(outcome, "detection", None)
    if detection is None or not hasattr(outcome, "chip"):
        return None
    descriptor = np.asarray(outcome.descriptor, dtype="<f4").reshape(128)
    return {
        "v": VERSION,
        "box": [int(v) for v in detection.box],
        "score": float(detection.score),
        "rect": [float(v) for v in detection.rect],
        "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in outcome.landmarks],
        "pixels": _sha256(pixels),
        "chip": _sha256(outcome.chip),
        "descriptor": base64.b64encode(descriptor.tobytes()).decode("ascii"),
    }


#: Where a face's journal line is: (journal path, byte offset, length). A build keeps only
#: this per face (a 200k-face journal is ~200 MB of lines); `recalled` reads the line again.
Where = tuple[str, int, int]


def recorded(folder: Path, engine: Any) -> dict[str, Where]:
    """{file name: where its journal line is} for the kept faces of the generate journal in
    `folder` whose line holds a well-formed analysis, when that run's analyzer had `engine`'s
    models and settings; {} otherwise (no journal, another analyzer, an unreadable job)."""
    work = Path(folder) / WORK_DIR
    try:
        job = json.loads((work / JOB).read_text())
        expected = json.loads(json.dumps({"models": engine.checksums(),
                                          "settings": engine.settings()}, default=str))
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(job, dict) or job.get("analyzer") != expected:
        return {}
    found: dict[str, Where] = {}
    journal = work / DRAWS
    try:
        with open(journal, "rb") as lines:
            offset = 0
            while line := lines.readline(MAX_LINE + 1):
                if len(line) > MAX_LINE or not line.endswith(b"\n"):
                    break  # a line cut by a kill, or not the journal's
                entry = _entry(line)
                if entry is not None:
                    found[entry[0]] = (str(journal), offset, len(line))
                offset += len(line)
    except OSError:
        return {}
    return found


def recalled(where: Where) -> tuple[str, str, dict[str, Any]] | None:
    """(file name, its sha256, its analysis) of the journal line at `where`, read again and
    checked again; None if it is no longer a well-formed record."""
    path, offset, length = where
    if not 0 < length <= MAX_LINE or offset < 0:
        return None
    try:
        with open(path, "rb") as journal:
            journal.seek(offset)
            line = journal.read(length)
    except OSError:
        return None
    return _entry(line)


def reuse(analysis: dict[str, Any], rgb: np.ndarray, analyzer: Any) -> Any:
    """The `Face` of `analysis` in the decoded image `rgb` (its descriptor the recorded one), or
    None when `rgb` is not the analysed image or the chip comes out different."""
    from appliance.faces.face import Detection

    if _sha256(rgb) != analysis["pixels"] or not hasattr(analyzer, "face_from"):
        return None
    detection = Detection(tuple(analysis["box"]), analysis["score"], tuple(analysis["rect"]))
    face = analyzer.face_from(rgb, detection)
    if _sha256(face.chip) != analysis["chip"]:
        return None
    recorded = np.frombuffer(base64.b64decode(analysis["descriptor"]), "<f4")
    face.attach_descriptor(recorded.astype(np.float32), 0.0)  # read back, not computed
    return face


def _entry(line: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(file, sha256, analysis) of a journal line holding a well-formed analysis, else None."""
    try:
        item = json.loads(line)
        name, digest, analysis = item["file"], item["sha256"], item["analysis"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(name, str) and FACE_NAME.fullmatch(name) and isinstance(digest, str)
            and _HEX.fullmatch(digest) and _well_formed(analysis)):
        return None
    return name, digest, analysis


def _well_formed(analysis: Any) -> bool:
    if not isinstance(analysis, dict) or analysis.get("v") != VERSION:
        return False
    try:
        box, rect, score = analysis["box"], analysis["rect"], analysis["score"]
        numbers_ok = (len(box) == 4 and all(isinstance(v, int) and abs(v) < 1 << 20 for v in box)
                      and len(rect) == 4 and all(isinstance(v, float) and math.isfinite(v)
                                                 for v in [*rect, score]))
        text = analysis["descriptor"]
        descriptor = base64.b64decode(text, validate=True) if len(text) == 684 else b""
    except (KeyError, TypeError, binascii.Error):
        return False
    return (numbers_ok and len(descriptor) == 512
            and bool(np.isfinite(np.frombuffer(descriptor, "<f4")).all())
            and all(isinstance(analysis.get(k), str) and _HEX.fullmatch(analysis[k])
                    for k in ("pixels", "chip")))


def _sha256(pixels: np.ndarray) -> str:
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    return hashlib.sha256(f"{array.shape}".encode() + array.tobytes()).hexdigest()
