"""The dlib models (HOG detector, 5-point landmarks, descriptor network), loaded once per process
and shared by every analyzer: `models_for(settings)`; `ProcessModels` is that cache."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import one_line
from appliance.faces.model_files import ModelError, check_model_file, model_paths
from appliance.faces.settings import FaceSettings
from appliance.files import sha256_file
from appliance.paths import cache_dir

log = logging.getLogger(__name__)

#: dlib's detector, predictor and network keep per-call state: one call at a time per process.
DLIB_LOCK = threading.RLock()


class Models:
    """The models for one pair of model files and one descriptor engine (from a
    `ProcessModels`, which loads each file once)."""

    def __init__(self, loaded: ProcessModels, landmarks: Path, descriptor: Path,
                 engine: str = "numpy", threads: int = 1) -> None:
        check_model_file("landmarks", landmarks)  # fail fast, before any slow load
        check_model_file("descriptor", descriptor)
        self.detector = loaded.model("detector", None)
        self.predictor = loaded.model("landmarks", landmarks)
        self.network = loaded.numpy_network(descriptor, threads) if engine == "numpy" else None
        self.recognizer = (None if self.network is not None
                           else loaded.model("descriptor", descriptor))
        self.lock = DLIB_LOCK

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



class ProcessModels:
    """Every model file loaded in this process, each once, and the `Models` per settings."""

    def __init__(self) -> None:
        self.loaded: dict[tuple[str, Path], Any] = {}
        self.bundles: dict[tuple[Path, Path, str, int], Models] = {}

    def for_settings(self, settings: FaceSettings) -> Models:
        """The models `settings` name (files, descriptor engine and threads)."""
        paths = model_paths(settings)
        key = (paths["landmarks"].resolve(), paths["descriptor"].resolve(),
               settings.descriptor_engine, settings.descriptor_threads)
        with DLIB_LOCK:
            if key not in self.bundles:
                self.bundles[key] = Models(self, *key)
            return self.bundles[key]

    def numpy_network(self, path: Path, threads: int) -> Any:
        """dlib's ResNet on numpy (appliance.faces.resnet), or None (with a warning) to let dlib
        run it."""
        from appliance.faces.resnet import FaceNet, NetworkFormatError

        key = (f"descriptor-numpy-{threads}", path)
        with DLIB_LOCK:
            if key not in self.loaded:
                try:
                    self.loaded[key] = FaceNet.load(path, threads)
                except NetworkFormatError as exc:  # load turns every reading error into this
                    log.warning("descriptor model %s: numpy engine unavailable (%s); using dlib",
                                path, exc)
                    self.loaded[key] = None
            return self.loaded[key]

    def model(self, role: str, path: Path | None) -> Any:
        """dlib's model for `role` ("detector": the HOG detector; "landmarks"; "descriptor")."""
        import dlib

        key = (role, path or Path())
        with DLIB_LOCK:
            if key not in self.loaded:
                if path is None:
                    self.loaded[key] = frontal_detector()
                else:
                    loader = dlib.shape_predictor if role == "landmarks" else (
                        dlib.face_recognition_model_v1)
                    self.loaded[key] = _load(loader, role, path)
            return self.loaded[key]


#: The models of this process.
PROCESS_MODELS = ProcessModels()


def models_for(settings: FaceSettings) -> Models:
    """The models `settings` name, loaded once per process and shared by every analyzer."""
    return PROCESS_MODELS.for_settings(settings)


def frontal_detector() -> Any:
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
    check_model_file(role, path)
    try:
        return loader(str(path))
    except Exception as exc:  # dlib raises RuntimeError with a multi-line serialization message
        raise ModelError(f"dlib {role} model unreadable: {path} ({one_line(exc)})") from None

