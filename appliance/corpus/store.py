"""Reading a corpus: `Corpus.open` validates cheaply, then memory-maps the descriptors, the
coordinates, the sketch and its scan layout (shared with every other process that maps them).

What reads every row (the descriptors' finiteness, the thumbnail index's bounds, the sketch's
tails, bringing the files a search and a ticket read into the page cache) runs once: in `warm`,
or on a thread started by `check_in_background` (`sosie run`: start-up then reads nothing that
grows with the corpus), which `check_rows` waits for, so no search answers from unchecked rows;
`close` stops that thread and waits for it. `source` reads sources.tsv a line at a time."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance.corpus import format as fmt
from appliance.corpus.format import CorpusError
from appliance.corpus.pca import PCAModel
from appliance.corpus.thumbs import PackReader
from appliance.files import open_regular

log = logging.getLogger(__name__)

#: How long `close` waits for `check_in_background`'s thread, which stops at its next 1 MB read
#: (a stuck card: the thread then ends on its own, holding its own references to the maps).
CLOSE_WAIT_SECONDS = 10.0

if TYPE_CHECKING:
    from appliance.corpus.sketch import Sketch
    from appliance.search import ScanLayout, Scanner


class Corpus:
    """An opened corpus directory. Use `Corpus.open(path)`; close it (or use `with`) when done."""

    def __init__(self, path: Path, manifest: dict[str, Any], *,
                 defer_checks: bool = False) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.count: int = manifest["count"]
        self.dim: int = manifest["dim"]
        self.synthetic: bool = bool(manifest.get("synthetic", False))
        n, d = self.count, self.dim
        if n:
            self.vectors = np.memmap(self.path / fmt.DESCRIPTORS, "<f2", mode="r", shape=(n, d))
        else:
            self.vectors = np.zeros((0, d), dtype="<f2")
        self.norms = _map(self.path / fmt.NORMS, "<f4", (n,))
        self.coords2d = _map(self.path / fmt.COORDS2D, "<f4", (n, 2))
        self.coords3d = _map(self.path / fmt.COORDS3D, "<f4", (n, 3))
        pca = _read(self.path / fmt.PCA, "<f8", (1 + fmt.PCA_COMPONENTS, d))
        info = manifest["pca"]
        self.pca = PCAModel(
            mean=pca[0].copy(),
            components=pca[1:].copy(),
            explained_variance=np.asarray(info["explained_variance"], dtype=np.float64),
            explained_variance_ratio=np.asarray(
                info.get("explained_variance_ratio", [0.0] * fmt.PCA_COMPONENTS), np.float64
            ),
        )
        thumbs = manifest["thumbnails"]
        self._thumbs = PackReader(
            self.path / fmt.THUMBS_PACK,
            self.path / fmt.THUMBS_INDEX,
            n,
            thumbs["encoding"],
            int(thumbs.get("size", 0)),
        )
        self._sources: SourceLines | None = None
        self._sketch: Sketch | None = None
        self._layout: ScanLayout | None = None
        self._rows_finite = False
        self._index_checked = False
        self._defer_checks = defer_checks
        self._tails_checked = not defer_checks
        self._checking: threading.Thread | None = None
        self._check_error: CorpusError | None = None
        self._closing = threading.Event()  # set by `close`: the check stops reading
        #: Seconds `check_in_background`'s thread took, once it is over.
        self.check_seconds: float | None = None

    # -----------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        check_model: bool | Mapping[str, str] = True,
        face_settings: Any = None,
        defer_checks: bool = False,
    ) -> Corpus:
        """Open and cheaply validate a corpus, or raise a one-line CorpusError.

        Checks the format version, every file size against the manifest, the thumbnail
        index bounds and, when the sketch is read, its tails (with `defer_checks`, by
        `check_in_background` or `warm` instead: passes over 20 bytes a face; each thumbnail
        read checks its own row's bounds anyway). With
        `check_model` (the default) the descriptor models recorded in the manifest must be the
        ones this appliance uses (`faces.model_checksums(face_settings)`), or the given
        {file: sha256} mapping; synthetic corpora are not tied to a model.
        """
        path = Path(path)
        manifest = fmt.read_manifest(path)
        fmt.check_sizes(path, manifest)
        if check_model and not manifest.get("synthetic"):
            expected = check_model if isinstance(check_model, Mapping) else None
            check_models(path, manifest, expected, face_settings)
        corpus = cls(path, manifest, defer_checks=defer_checks)
        if not defer_checks:
            try:
                corpus._check_index()
            except CorpusError:
                corpus.close()
                raise
        return corpus

    # -----------------------------------------------------------------------------------------
    def thumbnail(self, i: int) -> np.ndarray:
        """The aligned grayscale thumbnail of row `i`: uint8 (h, w)."""
        return self._thumbs.image(int(i))

    def thumbnail_bytes(self, i: int) -> bytes:
        """The encoded thumbnail of row `i` as stored (PNG/JPEG/raw, see manifest)."""
        return self._thumbs.blob(int(i))

    def source(self, i: int) -> str:
        """The source image of row `i`, relative to the folder the corpus was built from."""
        if not 0 <= i < self.count:
            raise IndexError(f"row {i} out of range (corpus has {self.count} rows)")
        return self._source_lines().source(i)

    def check_sources(self) -> None:
        """Every line of sources.tsv well formed and numbered in order (a CorpusError if not);
        `source` reads and checks only the line it returns."""
        lines = self._source_lines()
        for i in range(self.count):
            lines.source(i)

    def _source_lines(self) -> SourceLines:
        if self._sources is None:
            self._sources = SourceLines(self.path / fmt.SOURCES, self.count)
        return self._sources

    def rejected(self) -> list[tuple[str, str]]:
        """(path, reason) of every file the build left out."""
        return [(p, r) for p, r in fmt.read_tsv(self.path / fmt.REJECTED, 2)]

    def check_rows(self, timeout: float | None = None) -> None:
        """Refuse descriptors holding NaN or infinity (a CorpusError), counted once: a pass over
        every row, from the page cache after `warm`. While `check_in_background` runs, waits
        for it (at most `timeout` seconds, else a CorpusError) and raises what it found (a
        damaged thumbnail index or sketch tails too)."""
        thread = self._checking
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise CorpusError(f"{self.path}: its check has not finished after {timeout:g} s")
        if self._check_error is not None:
            raise self._check_error
        if self._rows_finite or not self.count:
            self._rows_finite = True
            return
        from appliance import _scan

        bad = _scan.count_nonfinite(self.vectors)  # without the GIL
        if bad:
            raise CorpusError(f"{self.path / fmt.DESCRIPTORS}: {bad} row(s) hold NaN or infinity")
        self._rows_finite = True

    def warm(self) -> None:
        """Read the descriptors, the sketch's scan layout (else its codes) and tails, the
        thumbnail index and the 2-D coordinates into the page cache (cold SD cards), then check
        the index and the tails (if `open` left them) and the rows (`check_rows`)."""
        self._read_ahead()
        self._check_index()
        self.check_rows()
        self._check_tails()

    def check_in_background(
            self, on_problem: Callable[[CorpusError], None] | None = None) -> None:
        """Run `warm` on a thread: this returns at once, whatever the corpus's size. The first
        search waits for it through `check_rows` (`scanner(wait=False)`'s callers call it), and
        a problem it finds (a NaN row, an index past the pack, an unreadable file) is raised
        there as a CorpusError, passed to `on_problem` (on the thread, as soon as it is found:
        `sosie run` posts it to the state machine) and logged. A check that passes calls
        nothing."""
        if self._checking is not None or self._all_checked():
            return
        self.scan_layout()  # the sketch's and the layout's own checks, here, before the thread

        def run() -> None:
            start = time.perf_counter()
            try:
                self.warm()
            except CorpusError as exc:
                self._check_error = exc
            except OSError as exc:
                self._check_error = CorpusError(
                    f"{exc.filename or self.path}: unreadable ({exc.strerror or exc})")
            except Exception as exc:  # any failure is the corpus's, raised by check_rows
                self._check_error = CorpusError(f"{self.path}: {type(exc).__name__}: {exc}")
            if self._check_error is not None and not self._closing.is_set():  # in the journal
                log.error("corpus check failed: %s", self._check_error)
                if on_problem is not None:
                    try:
                        on_problem(self._check_error)
                    except Exception as exc:  # what check_rows raises stands regardless
                        log.error("reporting the corpus check's problem failed: %s", exc)
            self.check_seconds = time.perf_counter() - start  # last: the thread's work is over

        thread = threading.Thread(target=run, name="corpus-check", daemon=True)
        thread.start()  # before a `check_rows` on another thread can join it
        self._checking = thread

    def check_state(self) -> str:
        """How `check_in_background` is doing: "checking", "ok", "not started", or the problem
        it found (one line), for `sosie status`."""
        if self._check_error is not None:
            return str(self._check_error)
        if self._all_checked():
            return "ok"
        return "checking" if self._checking is not None else "not started"

    def _all_checked(self) -> bool:
        return self._rows_finite and self._index_checked and self._tails_checked

    def _check_index(self) -> None:
        if not self._index_checked:
            self._thumbs.check()
            self._index_checked = True

    def _check_tails(self) -> None:
        """The stored sketch's tails (a sketch computed in memory has no file to blame)."""
        sketch = self.sketch()
        if not self._tails_checked and sketch is not None and fmt.sketch_axes(self.manifest):
            from appliance.corpus.sketch import check_sketch_tails

            check_sketch_tails(self.path / fmt.SKETCH_TAILS, sketch.tails)
        self._tails_checked = True

    def _read_ahead(self) -> None:
        """Read the files every search touches into the page cache with plain reads (the GIL
        released while the disk works, unlike faults on a memory map)."""
        sketch = self.sketch()
        layout = self.scan_layout()
        names = [fmt.DESCRIPTORS, fmt.THUMBS_INDEX, fmt.COORDS2D]  # coords2d: the ticket's map
        if fmt.sketch_axes(self.manifest) is not None:
            names.append(fmt.SKETCH_TAILS)
        if layout is not None:
            names += list(fmt.LAYOUT_FILES)
        elif sketch is not None:
            names.append(fmt.SKETCH_FILES[0])
        buffer = bytearray(1 << 20)
        for name in names if self.count else ():
            with open(self.path / name, "rb", buffering=0) as file:
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
                while file.readinto(buffer):
                    if self._closing.is_set():  # `close`: the rest of the check is nobody's
                        raise CorpusError(f"{self.path}: closed during its check")

    def sketch(self) -> Sketch | None:
        """The int8 sketch searches read first (`appliance.corpus.sketch`), read and checked
        on first use; a format-version-1 corpus has none on disk, so it is computed here, in
        memory (~1 s per 200k rows; nothing is written). None if d is not a multiple of 8."""
        from appliance.corpus import sketch as sketches

        axes = fmt.sketch_axes(self.manifest)
        if self._sketch is None and axes is not None:
            self._sketch = sketches.read_sketch(self.path, self.count, self.dim, axes,
                                                fmt.SKETCH_FILES,
                                                check_tails=not self._defer_checks)
        elif self._sketch is None and self.manifest["format_version"] == 1 and self.dim % 8 == 0:
            self._sketch = sketches.build_sketch(self.vectors, min(sketches.SKETCH_AXES, self.dim))
        return self._sketch

    def scan_layout(self) -> ScanLayout | None:
        """The sketch laid out for the scan as the build wrote it (memory-mapped, checked on
        first use), or None: no sketch, or a corpus built before the layout files (the scanner
        then lays the sketch out in memory; `sosie corpus verify --repair` writes them)."""
        from appliance.corpus import sketch as sketches

        sketch = self.sketch()
        if self._layout is None and sketch is not None:
            self._layout = sketches.read_scan_layout(
                self.path, sketch, fmt.scan_layout_entry(self.manifest), fmt.LAYOUT_FILES)
        return self._layout

    def scanner(self, threads: int = 1, kernel: str | None = None, *,
                wait: bool = True) -> Scanner:
        """A nearest-neighbour `Scanner` over this corpus (appliance.search), reading the
        sketch first: exact top-k from a fraction of the float16 rows. `kernel`: None or
        "auto" for the best (or ``SOSIE_KERNEL``), else serial, avx2, avx512 or neon.

        Opening it reads neither the rows nor the codes again: the rows are checked once
        (`check_rows`, done by `warm`), the sketch's scan layout is the build's files (memory-
        mapped), and the stored norms, which a scan does not use, are checked against the rows
        by `sosie corpus verify`. `wait=False` (with `check_in_background` running) returns
        before the rows are checked: the caller then calls `check_rows` before each search."""
        from appliance.search import Scanner

        kernel = None if kernel in (None, "", "auto") else kernel
        if wait or self._checking is None:
            self.check_rows()
        return Scanner(self.vectors, threads=threads, kernel=kernel, sketch=self.sketch(),
                       layout=self.scan_layout(), finite=True)

    def close(self) -> None:
        """Stop `check_in_background`'s thread and wait for it (`CLOSE_WAIT_SECONDS` at most),
        so no check still reads a closed corpus; release the file handles (the memory maps go
        when no array refers to them, the thread's included)."""
        self._closing.set()
        thread = self._checking
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_WAIT_SECONDS)
            if thread.is_alive():
                log.warning("%s: closed while its check still reads; it ends on its own",
                            self.path)
        self._thumbs.close()
        if self._sources is not None:
            self._sources.close()
            self._sources = None

    def __enter__(self) -> Corpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        kind = "synthetic " if self.synthetic else ""
        return f"<Corpus {self.path} {kind}{self.count} x {self.dim}>"


def check_models(
    path: Path,
    manifest: Mapping[str, Any],
    expected: Mapping[str, str] | None = None,
    face_settings: Any = None,
) -> None:
    """Refuse a corpus whose descriptor models differ from the appliance's (one line)."""
    recorded = (manifest.get("model") or {}).get("files") or {}
    if expected is None:
        from appliance.faces.model_files import model_checksums

        expected = model_checksums(face_settings)
    where = Path(path) / fmt.MANIFEST
    if not recorded:
        raise CorpusError(f"{where}: records no model checksums; cannot tell which model made it")
    for name, sha in expected.items():
        if name not in recorded:
            raise CorpusError(
                f"{where}: corpus was built without model file {name} that this appliance uses"
                " (rebuild it with `sosie build`)"
            )
        if recorded[name] != sha:
            raise CorpusError(
                f"{where}: corpus was built with a different {name} "
                f"(sha256 {str(recorded[name])[:12]}…, this appliance uses {sha[:12]}…);"
                " rebuild it with `sosie build`"
            )
    extra = sorted(set(recorded) - set(expected))
    if extra:
        raise CorpusError(
            f"{where}: corpus was built with model file {extra[0]} that this appliance does not"
            " use (rebuild it with `sosie build`, or match the faces settings)"
        )


def _read(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.fromfile(path, dtype=dtype).reshape(shape).astype(dtype[1:], copy=False)


def _map(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The file as a read-only array (memory-mapped: read as it is used)."""
    if not shape[0]:
        return np.zeros(shape, dtype[1:])
    array = np.memmap(path, dtype=dtype, mode="r", shape=shape)
    return array if array.dtype.isnative else array.astype(dtype[1:])


class SourceLines:
    """sources.tsv a line at a time: the offsets of its lines (8 bytes a row, found in one pass
    of 1 MB reads) and one `pread` a line, instead of every source as a Python string (~260
    bytes a row: 53 MB at 200k faces, for the 8 rows a conjured double starts from). A line is
    read only if it is no longer than any source's and found where its offsets say (the file
    may change under it): else a one-line CorpusError."""

    MAX_LINE = 24 + 2 * fmt.MAX_PATH_BYTES  # a row number, a tab, an escaped path

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self._file = open_regular(path)
        try:
            self._ends, self._size = self._line_ends(count)
        except BaseException:
            self._file.close()
            raise

    def _line_ends(self, count: int) -> tuple[np.ndarray, int]:
        """Where each line ends (line 0 is the header), for a file of `count` rows, and the
        file's size; no more than count + 2 ends are ever kept."""
        ends = np.empty(count + 2, np.int64)
        found = size = 0
        while found < len(ends) and (chunk := self._file.read(1 << 20)):
            at = np.flatnonzero(np.frombuffer(chunk, np.uint8) == ord("\n"))[:len(ends) - found]
            ends[found:found + len(at)] = at + size
            found, size = found + len(at), size + len(chunk)
        if found == len(ends):
            raise CorpusError(f"{self.path}: more than {count} rows, expected {count}")
        if size and (not found or ends[found - 1] != size - 1):  # a last line without newline
            ends[found], found = size, found + 1
        rows = max(found - 1, 0)
        if rows != count:
            raise CorpusError(f"{self.path}: {rows} rows, expected {count}")
        return ends[:found], size

    def source(self, i: int) -> str:
        start, end = int(self._ends[i]) + 1, int(self._ends[i + 1])
        where = f"{self.path}: line {i + 2}"
        if end - start > self.MAX_LINE:
            raise CorpusError(f"{where} has {end - start} bytes, more than a source's line "
                              f"({self.MAX_LINE})")
        data = os.pread(self._file.fileno(), end - start + 2, start - 1)  # and both newlines
        line, after = data[1:end - start + 1], data[end - start + 1:]
        if (data[:1] != b"\n" or len(line) != end - start or b"\n" in line
                or after != (b"\n" if end < self._size else b"")):
            raise CorpusError(f"{where} is no longer where it was: the file changed")
        fields = line.decode("utf-8", "surrogateescape").split("\t")
        if len(fields) != 2:
            raise CorpusError(f"{where} has {len(fields)} fields, expected 2")
        row, source = (fmt.unescape_field(field) for field in fields)
        if row != str(i):
            raise CorpusError(f"{where} is row {row!r}, expected {i}")
        return source

    def close(self) -> None:
        self._file.close()

