"""Outputs are written atomically and named in errors (issue 22, item 7): a full disk leaves
nothing under the final names, the message names the destination, and temporary folders go
away on SIGTERM too."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance import files
from appliance.cli import main


@pytest.fixture
def full_disk(tmp_path) -> Iterator[Path]:
    """A 16 KB tmpfs (root only; skipped elsewhere), unmounted at the end."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_failed_write_leaves_nothing_and_names_the_destination(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(files.WriteError) as caught, files.atomic_output(path) as fh:
        fh.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(caught.value) == f"cannot write {path}: no space left on device"
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert os.listdir(tmp_path) == []
    path.write_bytes(b"old")
    with pytest.raises(files.WriteError), files.atomic_output(path) as fh:
        fh.write(b"new, half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_atomic_writes_on_a_full_disk_name_the_file(full_disk):
    path = full_disk / "big.bin"
    with pytest.raises(files.WriteError) as caught:
        files.atomic_write_bytes(path, b"\0" * (64 << 10))
    assert caught.value.strerror == f"cannot write {path}: no space left on device"
    assert os.listdir(full_disk) == []


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 300, seed=4)


@pytest.mark.slow
def test_ticket_out_on_a_full_disk_leaves_nothing_and_names_the_destination(full_disk,
                                                                           corpus_dir, tmp_path,
                                                                           capsys):
    photo = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (120, 120, 120)).save(photo)
    out = full_disk / "ticket.png"
    status = main(["ticket", "--image", str(photo), "--corpus", str(corpus_dir), "--out",
                   str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 1 and err == f"sosie ticket: cannot write {out}: no space left on device"
    assert os.listdir(full_disk) == []  # no .png, no .bin, no temporary folder


def test_a_temporary_folder_is_removed_on_sigterm(tmp_path):
    code = f"""
import sys, time
from appliance.files import temporary_folder
with temporary_folder("sosie-test-", {str(tmp_path)!r}) as path:
    (path / "half-written").write_bytes(b"x")
    print(path, flush=True)
    time.sleep(30)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        folder = Path(child.stdout.readline().strip())
        assert folder.is_dir() and folder.parent == tmp_path
        child.send_signal(signal.SIGTERM)
        assert child.wait(20) == 128 + signal.SIGTERM
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 5
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(tmp_path) == []


def test_a_build_on_a_full_disk_names_the_file_it_could_not_write(full_disk, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        pixels = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.png")
    done = subprocess.run([sys.executable, "-m", "appliance", "build", str(images),
                           str(full_disk / "c"), "--engine", "mock", "--quiet", "--workers",
                           "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"sosie: cannot write {full_disk / 'c'}")
    assert line.endswith(": no space left on device")


def test_a_map_on_a_full_disk_names_the_file_it_could_not_write(full_disk):
    from test_map_site import StandInCorpus

    from appliance.cartography.site import MapOptions, build_site

    out = full_disk / "m"
    with pytest.raises(files.WriteError) as caught:
        build_site(StandInCorpus(30, seed=5), out, options=MapOptions(neighbours=3))
    assert str(caught.value).startswith(f"cannot write {out}/")
    assert str(caught.value).endswith(": no space left on device")
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
