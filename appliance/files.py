"""Small file helpers shared by the corpus, the models check and the appliance's state files.

Hardening rules every writer and remover follows (see README, "Hardening"):

- a name read back from a file (a journal, a manifest, a chunk list) is never a path:
  `name_inside` checks it against the exact pattern its writer uses and that it stays inside
  its folder, before any file is touched;
- removing never follows a symbolic link: `remove_inside` unlinks the entry itself, `remove_tree`
  unlinks a link instead of emptying the folder it points to, `refuse_links` stops a command that
  would write through a link out of its folder;
- outputs are written to a temporary file in the destination folder and renamed on success
  (`atomic_write_bytes`, `atomic_output`); a failed write leaves nothing under the final name
  and its error (`WriteError`) names the destination, not the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class UnsafeName(ValueError):
    """A name read from a file that its writer could not have made (one line)."""


class WriteError(OSError):
    """An output that could not be written (one line naming the destination)."""

    def __str__(self) -> str:
        return str(self.strerror)


class NotRegular(ValueError):
    """A path that is a FIFO, a device or a folder where a regular file is expected."""


class NoRoom(ValueError):
    """An output that cannot fit the free space of its disk (one line, said up front)."""


def open_regular(path: Path | str, what: str = "") -> IO[bytes]:
    """`path` opened for reading if it is a regular file; NotRegular otherwise, without ever
    blocking (a FIFO is opened non-blocking, checked, and refused: opening one blocks until a
    writer comes, and reading it never ends)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode)
                    else "a device or socket")
            raise NotRegular(f"{what or path}: is {kind}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_room(folder: Path | str, needed: int, what: str) -> None:
    """NoRoom if `needed` bytes cannot fit the free space of the disk `folder` is (or will be)
    on: said before anything is written, not as ENOSPC half-way."""
    place = Path(folder).absolute()
    while not place.exists() and place != place.parent:
        place = place.parent
    free = shutil.disk_usage(place).free
    if needed > free:
        raise NoRoom(f"{what} needs at least {_size(needed)} but {place} has {_size(free)} free")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` via a temporary file, fsync and rename: all or nothing."""
    with atomic_output(path, fsync=fsync) as fh:
        fh.write(data)


def write_error(path: Path | str, exc: OSError) -> WriteError:
    """`exc` as a WriteError naming `path` ("no space left on device" and the file)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on device"
    error = WriteError(exc.errno or 0, f"cannot write {path}: {reason}")
    error.filename = str(path)
    return error


@contextlib.contextmanager
def atomic_output(path: Path | str, *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """A binary file that becomes `path` when the block ends without an exception.

    The data goes to a new temporary file in `path`'s folder (created exclusively, so a link
    planted under a temporary name is never followed), is fsynced and renamed over `path`. On
    any error the temporary file is removed, nothing appears under `path`, and an OSError is
    raised again as a `WriteError` naming `path`.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:60]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would have made it (mkstemp: 0600)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise write_error(path, exc) from None
        raise


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask is process-wide, not thread-safe


def name_inside(folder: Path | str, name: Any, pattern: re.Pattern[str], what: str) -> Path:
    """`folder / name` for a `name` read from a file, if its writer could have made it.

    `name` must be a string matching `pattern` in full, one plain name (no separator, not "."
    or ".."), so the path stays inside `folder`; otherwise UnsafeName (one line, `what` naming
    the file it came from). Call it for every name before touching any file.
    """
    text = name if isinstance(name, str) else None
    if (text is None or not pattern.fullmatch(text) or text in (".", "..")
            or "/" in text or "\\" in text or "\0" in text):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise UnsafeName(f"{what}: names {shown}, not a file name its writer makes "
                         f"(expected {pattern.pattern}); refusing to touch any file")
    path = Path(folder) / text
    if os.path.dirname(os.path.normpath(path)) != os.path.normpath(folder):
        raise UnsafeName(f"{what}: names {text!r}, outside {folder}; refusing to touch any file")
    return path


def remove_inside(path: Path | str) -> None:
    """Remove the file or link `path` itself (never what a link points to); missing is fine.

    A folder under that name is removed with `remove_tree`, which this is (the same checks).
    """
    remove_tree(path)


def remove_tree(path: Path | str, *, ignore_errors: bool = False) -> None:
    """Remove the folder `path` and what it holds; a link there is unlinked, never followed.

    `shutil.rmtree` does not descend into links inside the folder; a link in place of the
    folder itself is removed as a link (rmtree would refuse it, and `ignore_errors` would keep
    it, so the next write would go where it points). Missing is fine; `ignore_errors` as
    rmtree's.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        with contextlib.suppress(FileNotFoundError if not ignore_errors else OSError):
            os.unlink(path)
        return
    shutil.rmtree(path, ignore_errors=ignore_errors)


def refuse_links(folder: Path | str, names: Any, what: str, *, itself: bool = False) -> None:
    """UnsafeName if any of `names` inside `folder` (and `folder` itself if `itself`) is a
    symbolic link: a command that overwrites or removes files there would act on whatever the
    link points to, outside the folder."""
    folder = Path(folder)
    for path in [*([folder] if itself else []), *(folder / name for name in names)]:
        if path.is_symlink():
            raise UnsafeName(f"{what}: {path} is a symbolic link (to {os.readlink(path)}); "
                             "refusing to write or remove through it")


@contextlib.contextmanager
def temporary_folder(prefix: str, parent: Path | str | None = None) -> Iterator[Path]:
    """A temporary folder (in `parent`, default the system's) removed when the block ends, also
    on SIGTERM (turned into SystemExit(143) for the block, in the main thread) as on an error or
    Ctrl-C."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        else:
            previous = None
    try:
        yield path
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(path, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def fsync_dir(directory: Path) -> None:
    """Persist renames inside `directory` (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(lock_path: Path, busy: Exception) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if missing) for the block; raise `busy` at
    once if another process holds it (one build or generate per folder at a time)."""
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
