"""The sketch in a corpus: written by synth/build (format 2), computed for format 1, checked."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from appliance.corpus import Corpus, CorpusError, synth, verify
from appliance.corpus import format as fmt
from appliance.corpus.sketch import SKETCH_AXES, sketch_problems
from appliance.corpus.spectrum import explained, load_spectrum


def reference(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    squared = ((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
    return np.lexsort((np.arange(len(vectors)), squared))[:k]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory):
    return synth(tmp_path_factory.mktemp("sketch") / "c", 20000, seed=4)


def as_version_1(directory) -> None:
    """Rewrite a corpus as format version 1: no sketch files, no sketch in the manifest."""
    manifest = yaml.safe_load((directory / fmt.MANIFEST).read_text())
    for name in fmt.SKETCH_FILES:
        (directory / name).unlink()
        del manifest["files"][name]
    del manifest["sketch"]
    manifest["format_version"] = 1
    fmt.write_manifest(directory, manifest)


def test_synth_writes_a_version_2_corpus_with_a_sketch(corpus_dir) -> None:
    with Corpus.open(corpus_dir) as corpus:
        assert corpus.manifest["format_version"] == 2
        assert corpus.manifest["sketch"]["axes"] == SKETCH_AXES
        fitted = explained(load_spectrum().eigenvalues, (SKETCH_AXES,))[SKETCH_AXES]
        assert abs(corpus.manifest["sketch"]["variance_explained"] - fitted) < 0.02
        sketch = corpus.sketch()
        assert sketch is not None and sketch.codes.shape == (20000, SKETCH_AXES)
        assert sketch_problems(sketch, corpus.vectors) == []
        scanner = corpus.scanner()
        assert scanner.sketch is sketch
        rng = np.random.default_rng(0)
        for row in rng.integers(0, 20000, 5):
            query = corpus.vectors[row].astype(np.float32) + np.float32(0.01)
            rows, _ = scanner.topk(query, 10)
            np.testing.assert_array_equal(rows, reference(corpus.vectors, query, 10))
            assert scanner.rows_read < 20000 // 10  # the sketch ruled out most rows
    assert verify(corpus_dir) == []


def test_version_1_corpus_gets_its_sketch_computed_in_memory(corpus_dir, tmp_path) -> None:
    old = tmp_path / "old"
    synth(old, 3000, seed=5)
    as_version_1(old)
    before = sorted(p.name for p in old.iterdir())
    with Corpus.open(old) as corpus:
        assert corpus.manifest["format_version"] == 1
        scanner = corpus.scanner()
        assert scanner.sketch is not None and scanner.sketch.axes == SKETCH_AXES
        query = corpus.vectors[17].astype(np.float32)
        np.testing.assert_array_equal(scanner.topk(query, 7)[0],
                                      reference(corpus.vectors, query, 7))
    assert sorted(p.name for p in old.iterdir()) == before  # nothing written
    assert verify(old) == []


def test_a_rotation_that_is_not_orthonormal_is_refused(tmp_path) -> None:
    directory = synth(tmp_path / "c", 500, seed=6)
    header = np.fromfile(directory / fmt.SKETCH_HEADER, "<f8").reshape(131, 128)
    header[5, 3] += 1e-3
    header.tofile(directory / fmt.SKETCH_HEADER)
    with Corpus.open(directory) as corpus, pytest.raises(CorpusError, match="not orthonormal"):
        corpus.scanner()
    assert any("sha256" in p for p in verify(directory))


@pytest.mark.parametrize(("row", "column", "value", "match"), [
    (129, 2, np.nan, "NaN or infinity"),
    (129, 0, -1.0, "scales must be"),
    (130, 1, -5.0, "error, radius"),
    (130, 0, 16.0, "16 axes, the manifest says"),
])
def test_hostile_sketch_numbers_are_refused(tmp_path, row, column, value, match) -> None:
    directory = synth(tmp_path / "c", 200, seed=7)
    header = np.fromfile(directory / fmt.SKETCH_HEADER, "<f8").reshape(131, 128)
    header[row, column] = value
    header.tofile(directory / fmt.SKETCH_HEADER)
    with Corpus.open(directory) as corpus, pytest.raises(CorpusError, match=match) as caught:
        corpus.sketch()
    assert fmt.SKETCH_HEADER in str(caught.value) and "\n" not in str(caught.value)


def test_tails_and_codes_are_checked(tmp_path) -> None:
    directory = synth(tmp_path / "c", 300, seed=8)
    tails = np.fromfile(directory / fmt.SKETCH_TAILS, "<f4")
    tails[3] = np.inf
    tails.tofile(directory / fmt.SKETCH_TAILS)
    with Corpus.open(directory) as corpus, pytest.raises(CorpusError, match="finite norms"):
        corpus.sketch()
    tails[3] = 0.5
    tails.tofile(directory / fmt.SKETCH_TAILS)
    codes = np.fromfile(directory / fmt.SKETCH_CODES, np.int8).reshape(300, -1)
    codes[9, 0] = -codes[9, 0] if codes[9, 0] else 100
    codes.tofile(directory / fmt.SKETCH_CODES)
    problems = verify(directory)
    assert any("codes farther than the recorded error (first row 9)" in p for p in problems)
    assert any("tail norms wrong (first row 3)" in p for p in problems)


def test_a_truncated_sketch_is_refused_on_open(tmp_path) -> None:
    directory = synth(tmp_path / "c", 300, seed=9)
    data = (directory / fmt.SKETCH_CODES).read_bytes()
    (directory / fmt.SKETCH_CODES).write_bytes(data[:-1])
    with pytest.raises(CorpusError, match=r"sketch\.i8: truncated"):
        Corpus.open(directory)


@pytest.mark.parametrize("axes", [0, 12, 136, "32"])
def test_manifest_sketch_axes_are_checked(tmp_path, axes) -> None:
    directory = synth(tmp_path / "c", 50, seed=10)
    manifest = yaml.safe_load((directory / fmt.MANIFEST).read_text())
    manifest["sketch"]["axes"] = axes
    fmt.write_manifest(directory, manifest)
    with pytest.raises(CorpusError, match=r"sketch\.axes"):
        Corpus.open(directory)
