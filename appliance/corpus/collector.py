"""The chunk files of a build in progress (`CORPUS_DIR/.build/`): the `Collector` gathers each
image's result, from local workers or a cluster, and writes a chunk's file once it is complete;
`counted` reads back what finished chunks hold."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from appliance.corpus.chunks import ItemResult, SourceFile, chunk_bytes, chunk_path, read_chunk
from appliance.corpus.format import CorpusError, atomic_write_bytes

#: Testing hook: SIGKILL the build itself after writing this many chunks in this run.
KILL_AFTER_ENV = "SOSIE_BUILD_KILL_AFTER_CHUNKS"


def counted(paths: Iterable[Path]) -> tuple[int, int]:
    """(faces, rejections) in the finished chunk files among `paths` (unreadable ones: none)."""
    faces = rejected = 0
    for path in paths:
        try:
            _, results = read_chunk(path)
        except (OSError, ValueError, CorpusError):
            continue
        accepted = sum(r.accepted for r in results)
        faces, rejected = faces + accepted, rejected + len(results) - accepted
    return faces, rejected


class Collector:
    """Gathers results as they come, in any order, and writes each chunk (atomically) once its
    last image is in; counts faces and rejections on the progress bar."""

    def __init__(self, work: Path, key: str, chunks: list[list[SourceFile]], pending: list[int],
                 bar: Any, done: tuple[int, int] = (0, 0)) -> None:
        self.work, self.key, self.chunks, self.bar = work, key, chunks, bar
        self.buffers: dict[int, list[ItemResult | None]] = {
            k: [None] * len(chunks[k]) for k in pending}
        self.remaining = {k: len(chunks[k]) for k in pending}
        self.kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
        self.written = 0
        self.faces, self.rejected = done  # in the chunks a resumed build keeps
        if any(done):
            self.bar.set_postfix(faces=self.faces, rejected=self.rejected, refresh=False)

    def add(self, k: int, j: int, result: ItemResult) -> None:
        """The result of image j of chunk k."""
        self.buffers[k][j] = result
        self.remaining[k] -= 1
        self._count([result])
        if self.remaining[k] == 0:
            results = self.buffers.pop(k)
            self._write(k, chunk_bytes(self.key, self.chunks[k], results))  # type: ignore[arg-type]

    def add_chunk(self, k: int, results: list[ItemResult], data: bytes) -> None:
        """A whole chunk at once, with its file's bytes (`chunk_bytes` of the same results)."""
        del self.buffers[k], self.remaining[k]
        self._count(results)
        self._write(k, data)

    def _count(self, results: list[ItemResult]) -> None:
        accepted = sum(r.accepted for r in results)
        self.faces += accepted
        self.rejected += len(results) - accepted
        self.bar.update(len(results))
        self.bar.set_postfix(faces=self.faces, rejected=self.rejected, refresh=False)

    def _write(self, k: int, data: bytes) -> None:
        atomic_write_bytes(chunk_path(self.work, k), data)
        self.written += 1
        if self.kill_after and self.written >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
