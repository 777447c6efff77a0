"""`sosie corpus import`: a corpus from an .npy array, searched exactly; bad files in one line."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.cli import main
from appliance.corpus import Corpus, verify
from appliance.corpus import format as fmt
from appliance.corpus.importer import VectorsError, import_descriptors


def reference(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    squared = ((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
    return np.lexsort((np.arange(len(vectors)), squared))[:k]


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Face-like rows: a shared offset, a decaying spectrum, a few exact duplicates."""
    scales = 0.3 * np.exp(-np.arange(128) / 12.0)
    x = rng.standard_normal((n, 128)) * scales @ np.linalg.qr(rng.standard_normal((128, 128)))[0]
    x += rng.standard_normal(128) * 0.1
    x[n // 2 : n // 2 + 5] = x[3]
    return x


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("import")
    rows = clustered(np.random.default_rng(1), 6000)
    np.save(folder / "faces.npy", rows.astype(np.float32))
    return import_descriptors(folder / "faces.npy", folder / "corpus"), rows


def test_imported_corpus_search_equals_float64_reference(imported) -> None:
    directory, rows = imported
    with Corpus.open(directory) as corpus:
        assert corpus.count == 6000 and corpus.synthetic
        assert corpus.manifest["source"]["imported"].endswith("faces.npy")
        assert corpus.manifest["sketch"]["axes"] > 0
        stored = np.asarray(corpus.vectors)
        np.testing.assert_array_equal(stored, rows.astype(np.float32).astype(np.float16))
        scanner = corpus.scanner()
        assert scanner.sketch is not None
        rng = np.random.default_rng(2)
        queries = [rows[i] + rng.normal(0, 0.01, 128) for i in rng.integers(0, 6000, 6)]
        queries += [rows[3], rng.standard_normal(128) * 5]  # duplicates' twin, a far query
        for query in queries:
            query = query.astype(np.float32)
            for k in (1, 10, 37):
                got, _ = scanner.topk(query, k)
                np.testing.assert_array_equal(got, reference(stored, query, k))
        assert corpus.thumbnail(5999).shape[:2] == (256, 256)  # placeholder faces
    assert verify(directory) == []


def test_cli_import_and_refusing_to_overwrite(tmp_path, capsys) -> None:
    rows = clustered(np.random.default_rng(3), 300)
    np.save(tmp_path / "v.npy", rows)  # float64
    assert main(["corpus", "import", str(tmp_path / "v.npy"), str(tmp_path / "c")]) == 0
    assert "imported 300 descriptors" in capsys.readouterr().out
    assert main(["corpus", "import", str(tmp_path / "v.npy"), str(tmp_path / "c")]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["corpus", "import", str(tmp_path / "v.npy"), str(tmp_path / "c"),
                 "--force"]) == 0


def _write_raw(path, data: bytes) -> None:
    path.write_bytes(data)


BAD = {
    "one_d": (lambda p: np.save(p, np.zeros(128, np.float32)), r"1-D: expected \(N, 128\)"),
    "three_d": (lambda p: np.save(p, np.zeros((2, 128, 1), np.float32)), "3-D"),
    "wrong_dim": (lambda p: np.save(p, np.zeros((5, 64), np.float32)), "expected 128 columns"),
    "no_rows": (lambda p: np.save(p, np.zeros((0, 128), np.float32)), "0 rows"),
    "ints": (lambda p: np.save(p, np.zeros((5, 128), np.int32)), "expected float16, float32"),
    "complex": (lambda p: np.save(p, np.zeros((5, 128), np.complex64)), "expected float16"),
    "pickled": (lambda p: np.save(p, np.array([[{"x": 1}] * 128] * 2, dtype=object)),
                "holds Python objects"),
    "records": (lambda p: np.save(p, np.zeros((5, 128), [("a", "f4")])), "holds Python objects"),
    "nan": (lambda p: np.save(p, _with(7, 9, np.nan)), r"row 7, column 9 is .*nan"),
    "inf": (lambda p: np.save(p, _with(3, 0, -np.inf)), r"row 3, column 0 is .*inf"),
    "absurd": (lambda p: np.save(p, _with(4, 127, 1e30)), r"row 4, column 127 .*within"),
    "not_npy": (lambda p: _write_raw(p, b"\x89PNG\r\n\x1a\n" + bytes(600)), "not a .npy"),
    "empty_file": (lambda p: _write_raw(p, b""), "not a .npy"),
    "truncated": (lambda p: _truncate(p), "truncated or padded"),
    "bad_header": (lambda p: _write_raw(p, b"\x93NUMPY\x01\x00\x10\x00{'descr': os.system}\n"),
                   "unreadable .npy header"),
}


def _with(row: int, column: int, value: float) -> np.ndarray:
    x = np.zeros((10, 128), np.float32)
    x[row, column] = value
    return x


def _truncate(path) -> None:
    np.save(path, np.zeros((10, 128), np.float32))
    path.write_bytes(path.read_bytes()[:-4])


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_refused_in_one_line_and_write_nothing(case, tmp_path, capsys) -> None:
    make, match = BAD[case]
    path = tmp_path / "bad.npy"
    make(path)
    with pytest.raises(VectorsError, match=match) as info:
        import_descriptors(path, tmp_path / "c")
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not (tmp_path / "c").exists()
    assert main(["corpus", "import", str(path), str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.npy" in err and "Traceback" not in err


def test_missing_file_is_one_line(tmp_path, capsys) -> None:
    assert main(["corpus", "import", str(tmp_path / "nope.npy"), str(tmp_path / "c")]) == 1
    assert "nope.npy: cannot read" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_float16_input_is_stored_bit_for_bit(tmp_path) -> None:
    rows = clustered(np.random.default_rng(4), 50).astype(np.float16)
    rows[0, 0] = np.float16(6e-8)  # a subnormal survives
    np.save(tmp_path / "h.npy", rows)
    directory = import_descriptors(tmp_path / "h.npy", tmp_path / "c")
    stored = np.fromfile(directory / fmt.DESCRIPTORS, dtype="<f2").reshape(50, 128)
    np.testing.assert_array_equal(stored.view(np.uint16), rows.view(np.uint16))
