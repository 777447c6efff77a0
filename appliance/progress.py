"""The progress bar of long runs (builds, generate, the demo corpus's first use), on stderr.

On a terminal it is tqdm's bar, redrawn in place. Anywhere else (a log file, systemd's journal,
a pipe) the same bar is printed as a plain line every `LOG_SECONDS`, never as a stream of
carriage returns.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

#: Seconds between two progress lines when stderr is not a terminal.
LOG_SECONDS = 5.0


class _Lines:
    """A file for tqdm that turns each redraw (`\\r` + bar) into one line of its own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def progress_bar(total: int, done: int = 0, enabled: bool = True, *, unit: str, desc: str,
                 stream: TextIO | None = None) -> Any:
    """A tqdm bar over `total` with `done` already there (disabled: a silent stand-in)."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    common = {"total": total, "initial": done, "unit": unit, "desc": desc,
              "disable": not enabled, "smoothing": 0.05}
    if terminal:
        return tqdm(**common, dynamic_ncols=True, file=stream)
    return tqdm(**common, ncols=80, file=_Lines(stream), mininterval=LOG_SECONDS,
                maxinterval=LOG_SECONDS * 4)
