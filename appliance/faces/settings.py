"""The `faces` section of the configuration (a leaf: `appliance.settings` composes it without
loading the analyzer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.config import setting


@dataclass(frozen=True)
class FaceSettings:
    """The `faces` section of the configuration."""

    #: Longest side of the copy the detector sees (0: detect at full resolution).
    detect_max_side: int = setting(640, min=0, max=16384)
    #: Look first on a copy this small (~4x cheaper at 320 than 640); only when it shows no
    #: confident face, look again at `detect_max_side`. 0: one look at detect_max_side.
    detect_first_side: int = setting(320, min=0, max=16384)
    #: Photos whose shorter side is below this are upscaled to it before detection (tiny crops).
    detect_min_side: int = setting(200, min=0, max=4096)
    #: When no look shows a confident face, a last look at the detect_max_side copy enlarged this
    #: much: HOG sees faces from ~80 px, so 2 finds 40-px faces (~4x that look's cost, paid only
    #: by photos where no face was found yet; not taken for tiny photos that detect_min_side
    #: already enlarged as much). 1: no last look.
    small_face_zoom: float = setting(2.0, min=1.0, max=4.0)
    #: Extra 2x pyramid levels inside the detector: finds smaller faces, ~4x slower per level.
    upsample: int = setting(0, min=0, max=3)
    #: Added to the detector's threshold: negative finds more (and more false) faces.
    adjust_threshold: float = setting(0.0, min=-2.0, max=2.0)
    #: Ignore faces whose box side is smaller than this, in full-resolution pixels (0: none).
    min_face_side: int = setting(0, min=0, max=10_000)
    #: Which face answers when there are several: the largest (then most central) or the most
    #: central (then largest).
    choose: Literal["largest", "central"] = "largest"
    #: Detections scoring below this are chosen only when no detection reaches it (the HOG
    #: detector's false positives, e.g. a round badge on a jacket, score near 0; faces ~1).
    weak_score: float = setting(0.5, min=-2.0, max=3.0)
    #: In "largest" mode, faces at least this fraction of the largest one's area count as equally
    #: large, and the most central of them wins.
    similar_size: float = setting(0.8, min=0.0, max=1.0)
    #: Margin around the eyes/nose in `Face.aligned` crops (printing, thumbnails), dlib units.
    aligned_padding: float = setting(0.4, min=0.0, max=2.0)
    #: dlib model files; empty means the copies in the face-recognition-models package.
    landmarks_model: Path | None = None
    descriptor_model: Path | None = None
    #: Who runs the descriptor network: "numpy" (the same dlib model on numpy's BLAS, ~9x faster
    #: than the BLAS-less dlib-bin wheels, equal to ~1e-6) or "dlib" (its own code).
    descriptor_engine: Literal["numpy", "dlib"] = "numpy"
    #: BLAS threads for one descriptor with the numpy engine (0: BLAS's own choice). One is
    #: steadier: several wait on each other whenever another process holds a core.
    descriptor_threads: int = setting(1, min=0, max=64)
