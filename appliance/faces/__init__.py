"""The appliance's eyes: find, align and describe a face.

`FaceAnalyzer` (analyzer.py) runs the pipeline over the modules of one concern each: settings,
model_files, models, detection, face, crops; dlib's face ResNet on numpy's BLAS is resnet.py.
The public names are importable from here too (`from appliance.faces import FaceAnalyzer`),
each loaded on first use, so that importing `appliance.faces.settings` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of this package that defines it
PUBLIC = {
    "FaceAnalyzer": "analyzer",
    "FaceSettings": "settings",
    "DESCRIPTOR_CHIP_SIZE": "face",
    "Detection": "face",
    "Face": "face",
    "NoFaceFound": "face",
    "descriptor_distance": "face",
    "DESCRIPTOR_FILE": "model_files",
    "LANDMARKS_FILE": "model_files",
    "ModelError": "model_files",
    "default_models_dir": "model_files",
    "model_checksums": "model_files",
    "model_paths": "model_files",
    "to_gray": "crops",
}

__all__ = sorted(PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{PUBLIC[name]}"), name)
