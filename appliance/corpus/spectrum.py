"""The descriptor spectrum behind synthetic corpora, fitted to real descriptors.

`sosie corpus synth` draws descriptors from a Gaussian model: a common offset plus a spread whose
principal variances are `load_spectrum().eigenvalues`, the eigenvalues of the covariance of real
dlib descriptors of generated faces (package data `spectrum.json`, a few KB). This module makes
that file::

    .venv/bin/python -m appliance.corpus.spectrum --faces 3000 --save-descriptors /tmp/faces.npy

generates faces with the numpy DCGAN, describes them with `FaceAnalyzer`, fits the covariance
and writes `appliance/corpus/spectrum.json` (eigenvalues, mean norm, how many faces) and prints
the share of variance explained by the first m principal axes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

SPECTRUM_FILE = Path(__file__).with_name("spectrum.json")
DIM = 128
AXES_REPORTED = (8, 16, 24, 32, 40, 48, 56, 64, 96, 128)


@dataclass(frozen=True)
class Spectrum:
    """Principal variances (descending, float64[128]) and the norm of real descriptors."""

    eigenvalues: np.ndarray
    norm_mean: float
    norm_sd: float

    @property
    def trace(self) -> float:
        """Total variance: E|x - y|^2 = 2 * trace for random pairs."""
        return float(self.eigenvalues.sum())


@cache
def load_spectrum(path: Path = SPECTRUM_FILE) -> Spectrum:
    """The fitted spectrum (package data), every value checked.

    Eigenvalues finite, >= 0, at most 1 (a descriptor's squared norm is ~2), descending, with a
    positive sum; norms positive and below 10; a one-line ValueError names the file otherwise.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        values = np.asarray(data["eigenvalues"], dtype=np.float64)
        norm_mean, norm_sd = float(data["norm_mean"]), float(data["norm_sd"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable descriptor spectrum ({exc})") from None
    if values.shape != (DIM,):
        raise ValueError(f"{path}: 'eigenvalues' has {values.size} values, expected {DIM}")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise ValueError(f"{path}: 'eigenvalues' must be finite numbers in [0, 1]")
    if np.any(np.diff(values) > 0) or values.sum() <= 0:
        raise ValueError(f"{path}: 'eigenvalues' must be descending with a positive sum")
    if not (0 < norm_mean < 10 and 0 <= norm_sd < norm_mean / 4) or (
            norm_mean**2 <= values.sum()):
        raise ValueError(f"{path}: norm_mean {norm_mean}, norm_sd {norm_sd}: out of range")
    return Spectrum(values, norm_mean, norm_sd)


def explained(eigenvalues: np.ndarray, axes: tuple[int, ...] = AXES_REPORTED) -> dict[int, float]:
    """Share of the total variance on the first m axes, for each m."""
    cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
    return {m: float(cumulative[m - 1]) for m in axes if m <= len(eigenvalues)}


def fit(descriptors: np.ndarray) -> dict[str, Any]:
    """The spectrum file's content for (n, 128) descriptors."""
    x = np.asarray(descriptors, dtype=np.float64)
    centred = x - x.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred / max(len(x) - 1, 1))[::-1]
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    norms = np.linalg.norm(x, axis=1)
    return {
        "source": "dlib descriptors (FaceAnalyzer) of faces from the numpy DCGAN "
                  "(gan-face-generate 1.1.1 weights), 256 px",
        "faces": len(x),
        "norm_mean": float(norms.mean()),
        "norm_sd": float(norms.std()),
        "trace": float(eigenvalues.sum()),
        "eigenvalues": [float(f"{v:.6e}") for v in eigenvalues],
    }


def describe_generated(count: int, seed: int = 0, batch: int = 64) -> tuple[np.ndarray, int]:
    """(descriptors of up to `count` generated faces, faces drawn): misses are skipped."""
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.faces.face import NoFaceFound
    from appliance.generator.dcgan import DCGAN

    net, analyzer = DCGAN.load(), FaceAnalyzer()
    out: list[np.ndarray] = []
    drawn = 0
    started = time.monotonic()
    while len(out) < count:
        images = net.faces(seed, range(drawn, drawn + batch), size=256)
        drawn += batch
        for image in images:
            face = analyzer.analyze(image)
            if not isinstance(face, NoFaceFound):
                out.append(np.asarray(face.descriptor, dtype=np.float32))
        print(f"{drawn} drawn, {len(out)} described, {time.monotonic() - started:.0f} s",
              flush=True)
    return np.stack(out[:count]), drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=3000, help="descriptors to fit on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--descriptors", type=Path, help="fit these (n, 128) instead")
    parser.add_argument("--save-descriptors", type=Path, help="also keep the descriptors here")
    parser.add_argument("--out", type=Path, default=SPECTRUM_FILE)
    args = parser.parse_args(argv)
    if args.descriptors:
        descriptors, drawn = np.load(args.descriptors), 0
    else:
        descriptors, drawn = describe_generated(args.faces, args.seed)
        if args.save_descriptors:
            np.save(args.save_descriptors, descriptors)
    content = fit(descriptors)
    if drawn:
        content["drawn"] = drawn
        content["seed"] = args.seed
    args.out.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {content['faces']} descriptors, trace {content['trace']:.4f}")
    print("axes  variance explained")
    for m, share in explained(np.asarray(content["eigenvalues"])).items():
        print(f"{m:4d}  {100 * share:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
