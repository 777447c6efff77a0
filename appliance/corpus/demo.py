"""The embedded demo corpus: real faces that ship with scikit-image, built on first use.

`demo_corpus()` writes the 100 face crops of `skimage.data.lfw_subset()` (25x25, upscaled 8x
so dlib's detector finds them; ~80 are found) and `skimage.data.astronaut()` to
`cache_dir()/demo-images`, builds `cache_dir()/demo-corpus` with the real pipeline and reuses it
afterwards as long as it opens cleanly with this appliance's models. A file lock makes
concurrent first uses (parallel tests, two commands) build it once.
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from appliance.corpus.build import WORK_DIR, build
from appliance.corpus.engines import DlibEngine
from appliance.corpus.format import MANIFEST, CorpusError
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.store import Corpus
from appliance.paths import cache_dir

DEMO_CORPUS = "demo-corpus"
DEMO_IMAGES = "demo-images"
LFW_FACES = 100  # the first 100 images of lfw_subset are faces, the other 100 are not
UPSCALE = 8


def demo_corpus(
    *, workers: int | None = None, progress: bool = False, face_settings: Any = None
) -> Path:
    """Path of the demo corpus, building it first if it is missing, invalid or made with
    other face models than `face_settings` name (default: the packaged models)."""
    base = cache_dir()
    corpus_dir = base / DEMO_CORPUS
    with open(base / f"{DEMO_CORPUS}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            Corpus.open(corpus_dir, face_settings=face_settings).close()
            return corpus_dir
        except CorpusError:
            pass
        finished = (corpus_dir / MANIFEST).exists()
        if corpus_dir.exists() and (finished or not (corpus_dir / WORK_DIR).exists()):
            shutil.rmtree(corpus_dir)  # invalid and not resumable: start again
        images = write_demo_images(base / DEMO_IMAGES, count=LFW_FACES)
        build(images, corpus_dir, workers=workers, settings=CorpusSettings(), progress=progress,
              engine=DlibEngine(face_settings))
        Corpus.open(corpus_dir, face_settings=face_settings).close()
        return corpus_dir


def write_demo_images(folder: Path, count: int = LFW_FACES, astronaut: bool = True) -> Path:
    """Write lfw_subset faces (upscaled PNGs) and the astronaut photo into `folder`."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    faces = data.lfw_subset()[:count]
    for i, face in enumerate(faces):
        path = folder / f"lfw-{i:03d}.png"
        if not path.exists():
            gray = Image.fromarray(np.clip(face * 255.0 + 0.5, 0, 255).astype(np.uint8))
            size = (gray.width * UPSCALE, gray.height * UPSCALE)
            _save(gray.resize(size, Image.Resampling.BICUBIC), path)
    if astronaut and not (folder / "astronaut.png").exists():
        _save(Image.fromarray(data.astronaut()), folder / "astronaut.png")
    return folder


def _save(image, path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
