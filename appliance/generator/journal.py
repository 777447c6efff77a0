"""What a `sosie generate` run has done so far: `OUT_DIR/.sosie-generate/`, safe under SIGKILL.

`job.json` names the generator and analyzer that made the folder (a run with other ones is
refused); `draws.jsonl` gets one line per finished draw, appended after the draw's image file
is in place, so a line always describes a file that exists. A line cut short by a kill is
dropped on the next open; an accepted draw whose file is missing or has another size counts as
not done. At the end the journal is rewritten in index order without the draws past the last
face, so a resumed run leaves the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.files import atomic_write_bytes

WORK_DIR = ".sosie-generate"
JOB = "job.json"
DRAWS = "draws.jsonl"


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

    def line(self) -> bytes:
        record: dict[str, Any] = {"i": self.index}
        if self.file is not None:
            record.update(file=self.file, size=self.size, sha256=self.sha256)
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
    """The finished draws by index (the last line of an index wins), checking the files."""
    path = work / DRAWS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    end = data.rfind(b"\n") + 1
    if end < len(data):  # a line cut short by a kill
        with open(path, "r+b") as fh:
            fh.truncate(end)
    records: dict[int, Record] = {}
    for line in data[:end].splitlines():
        try:
            item = json.loads(line)
            record = Record(int(item["i"]), item.get("file"), int(item.get("size", 0)),
                            str(item.get("sha256", "")), item.get("reason"))
        except (ValueError, KeyError, TypeError):
            continue
        if record.file is not None and not _file_matches(out_dir / record.file, record.size):
            records.pop(record.index, None)
            continue
        records[record.index] = record
    return records


def _file_matches(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
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
