"""The on-disk corpus format: file names, the manifest, cheap validation, checksums.

A corpus is a directory (see README, "Corpus format")::

    manifest.yaml    format version, count, dim, models, PCA, per-file sizes and sha256
    descriptors.f16  (N, d) float16, little-endian, row-major: memory-mapped as is
    norms.f32        (N,) float32 Euclidean norms of the stored float16 rows
    pca.f64          (1 + k, d) float64: the mean, then k = 3 principal axes
    coords2d.f32     (N, 2) float32 PCA coordinates (first two axes)
    coords3d.f32     (N, 3) float32 PCA coordinates
    thumbs.pack      encoded aligned thumbnails (colour; gray in older corpora), back to back
    thumbs.idx       (N, 2) uint64 little-endian: byte offset and length of row i in thumbs.pack
    sources.tsv      row <TAB> source path (relative to the source folder), one line per row
    rejected.tsv     path <TAB> reason, for every file that is not in the corpus
    sketch.i8        (N, m) int8: leading m principal coordinates, per-axis scale (corpus.sketch)
    sketch_tails.f32 (N,) float32: norm of each row's remaining principal coordinates
    sketch.f64       (d + 3, d) float64: mean, the d x d rotation, the scales, the bounds
    sketch_blocks.u8   the sketch laid out for the scan's first stage (blocks of 16 rows) and
    sketch_records.u8  second stage (one record per row), appliance.search.layout; the manifest's
                       `sketch.layout` says which layout (version, first axes, record bytes)

Format version 1 has no sketch files: opening one computes the sketch in memory on first
search (`Corpus.sketch`); `sosie build` and `sosie corpus synth` write version 2. A version-2
corpus without the layout files (built before them) opens as well: its layout is built in
memory when a scanner opens, and `sosie corpus verify --repair` writes them.
The manifest is written last, so a directory without it is an unfinished build.
"""

from __future__ import annotations

import datetime as dt
import math
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from appliance import safe_yaml
from appliance.files import atomic_write_bytes, fsync_dir, sha256_file
from appliance.search.settings import MAX_SKETCH_AXES  # the scan's limit (ext/kernels)

# re-exported for the corpus modules
__all__ = ["MAX_SKETCH_AXES", "atomic_write_bytes", "fsync_dir", "sha256_file"]

FORMAT_NAME = "sosie-corpus"
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
PCA_COMPONENTS = 3

#: Hostile-manifest bounds, so that a manifest cannot make `verify` read (or `open` allocate)
#: without limit: a real manifest is ~3 KB; ten million rows is 50x the reference corpus (its
#: descriptors alone, 2.6 GB, are the most a Pi 4 could keep in memory); d is 128 in practice.
MAX_MANIFEST_BYTES = 1 << 20
MAX_COUNT = 10_000_000
MAX_DIM = 1024
MAX_THUMBNAIL_SIZE = 4096
MAX_PATH_BYTES = 4096  # one source path in sources.tsv, before escaping
MAX_REJECTED_BYTES = 1 << 30

MANIFEST = "manifest.yaml"
DESCRIPTORS = "descriptors.f16"
NORMS = "norms.f32"
PCA = "pca.f64"
COORDS2D = "coords2d.f32"
COORDS3D = "coords3d.f32"
THUMBS_PACK = "thumbs.pack"
THUMBS_INDEX = "thumbs.idx"
SOURCES = "sources.tsv"
REJECTED = "rejected.tsv"

SKETCH_CODES = "sketch.i8"
SKETCH_TAILS = "sketch_tails.f32"
SKETCH_HEADER = "sketch.f64"
SKETCH_FILES = (SKETCH_CODES, SKETCH_TAILS, SKETCH_HEADER)
SKETCH_BLOCKS = "sketch_blocks.u8"
SKETCH_RECORDS = "sketch_records.u8"
LAYOUT_FILES = (SKETCH_BLOCKS, SKETCH_RECORDS)

V1_FILES = (
    DESCRIPTORS,
    NORMS,
    PCA,
    COORDS2D,
    COORDS3D,
    THUMBS_INDEX,
    THUMBS_PACK,
    SOURCES,
    REJECTED,
)
DATA_FILES = (*V1_FILES, *SKETCH_FILES, *LAYOUT_FILES)

# Manifest keys whose values legitimately differ between two builds of the same input.
VOLATILE_KEYS = ("built", "build_seconds")


class CorpusError(ValueError):
    """An unusable corpus, described on one line naming the file and the problem."""


def data_files(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The data files of a corpus with this (checked) manifest: the sketch's if it has one, its
    scan layout's if it has one."""
    if sketch_axes(manifest) is None:
        return V1_FILES
    return DATA_FILES if scan_layout_entry(manifest) else (*V1_FILES, *SKETCH_FILES)


def sketch_axes(manifest: Mapping[str, Any]) -> int | None:
    """m, the axes of the sketch a (checked) manifest records, or None (format version 1, or
    a dimension that is not a multiple of 8)."""
    return (manifest.get("sketch") or {}).get("axes")


def scan_layout_entry(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The (checked) manifest's `sketch.layout`: version, first_axes, record_bytes, l1_max."""
    return (manifest.get("sketch") or {}).get("layout")


def expected_sizes(count: int, dim: int, axes: int | None = None,
                   layout: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Exact byte sizes of the fixed-layout files for `count` rows of dimension `dim`."""
    sketch = {} if axes is None else {
        SKETCH_CODES: count * axes,
        SKETCH_TAILS: count * 4,
        SKETCH_HEADER: (dim + 3) * dim * 8,
    }
    if axes is not None and layout:  # blocks of 16 rows, one record per row (search.layout)
        sketch[SKETCH_BLOCKS] = -(-count // 16) * (16 * layout["first_axes"] + 64)
        sketch[SKETCH_RECORDS] = count * layout["record_bytes"]
    return sketch | {
        DESCRIPTORS: count * dim * 2,
        NORMS: count * 4,
        PCA: (1 + PCA_COMPONENTS) * dim * 8,
        COORDS2D: count * 2 * 4,
        COORDS3D: count * 3 * 4,
        THUMBS_INDEX: count * 2 * 8,
    }


# ---------------------------------------------------------------------------------------------
# Manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    """The parsed manifest of `directory`, with every field's type checked, or a one-line
    CorpusError.

    The file is parsed with aliases refused, nesting bounded and at most MAX_MANIFEST_BYTES
    read (`appliance.safe_yaml`): a hostile manifest cannot exhaust memory or the stack.
    """
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise CorpusError(f"{directory}: not a corpus directory (does not exist)")
    try:
        data = safe_yaml.read(path, max_bytes=MAX_MANIFEST_BYTES, regular_only=True)
    except FileNotFoundError:
        raise CorpusError(
            f"{path}: missing (not a corpus, or an unfinished build: run `sosie build` again)"
        ) from None
    except OSError as exc:
        raise CorpusError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except safe_yaml.YAMLFileError as exc:
        raise CorpusError(f"{path}: {exc}") from None
    check_manifest(data, path)
    return data


def check_manifest(data: Any, path: Path) -> None:
    """Refuse, on one line naming `path` and the key, any field of the wrong type or range."""
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise CorpusError(f"{path}: not a Sosie corpus manifest (expected format: {FORMAT_NAME})")
    check = _Checker(path, data)
    version = data.get("format_version")
    if not _is_int(version) or version not in SUPPORTED_VERSIONS:
        known = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise CorpusError(
            f"{path}: format_version {_show(version)} is not supported (this Sosie reads {known})"
        )
    check.integer("count", 0, MAX_COUNT)
    check.integer("dim", 1, MAX_DIM)
    check.kind("synthetic", bool, "true or false", optional=True)
    check.kind("built", (str, dt.date), "a date string", optional=True)
    check.number("build_seconds", 0.0, optional=True)
    for section in ("source", "model", "descriptors"):
        check.kind(section, dict, "a mapping", optional=True, nullable=True)
    for key in ("source.files", "source.rejected", "source.seed"):
        check.integer(key, 0, None, optional=True)
    check.kind("source.folder", str, "a folder path", optional=True, nullable=True)
    recorded = check.kind("model.files", dict, "a mapping", optional=True, nullable=True) or {}
    for name in recorded:
        check.sha256(("model", "files", name))
    check.kind("model.settings", dict, "a mapping", optional=True, nullable=True)
    check.kind("thumbnails", dict, "a mapping")
    if data["thumbnails"].get("encoding") not in ("png", "jpeg", "raw"):
        raise CorpusError(f"{path}: 'thumbnails.encoding' must be png, jpeg or raw")
    check.integer("thumbnails.size", 0, MAX_THUMBNAIL_SIZE, optional=True)
    check.kind("source.duplicates", str, "reject or keep", optional=True, nullable=True)
    check.kind("pca", dict, "a mapping")
    for key in ("pca.explained_variance", "pca.explained_variance_ratio"):
        values = check.kind(key, list, f"a list of {PCA_COMPONENTS} numbers",
                            optional=key.endswith("ratio"))
        if values is not None and len(values) != PCA_COMPONENTS:
            raise CorpusError(f"{path}: '{key}' must list {PCA_COMPONENTS} explained variances")
        for i in range(len(values or ())):
            check.number((*_parts(key), i), 0.0)
    if check.kind("sketch", dict, "a mapping", optional=True, nullable=True) is not None:
        check.integer("sketch.axes", 8, min(data["dim"], MAX_SKETCH_AXES))
        axes = data["sketch"]["axes"]
        if axes % 8:
            raise CorpusError(f"{path}: 'sketch.axes' = {axes}: expected a multiple of 8")
        if check.kind("sketch.layout", dict, "a mapping", optional=True,
                      nullable=True) is not None:
            check.integer("sketch.layout.version", 1, None)
            check.integer("sketch.layout.first_axes", 8, axes)
            check.integer("sketch.layout.record_bytes", 8, 4096)
            check.integer("sketch.layout.l1_max", 0, 127 * axes)
            layout = data["sketch"]["layout"]
            if layout["first_axes"] % 8 or layout["record_bytes"] < axes - layout[
                    "first_axes"] + 8 or layout["record_bytes"] % 8:
                raise CorpusError(f"{path}: 'sketch.layout' = {_show(layout)}: the first axes "
                                  "must be a multiple of 8 and a record must hold the others "
                                  "and two floats, in multiples of 8 bytes")
    names = data_files(data)
    files = check.kind("files", dict, "a mapping")
    missing = [name for name in names if name not in files]
    if missing:
        raise CorpusError(f"{path}: 'files' lacks entries for {', '.join(missing)}")
    limits = byte_limits(data["count"], data["thumbnails"].get("size") or MAX_THUMBNAIL_SIZE)
    for name in names:
        check.kind(("files", name), dict, "a mapping with 'bytes' and 'sha256'")
        check.integer(("files", name, "bytes"), 0, limits.get(name))
        check.sha256(("files", name, "sha256"))


def byte_limits(count: int, thumbnail_size: int) -> dict[str, int]:
    """The most bytes a corpus of `count` rows may hold in its variable-size files."""
    thumbnail = 3 * thumbnail_size**2 * 11 // 10 + 4096  # RGB, raw or a PNG of noise
    return {
        THUMBS_PACK: max(count, 64) * thumbnail,  # synthetic corpora store 64 placeholders
        SOURCES: 64 + count * (24 + 2 * MAX_PATH_BYTES),  # row, tab, escaped path, newline
        REJECTED: MAX_REJECTED_BYTES,
    }


Key = str | tuple[Any, ...]


class _Checker:
    """Typed look-ups of dotted manifest keys; each failure is one line naming the key."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    def _get(self, key: Key) -> tuple[bool, Any]:
        value: Any = self.data
        for part in _parts(key):
            in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
            if not (in_list or (isinstance(value, dict) and part in value)):
                return False, None
            value = value[part]
        return True, value

    def _fail(self, key: Key, value: Any, expected: str) -> CorpusError:
        return CorpusError(f"{self.path}: '{_name(key)}' = {_show(value)}: expected {expected}")

    def kind(self, key: Key, types: Any, expected: str, *, optional: bool = False,
             nullable: bool = False) -> Any:
        present, value = self._get(key)
        if (not present and optional) or (value is None and nullable):
            return None
        if not present:
            raise CorpusError(f"{self.path}: '{_name(key)}' is missing (expected {expected})")
        if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
            raise self._fail(key, value, expected)
        return value

    def integer(self, key: Key, lo: int, hi: int | None, *, optional: bool = False) -> None:
        want = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"
        value = self.kind(key, int, want, optional=optional)
        if value is not None and (value < lo or (hi is not None and value > hi)):
            raise self._fail(key, value, want)

    def number(self, key: Key, lo: float, *, optional: bool = False) -> None:
        want = f"a finite number >= {lo:g}"
        value = self.kind(key, (int, float), want, optional=optional)
        if value is not None and not (math.isfinite(value) and value >= lo):
            raise self._fail(key, value, want)

    def sha256(self, key: Key) -> None:
        value = self.kind(key, str, "a sha256 (64 hex digits)")
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise self._fail(key, value, "a sha256 (64 hex digits)")


def _parts(key: Key) -> tuple[Any, ...]:
    """'pca.explained_variance' -> ('pca', 'explained_variance'); tuples (file names hold dots)
    are taken as they are."""
    return tuple(key.split(".")) if isinstance(key, str) else key


def _name(key: Key) -> str:
    return ".".join(map(str, _parts(key)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest atomically (it marks the corpus complete, so it is written last)."""
    text = yaml.safe_dump(dict(manifest), sort_keys=False, allow_unicode=True, width=100)
    atomic_write_bytes(Path(directory) / MANIFEST, text.encode("utf-8"))


def check_sizes(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Cheap structural check: every data file exists with the size the manifest implies."""
    problems = size_problems(directory, manifest)
    if problems:
        raise CorpusError(next(iter(problems.values())))


def size_problems(directory: Path, manifest: Mapping[str, Any]) -> dict[str, str]:
    """{data file: one-line problem} for every data file that is missing, not a regular file
    (a FIFO, a device, a symlink loop) or not the size the manifest implies. Only `stat`:
    nothing is read, so a huge sparse file costs nothing here (check this before hashing)."""
    count, dim = manifest["count"], manifest["dim"]
    fixed = expected_sizes(count, dim, sketch_axes(manifest), scan_layout_entry(manifest))
    problems = {}
    for name in data_files(manifest):
        path = Path(directory) / name
        try:
            info = path.stat()
        except FileNotFoundError:
            problems[name] = f"{path}: missing"
            continue
        except OSError as exc:  # ELOOP, EACCES, ...
            problems[name] = f"{path}: unreadable ({exc.strerror or exc})"
            continue
        if not stat.S_ISREG(info.st_mode):
            problems[name] = f"{path}: not a regular file"
            continue
        actual = info.st_size
        want = fixed.get(name, manifest["files"][name]["bytes"])
        if name in fixed and manifest["files"][name]["bytes"] != want:
            problems[name] = (f"{path}: manifest says {manifest['files'][name]['bytes']} bytes "
                              f"but {count} rows x {dim} need {want}")
        elif actual != want:
            what = "truncated" if actual < want else "too long"
            problems[name] = f"{path}: {what} ({actual} bytes, expected {want})"
    return problems


# ---------------------------------------------------------------------------------------------
# Files


def file_entries(directory: Path, names: Iterable[str] = DATA_FILES) -> dict[str, dict]:
    """The manifest's `files` mapping: byte size and sha256 of each data file."""
    out = {}
    for name in names:
        path = Path(directory) / name
        out[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return out


# ---------------------------------------------------------------------------------------------
# TSV text: paths may contain tabs, newlines and undecodable bytes


def escape_field(text: str) -> str:
    """One TSV field: backslash, tab, newline and carriage return escaped."""
    return (
        text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def unescape_field(text: str) -> str:
    """Inverse of `escape_field`."""
    if "\\" not in text:
        return text
    out, i = [], 0
    table = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(table.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def tsv_bytes(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> bytes:
    """UTF-8 TSV (undecodable file-name bytes kept via surrogateescape), header line first."""
    lines = ["\t".join(header)]
    lines.extend("\t".join(escape_field(str(v)) for v in row) for row in rows)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def read_tsv(path: Path, columns: int) -> list[list[str]]:
    """Rows of a TSV written by `tsv_bytes` (header skipped), or a one-line CorpusError."""
    text = Path(path).read_bytes().decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != columns:
            raise CorpusError(f"{path}: line {number} has {len(fields)} fields, expected {columns}")
        rows.append([unescape_field(f) for f in fields])
    return rows
