"""The on-disk corpus format: file names, the manifest, cheap validation, checksums.

A corpus is a directory (see README, "Corpus format")::

    manifest.yaml    format version, count, dim, models, PCA, per-file sizes and sha256
    descriptors.f16  (N, d) float16, little-endian, row-major: memory-mapped as is
    norms.f32        (N,) float32 Euclidean norms of the stored float16 rows
    pca.f64          (1 + k, d) float64: the mean, then k = 3 principal axes
    coords2d.f32     (N, 2) float32 PCA coordinates (first two axes)
    coords3d.f32     (N, 3) float32 PCA coordinates
    thumbs.pack      encoded grayscale aligned thumbnails, back to back
    thumbs.idx       (N, 2) uint64 little-endian: byte offset and length of row i in thumbs.pack
    sources.tsv      row <TAB> source path (relative to the source folder), one line per row
    rejected.tsv     path <TAB> reason, for every file that is not in the corpus

The manifest is written last, so a directory without it is an unfinished build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from appliance.files import atomic_write_bytes, fsync_dir, sha256_file

__all__ = ["atomic_write_bytes", "fsync_dir", "sha256_file"]  # re-exported for the corpus modules

FORMAT_NAME = "sosie-corpus"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
PCA_COMPONENTS = 3

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

DATA_FILES = (
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

# Manifest keys whose values legitimately differ between two builds of the same input.
VOLATILE_KEYS = ("built", "build_seconds")


class CorpusError(ValueError):
    """An unusable corpus, described on one line naming the file and the problem."""


def expected_sizes(count: int, dim: int) -> dict[str, int]:
    """Exact byte sizes of the fixed-layout files for `count` rows of dimension `dim`."""
    return {
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
    """The parsed manifest of `directory`, with its structure checked, or a one-line CorpusError."""
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise CorpusError(f"{directory}: not a corpus directory (does not exist)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(
            f"{path}: missing (not a corpus, or an unfinished build: run `sosie build` again)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: unreadable ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorpusError(f"{path}: invalid YAML ({problem})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise CorpusError(f"{path}: not a Sosie corpus manifest (expected format: {FORMAT_NAME})")
    version = data.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        known = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise CorpusError(
            f"{path}: format_version {version!r} is not supported (this Sosie reads {known})"
        )
    for key in ("count", "dim"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CorpusError(f"{path}: '{key}' = {value!r}: expected a non-negative integer")
    if data["dim"] < 1:
        raise CorpusError(f"{path}: 'dim' = {data['dim']}: expected at least 1")
    files = data.get("files")
    if not isinstance(files, dict) or any(name not in files for name in DATA_FILES):
        missing = [n for n in DATA_FILES if not isinstance(files, dict) or n not in files]
        raise CorpusError(f"{path}: 'files' lacks entries for {', '.join(missing)}")
    for name in DATA_FILES:
        entry = files[name]
        if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int):
            raise CorpusError(f"{path}: 'files.{name}' must have integer 'bytes' and 'sha256'")
    pca = data.get("pca")
    if not isinstance(pca, dict) or len(pca.get("explained_variance") or ()) != PCA_COMPONENTS:
        raise CorpusError(f"{path}: 'pca' must list {PCA_COMPONENTS} explained variances")
    thumbs = data.get("thumbnails")
    if not isinstance(thumbs, dict) or thumbs.get("encoding") not in ("png", "jpeg", "raw"):
        raise CorpusError(f"{path}: 'thumbnails.encoding' must be png, jpeg or raw")
    return data


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest atomically (it marks the corpus complete, so it is written last)."""
    text = yaml.safe_dump(dict(manifest), sort_keys=False, allow_unicode=True, width=100)
    atomic_write_bytes(Path(directory) / MANIFEST, text.encode("utf-8"))


def check_sizes(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Cheap structural check: every data file exists with the size the manifest implies."""
    count, dim = manifest["count"], manifest["dim"]
    fixed = expected_sizes(count, dim)
    for name in DATA_FILES:
        path = Path(directory) / name
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            raise CorpusError(f"{path}: missing") from None
        want = fixed.get(name, manifest["files"][name]["bytes"])
        if name in fixed and manifest["files"][name]["bytes"] != want:
            raise CorpusError(
                f"{path}: manifest says {manifest['files'][name]['bytes']} bytes but "
                f"{count} rows x {dim} need {want}"
            )
        if actual != want:
            what = "truncated" if actual < want else "too long"
            raise CorpusError(f"{path}: {what} ({actual} bytes, expected {want})")


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
