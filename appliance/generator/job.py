"""`sosie generate`: draw faces until COUNT of them hold a face, resumable after SIGKILL.

Draw i of a run is a pure function of (engine, seed, i) for the `dcgan` engine (the url engine
asks a server, whose answers are what they are). Draws are made in index order, in parallel,
and each finished one is kept at once: an accepted face is written to a temporary name and
renamed into place, then its journal line appended (see `journal`). The run ends at the draw
that makes COUNT faces in index order; faces drawn past it by busy workers are removed, so the
folder holds exactly the faces of draws 0..last that a face was found in, byte for byte the
same whether or not the run was killed and resumed on the way.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from appliance.compute.pool import WorkerFailed
from appliance.files import atomic_write_bytes, exclusive, refuse_links, remove_inside
from appliance.generator.draws import Draw
from appliance.generator.journal import (
    FACE_NAME,
    WORK_DIR,
    Appender,
    Record,
    check_job,
    read_records,
    rewrite,
)
from appliance.progress import progress_bar

#: Testing hook: SIGKILL the run itself after this many finished draws in this run.
KILL_AFTER_ENV = "SOSIE_GENERATE_KILL_AFTER_DRAWS"
HOPELESS = 50  # stop when this many draws in a row found no face at all


class GenerateError(RuntimeError):
    """A run that cannot go on (one line; whatever was finished is kept)."""


class Drawer(Protocol):
    def identity(self) -> dict[str, Any]: ...

    def draws(self, indices: list[int], seen: dict[str, str]) -> Iterator[Draw]: ...


@dataclass(frozen=True)
class GenerateReport:
    """What a run did."""

    out_dir: Path
    faces: int
    draws: int
    rejected: Counter[str]
    drawn_now: int
    seconds: float


@dataclass
class _Tally:
    """Finished draws, and how far they decide the run (`last`: the draw of the last face)."""

    count: int
    records: dict[int, Record]
    frontier: int = 0  # every draw below it is finished
    prefix_faces: int = 0
    last: int | None = None
    faces: int = 0  # accepted draws, in the prefix or not
    seen: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for record in sorted(self.records.values(), key=lambda r: r.index):
            self._note(record)
        self._advance()

    def add(self, record: Record) -> None:
        self.records[record.index] = record
        self._note(record)
        self._advance()

    def _note(self, record: Record) -> None:
        if record.file is not None:
            self.faces += 1
            self.seen.setdefault(record.sha256, record.file)

    def _advance(self) -> None:
        if self.count == 0:
            self.last = -1
        while self.last is None and self.frontier in self.records:
            self.prefix_faces += self.records[self.frontier].file is not None
            if self.prefix_faces == self.count:
                self.last = self.frontier
            self.frontier += 1

    def next_indices(self, slack: int) -> list[int]:
        """The unfinished draws expected to complete the run (by the acceptance so far)."""
        done = len(self.records)
        rate = self.faces / done if done >= 20 else 0.7
        missing = self.count - self.prefix_faces
        end = self.frontier + math.ceil(missing / max(rate, 0.05) * 1.1) + slack
        return [i for i in range(self.frontier, end) if i not in self.records]


def generate(out_dir: str | Path, count: int, drawer: Drawer, *, slack: int = 8,
             progress: bool = True) -> GenerateReport:
    """Make (or finish making) `count` faces in `out_dir` with `drawer` (see the module)."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    _prepare(out_dir)
    work = out_dir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    with exclusive(work / "lock", GenerateError(f"{out_dir}: another sosie generate is writing "
                                                  "here")):
        try:
            check_job(work, drawer.identity())
        except ValueError as exc:
            raise GenerateError(str(exc)) from None
        try:
            records = read_records(work, out_dir)
        except ValueError as exc:
            raise GenerateError(str(exc)) from None
        tally = _Tally(count, records)
        _remove_strays(out_dir, tally.records)
        drawn = _draw(out_dir, work, tally, drawer, slack, progress)
        assert tally.last is not None
        kept = [r for r in tally.records.values() if r.index <= tally.last]
        for record in tally.records.values():
            if record.index > tally.last and record.file is not None:
                remove_inside(out_dir / record.file)
        rewrite(work, kept)
    rejected = Counter(r.reason or "" for r in kept if r.file is None)
    return GenerateReport(out_dir, count, tally.last + 1, rejected, drawn,
                          time.monotonic() - started)


def _draw(out_dir: Path, work: Path, tally: _Tally, drawer: Drawer, slack: int,
          progress: bool) -> int:
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    drawn = 0
    bar = progress_bar(tally.count, min(tally.faces, tally.count), progress, unit="face",
                       desc="sosie generate")
    appender = Appender(work)
    try:
        while tally.last is None:
            indices = tally.next_indices(slack)
            with contextlib.closing(drawer.draws(indices, tally.seen)) as draws:
                for draw in draws:
                    record = _keep(out_dir, draw)
                    appender.add(record)
                    tally.add(record)
                    drawn += 1
                    bar.update(record.file is not None)
                    bar.set_postfix(draws=len(tally.records), refresh=False)
                    if kill_after and drawn >= kill_after:
                        os.kill(os.getpid(), signal.SIGKILL)
                    if tally.last is not None:
                        break
                    _check_hopeless(tally)
    except (GenerateError, WorkerFailed) as exc:  # WorkerFailed: e.g. a model file missing
        raise GenerateError(f"{exc}; {min(tally.faces, tally.count)} of {tally.count} faces "
                            f"kept in {out_dir}: run the same command again to resume") from None
    finally:
        appender.close()
        bar.close()
    return drawn


def _keep(out_dir: Path, draw: Draw) -> Record:
    """Write an accepted draw's file (temporary name, then rename) and describe the draw."""
    if draw.reason is not None:
        return Record(draw.index, reason=draw.reason)
    if not FACE_NAME.fullmatch(draw.name):
        raise GenerateError(f"draw {draw.index}: the engine named its face {draw.name!r}")
    try:
        atomic_write_bytes(out_dir / draw.name, draw.data, fsync=False)
    except OSError as exc:
        raise GenerateError(str(exc)) from None
    return Record(draw.index, draw.name, len(draw.data), draw.sha256, analysis=draw.analysis)


def _check_hopeless(tally: _Tally) -> None:
    if len(tally.records) >= HOPELESS and not tally.faces:
        reasons = Counter(r.reason for r in tally.records.values())
        reason, times = reasons.most_common(1)[0]
        raise GenerateError(f"no face in the first {len(tally.records)} draws "
                            f"({times} times: {reason})")


def _prepare(out_dir: Path) -> None:
    """An output folder is new, empty, or one that `sosie generate` made."""
    if out_dir.exists() and not out_dir.is_dir():
        raise GenerateError(f"{out_dir}: exists and is not a folder")
    try:  # the run removes and renames files here: never through a link out of the folder
        refuse_links(out_dir, [WORK_DIR], "sosie generate")
    except ValueError as exc:
        raise GenerateError(str(exc)) from None
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return
    names = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))
    ours = (out_dir / WORK_DIR).is_dir()
    strangers = [n for n in names if not (ours and FACE_NAME.fullmatch(n))]
    if strangers:
        raise GenerateError(f"{out_dir}: holds {strangers[0]}, which sosie generate did not "
                            "make; choose an empty or new folder")


def _remove_strays(out_dir: Path, records: dict[int, Record]) -> None:
    """Temporary files of a killed run, and faces written but never journaled."""
    kept = {r.file for r in records.values() if r.file is not None}
    for path in out_dir.iterdir():
        name = path.name
        if (name.startswith(".") and name.endswith(".tmp")) or (
                FACE_NAME.fullmatch(name) and name not in kept):
            remove_inside(path)
