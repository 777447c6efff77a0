"""Finishing a corpus directory: norms, PCA, coordinates, sketch and its scan layout, checksums,
then the manifest; `add_scan_layout` gives a corpus built before the layout files its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from appliance.corpus import format as fmt
from appliance.corpus.pca import PCAModel, fit_pca
from appliance.corpus.sketch import (
    SKETCH_AXES,
    build_sketch,
    read_sketch,
    write_scan_layout,
    write_sketch,
)

BLOCK = 32768


def clear_manifest(directory: Path) -> None:
    """Mark `directory` as unfinished before rewriting its data files."""
    (Path(directory) / fmt.MANIFEST).unlink(missing_ok=True)


def finalize(directory: Path, count: int, dim: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Derive norms, PCA, coordinates and the sketch from descriptors.f16, then the manifest.

    The caller has written descriptors.f16, thumbs.pack, thumbs.idx, sources.tsv and
    rejected.tsv. `fields` supplies the descriptive manifest keys (synthetic, source, model,
    thumbnails, ...). Returns the manifest.
    """
    directory = Path(directory)
    vectors = _vectors(directory, count, dim)
    norms = row_norms(vectors)
    _write_array(directory / fmt.NORMS, norms.astype("<f4"))
    pca = fit_pca(vectors) if count else _empty_pca(dim)
    _write_array(directory / fmt.PCA, np.vstack([pca.mean, pca.components]).astype("<f8"))
    coords = project_rows(pca, vectors)
    _write_array(directory / fmt.COORDS3D, coords.astype("<f4"))
    _write_array(directory / fmt.COORDS2D, np.ascontiguousarray(coords[:, :2]).astype("<f4"))
    sketch = build_sketch(vectors, min(SKETCH_AXES, dim)) if dim % 8 == 0 else None
    layout = None
    if sketch is not None:
        write_sketch(directory, sketch, fmt.SKETCH_FILES)
        layout = write_scan_layout(directory, sketch, fmt.LAYOUT_FILES)
    del vectors
    manifest: dict[str, Any] = {
        "format": fmt.FORMAT_NAME,
        "format_version": fmt.FORMAT_VERSION,
        "count": count,
        "dim": dim,
        "synthetic": bool(fields.get("synthetic", False)),
        "built": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    manifest.update({k: v for k, v in fields.items() if k not in manifest})
    manifest["descriptors"] = {
        "dtype": "float16",
        "byte_order": "little",
        "layout": "row-major",
        "norms": "float32 Euclidean norms of the stored float16 rows",
    }
    manifest["pca"] = {
        "components": fmt.PCA_COMPONENTS,
        "fitted_on": "all stored descriptors (float16 widened to float64)",
        "sign_convention": "largest-magnitude entry of each component positive",
        "explained_variance": [float(v) for v in pca.explained_variance],
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio],
    }
    manifest["sketch"] = None if sketch is None else {
        "axes": sketch.axes,
        "code": "int8, per-axis scale; rows rotated onto all principal axes (sketch.f64)",
        "variance_explained": round(sketch.variance_explained, 6),
        "error": float(sketch.error),
        "layout": layout,  # the codes laid out for the scan (appliance.search.layout)
    }
    manifest["files"] = fmt.file_entries(directory, fmt.data_files(manifest))
    fmt.write_manifest(directory, manifest)
    fmt.fsync_dir(directory)
    return manifest


def add_scan_layout(directory: Path) -> bool:
    """Write the scan layout files of a corpus built before them, and its manifest again with
    their sizes and checksums (atomically, last). False if it has them already or has no sketch
    (format version 1: nothing to lay out); a CorpusError if it does not open cleanly."""
    from appliance.corpus.store import Corpus

    directory = Path(directory)
    with Corpus.open(directory, check_model=False) as corpus:
        manifest = dict(corpus.manifest)
        axes = fmt.sketch_axes(manifest)
        if axes is None or fmt.scan_layout_entry(manifest):
            return False
        sketch = read_sketch(directory, corpus.count, corpus.dim, axes, fmt.SKETCH_FILES)
        layout = write_scan_layout(directory, sketch, fmt.LAYOUT_FILES)
    manifest["sketch"] = {**manifest["sketch"], "layout": layout}
    files = dict(manifest["files"])
    files.update(fmt.file_entries(directory, fmt.LAYOUT_FILES))
    manifest["files"] = files
    fmt.check_manifest(manifest, directory / fmt.MANIFEST)  # never write one it would refuse
    fmt.write_manifest(directory, manifest)
    fmt.fsync_dir(directory)
    return True


def row_norms(vectors: np.ndarray) -> np.ndarray:
    """float32 Euclidean norm of every row, computed in float64 block by block."""
    out = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), BLOCK):
        block = np.asarray(vectors[start : start + BLOCK], dtype=np.float64)
        out[start : start + BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


def project_rows(pca: PCAModel, vectors: np.ndarray) -> np.ndarray:
    """(N, 3) float64 PCA coordinates of every row, block by block."""
    out = np.empty((len(vectors), fmt.PCA_COMPONENTS), dtype=np.float64)
    for start in range(0, len(vectors), BLOCK):
        out[start : start + BLOCK] = pca.project(vectors[start : start + BLOCK])
    return out


def _vectors(directory: Path, count: int, dim: int) -> np.ndarray:
    if count == 0:
        return np.zeros((0, dim), dtype="<f2")
    return np.memmap(directory / fmt.DESCRIPTORS, dtype="<f2", mode="r", shape=(count, dim))


def _empty_pca(dim: int) -> PCAModel:
    k = fmt.PCA_COMPONENTS
    return PCAModel(np.zeros(dim), np.zeros((k, dim)), np.zeros(k), np.zeros(k))


def _write_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        fh.write(np.ascontiguousarray(array).tobytes())
