"""What the analyzer finds: a `Detection` (a box), a `Face` (landmarks, aligned chip, descriptor
on first use) or `NoFaceFound` (an ordinary outcome, not an exception)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.faces.crops import aligned_crop, to_gray

if TYPE_CHECKING:
    from appliance.faces.models import Models

#: The descriptor network's input: dlib's aligned chip, as `compute_face_descriptor` expects it.
DESCRIPTOR_CHIP_SIZE = 150
DESCRIPTOR_CHIP_PADDING = 0.25
#: Bumped when the same photo, settings and models give another bit of a descriptor or of an
#: aligned crop: builds record it (`DlibEngine.settings`: build key, manifest, `sosie generate`'s
#: analyzer), so no corpus mixes two. 2: the numpy ResNet's 3x3 convolutions by Winograd
#: (descriptors within 5e-7 of version 1's), crops' surround blurred on a coarse grid and cut by
#: OpenCV with dlib's geometry (thumbnails within ~0.5 grey level).
PIPELINE = 2


@dataclass(frozen=True)
class Detection:
    """A face box from the detector, in full-resolution pixels: (left, top, right, bottom)."""

    box: tuple[int, int, int, int]
    score: float
    #: The detector's box before rounding/clipping, in full-resolution pixels.
    rect: tuple[float, float, float, float] = field(repr=False)

    @property
    def area(self) -> float:
        left, top, right, bottom = self.rect
        return max(0.0, right - left) * max(0.0, bottom - top)


@dataclass(frozen=True)
class NoFaceFound:
    """The ordinary outcome "no usable face in this photo", with a one-line reason."""

    reason: str
    detections: tuple[Detection, ...] = ()
    timings: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(eq=False)
class Face:
    """One face: where it is, its landmarks, its aligned chip and its 128-D descriptor.

    `box` (left, top, right, bottom) and `landmarks` (5, 2) are full-resolution pixel
    coordinates. The face keeps the pixels around it (not the whole photo) so `aligned()` can
    cut larger crops; drop the Face to forget them.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray
    chip: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    #: dlib's landmarks in `pixels` (the shape `dlib.get_face_chip` aligns by).
    shape: Any = field(default=None, repr=False)
    #: The pixels around the face that `aligned()` crops (not the whole photo).
    pixels: np.ndarray | None = field(default=None, repr=False)
    #: The descriptor network, run on first use of `descriptor`.
    models: Models | None = field(default=None, repr=False)
    aligned_padding: float = field(default=0.4, repr=False)
    _descriptor: np.ndarray | None = field(default=None, repr=False)
    #: The detector's box this face was found in (`FaceAnalyzer.face_from` redoes the rest).
    detection: Detection | None = field(default=None, repr=False)

    @property
    def descriptor(self) -> np.ndarray:
        """float32[128], computed from `chip` on first use (about 0.1 s without BLAS)."""
        if self._descriptor is None:
            if self.models is None:
                raise ValueError("this Face has no descriptor model attached")
            start = time.perf_counter()
            self.attach_descriptor(self.models.describe(self.chip),
                                   time.perf_counter() - start)
        return self._descriptor  # type: ignore[return-value]

    def attach_descriptor(self, vector: np.ndarray, seconds: float) -> None:
        """Keep `vector` as this face's descriptor (computed in `seconds`, e.g. a batch's
        share), so `descriptor` does not compute it again."""
        self._descriptor = np.ascontiguousarray(vector, dtype=np.float32)
        self.timings["descriptor"] = seconds

    def aligned(
        self, size: int, gray: bool = False, *, padding: float | None = None
    ) -> np.ndarray:
        """A size x size crop aligned like `chip` (eyes level, at fixed positions), any size.

        `padding` defaults to `faces.aligned_padding`; gray gives (size, size) uint8 luminance.
        The Face keeps only the pixels within `faces.aligned_padding` + 0.6 face widths around
        the box: a larger padding shows the soft surround where those pixels end (as at a
        photo's edge: `crops.aligned_crop`).
        """
        if size < 8:
            raise ValueError(f"aligned crop size must be >= 8, got {size}")
        if self.pixels is None or self.shape is None:
            raise ValueError("this Face has no pixels attached")
        pad = self.aligned_padding if padding is None else padding
        crop = aligned_crop(self.pixels, self.shape, int(size), float(pad))
        return to_gray(crop) if gray else crop


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (dlib: < 0.6 is probably the same person)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
