"""Weights files are bounded before they are inflated (issue 22, item 2): a small file whose
members claim or inflate to gigabytes is refused on one line, with the reader's peak memory
under 300 MB, measured in a fresh process."""

from __future__ import annotations

import bz2
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from torch_zip_writer import Tensor, write_torch_zip

from appliance.generator.torch_zip import WeightsFormatError, read_torch_zip

PEAK_RSS_MB = 300
INFLATED = 512 << 20  # what the bombs inflate to (the header claims far less or far more)
METHODS = {"deflate": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2}


def bomb_payload(method: str) -> bytes:
    """INFLATED zero bytes, compressed (~0.5 MB deflate, a few hundred bytes bzip2)."""
    compressor = (zlib.compressobj(9, zlib.DEFLATED, -15) if method == "deflate"
                  else bz2.BZ2Compressor(9))
    zeros = bytes(16 << 20)
    parts = [compressor.compress(zeros) for _ in range(INFLATED // len(zeros))]
    return b"".join([*parts, compressor.flush()])


def patch_member(path: Path, name: str, method: int, claimed: int) -> None:
    """Set `name`'s compression method and uncompressed size in both of its zip headers (its
    stored bytes are already the compressed payload)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    struct.pack_into("<H", data, local + 8, method)
    struct.pack_into("<I", data, local + 22, claimed)
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(name.encode()) + 1)
    while data[central + 46:central + 46 + len(name)] != name.encode():
        central = data.rfind(b"PK\x01\x02", 0, central)
    struct.pack_into("<H", data, central + 10, method)
    struct.pack_into("<I", data, central + 24, claimed)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module", params=sorted(METHODS))
def bomb(request, tmp_path_factory) -> tuple[str, Path]:
    """A weights file whose one storage (4 float32 declared, 16 bytes claimed) inflates to
    512 MB with deflate or bzip2."""
    method = request.param
    path = tmp_path_factory.mktemp("bomb") / f"{method}.tar"
    state = {"netG_state_dict": OrderedDict(w=Tensor(np.zeros(4, np.float32), "0"))}
    write_torch_zip(path, state, storages={"0": bomb_payload(method)})
    patch_member(path, "archive/data/0", METHODS[method], 16)
    return method, path


def read_in_child(path: Path) -> tuple[str, float]:
    """(the one-line error or 'read', peak RSS in MB) of reading `path` in a fresh process."""
    code = f"""
import json, sys
from appliance.generator.torch_zip import read_torch_zip
try:
    read_torch_zip({str(path)!r})
    outcome = "read"
except BaseException as exc:
    outcome = f"{{type(exc).__name__}}: {{exc}}"
# VmHWM, this process's own high-water mark: ru_maxrss would carry over the parent's across
# exec (a large pytest process would count as this small reader's peak)
status = open("/proc/self/status").read().split("VmHWM:")[1]
peak = int(status.split()[0]) / 1024
print(json.dumps([outcome, peak]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    outcome, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome, peak


def test_a_compressed_bomb_is_refused_before_it_inflates(bomb):
    method, path = bomb
    assert path.stat().st_size < 2 << 20
    outcome, peak = read_in_child(path)
    assert outcome.startswith("WeightsFormatError: ") and "\n" not in outcome
    assert str(path) in outcome and method in outcome and "uncompressed" in outcome
    assert peak <= PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"


def test_dcgan_load_refuses_the_bomb_on_one_line(bomb):
    from appliance.generator.dcgan import DCGAN

    _, path = bomb
    with pytest.raises(WeightsFormatError, match="refused before inflating"):
        DCGAN.load(path)


def test_a_stored_member_claiming_gigabytes_is_refused_without_allocating(tmp_path):
    path = tmp_path / "claims.tar"
    numel = (4 << 30) // 4  # 4 GB of float32 declared by the pickle and the zip header
    state = {"w": Tensor(np.zeros(4, np.float32), "0", shape=(numel,), numel=numel)}
    write_torch_zip(path, state)
    patch_member(path, "archive/data/0", zipfile.ZIP_STORED, (4 << 30) - 1)
    outcome, peak = read_in_child(path)
    assert outcome.startswith("WeightsFormatError: ") and str(path) in outcome
    assert peak <= PEAK_RSS_MB


def test_a_file_larger_than_the_budget_is_refused_before_it_is_opened(tmp_path):
    path = tmp_path / "big.tar"
    write_torch_zip(path, {"w": Tensor(np.zeros(4, np.float32), "0")},
                    storages={"padding": bytes(8 << 20)})
    with pytest.raises(WeightsFormatError, match="larger than"):
        read_torch_zip(path, max_tensor_bytes=1 << 20)
    assert read_torch_zip(path)["w"].shape == (4,)


@pytest.mark.parametrize("name", ["archive/../../etc/passwd", "/archive/data/1",
                                  "archive/data/..", "C:/archive/x"])
def test_member_names_that_are_paths_are_refused(tmp_path, name):
    path = tmp_path / "names.tar"
    write_torch_zip(path, {"w": Tensor(np.zeros(4, np.float32), "0")})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(WeightsFormatError, match="a path outside the archive") as caught:
        read_torch_zip(path)
    assert str(path) in str(caught.value)


def test_an_honest_archive_still_reads_under_an_exact_budget(tmp_path):
    path = tmp_path / "ok.tar"
    array = np.arange(1000, dtype=np.float32)
    write_torch_zip(path, {"w": Tensor(array, "0")})
    assert np.array_equal(read_torch_zip(path, max_tensor_bytes=array.nbytes)["w"], array)
    with pytest.raises(WeightsFormatError, match="larger than"):
        read_torch_zip(path, max_tensor_bytes=array.nbytes // 4)


def test_dcgan_load_caps_the_read_at_the_networks_own_size(tmp_path):
    from appliance.generator.dcgan import DCGAN, expected_bytes

    path = tmp_path / "big.tar"
    huge = Tensor(np.zeros(10 << 20, np.float32), "0")  # 40 MB: under the reader's default cap
    write_torch_zip(path, {"netG_state_dict": OrderedDict(w=huge)})
    assert path.stat().st_size > 2 * expected_bytes()
    with pytest.raises(WeightsFormatError, match=f"larger than the {2 * expected_bytes()} bytes"):
        DCGAN.load(path)
