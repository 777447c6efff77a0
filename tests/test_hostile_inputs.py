"""The rest found on the way (issue 22, item 8): `sosie corpus import` on a FIFO, counts that
cannot fit the disk or the index type, `--force` through a symbolic link."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from appliance.cli import main

Usage = namedtuple("Usage", "total used free")


def vectors(path: Path, rows: int = 40) -> Path:
    np.save(path, np.random.default_rng(0).standard_normal((rows, 128)).astype(np.float32) * .1)
    return path


def sosie(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_corpus_import_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "vectors.npy"
    os.mkfifo(fifo)
    done = sosie("corpus", "import", str(fifo), str(tmp_path / "c"), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"sosie: {fifo}: is a FIFO, not a regular file (expected an " \
                                  ".npy file)"
    assert not (tmp_path / "c").exists()


def test_corpus_import_force_through_a_link_names_it_and_keeps_its_target(tmp_path, capsys):
    real = tmp_path / "real"
    assert main(["corpus", "import", str(vectors(tmp_path / "v.npy")), str(real)]) == 0
    before = sorted(os.listdir(real))
    link = tmp_path / "link"
    link.symlink_to(real)
    capsys.readouterr()
    assert main(["corpus", "import", str(tmp_path / "v.npy"), str(link), "--force"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"sosie: corpus folder: {link} is a symbolic link (to {real}); refusing to "
                   "write or remove through it")
    assert sorted(os.listdir(real)) == before and link.is_symlink()


@pytest.mark.parametrize("count", [10_000_001, 2**31])
def test_synth_counts_beyond_the_index_are_refused_up_front(tmp_path, capsys, count):
    assert main(["corpus", "synth", str(tmp_path / "c"), "--count", str(count)]) == 2
    assert capsys.readouterr().err.strip() == (f"sosie corpus: --count {count}: expected 1 to "
                                               "10000000 rows")
    assert not (tmp_path / "c").exists()


def full_disk(monkeypatch, free: int = 1 << 20) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(1 << 30, (1 << 30) - free, free))


def test_a_corpus_that_cannot_fit_the_disk_is_refused_before_writing(tmp_path, monkeypatch,
                                                                     capsys):
    full_disk(monkeypatch)
    assert main(["corpus", "synth", str(tmp_path / "c"), "--count", "100000"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sosie: a corpus of 100000 rows in {tmp_path / 'c'} needs at least ")
    assert err.endswith(f"but {tmp_path} has 1.0 MB free") and not (tmp_path / "c").exists()
    assert main(["corpus", "import", str(vectors(tmp_path / "v.npy", 4000)),
                 str(tmp_path / "d")]) == 1
    assert "needs at least 1.3 MB" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_generate_counts_are_bounded_by_names_and_disk(tmp_path, monkeypatch, capsys):
    out = tmp_path / "faces"
    assert main(["generate", str(out), "--count", "5000001"]) == 2
    assert "--count 5000001: expected 1 to 5000000 faces" in capsys.readouterr().err
    full_disk(monkeypatch)
    assert main(["generate", str(out), "--count", "200000", "--size", "256"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"sosie generate: 200000 faces of 256 px in {out} needs at least 781.2 MB "
                   f"but {tmp_path} has 1.0 MB free")
    assert not out.exists()


def test_build_dcgan_counts_are_bounded(tmp_path, monkeypatch, capsys):
    assert main(["build", "dcgan:20000000", str(tmp_path / "c")]) == 2
    assert "20000000 draws: a corpus holds at most 10000000 faces" in capsys.readouterr().err
    full_disk(monkeypatch)
    assert main(["build", "dcgan:500000", str(tmp_path / "c")]) == 1
    assert "needs at least" in capsys.readouterr().err and not (tmp_path / "c").exists()
