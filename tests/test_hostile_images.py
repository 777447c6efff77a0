"""Decompression bombs through every entry point that decodes a photo.

A valid 13000x13000 PNG of 0.5 MB used to be decoded in full (1.7 GB peak per process, 3.3 GB
in `build --workers 2`). It is now refused before a pixel is decoded, with one line naming the
file; `bench/bombs.py` measures the peak memory of each entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys

import photos
import pytest
from test_images import bomb_png

from appliance.corpus import Corpus, synth

CLI = [sys.executable, "-m", "appliance"]
#: Address space for a CLI run: plenty for the real work, far from what the attack needs.
LIMIT = 1536 << 20
#: One BLAS thread: OpenBLAS reserves buffers per core, which a many-core CI runner would
#: otherwise spend out of the address-space limit.
ONE_THREAD = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
REFUSAL = "13000x13000 PNG is 169 MP, more than the 36 MP a photo may decode to"


def sosie(*args, timeout=180):
    """Run the CLI with 1.5 GB of address space: decoding the bomb would need more."""
    def limit():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, env=ONE_THREAD)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(bomb_png(13000))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("corpus") / "c", 30, seed=2)


def test_describe_refuses_the_bomb_on_one_line(bomb):
    run = sosie("describe", bomb)
    assert run.returncode == 1, run.stderr
    assert run.stdout == f"{bomb}: unreadable: {REFUSAL}; refusing a possible decompression " \
        "bomb (scale it down)\n"
    assert "Traceback" not in run.stderr


def test_ticket_refuses_the_bomb_on_one_line(bomb, corpus, tmp_path):
    run = sosie("ticket", "--image", bomb, "--corpus", corpus, "--out", tmp_path / "t.png")
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines() == [f"sosie ticket: {bomb}: {REFUSAL}; refusing a "
                                               "possible decompression bomb (scale it down)"]


def test_map_mark_refuses_the_bomb_on_one_line(bomb, corpus, tmp_path):
    run = sosie("map", corpus, "--out", tmp_path / "site", "--mark", bomb)
    assert run.returncode == 2, run.stderr
    assert f"{bomb}: {REFUSAL}" in run.stderr and "Traceback" not in run.stderr


def test_build_rejects_bombs_and_keeps_the_rest(bomb, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "bomb-a.png").write_bytes(bomb.read_bytes())
    (images / "face.png").write_bytes(photos.encode(photos.astronaut(), "PNG"))
    out = tmp_path / "corpus"
    run = sosie("build", images, out, "--workers", "2", "--engine", "mock", "--quiet")
    assert run.returncode == 0, run.stderr
    with Corpus.open(out, check_model=False) as built:
        assert built.count == 1 and built.source(0) == "face.png"
        rejected = dict(built.rejected())
    assert REFUSAL in rejected["bomb-a.png"]
