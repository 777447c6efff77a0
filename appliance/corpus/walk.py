"""Listing a source folder: every regular file, recursively, in a deterministic order."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.corpus.chunks import SourceFile


def list_sources(
    images_dir: Path, exclude: Path | None = None
) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """(files sorted by relative path, [(path, reason)] for entries that cannot be read).

    Symbolic links to files are followed, links to folders are not (no cycles). Everything that
    is a regular file is listed: whether it is an image is decided later, by its content.
    `exclude` (the corpus being built, if it lies inside the folder) is skipped, and so are
    hidden folders (`.git`, `.Trash-1000`, the journal `sosie generate` keeps in its output).
    """
    root = Path(images_dir)
    excluded = exclude.resolve() if exclude is not None else None
    files: list[SourceFile] = []
    problems: list[tuple[str, str]] = []

    def on_error(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        problems.append((_rel(where, root) or ".", f"unreadable folder ({exc.strerror})"))

    for folder, dirnames, filenames in os.walk(root, onerror=on_error):
        here = Path(folder)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if excluded is not None:
            dirnames[:] = [d for d in dirnames if (here / d).resolve() != excluded]
        for name in filenames:
            path = here / name
            rel = _rel(path, root)
            try:
                info = path.stat()
            except OSError as exc:
                problems.append((rel, f"unreadable file ({exc.strerror})"))
                continue
            if not stat.S_ISREG(info.st_mode):
                problems.append((rel, "not a regular file"))
                continue
            files.append(SourceFile(rel, info.st_size, info.st_mtime_ns))
    files.sort(key=lambda f: f.rel)
    problems.sort()
    return files, problems


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
