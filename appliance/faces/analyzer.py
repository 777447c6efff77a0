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
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from appliance.config import setting
from appliance.errors import one_line
from appliance.files import sha256_file
from appliance.images import Source, array_to_rgb, load_image, shrink
from appliance.paths import cache_dir

log = logging.getLogger(__name__)

#: The descriptor network's input: dlib's aligned chip, as `compute_face_descriptor` expects it.
DESCRIPTOR_CHIP_SIZE = 150
DESCRIPTOR_CHIP_PADDING = 0.25
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
#: The HOG detector's window: faces narrower than this (in the copy it sees) are missed.
HOG_WINDOW = 80


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


class ModelError(RuntimeError):
    """A dlib model file that is missing or unreadable, named on one line."""


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
    _shape: Any = field(default=None, repr=False)
    _pixels: np.ndarray | None = field(default=None, repr=False)
    _descriptor: np.ndarray | None = field(default=None, repr=False)
    _models: _Models | None = field(default=None, repr=False)
    _aligned_padding: float = field(default=0.4, repr=False)
    #: The detector's box this face was found in (`FaceAnalyzer.face_from` redoes the rest).
    detection: Detection | None = field(default=None, repr=False)

    @property
    def descriptor(self) -> np.ndarray:
        """float32[128], computed from `chip` on first use (about 0.1 s without BLAS)."""
        if self._descriptor is None:
            if self._models is None:
                raise ValueError("this Face has no descriptor model attached")
            start = time.perf_counter()
            self._descriptor = self._models.describe(self.chip)
            self.timings["descriptor"] = time.perf_counter() - start
        return self._descriptor

    def aligned(
        self, size: int, gray: bool = False, *, padding: float | None = None
    ) -> np.ndarray:
        """A size x size crop aligned like `chip` (eyes level, at fixed positions), any size.

        `padding` defaults to `faces.aligned_padding`; gray gives (size, size) uint8 luminance.
        The Face keeps only the pixels within `faces.aligned_padding` + 0.6 face widths around
        the box: a larger padding shows black where those pixels end (as at a photo's edge).
        """
        import dlib

        if size < 8:
            raise ValueError(f"aligned crop size must be >= 8, got {size}")
        if self._pixels is None or self._shape is None:
            raise ValueError("this Face has no pixels attached")
        pad = self._aligned_padding if padding is None else padding
        pixels, shape = _edge_extended(self._pixels, self._shape, int(size), float(pad))
        crop = dlib.get_face_chip(pixels, shape, size=int(size), padding=float(pad))
        return to_gray(crop) if gray else crop


def _edge_extended(
    pixels: np.ndarray, shape: Any, size: int, padding: float
) -> tuple[np.ndarray, Any]:
    """`pixels` grown with a soft border where the aligned crop would leave them.

    A face near the photo's edge (a tight crop, a tiny LFW photo) would otherwise print with
    black wedges where the rotated crop leaves the photo; on thermal paper those are solid ink.
    The border is neutral: the mean colour of the photo's edge, the photo's own colours fading
    into it (blurred at low resolution, cheap at any size), never edge pixels repeated into
    bands; when the crop stays inside the photo, `pixels` and `shape` come back untouched.
    """
    import cv2
    import dlib

    height, width = pixels.shape[:2]
    details = dlib.get_face_chip_details(shape, size=size, padding=padding)
    rect, angle = details.rect, details.angle
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    half = np.array([rect.width() / 2, rect.height() / 2])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    corners = centre + (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half) @ rotation.T
    overshoot = max(
        0.0,
        -corners.min(),
        (corners[:, 0] - (width - 1)).max(),
        (corners[:, 1] - (height - 1)).max(),
    )
    if overshoot <= 0.0:
        return pixels, shape
    margin = math.ceil(overshoot) + 2
    # Not the edge pixels repeated outwards (they smear into bands): the edge's mean colour,
    # with the photo's own colours fading into it (a blur of both at low resolution).
    edges = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    neutral = edges.reshape(-1, edges.shape[-1] if pixels.ndim == 3 else 1).mean(axis=0)
    extended = cv2.copyMakeBorder(pixels, margin, margin, margin, margin, cv2.BORDER_CONSTANT,
                                  value=[float(v) for v in neutral])
    full = (extended.shape[1], extended.shape[0])
    factor = min(1.0, 96 / max(full))
    small = cv2.resize(extended, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=max(2.0, margin * factor / 2))
    extended = cv2.resize(small, full, interpolation=cv2.INTER_LINEAR)
    # the photo's last few pixels fade into the surround: no hard line where the photo ends
    feather = max(2.0, min(height, width) / 16)
    rows = np.minimum(np.arange(height), np.arange(height)[::-1])[:, None]
    cols = np.minimum(np.arange(width), np.arange(width)[::-1])[None, :]
    weight = np.clip((np.minimum(rows, cols) + 1) / feather, 0.0, 1.0)
    if pixels.ndim == 3:
        weight = weight[:, :, None]
    inner = extended[margin:margin + height, margin:margin + width]
    # blended only in the frame where weight < 1 (inside it, the photo's own pixels exactly)
    band = min(math.ceil(feather), (min(height, width) + 1) // 2)
    inner[band:height - band, band:width - band] = pixels[band:height - band, band:width - band]
    for frame in (np.s_[:band], np.s_[height - band:], np.s_[band:height - band, :band],
                  np.s_[band:height - band, width - band:]):
        inner[frame] = np.rint(pixels[frame] * weight[frame]
                               + inner[frame] * (1.0 - weight[frame])).astype(pixels.dtype)
    moved = dlib.full_object_detection(
        dlib.rectangle(shape.rect.left() + margin, shape.rect.top() + margin,
                       shape.rect.right() + margin, shape.rect.bottom() + margin),
        [dlib.point(p.x + margin, p.y + margin) for p in shape.parts()],
    )
    return extended, moved


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance of an RGB uint8 image, as uint8 (the same weights as Pillow's "L")."""
    weights = np.array([299, 587, 114], dtype=np.uint32)
    return ((rgb.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Models


def default_models_dir() -> Path:
    """Where the face-recognition-models package keeps its .dat files (its __init__ breaks)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "dlib models not installed: pip install face-recognition-models, or set "
            "faces.landmarks_model and faces.descriptor_model"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_paths(settings: FaceSettings) -> dict[str, Path]:
    """The model files `settings` name: {"landmarks": path, "descriptor": path}."""
    landmarks = settings.landmarks_model
    descriptor = settings.descriptor_model
    if landmarks is None or descriptor is None:
        base = default_models_dir()
        landmarks = landmarks or base / LANDMARKS_FILE
        descriptor = descriptor or base / DESCRIPTOR_FILE
    return {"landmarks": Path(landmarks), "descriptor": Path(descriptor)}


_checksum_cache: dict[tuple[str, int, int], str] = {}


def model_checksums(settings: FaceSettings | None = None) -> dict[str, str]:
    """sha256 of each model file ({"landmarks": hex, "descriptor": hex}), memoised per file."""
    out = {}
    for role, path in model_paths(settings or FaceSettings()).items():
        _check_model_file(role, path)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _checksum_cache:
            _checksum_cache[key] = sha256_file(path)
        out[role] = _checksum_cache[key]
    return out


def _check_model_file(role: str, path: Path) -> None:
    key = f"faces.{role}_model"
    if not path.is_file():
        raise ModelError(f"dlib {role} model not found: {path} (set {key} or install "
                         "face-recognition-models)")
    if path.stat().st_size == 0:
        raise ModelError(f"dlib {role} model is empty: {path} (set {key} to a valid file)")


#: dlib's detector, predictor and network keep per-call state: one call at a time per process.
_DLIB_LOCK = threading.RLock()
_loaded: dict[tuple[str, Path], Any] = {}


class _Models:
    """The models for one pair of model files and one descriptor engine, loaded once per
    process."""

    def __init__(self, landmarks: Path, descriptor: Path, engine: str = "numpy",
                 threads: int = 1) -> None:
        _check_model_file("landmarks", landmarks)  # fail fast, before any slow load
        _check_model_file("descriptor", descriptor)
        self.detector = _model("detector", None)
        self.predictor = _model("landmarks", landmarks)
        self.network = _numpy_network(descriptor, threads) if engine == "numpy" else None
        self.recognizer = None if self.network is not None else _model("descriptor", descriptor)
        self.lock = _DLIB_LOCK

    @property
    def engine(self) -> str:
        return "numpy" if self.network is not None else "dlib"

    def describe(self, chip: np.ndarray) -> np.ndarray:
        if self.network is not None:  # numpy releases the GIL in BLAS; no dlib lock needed
            return self.network.descriptor(chip)
        with self.lock:
            vector = self.recognizer.compute_face_descriptor(chip, 0)
        return np.asarray(vector, dtype=np.float32).reshape(128)

    def describe_many(self, chips: np.ndarray) -> np.ndarray:
        """(n, 128) descriptors of (n, 150, 150, 3) chips: one batch through the numpy network
        (one matrix product per layer), one chip at a time through dlib's."""
        if self.network is not None:
            return self.network.descriptors(chips)
        return np.stack([self.describe(chip) for chip in chips]).reshape(len(chips), 128)


def _numpy_network(path: Path, threads: int) -> Any:
    """dlib's ResNet on numpy (appliance.faces.resnet), or None (with a warning) to let dlib
    run it."""
    from appliance.faces.resnet import FaceNet, NetworkFormatError

    key = (f"descriptor-numpy-{threads}", path)
    with _DLIB_LOCK:
        if key not in _loaded:
            try:
                _loaded[key] = FaceNet.load(path, threads)
            except NetworkFormatError as exc:  # load turns every reading error into this
                log.warning("descriptor model %s: numpy engine unavailable (%s); using dlib",
                            path, exc)
                _loaded[key] = None
        return _loaded[key]


def _model(role: str, path: Path | None) -> Any:
    import dlib

    key = (role, path or Path())
    with _DLIB_LOCK:
        if key not in _loaded:
            if path is None:
                _loaded[key] = _frontal_detector()
            else:
                loader = dlib.shape_predictor if role == "landmarks" else (
                    dlib.face_recognition_model_v1)
                _loaded[key] = _load(loader, role, path)
        return _loaded[key]


def _frontal_detector() -> Any:
    """dlib's HOG face detector. `get_frontal_face_detector` decodes it from text (~0.6 s of CPU
    per process on an EPYC core; every build worker and every start pays it), so after that the
    same detector is kept in the cache folder in dlib's own file format, which loads in ~1 ms;
    the file's name holds its sha256 prefix, and a damaged file is decoded again."""
    import dlib

    prefix = f"dlib-{dlib.__version__}-frontal-face-detector-"
    folder: Path | None = None
    try:
        folder = cache_dir()
        for path in folder.glob(f"{prefix}*.svm"):
            if sha256_file(path)[:16] == path.stem[len(prefix):]:
                return dlib.fhog_object_detector(str(path))
            path.unlink(missing_ok=True)
    except Exception:  # no cache folder, an unreadable file: decode it again
        log.debug("face detector cache unusable", exc_info=True)
    detector = dlib.get_frontal_face_detector()
    if folder is None:  # no cache folder: decoded again next time
        return detector
    try:
        scratch = folder / f".{prefix}{os.getpid()}.svm"
        detector.save(str(scratch))
        scratch.replace(folder / f"{prefix}{sha256_file(scratch)[:16]}.svm")
    except Exception:  # a read-only cache: decoded again next time
        log.debug("face detector not cached", exc_info=True)
    return detector


def _load(loader: Any, role: str, path: Path) -> Any:
    _check_model_file(role, path)
    try:
        return loader(str(path))
    except Exception as exc:  # dlib raises RuntimeError with a multi-line serialization message
        raise ModelError(f"dlib {role} model unreadable: {path} ({one_line(exc)})") from None


_models_cache: dict[tuple[Path, Path, str, int], _Models] = {}


def _models_for(settings: FaceSettings) -> _Models:
    paths = model_paths(settings)
    key = (paths["landmarks"].resolve(), paths["descriptor"].resolve(),
           settings.descriptor_engine, settings.descriptor_threads)
    with _DLIB_LOCK:
        if key not in _models_cache:
            _models_cache[key] = _Models(*key)
        return _models_cache[key]


# ---------------------------------------------------------------------------------------------
# Analysis


class FaceAnalyzer:
    """Detects, aligns and describes faces; cheap to create (models are shared per process)."""

    def __init__(self, settings: FaceSettings | None = None) -> None:
        self.settings = settings or FaceSettings()
        self._models = _models_for(self.settings)

    @property
    def descriptor_engine(self) -> str:
        """Who runs the descriptor network: "numpy" or "dlib" (also after a fallback)."""
        return self._models.engine

    def describe(self, chip: np.ndarray) -> np.ndarray:
        """The float32[128] descriptor of an aligned (150, 150, 3) uint8 RGB chip (`Face.chip`)."""
        return self._models.describe(chip)

    # -- public API ----------------------------------------------------------------------------

    def analyze(self, image: Source) -> Face | NoFaceFound:
        """The chosen face with its descriptor, or NoFaceFound (raises ImageError on bad files)."""
        outcome = self.locate(image)
        if isinstance(outcome, Face):
            _ = outcome.descriptor
        return outcome

    def locate(self, image: Source) -> Face | NoFaceFound:
        """`analyze` but for the descriptor, computed on first use of `Face.descriptor`."""
        rgb = self._rgb(image)
        timings: dict[str, float] = {}
        detections = self._detect(rgb, timings, one=True)
        usable = self._usable(detections)
        if not usable:
            return NoFaceFound(self._no_face_reason(rgb, detections), tuple(detections), timings)
        return self._face(rgb, usable[0], timings)

    def analyze_many(self, images: Sequence[Source]) -> list[Face | NoFaceFound]:
        """`analyze` of each image, the descriptors of all their faces computed as one batch
        (see `FaceNet.descriptors`: equal to one-by-one ones at float32 rounding)."""
        outcomes = [self.locate(image) for image in images]
        faces = [o for o in outcomes if isinstance(o, Face)]
        if faces:
            start = time.perf_counter()
            vectors = self._models.describe_many(np.stack([face.chip for face in faces]))
            share = (time.perf_counter() - start) / len(faces)
            for face, vector in zip(faces, vectors, strict=True):
                face._descriptor = np.ascontiguousarray(vector, dtype=np.float32)
                face.timings["descriptor"] = share
        return outcomes

    def face_from(self, image: Source, detection: Detection) -> Face:
        """The face in `detection` of `image` (a box this analyzer's detector found there):
        landmarks and chip as `analyze` makes them, without the detector; the descriptor on
        first use of `Face.descriptor`."""
        return self._face(self._rgb(image), detection, {})

    def detect(self, image: Source) -> list[Detection]:
        """Every box the detector finds (weak ones included), best choice first."""
        return self._detect(self._rgb(image), {})

    def faces(self, image: Source, *, describe: bool = False) -> list[Face]:
        """Every usable face, best choice first (weak detections beside a confident face are left
        out); descriptors computed now if `describe`, else on first use of `Face.descriptor`."""
        rgb = self._rgb(image)
        faces = []
        for detection in self._usable(self._detect(rgb, {})):
            face = self._face(rgb, detection, {})
            if describe:
                _ = face.descriptor
            faces.append(face)
        return faces

    # -- steps -----------------------------------------------------------------------------------

    @staticmethod
    def _rgb(image: Source) -> np.ndarray:
        if isinstance(image, np.ndarray):
            if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size:
                return np.ascontiguousarray(image)
            return array_to_rgb(image)
        return load_image(image)

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

    def _detect(self, rgb: np.ndarray, timings: dict[str, float],
                one: bool = False) -> list[Detection]:
        """Every face, or with `one` at least the one `analyze` chooses (see `looks`): the first
        look with a confident face, else the closest look that found anything."""
        height, width = rgb.shape[:2]
        found: list[Detection] = []
        for scale in self.looks(height, width, one=one):
            seen = self._detect_at(rgb, scale, timings)
            usable = self._usable(seen)
            if usable and usable[0].score >= self.settings.weak_score:
                return seen
            found = seen or found
        return found

    def _detect_at(self, rgb: np.ndarray, scale: float,
                   timings: dict[str, float]) -> list[Detection]:
        """HOG detections on a copy of `rgb` scaled by `scale`, in full-resolution pixels
        (timings add up over several looks)."""
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        small = _resize(rgb, scale)
        timings["downscale"] = timings.get("downscale", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        with self._models.lock:
            rects, scores, _ = self._models.detector.run(
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
        return self._ranked(found, width, height)

    def _ranked(self, found: list[Detection], width: int, height: int) -> list[Detection]:
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

    def _usable(self, detections: list[Detection]) -> list[Detection]:
        """The detections that count as faces, in choice order: big enough, and not weak when
        a confident face is present (a weak one beside a real face is a false positive)."""
        minimum = self.settings.min_face_side
        usable = [d for d in detections
                  if min(d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]) >= minimum]
        if any(d.score >= self.settings.weak_score for d in usable):
            usable = [d for d in usable if d.score >= self.settings.weak_score]
        return usable

    def _no_face_reason(self, rgb: np.ndarray, detections: list[Detection]) -> str:
        height, width = rgb.shape[:2]
        if detections:
            side = max(min(d.rect[2] - d.rect[0], d.rect[3] - d.rect[1]) for d in detections)
            return (f"face too small ({side:.0f} px, faces.min_face_side is "
                    f"{self.settings.min_face_side})")
        return f"no face found in the {width}x{height} photo"

    def _face(self, rgb: np.ndarray, detection: Detection, timings: dict[str, float]) -> Face:
        import dlib

        height, width = rgb.shape[:2]
        scale = self.detection_scale(height, width)
        start = time.perf_counter()
        left, top, right, bottom = detection.rect
        if scale > 1.0:
            # A tiny photo: landmarks and chip on the upscaled copy the detector saw.
            pixels = _resize(rgb, scale)
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
        with self._models.lock:
            shape = self._models.predictor(pixels, rect)
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
            _shape=shape,
            _pixels=pixels,
            _models=self._models,
            _aligned_padding=self.settings.aligned_padding,
            detection=detection,
        )


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
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


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (dlib: < 0.6 is probably the same person)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


__all__ = [
    "DESCRIPTOR_CHIP_SIZE",
    "Detection",
    "Face",
    "FaceAnalyzer",
    "FaceSettings",
    "ModelError",
    "NoFaceFound",
    "default_models_dir",
    "descriptor_distance",
    "model_checksums",
    "model_paths",
    "to_gray",
]
