"""What turns an image into a descriptor during a build: dlib (real) or a mock (tests, CI).

An engine is a small picklable description sent to every worker process; `create()` loads the
models there, once per worker. `checksums()` identifies the models in the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Analyzer(Protocol):
    def analyze(self, image: np.ndarray) -> Any: ...


class Engine(Protocol):
    def checksums(self) -> dict[str, str]: ...

    def settings(self) -> dict[str, Any]: ...

    def create(self) -> Analyzer: ...


@dataclass(frozen=True)
class DlibEngine:
    """The appliance's own pipeline: `appliance.faces.analyzer.FaceAnalyzer` with these settings."""

    face_settings: Any = None

    def _settings(self) -> Any:
        from appliance.faces.settings import FaceSettings

        return self.face_settings if self.face_settings is not None else FaceSettings()

    def checksums(self) -> dict[str, str]:
        from appliance.faces.model_files import model_checksums

        return model_checksums(self._settings())

    def settings(self) -> dict[str, Any]:
        """The face settings, and the version of the code that applies them (`PIPELINE`)."""
        from appliance.faces.face import PIPELINE

        record = dataclasses.asdict(self._settings())
        return {**{k: (str(v) if isinstance(v, Path) else v) for k, v in record.items()},
                "pipeline": PIPELINE}

    def create(self) -> Analyzer:
        from appliance.faces.analyzer import FaceAnalyzer

        return FaceAnalyzer(self._settings())


MOCK_CHECKSUM = hashlib.sha256(b"sosie mock analyzer v1").hexdigest()


@dataclass(frozen=True)
class MockEngine:
    """A fast stand-in for dlib: the descriptor is the image itself shrunk to 16x8 gray pixels,
    centred and scaled to norm 1.46; a flat image (no contrast) has "no face"."""

    def checksums(self) -> dict[str, str]:
        return {"mock": MOCK_CHECKSUM}

    def settings(self) -> dict[str, Any]:
        return {"engine": "mock"}

    def create(self) -> Analyzer:
        return MockAnalyzer()


@dataclass(frozen=True)
class MockFace:
    descriptor: np.ndarray
    gray: np.ndarray

    def aligned(self, size: int, gray: bool = False) -> np.ndarray:
        from PIL import Image

        image = Image.fromarray(self.gray).resize((size, size), Image.Resampling.BILINEAR)
        out = np.asarray(image)
        return out if gray else np.repeat(out[..., None], 3, axis=2)


class MockAnalyzer:
    def analyze(self, image: np.ndarray) -> Any:
        from PIL import Image

        from appliance.faces.face import NoFaceFound

        gray = np.asarray(Image.fromarray(image).convert("L"))
        if float(gray.std()) < 2.0:
            return NoFaceFound(f"no face found in the {gray.shape[1]}x{gray.shape[0]} photo")
        small = np.asarray(
            Image.fromarray(gray).resize((16, 8), Image.Resampling.BOX), dtype=np.float64
        ).reshape(128)
        small -= small.mean()
        norm = np.linalg.norm(small)
        vector = small / norm * 1.46 if norm > 0 else np.full(128, 1.46 / np.sqrt(128))
        return MockFace(vector.astype(np.float32), gray)
