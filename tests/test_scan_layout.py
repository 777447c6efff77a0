"""The sketch's scan layout as corpus files: written by the build, checked on open like every
other file, memory-mapped; corpora built before the files still open and can be given them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from appliance.corpus import Corpus, CorpusError, synth, verify
from appliance.corpus import format as fmt
from appliance.corpus.writer import add_scan_layout
from appliance.search import LAYOUT_VERSION, Scanner, scan_layout


def reference(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    squared = ((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
    return np.lexsort((np.arange(len(vectors)), squared))[:k].tolist()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    return synth(tmp_path_factory.mktemp("layout") / "c", 3001, seed=5)  # not a multiple of 16


@pytest.fixture
def copy(built, tmp_path):
    return shutil.copytree(built, tmp_path / "copy")


def without_layout(directory) -> None:
    """The corpus as a build before the layout files wrote it."""
    manifest = yaml.safe_load((directory / fmt.MANIFEST).read_text())
    for name in fmt.LAYOUT_FILES:
        (directory / name).unlink()
        del manifest["files"][name]
    del manifest["sketch"]["layout"]
    fmt.write_manifest(directory, manifest)


def test_build_writes_the_layout_the_scanner_would_build(built):
    with Corpus.open(built) as corpus:
        entry = corpus.manifest["sketch"]["layout"]
        assert entry["version"] == LAYOUT_VERSION
        stored = corpus.scan_layout()
        assert stored is not None and isinstance(stored.blocks, np.memmap)
        fresh = scan_layout(corpus.sketch())
        assert np.array_equal(stored.blocks, fresh.blocks)
        assert np.array_equal(stored.records, fresh.records)
        assert stored.l1_max == fresh.l1_max == entry["l1_max"]
        assert (stored.first_axes, stored.rest_axes) == (fresh.first_axes, fresh.rest_axes)
        scanner = corpus.scanner()
        vectors = np.asarray(corpus.vectors)
    assert verify(built) == []
    rng = np.random.default_rng(0)
    for row in rng.integers(0, len(vectors), 8):
        query = vectors[row].astype(np.float32) + rng.normal(0, 0.05, vectors.shape[1])
        assert scanner.topk(query, 10)[0].tolist() == reference(vectors, query, 10)


def test_a_corpus_without_the_files_opens_and_repair_adds_them(copy, built):
    without_layout(copy)
    assert verify(copy) == []
    with Corpus.open(copy) as corpus:
        assert corpus.scan_layout() is None  # laid out in memory, as before the files
        query = np.asarray(corpus.vectors[7], np.float32)
        before = corpus.scanner().topk(query, 5)[0].tolist()
    run = subprocess.run([sys.executable, "-m", "appliance", "corpus", "verify", "--repair",
                          str(copy)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "wrote the scan layout" in run.stdout
    assert verify(copy) == []
    for name in fmt.LAYOUT_FILES:
        assert (copy / name).read_bytes() == (built / name).read_bytes()
    with Corpus.open(copy) as corpus:
        assert corpus.scan_layout() is not None
        assert corpus.scanner().topk(query, 5)[0].tolist() == before
    assert add_scan_layout(copy) is False  # nothing to do the second time


def test_layout_files_are_checked_like_every_other_file(copy):
    with open(copy / fmt.SKETCH_RECORDS, "ab") as handle:
        handle.write(b"\0" * 32)
    with pytest.raises(CorpusError, match=r"sketch_records\.u8: too long"):
        Corpus.open(copy)
    with open(copy / fmt.SKETCH_RECORDS, "r+b") as handle:
        handle.truncate(3001 * 32)
        handle.seek(100)
        handle.write(b"\x7f")
    problems = verify(copy)
    assert len(problems) == 1 and fmt.SKETCH_RECORDS in problems[0] and "sha256" in problems[0]


@pytest.mark.parametrize("change, message", [
    (lambda layout: layout.update(record_bytes=16), "a record must hold"),
    (lambda layout: layout.update(first_axes=44), "multiple of 8"),
    (lambda layout: layout.update(l1_max=-1), "l1_max"),
    (lambda layout: layout.update(version="1"), "version"),
])
def test_a_hostile_layout_entry_is_refused_on_one_line(copy, change, message):
    manifest = yaml.safe_load((copy / fmt.MANIFEST).read_text())
    change(manifest["sketch"]["layout"])
    fmt.write_manifest(copy, manifest)
    with pytest.raises(CorpusError, match=message) as error:
        Corpus.open(copy)
    assert "\n" not in str(error.value)


def test_another_layout_version_is_laid_out_in_memory(copy):
    manifest = yaml.safe_load((copy / fmt.MANIFEST).read_text())
    manifest["sketch"]["layout"]["version"] = LAYOUT_VERSION + 1
    fmt.write_manifest(copy, manifest)
    with Corpus.open(copy) as corpus:
        assert corpus.scan_layout() is None
        vectors = np.asarray(corpus.vectors)
        scanner = corpus.scanner()
    query = vectors[11].astype(np.float32) + 0.01
    assert scanner.topk(query, 3)[0].tolist() == reference(vectors, query, 3)


def test_rows_holding_nan_are_refused_when_the_scanner_opens(copy):
    with open(copy / fmt.DESCRIPTORS, "r+b") as handle:
        handle.seek(2 * 128 * 40)
        handle.write(np.array([np.nan], "<f2").tobytes())
    with Corpus.open(copy) as corpus, pytest.raises(CorpusError, match="1 row"):
        corpus.scanner()
    vectors = np.zeros((16, 8), np.float16)
    vectors[3, 2] = np.inf
    with pytest.raises(ValueError, match="hold NaN"):
        Scanner(vectors)
