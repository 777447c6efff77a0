"""What a `sosie generate` run has done so far: `OUT_DIR/.sosie-generate/`, safe under SIGKILL.

`job.json` names the generator and analyzer that made the folder (a run with other ones is
refused); `draws.jsonl` gets one line per finished draw, appended after the draw's image file
is in place, so a line always describes a file that exists. A line cut short by a kill is
dropped on the next open; an accepted draw whose file is missing or has another size counts as
not done. Every file name a line gives is checked against `FACE_NAME` (what the run writes)
before any file is touched: a journal naming "../x" or an absolute path stops the run. At the
end the journal is rewritten in index order without the draws past the last face, so a resumed
run leaves the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.files import UnsafeName, atomic_write_bytes, name_inside

WORK_DIR = ".sosie-generate"
JOB = "job.json"
DRAWS = "draws.jsonl"
#: The only names `sosie generate` gives its faces (engine, seed, draw index, extension).
FACE_NAME = re.compile(r"(dcgan-\d{1,10}-|url-)\d{7}\.(png|jpg|webp|gif|bmp|tiff)")


class JobMismatch(ValueError):
    """The folder was made by another generator, seed or analyzer (one line)."""


@dataclass(frozen=True)
class Record:
    """A finished draw: its file (accepted) or why it was not kept."""

    index: int
    file: str | None = None
    size: int = 0
    sha256: str = ""
    reason: str | None = None
    #: What the analyzer learned of a kept face, for `sosie build` (`generator.analyses`).
    analysis: dict[str, Any] | None = field(default=None, compare=False)

    def line(self) -> bytes:
        record: dict[str, Any] = {"i": self.index}
        if self.file is not None:
            record.update(file=self.file, size=self.size, sha256=self.sha256)
            if self.analysis is not None:
                record["analysis"] = self.analysis
        else:
            record["reason"] = self.reason
        return (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def check_job(work: Path, job: dict[str, Any]) -> None:
    """Write `job` on the first run; on later ones refuse a different one, naming the key."""
    path = work / JOB
    if path.exists():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            before = None
        if not isinstance(before, dict):
            raise JobMismatch(f"{path}: damaged; delete the folder's faces or choose another")
        if before != job:
            key = next(k for k in sorted(set(job) | set(before)) if job.get(k) != before.get(k))
            raise JobMismatch(
                f"{work.parent} holds faces made with {key} = {before.get(key)!r}, not "
                f"{job.get(key)!r}; choose another folder (or the same settings to resume)")
        return
    atomic_write_bytes(path, (json.dumps(job, indent=1, sort_keys=True) + "\n").encode())


def read_records(work: Path, out_dir: Path) -> dict[int, Record]:
    """The finished draws by index (the last line of an index wins), checking the files.

    JobMismatch, before any file is touched, if a line names a file `sosie generate` does not
    write (a path, "..", another pattern).
    """
    path = work / DRAWS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    end = data.rfind(b"\n") + 1
    parsed: list[Record] = []
    for number, line in enumerate(data[:end].splitlines(), 1):
        try:
            item = json.loads(line)
            record = Record(int(item["i"]), item.get("file"), int(item.get("size", 0)),
                            str(item.get("sha256", "")), item.get("reason"),
                            item.get("analysis") if isinstance(item.get("analysis"), dict)
                            else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if record.file is not None:
            try:
                name_inside(out_dir, record.file, FACE_NAME, f"{path} line {number}")
            except UnsafeName as exc:
                raise JobMismatch(str(exc)) from None
        parsed.append(record)
    if end < len(data):  # a line cut short by a kill
        with open(path, "r+b") as fh:
            fh.truncate(end)
    records: dict[int, Record] = {}
    for record in parsed:
        if record.file is not None and not _file_matches(out_dir / record.file, record.size):
            records.pop(record.index, None)
            continue
        records[record.index] = record
    return records


def _file_matches(path: Path, size: int) -> bool:
    try:  # the face itself, never a link's target
        info = path.lstat()
        return stat.S_ISREG(info.st_mode) and info.st_size == size
    except OSError:
        return False


class Appender:
    """Appends records to the journal, one write per line."""

    def __init__(self, work: Path) -> None:
        self._fd = os.open(work / DRAWS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def add(self, record: Record) -> None:
        os.write(self._fd, record.line())

    def close(self) -> None:
        os.close(self._fd)


def rewrite(work: Path, records: Iterable[Record]) -> None:
    """Replace the journal by `records` in index order (the end of a run)."""
    data = b"".join(r.line() for r in sorted(records, key=lambda r: r.index))
    atomic_write_bytes(work / DRAWS, data)
