"""Which dlib model files the analyzer uses, and their checksums (recorded by a build, checked
by every cluster worker): the face-recognition-models package's copies unless the `faces`
section names others."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from appliance.faces.settings import FaceSettings
from appliance.files import sha256_file

LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class ModelError(RuntimeError):
    """A dlib model file that is missing or unreadable, named on one line."""


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
        check_model_file(role, path)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _checksum_cache:
            _checksum_cache[key] = sha256_file(path)
        out[role] = _checksum_cache[key]
    return out


def check_model_file(role: str, path: Path) -> None:
    """ModelError (one line, naming the setting) unless `path` is a non-empty file."""
    key = f"faces.{role}_model"
    if not path.is_file():
        raise ModelError(f"dlib {role} model not found: {path} (set {key} or install "
                         "face-recognition-models)")
    if path.stat().st_size == 0:
        raise ModelError(f"dlib {role} model is empty: {path} (set {key} to a valid file)")
