"""Synthetic corpora at full scale, for benchmarks and tests (marked `synthetic: true`).

Descriptors imitate dlib's: a common offset shared by all faces plus an anisotropic Gaussian
spread in a random orientation whose principal variances are those fitted to real descriptors
of generated faces (`appliance.corpus.spectrum`, package data spectrum.json), rescaled to the
norms of real photos' descriptors (~1.46; the DCGAN's faces have ~1.40), so random pairs sit
~0.68 apart and the nearest of 200k neighbours much closer, as with real faces.
Thumbnails are 64 procedural colour placeholder faces shared by all rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from threadpoolctl import threadpool_limits

from appliance.corpus import format as fmt
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.spectrum import load_spectrum
from appliance.corpus.thumbs import INDEX_DTYPE, encode
from appliance.corpus.writer import clear_manifest, finalize
from appliance.files import check_room, refuse_links, remove_tree

DIM = 128
NORM_MEAN, NORM_SD = 1.46, 0.035  # real photos' descriptors
PLACEHOLDERS = 64
BLOCK = 65536


def synth(
    corpus_dir: str | Path,
    count: int,
    seed: int = 0,
    *,
    settings: CorpusSettings | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic corpus of `count` rows to `corpus_dir` (deterministic for a seed)."""
    if not 1 <= count <= fmt.MAX_COUNT:
        raise ValueError(f"count = {count}: expected 1 to {fmt.MAX_COUNT} rows")
    settings = settings or CorpusSettings()
    directory = Path(corpus_dir)
    check_room(directory, corpus_bytes(count), f"a corpus of {count} rows in {directory}")
    prepare_directory(directory, overwrite)
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    offset, basis = descriptor_model(rng)
    with open(directory / fmt.DESCRIPTORS, "wb") as fh:
        for start in range(0, count, BLOCK):
            rows = min(BLOCK, count - start)
            fh.write(draw_descriptors(rng, offset, basis, rows).astype("<f2").tobytes())
    source = {"folder": None, "generator": "sosie corpus synth", "seed": int(seed),
              "files": count, "rejected": 0}
    names = (f"synthetic/{i:07d}" for i in range(count))
    return finish_with_placeholders(directory, count, rng, settings, source, names, started)


def finish_with_placeholders(directory: Path, count: int, rng: np.random.Generator,
                             settings: CorpusSettings, source: dict[str, Any],
                             names: Iterable[str], started: float) -> Path:
    """The rest of a corpus whose descriptors.f16 is written (synth, import): placeholder
    thumbnails, `sources.tsv` from `names`, an empty rejected list, then the manifest with
    `source` (norms, PCA, sketch and checksums by `writer.finalize`)."""
    _write_thumbnails(directory, count, rng, settings)
    (directory / fmt.SOURCES).write_bytes(fmt.tsv_bytes(("row", "path"), enumerate(names)))
    (directory / fmt.REJECTED).write_bytes(fmt.tsv_bytes(("path", "reason"), ()))
    fields = {
        "synthetic": True,
        "build_seconds": round(time.monotonic() - started, 3),
        "source": source,
        "model": None,
        "thumbnails": {
            "encoding": settings.thumbnail_encoding,
            "size": settings.thumbnail_size,
            "gray": False,
            "placeholders": min(PLACEHOLDERS, count),
        },
    }
    finalize(directory, count, DIM, fields)
    return directory


def corpus_bytes(count: int) -> int:
    """The least a corpus of `count` rows takes on disk (its fixed-size files with the smallest
    sketch, 8 axes; thumbnails not counted): what must fit before writing starts."""
    return sum(fmt.expected_sizes(count, DIM, 8).values())


def prepare_directory(directory: Path, overwrite: bool) -> None:
    """An empty `directory` to write a corpus in (`overwrite`: a corpus there is removed first;
    a link in place of the folder or of its files is refused, naming it)."""
    refuse_links(directory, [*fmt.DATA_FILES, fmt.MANIFEST], "corpus folder", itself=overwrite)
    if directory.exists() and any(directory.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{directory}: not empty (use --force to replace it)")
        if not (directory / fmt.MANIFEST).exists() and not (directory / fmt.DESCRIPTORS).exists():
            raise FileExistsError(f"{directory}: not empty and not a corpus; refusing to replace")
        remove_tree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clear_manifest(directory)


def descriptor_model(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A common offset (d,) and a basis (d, d) whose columns are scaled principal axes."""
    spectrum = load_spectrum()
    direction = rng.standard_normal(DIM)
    offset = direction / np.linalg.norm(direction) * np.sqrt(NORM_MEAN**2 - spectrum.trace)
    with threadpool_limits(limits=1, user_api="blas"):
        q, r = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    q *= np.sign(np.diag(r))
    return offset.astype(np.float32), (q * np.sqrt(spectrum.eigenvalues)).astype(np.float32)


def draw_descriptors(
    rng: np.random.Generator, offset: np.ndarray, basis: np.ndarray, rows: int
) -> np.ndarray:
    """(rows, 128) float32 descriptors of the model `descriptor_model` made."""
    z = rng.standard_normal((rows, DIM), dtype=np.float32)
    x = offset + z @ basis.T
    target = rng.normal(NORM_MEAN, NORM_SD, rows).clip(NORM_MEAN - 4 * NORM_SD, None)
    x *= (target / np.linalg.norm(x, axis=1)).astype(np.float32)[:, None]
    return x


def _write_thumbnails(
    directory: Path, count: int, rng: np.random.Generator, settings: CorpusSettings
) -> None:
    blobs = [
        encode(placeholder_face(settings.thumbnail_size, rng), settings.thumbnail_encoding,
               settings.jpeg_quality)
        for _ in range(min(PLACEHOLDERS, count))
    ]
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    with open(directory / fmt.THUMBS_PACK, "wb") as fh:
        fh.write(b"".join(blobs))
    which = np.arange(count) % len(blobs)
    index = np.empty((count, 2), dtype=INDEX_DTYPE)
    index[:, 0] = offsets[which]
    index[:, 1] = np.diff(offsets)[which]
    (directory / fmt.THUMBS_INDEX).write_bytes(index.tobytes())


def placeholder_face(size: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural RGB face-like placeholder (size, size, 3): head, hair, eyes, nose, mouth,
    with a skin tone, hair colour and background drawn at random."""
    s = size / 100.0
    tone = rng.uniform(0.25, 1.0)  # dark to light skin, warm hues
    skin = tuple(int(v) for v in np.array([225, 180, 150]) * tone + np.array([20, 10, 5]))
    hair = tuple(int(v) for v in rng.choice([[30, 22, 16], [90, 60, 30], [160, 110, 50],
                                             [200, 170, 110], [60, 60, 62], [120, 40, 25]]))
    background = tuple(int(v) for v in rng.integers(120, 250, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    w, h = rng.uniform(30, 40), rng.uniform(40, 48)
    cx, cy = 50 + rng.uniform(-2, 2), 55 + rng.uniform(-2, 2)
    draw.ellipse([s * (cx - w - 3), s * (cy - h - 6), s * (cx + w + 3), s * (cy + h - 14)], hair)
    draw.ellipse([s * (cx - w), s * (cy - h), s * (cx + w), s * (cy + h)], skin)
    eye_y, gap, eye = cy - rng.uniform(6, 12), rng.uniform(12, 17), rng.uniform(3, 5)
    iris = tuple(int(v) for v in rng.choice([[60, 40, 25], [70, 110, 150], [80, 110, 70]]))
    for side in (-1, 1):
        ex = cx + side * gap
        draw.ellipse([s * (ex - eye * 1.6), s * (eye_y - eye), s * (ex + eye * 1.6),
                      s * (eye_y + eye)], (235, 232, 225))
        draw.ellipse([s * (ex - eye * 0.7), s * (eye_y - eye * 0.7), s * (ex + eye * 0.7),
                      s * (eye_y + eye * 0.7)], iris)
        draw.line([s * (ex - 8), s * (eye_y - 8), s * (ex + 8), s * (eye_y - 9)], hair,
                  width=max(1, int(2 * s)))
    shade = tuple(max(0, v - 50) for v in skin)
    draw.line([s * cx, s * (eye_y + 4), s * (cx - 3), s * (cy + 10)], shade,
              width=max(1, int(1.5 * s)))
    mouth_y, mouth_w = cy + rng.uniform(18, 24), rng.uniform(8, 14)
    lips = (min(255, skin[0] - 10), max(0, skin[1] - 70), max(0, skin[2] - 60))
    draw.arc([s * (cx - mouth_w), s * (mouth_y - 5), s * (cx + mouth_w), s * (mouth_y + 5)],
             10, 170, lips, width=max(1, int(2 * s)))
    image = image.filter(ImageFilter.GaussianBlur(radius=max(0.5, s)))
    noise = rng.normal(0, 6, (size, size, 1))
    return np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
