"""Scanner: every kernel this CPU runs, both scan metrics, against a numpy float64 reference."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import _scan, search
from appliance.search import ENV_KERNEL, Scanner, kernels
from appliance.search.bounds import lower_bound, upper_bound

KERNELS = kernels()
METHODS = [(kernel, trick) for kernel in KERNELS for trick in (False, True)]


def reference(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k in float64: ascending distance, ties by lower row."""
    squared = ((vectors.astype(np.float64) - np.asarray(query, np.float64)) ** 2).sum(axis=1)
    order = np.lexsort((np.arange(len(vectors)), squared))[:k]
    return order, np.sqrt(squared[order]).astype(np.float32)


def assert_exact(scanner: Scanner, vectors: np.ndarray, query: np.ndarray, k: int) -> None:
    rows, distances = scanner.topk(query, k)
    want_rows, want_distances = reference(vectors, query, k)
    assert rows.dtype == np.int64 and distances.dtype == np.float32
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(distances, want_distances)


def make_vectors(rng: np.random.Generator, n: int, d: int, mode: str) -> np.ndarray:
    """Random float16 rows: face-like, huge (near 65504), subnormal, tie-heavy, or any scale."""
    if mode == "face":
        x = rng.standard_normal((n, d)) * 0.13
    elif mode == "large":
        x = rng.uniform(-65504, 65504, (n, d))
    elif mode == "subnormal":
        x = rng.uniform(-(2.0**-14), 2.0**-14, (n, d))  # mostly float16 subnormals
    elif mode == "ties":
        x = rng.integers(-2, 3, (n, d))
    else:  # random finite bit patterns: every exponent
        bits = rng.integers(0, 0x7C00, (n, d), dtype=np.uint16)
        bits |= (rng.integers(0, 2, (n, d), dtype=np.uint16) << 15).astype(np.uint16)
        return bits.view(np.float16)
    return x.astype(np.float16)


def placed(vectors: np.ndarray, layout: str, offset: int) -> np.ndarray:
    """The same rows at an unaligned byte offset, with padded or reversed rows."""
    n, d = vectors.shape
    if layout == "unaligned":
        raw = np.zeros(vectors.nbytes + 64, np.uint8)
        out = raw[offset : offset + vectors.nbytes].view(np.float16).reshape(n, d)
        out[...] = vectors
        return out
    if layout == "padded":
        wide = np.zeros((n, d + 8 * (1 + offset % 3)), np.float16)
        wide[:, :d] = vectors
        return wide[:, :d]
    if layout == "reversed":
        return np.ascontiguousarray(vectors[::-1])[::-1]
    return vectors


@st.composite
def cases(draw: st.DrawFn) -> dict:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.sampled_from([8, 16, 24, 32, 64, 120, 128, 136]))
    n = draw(st.integers(1, 1500))
    mode = draw(st.sampled_from(["face", "face", "large", "subnormal", "ties", "bits"]))
    vectors = make_vectors(rng, n, d, mode)
    duplicates = draw(st.integers(0, min(n - 1, 60)))
    if duplicates:
        vectors[rng.integers(0, n, duplicates)] = vectors[rng.integers(0, n, duplicates)]
    query_kind = draw(st.sampled_from(["row", "near", "random", "float64"]))
    row = vectors[rng.integers(0, n)].astype(np.float64)
    if query_kind == "row":
        query = row.astype(np.float32)
    elif query_kind == "near":
        query = (row + rng.standard_normal(d) * (np.abs(row) * 1e-3 + 1e-6)).astype(np.float32)
    elif query_kind == "random":
        query = make_vectors(rng, 1, d, mode)[0].astype(np.float32)
    else:
        query = row + rng.standard_normal(d) * 1e-9  # not representable in float32
    return {
        "vectors": vectors,
        "query": query,
        "k": draw(st.integers(1, 100)),
        "layout": draw(st.sampled_from(["contiguous", "unaligned", "padded", "reversed"])),
        "offset": draw(st.integers(1, 31)),
        "threads": draw(st.integers(1, 4)),
    }


@pytest.mark.parametrize(("kernel", "trick"), METHODS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_topk_is_exact(kernel: str, trick: bool, case: dict) -> None:
    vectors = placed(case["vectors"], case["layout"], case["offset"])
    scanner = Scanner(vectors, threads=case["threads"], kernel=kernel, norm_trick=trick)
    assert scanner.kernel == kernel and scanner.norm_trick == trick
    assert_exact(scanner, case["vectors"], case["query"], case["k"])


@pytest.mark.parametrize(("kernel", "trick"), METHODS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 100), threads=st.integers(2, 5))
def test_threads_agree_with_one_thread(kernel: str, trick: bool, seed: int, k: int,
                                       threads: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = make_vectors(rng, int(rng.integers(2000, 6000)), 128, "face")
    query = vectors[0].astype(np.float32) + np.float32(0.01)
    one = Scanner(vectors, kernel=kernel, norm_trick=trick).topk(query, k)
    many = Scanner(vectors, threads=threads, kernel=kernel, norm_trick=trick).topk(query, k)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one[0], reference(vectors, query, k)[0])


@pytest.mark.parametrize(("kernel", "trick"), METHODS)
@pytest.mark.parametrize("offset", [1, 2, 6, 30, 34])
def test_memmap_at_unaligned_offset(tmp_path: Path, kernel: str, trick: bool,
                                    offset: int) -> None:
    rng = np.random.default_rng(offset)
    vectors = make_vectors(rng, 3001, 128, "face")
    path = tmp_path / "vectors.f16"
    with path.open("wb") as f:
        f.write(b"\x00" * offset + vectors.tobytes())
    mapped = np.memmap(path, np.float16, "r", offset=offset, shape=vectors.shape)
    assert mapped.ctypes.data % 32  # really unaligned
    scanner = Scanner(mapped, np.linalg.norm(vectors.astype(np.float64), axis=1).astype(np.float32),
                      kernel=kernel, norm_trick=trick, threads=2)
    for k in (1, 10, 77):
        assert_exact(scanner, vectors, vectors[1234].astype(np.float32) * np.float32(1.001), k)


@pytest.mark.parametrize(("kernel", "trick"), METHODS)
def test_many_duplicates_of_the_nearest_row(kernel: str, trick: bool) -> None:
    """More exact ties than the candidate heap holds: the certificate fails, the second pass
    collects every tied row and the lowest indices win."""
    rng = np.random.default_rng(5)
    vectors = make_vectors(rng, 5000, 128, "face")
    copies = rng.choice(5000, 300, replace=False)
    vectors[copies] = vectors[42]
    query = vectors[42].astype(np.float32) + np.float32(1e-3)
    scanner = Scanner(vectors, kernel=kernel, norm_trick=trick)
    assert_exact(scanner, vectors, query, 50)
    rows, _ = scanner.topk(query, 50)
    assert scanner.rescored  # the slow path really ran
    scanner.topk(vectors[int(np.setdiff1d(np.arange(1, 5000), copies)[0])], 5)
    assert not scanner.rescored  # one nearest row: the first pass's certificate holds
    np.testing.assert_array_equal(rows, np.sort(np.append(copies, 42))[:50])


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_values_stay_within_the_certified_bound(kernel: str) -> None:
    """The exactness certificate assumes |float32 value - exact| <= bound: check it holds."""
    rng = np.random.default_rng(11)
    for mode in ("face", "large", "subnormal", "bits"):
        vectors = make_vectors(rng, 999, 136, mode)
        query = make_vectors(rng, 1, 136, mode)[0].astype(np.float32)
        exact = ((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
        for trick in (False, True):
            scanner = Scanner(vectors, kernel=kernel, norm_trick=trick)
            metric, kq, qnorm2, norms2, rel, absolute = scanner.scan_terms(query)
            got = _scan.values(kernel, metric, vectors, kq, norms2, qnorm2).astype(np.float64)
            assert np.all(np.abs(got - exact) <= rel * exact + absolute), (mode, trick)


@pytest.mark.parametrize("kernel", KERNELS)
def test_duplicated_rows_get_identical_values_anywhere(kernel: str) -> None:
    rng = np.random.default_rng(3)
    vectors = make_vectors(rng, 23, 40, "face")
    vectors[[1, 6, 11, 16, 21, 22]] = vectors[0]  # every position within a 4-row pass + tail
    query = rng.standard_normal(40).astype(np.float32)
    for metric, norms2 in ((_scan.L2, None), (_scan.DOT, np.ones(23, np.float32))):
        got = _scan.values(kernel, metric, vectors, query, norms2, 1.0)
        assert len(set(got[[0, 1, 6, 11, 16, 21, 22]].tolist())) == 1


def test_kernels_lists_what_this_cpu_runs() -> None:
    assert KERNELS[-1] == "serial"
    assert set(KERNELS) <= set(_scan.compiled_kernels())
    assert KERNELS[0] == _scan.best()


def test_default_kernel_is_the_best(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KERNEL, raising=False)
    assert Scanner(np.zeros((4, 8), np.float16)).kernel == KERNELS[0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_environment_forces_a_kernel(kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KERNEL, kernel)
    vectors = make_vectors(np.random.default_rng(0), 300, 16, "face")
    scanner = Scanner(vectors)
    assert scanner.kernel == kernel
    assert_exact(scanner, vectors, vectors[7].astype(np.float32), 5)
    assert Scanner(vectors, kernel="serial").kernel == "serial"  # an explicit choice wins


@pytest.mark.parametrize("name", ["bogus", "sse9", "neon" if "neon" not in KERNELS else "avx2"])
def test_unknown_or_unsupported_kernel_is_refused(name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KERNEL, name)
    with pytest.raises(ValueError, match=ENV_KERNEL):
        Scanner(np.zeros((4, 8), np.float16))
    monkeypatch.delenv(ENV_KERNEL)
    with pytest.raises(ValueError, match="kernel"):
        Scanner(np.zeros((4, 8), np.float16), kernel=name)


def test_fewer_rows_than_k_and_empty_matrix() -> None:
    vectors = make_vectors(np.random.default_rng(1), 3, 8, "face")
    rows, distances = Scanner(vectors).topk(np.zeros(8), 10)
    assert len(rows) == len(distances) == 3
    rows, distances = Scanner(np.zeros((0, 8), np.float16)).topk(np.zeros(8), 5)
    assert rows.shape == distances.shape == (0,)


def test_row_equal_to_query_has_distance_zero() -> None:
    vectors = make_vectors(np.random.default_rng(2), 1000, 128, "face")
    rows, distances = Scanner(vectors).topk(vectors[517], 3)
    assert rows[0] == 517 and distances[0] == 0.0


def test_concurrent_queries_from_python_threads() -> None:
    rng = np.random.default_rng(9)
    vectors = make_vectors(rng, 20000, 128, "face")
    scanner = Scanner(vectors, threads=2)
    queries = vectors[rng.integers(0, 20000, 8)].astype(np.float32) + np.float32(0.01)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = scanner.topk(queries[i], 10)[0]

    pool = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for i in range(8):
        np.testing.assert_array_equal(results[i], reference(vectors, queries[i], 10)[0])


# -- refusals ---------------------------------------------------------------------------------

GOOD = np.zeros((10, 16), np.float16)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.zeros((10, 16), np.float32), "float16"),
        (np.zeros((10, 16), ">f2"), "float16"),
        (np.zeros(16, np.float16), r"\(N, d\)"),
        (np.zeros((2, 10, 16), np.float16), r"\(N, d\)"),
        (np.zeros((10, 12), np.float16), "multiple of 8"),
        (np.zeros((10, 0), np.float16), "multiple of 8"),
        ([[0.0] * 16], "numpy array"),
    ],
)
def test_bad_vectors_are_refused(vectors: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scanner(vectors)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_refused(bad: float) -> None:
    vectors = GOOD.copy()
    vectors[3, 5] = bad
    with pytest.raises(ValueError, match="1 row"):
        Scanner(vectors)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (np.zeros(15), "16 real numbers"),
        (np.zeros((1, 16)), "16 real numbers"),
        (np.array(["a"] * 16), "16 real numbers"),
        (np.full(16, np.nan), "NaN or infinity"),
        (np.r_[np.zeros(15), np.inf], "NaN or infinity"),
        (np.full(16, 1e300), "float32 range"),
    ],
)
def test_bad_queries_are_refused(query: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scanner(GOOD).topk(query, 3)


@pytest.mark.parametrize("k", [0, -1, True, 2.5, "3", None])
def test_bad_k_is_refused(k: object) -> None:
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        Scanner(GOOD).topk(np.zeros(16), k)  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [0, -2, 1.5, True])
def test_bad_threads_are_refused(threads: object) -> None:
    with pytest.raises(ValueError, match="threads"):
        Scanner(GOOD, threads=threads)  # type: ignore[arg-type]


def test_norms_are_checked_against_the_vectors() -> None:
    vectors = make_vectors(np.random.default_rng(4), 500, 128, "face")
    euclidean = np.linalg.norm(vectors.astype(np.float64), axis=1).astype(np.float32)
    Scanner(vectors, euclidean)
    Scanner(vectors, euclidean**2)  # squared norms are accepted too
    Scanner(vectors, euclidean * np.float32(1.002))  # norms of the float32 originals: fine
    with pytest.raises(ValueError, match="do not belong"):
        Scanner(vectors, np.roll(euclidean, 1))
    with pytest.raises(ValueError, match=r"float32\[500\]"):
        Scanner(vectors, euclidean[:-1])
    with pytest.raises(ValueError, match="finite"):
        Scanner(vectors, np.full(500, np.nan, np.float32))


def test_settings_section_parses() -> None:
    from appliance.config import ConfigError, load, parse, section

    assert section(load(), "search", search.SearchSettings) == search.SearchSettings()
    assert parse(search.SearchSettings, {"threads": 4}, "search").threads == 4
    with pytest.raises(ConfigError, match=r"search\.kernel"):
        parse(search.SearchSettings, {"kernel": "gpu"}, "search")


def test_query_as_float64_is_exact_for_the_float64_query() -> None:
    """The kernels get a float32 query; rescoring and the bound use the query as given."""
    vectors = make_vectors(np.random.default_rng(8), 4000, 128, "face")
    vectors[100, 0] = 0.125
    vectors[200] = vectors[100]
    vectors[200, 0] = 0.125 + 2.0**-11
    query = vectors[100].astype(np.float64)
    query[0] += 2.0**-12 + 2.0**-40  # a hair nearer to row 200; a tie once rounded to float32
    assert np.float32(query[0]) == np.float32(0.125 + 2.0**-12)
    for kernel, trick in METHODS:
        scanner = Scanner(vectors, kernel=kernel, norm_trick=trick)
        assert scanner.topk(query, 2)[0].tolist() == [200, 100]
        assert_exact(scanner, vectors, query, 2)


@pytest.mark.parametrize(("kernel", "trick"), METHODS)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 1000.0, 30000.0]))
def test_certificate_bounds_hold_for_float64_queries(kernel: str, trick: bool, seed: int,
                                                     scale: float) -> None:
    """For every row: true distance >= lower bound of its float32 value, and its float32 value
    <= upper bound of its true distance, including the query's rounding to float32."""
    rng = np.random.default_rng(seed)
    q64 = rng.uniform(-scale, scale, 64)
    vectors = (q64 + rng.standard_normal((500, 64)) * scale * 1e-3).astype(np.float16)
    q64 = q64 + rng.standard_normal(64) * scale * 1e-9  # well below float32 resolution
    scanner = Scanner(vectors, kernel=kernel, norm_trick=trick)
    q32 = q64.astype(np.float32)
    delta = float(np.sqrt(np.sum((q64 - q32.astype(np.float64)) ** 2)))
    metric, kq, qnorm2, norms2, rel, absolute = scanner.scan_terms(q32)
    values = _scan.values(kernel, metric, vectors, kq, norms2, qnorm2)
    exact = ((vectors.astype(np.float64) - q64) ** 2).sum(axis=1)
    for value, true in zip(values.tolist(), exact.tolist(), strict=True):
        assert true >= lower_bound(value, rel, absolute, delta)
        assert value <= upper_bound(true, rel, absolute, delta)
