"""Find, align and describe a face with dlib: the appliance's eyes.

Pipeline (`FaceAnalyzer.analyze`): the photo is scaled so its longest side is
`faces.detect_first_side` (320) and dlib's HOG frontal detector looks at that copy; only when it
shows no confident face does it look again at `faces.detect_max_side` (or up, so tiny crops reach
`faces.detect_min_side`), and only when that shows none either, at that copy enlarged
`faces.small_face_zoom` times (HOG misses faces under ~80 px: 40-px faces are found there). The
boxes are mapped back to full resolution, one face is chosen
(largest, then most central), the 5-point landmarks are predicted on the full-resolution pixels
around it, an aligned 150x150 chip (eyes at fixed positions, `dlib.get_face_chip`) is cut and
dlib's ResNet model turns it into a float32[128] descriptor, run by `appliance.faces.resnet`
on numpy's BLAS (or by dlib: `faces.descriptor_engine`). The same pixels always give the same bits.

A photo without a usable face gives a `NoFaceFound` value, not an exception: for a visitor that is
an ordinary outcome. Models are loaded once per process and shared by every analyzer.

The pieces, one concern each: `settings` (the `faces` section), `model_files` (which files,
their checksums), `models` (loaded once per process), `detection` (the multi-scale looks and the
choice of a face), `face` (what comes back), `crops` (aligned crops beyond the photo's edge).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from appliance.faces.detection import MultiScaleDetector, resize
from appliance.faces.face import (
    DESCRIPTOR_CHIP_PADDING,
    DESCRIPTOR_CHIP_SIZE,
    Detection,
    Face,
    NoFaceFound,
)
from appliance.faces.models import Models, models_for
from appliance.faces.settings import FaceSettings
from appliance.images import Source, array_to_rgb, load_image


class FaceAnalyzer:
    """Detects, aligns and describes faces; cheap to create (models are shared per process)."""

    def __init__(self, settings: FaceSettings | None = None) -> None:
        self.settings = settings or FaceSettings()
        #: The models, shared by every analyzer of this process.
        self.models: Models = models_for(self.settings)
        #: Where the face is: the multi-scale HOG looks (`MultiScaleDetector.looks`).
        self.detector = MultiScaleDetector(self.settings, self.models)

    @property
    def descriptor_engine(self) -> str:
        """Who runs the descriptor network: "numpy" or "dlib" (also after a fallback)."""
        return self.models.engine

    def describe(self, chip: np.ndarray) -> np.ndarray:
        """The float32[128] descriptor of an aligned (150, 150, 3) uint8 RGB chip (`Face.chip`)."""
        return self.models.describe(chip)

    # -- public API ----------------------------------------------------------------------------

    def analyze(self, image: Source) -> Face | NoFaceFound:
        """The chosen face with its descriptor, or NoFaceFound (raises ImageError on bad files)."""
        outcome = self.locate(image)
        if isinstance(outcome, Face):
            _ = outcome.descriptor
        return outcome

    def locate(self, image: Source) -> Face | NoFaceFound:
        """`analyze` but for the descriptor, computed on first use of `Face.descriptor`."""
        rgb = self.as_rgb(image)
        timings: dict[str, float] = {}
        detections = self.detector.detect(rgb, timings, one=True)
        usable = self.detector.usable(detections)
        if not usable:
            reason = self.detector.no_face_reason(rgb, detections)
            return NoFaceFound(reason, tuple(detections), timings)
        return self.face_at(rgb, usable[0], timings)

    def analyze_many(self, images: Sequence[Source]) -> list[Face | NoFaceFound]:
        """`analyze` of each image, the descriptors of all their faces computed as one batch
        (see `FaceNet.descriptors`: equal to one-by-one ones at float32 rounding)."""
        outcomes = [self.locate(image) for image in images]
        faces = [o for o in outcomes if isinstance(o, Face)]
        if faces:
            start = time.perf_counter()
            vectors = self.models.describe_many(np.stack([face.chip for face in faces]))
            share = (time.perf_counter() - start) / len(faces)
            for face, vector in zip(faces, vectors, strict=True):
                face.attach_descriptor(vector, share)
        return outcomes

    def face_from(self, image: Source, detection: Detection) -> Face:
        """The face in `detection` of `image` (a box this analyzer's detector found there):
        landmarks and chip as `analyze` makes them, without the detector; the descriptor on
        first use of `Face.descriptor`."""
        return self.face_at(self.as_rgb(image), detection, {})

    def detect(self, image: Source) -> list[Detection]:
        """Every box the detector finds (weak ones included), best choice first."""
        return self.detector.detect(self.as_rgb(image), {})

    def faces(self, image: Source, *, describe: bool = False) -> list[Face]:
        """Every usable face, best choice first (weak detections beside a confident face are left
        out); descriptors computed now if `describe`, else on first use of `Face.descriptor`."""
        rgb = self.as_rgb(image)
        faces = []
        for detection in self.detector.usable(self.detector.detect(rgb, {})):
            face = self.face_at(rgb, detection, {})
            if describe:
                _ = face.descriptor
            faces.append(face)
        return faces

    # -- steps -----------------------------------------------------------------------------------

    @staticmethod
    def as_rgb(image: Source) -> np.ndarray:
        """`image` (a path, bytes or an array) as a contiguous (h, w, 3) uint8 RGB array."""
        if isinstance(image, np.ndarray):
            if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size:
                return np.ascontiguousarray(image)
            return array_to_rgb(image)
        return load_image(image)

    def face_at(self, rgb: np.ndarray, detection: Detection,
                timings: dict[str, float]) -> Face:
        """The face in `detection` of the RGB photo `rgb`: landmarks on its full-resolution
        pixels and the aligned chip (stage seconds added to `timings`)."""
        import dlib

        height, width = rgb.shape[:2]
        scale = self.detector.detection_scale(height, width)
        start = time.perf_counter()
        left, top, right, bottom = detection.rect
        if scale > 1.0:
            # A tiny photo: landmarks and chip on the upscaled copy the detector saw.
            pixels = resize(rgb, scale)
            factor, origin = scale, (0.0, 0.0)
        else:
            # Full resolution, but only the pixels around the face (enough for any chip padding):
            # the predictor and get_face_chip then cost the same for a 0.3 or a 12 MP photo.
            margin = max(right - left, bottom - top) * max(1.0, self.settings.aligned_padding
                                                              + 0.6)
            x0 = max(0, math.floor(left - margin))
            y0 = max(0, math.floor(top - margin))
            x1 = min(width, math.ceil(right + margin))
            y1 = min(height, math.ceil(bottom + margin))
            pixels = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            factor, origin = 1.0, (float(x0), float(y0))
        rect = dlib.rectangle(
            round((left - origin[0]) * factor),
            round((top - origin[1]) * factor),
            round((right - origin[0]) * factor) - 1,
            round((bottom - origin[1]) * factor) - 1,
        )
        with self.models.lock:
            shape = self.models.predictor(pixels, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        landmarks = points / factor + np.array(origin)
        timings["landmarks"] = time.perf_counter() - start
        start = time.perf_counter()
        chip = dlib.get_face_chip(
            pixels, shape, size=DESCRIPTOR_CHIP_SIZE, padding=DESCRIPTOR_CHIP_PADDING
        )
        timings["chip"] = time.perf_counter() - start
        return Face(
            box=detection.box,
            score=detection.score,
            landmarks=landmarks,
            chip=chip,
            timings=timings,
            shape=shape,
            pixels=pixels,
            models=self.models,
            aligned_padding=self.settings.aligned_padding,
            detection=detection,
        )

