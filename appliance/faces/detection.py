"""Multi-scale HOG detection (see `FaceAnalyzer`): which copies of a photo the detector looks
at, in which order, and which of the boxes it finds is the face."""

from __future__ import annotations

import math
import time

import numpy as np

from appliance.faces.face import Detection
from appliance.faces.models import Models
from appliance.faces.settings import FaceSettings
from appliance.images import shrink

#: The HOG detector's window: faces narrower than this (in the copy it sees) are missed.
HOG_WINDOW = 80


class MultiScaleDetector:
    """dlib's HOG detector run on scaled copies of a photo, coarse first (`looks`)."""

    def __init__(self, settings: FaceSettings, models: Models) -> None:
        self.settings = settings
        self.models = models

    def detection_scale(self, height: int, width: int) -> float:
        """Factor from full resolution to the copy the detector sees."""
        s = self.settings
        scale = 1.0
        if s.detect_max_side and max(height, width) > s.detect_max_side:
            scale = s.detect_max_side / max(height, width)
        if s.detect_min_side and min(height, width) * scale < s.detect_min_side:
            # upscale tiny photos, but never a thin strip into a huge one
            ceiling = 4 * max(s.detect_max_side, s.detect_min_side) / max(height, width)
            scale = max(scale, min(s.detect_min_side / min(height, width), ceiling))
        return scale

    def looks(self, height: int, width: int, *, one: bool = True) -> list[float]:
        """Scales of the detector's successive looks at a height x width photo; each one is
        taken only when the looks before it show no confident face.

        With `one` (`analyze`: the largest face is the first a coarse look finds) a coarse look
        at `detect_first_side` comes first; then the look at `detection_scale`; then, for small
        faces, the photo (or its detect_max_side copy) enlarged by `small_face_zoom`.
        """
        scale = self.detection_scale(height, width)
        scales = []
        quick = self.settings.detect_first_side / max(height, width)
        if one and self.settings.choose == "largest" and quick > 0 and 1.25 * quick < scale:
            scales.append(quick)
        scales.append(scale)
        # The last look finds faces down to HOG_WINDOW / zoom px (40) in the photo, or in its
        # detect_max_side copy: a tiny photo already upscaled that much needs no closer look,
        # nor does a minimum face size that the look at `scale` already sees whole.
        closest = self.settings.small_face_zoom * min(scale, 1.0)
        if closest > 1.25 * scale and self.settings.min_face_side * scale < HOG_WINDOW:
            scales.append(closest)
        return scales

    def detect(self, rgb: np.ndarray, timings: dict[str, float],
                one: bool = False) -> list[Detection]:
        """Every face, or with `one` at least the one `analyze` chooses (see `looks`): the first
        look with a confident face, else the closest look that found anything."""
        height, width = rgb.shape[:2]
        found: list[Detection] = []
        for scale in self.looks(height, width, one=one):
            seen = self.detect_at(rgb, scale, timings)
            usable = self.usable(seen)
            if usable and usable[0].score >= self.settings.weak_score:
                return seen
            found = seen or found
        return found

    def detect_at(self, rgb: np.ndarray, scale: float,
                   timings: dict[str, float]) -> list[Detection]:
        """HOG detections on a copy of `rgb` scaled by `scale`, in full-resolution pixels
        (timings add up over several looks)."""
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        small = resize(rgb, scale)
        timings["downscale"] = timings.get("downscale", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        with self.models.lock:
            rects, scores, _ = self.models.detector.run(
                small, self.settings.upsample, self.settings.adjust_threshold
            )
        timings["detect"] = timings.get("detect", 0.0) + time.perf_counter() - start
        found = []
        for rect, score in zip(rects, scores, strict=True):
            # dlib's right/bottom are inclusive: map the pixel edges, not the pixel indices.
            edges = (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
            full = tuple(v / scale for v in edges)
            box = (
                max(0, round(full[0])),
                max(0, round(full[1])),
                min(width, round(full[2])),
                min(height, round(full[3])),
            )
            if box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(box, float(score), full))  # type: ignore[arg-type]
        return self.ranked(found, width, height)

    def ranked(self, found: list[Detection], width: int, height: int) -> list[Detection]:
        def off_centre(d: Detection) -> float:
            left, top, right, bottom = d.rect
            return math.hypot((left + right) / 2 - width / 2, (top + bottom) / 2 - height / 2)

        if not found:
            return []
        weak = self.settings.weak_score
        confident = [d for d in found if d.score >= weak] or found
        if self.settings.choose == "central":
            return sorted(found, key=lambda d: (d.score < weak, off_centre(d), -d.area))
        threshold = max(d.area for d in confident) * self.settings.similar_size

        def rank(d: Detection) -> tuple[bool, bool, float, float]:
            large = d.area >= threshold
            return (d.score < weak, not large, off_centre(d) if large else -d.area, -d.score)

        return sorted(found, key=rank)

    def usable(self, detections: list[Detection]) -> list[Detection]:
        """The detections that count as faces, in choice order: big enough, and not weak when
        a confident face is present (a weak one beside a real face is a false positive)."""
        minimum = self.settings.min_face_side
        usable = [d for d in detections
                  if min(d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]) >= minimum]
        if any(d.score >= self.settings.weak_score for d in usable):
            usable = [d for d in usable if d.score >= self.settings.weak_score]
        return usable

    def no_face_reason(self, rgb: np.ndarray, detections: list[Detection]) -> str:
        height, width = rgb.shape[:2]
        if detections:
            side = max(min(d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]) for d in detections)
            return (f"face too small ({side:.0f} px, faces.min_face_side is "
                    f"{self.settings.min_face_side})")
        return f"no face found in the {width}x{height} photo"


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    """`rgb` scaled by `scale` (area averaging down, bicubic up: HOG finds ~5 % more upscaled
    tiny faces than after bilinear); the same array when 1."""
    if scale == 1.0:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale < 1.0:
        return shrink(rgb, size)
    import cv2

    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC))

