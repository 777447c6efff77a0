"""The privacy audit shared by tests/test_privacy.py and tests/test_conjure.py: a Python audit
hook recording every file this process writes, a snapshot of the files under some folders, and a
sandbox of fresh HOME, TMPDIR, working directory and cache folders."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class WriteAudit:
    """Records paths written by this process while `active` (audit hooks cannot be removed)."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        self.thread_ids: set[int] = set()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        try:
            if event == "open":
                path, mode, flags = args
                if path is None or isinstance(path, int):
                    return
                if mode is not None:
                    writes = any(c in str(mode) for c in "wax+")
                else:
                    writes = bool((flags or 0) & _WRITE_FLAGS)
                if writes:
                    self.paths.append(os.fsdecode(path))
            elif event in {"os.rename", "os.replace", "shutil.copyfile", "shutil.copytree",
                           "os.link", "os.symlink"}:
                self.paths.append(os.fsdecode(args[1]))
            elif event in {"os.mkdir", "os.truncate"}:
                target = args[0]
                new_dir = event == "os.mkdir" and not os.path.exists(target)
                if new_dir or (event == "os.truncate" and not isinstance(target, int)):
                    self.paths.append(os.fsdecode(target))
        except Exception:  # an audit hook must never raise into the code it watches
            pass


AUDIT = WriteAudit()


def snapshot(roots: list[Path]) -> dict[str, tuple[int, int]]:
    files = {}
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                files[str(path)] = (st.st_size, st.st_mtime_ns)
    return files


def sandbox_dirs(tmp_path: Path, monkeypatch,
                 names=("home", "tmp", "cwd", "cache")) -> dict[str, Path]:
    """HOME, TMPDIR, the working directory and the cache (and any other `names`) in fresh
    folders under tmp_path."""
    dirs = {name: tmp_path / name for name in names}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.setenv("TMPDIR", str(dirs["tmp"]))
    monkeypatch.setenv("SOSIE_CACHE", str(dirs["cache"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["home"] / ".cache"))
    monkeypatch.chdir(dirs["cwd"])
    monkeypatch.setattr(tempfile, "tempdir", str(dirs["tmp"]))
    return dirs
