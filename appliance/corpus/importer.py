"""Corpora from descriptors someone else computed: `sosie corpus import VECTORS.npy CORPUS_DIR`.

The .npy file is opened only if it is a regular file (a FIFO would block the import for ever);
its header is read and checked before any data (2-D, d = 128, a float dtype, at
least one row, the file as long as the header says); the data is then memory-mapped with
`allow_pickle=False` and checked block by block (finite, |value| <= MAX_ABS), so a bad file
costs one line and nothing is written. The corpus is finished like a build's (norms, PCA,
sketch: `writer.finalize`), with `synth`'s placeholder thumbnails; its manifest says
`synthetic: true` (no model checksums: the appliance cannot tell which model made the rows)
and `source.imported` names the file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from appliance.corpus import format as fmt
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.synth import DIM, corpus_bytes, finish_with_placeholders, prepare_directory
from appliance.files import NotRegular, check_room, open_regular

MAX_ABS = 1024.0  # descriptors are unit-scale (dlib's norms ~1.4); beyond this a file is wrong
BLOCK = 65536
FLOAT_KINDS = ("<f2", "<f4", "<f8", ">f2", ">f4", ">f8")


class VectorsError(ValueError):
    """A descriptor file that cannot be imported (one line naming the file and the value)."""


def read_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of an .npy file, refusing anything else."""
    try:
        with open_regular(path) as fh:
            try:
                version = np.lib.format.read_magic(fh)
            except ValueError:
                raise VectorsError(f"{path}: not a .npy file (no NumPy magic string)") from None
            readers = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                raise VectorsError(f"{path}: .npy format version {version} is not supported "
                                   "(expected 1.0 or 2.0)")
            try:
                shape, fortran, dtype = readers[version](fh, max_header_size=10000)
            except Exception as exc:  # numpy's header parser raises many kinds
                raise VectorsError(f"{path}: unreadable .npy header ({exc})") from None
            offset = fh.tell()
    except NotRegular as exc:
        raise VectorsError(f"{exc} (expected an .npy file)") from None
    except OSError as exc:
        raise VectorsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return shape, fortran, dtype, offset


def check_header(path: Path) -> tuple[int, np.dtype]:
    """The row count and dtype of a valid descriptor file (header and size only)."""
    shape, _, dtype, offset = read_header(path)
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise VectorsError(f"{path}: dtype {dtype} holds Python objects or records: expected "
                           "a float array (float16, float32 or float64)")
    if dtype.str not in FLOAT_KINDS:
        raise VectorsError(f"{path}: dtype {dtype}: expected float16, float32 or float64")
    if len(shape) != 2:
        raise VectorsError(f"{path}: shape {shape} is {len(shape)}-D: expected (N, {DIM})")
    count, dim = shape
    if dim != DIM:
        raise VectorsError(f"{path}: shape {shape}: expected {DIM} columns (N, {DIM})")
    if not 1 <= count <= fmt.MAX_COUNT:
        raise VectorsError(f"{path}: {count} rows: expected 1 to {fmt.MAX_COUNT}")
    expected = offset + count * dim * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise VectorsError(f"{path}: {size} bytes, but its header ({shape} {dtype}) needs "
                           f"{expected}: truncated or padded")
    return count, dtype


def load_descriptors(path: str | Path) -> np.ndarray:
    """The (N, 128) descriptors of an .npy file, memory-mapped, every value checked."""
    path = Path(path)
    check_header(path)
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise VectorsError(f"{path}: cannot load ({exc})") from None
    for start in range(0, len(vectors), BLOCK):
        block = np.asarray(vectors[start : start + BLOCK])
        bad = ~np.isfinite(block) | (np.abs(block) > MAX_ABS)
        if bad.any():
            row, column = (int(v) for v in np.argwhere(bad)[0])
            value = block[row, column]
            raise VectorsError(f"{path}: row {start + row}, column {column} is {value!r}: "
                               f"expected finite values within +-{MAX_ABS:g}")
    return vectors


def import_descriptors(
    vectors_file: str | Path,
    corpus_dir: str | Path,
    *,
    settings: CorpusSettings | None = None,
    overwrite: bool = False,
    seed: int = 0,
) -> Path:
    """Write a corpus to `corpus_dir` from the (N, 128) float array in `vectors_file`.

    Rows are stored as float16 (as every corpus); norms, PCA, coordinates and the sketch are
    computed as by `sosie build`. Placeholder thumbnails are drawn with `seed`. Raises
    VectorsError (a ValueError) on a bad file before anything is written.
    """
    source = Path(vectors_file)
    vectors = load_descriptors(source)
    count = len(vectors)
    settings = settings or CorpusSettings()
    directory = Path(corpus_dir)
    started = time.monotonic()
    check_room(directory, corpus_bytes(count), f"a corpus of {count} rows in {directory}")
    prepare_directory(directory, overwrite)
    with open(directory / fmt.DESCRIPTORS, "wb") as fh:
        for start in range(0, count, BLOCK):
            block = np.asarray(vectors[start : start + BLOCK], dtype=np.float64)
            fh.write(block.astype("<f2").tobytes())
    del vectors
    source_fields = {"folder": None, "imported": str(source.resolve()),
                     "sha256": fmt.sha256_file(source), "generator": "sosie corpus import",
                     "files": 1, "rejected": 0}
    names = (f"{source.name}:{i}" for i in range(count))
    return finish_with_placeholders(directory, count, np.random.default_rng(seed), settings,
                                    source_fields, names, started)
