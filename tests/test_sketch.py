"""The 8-bit sketch: its construction, its kernels, and sketch + rerank against float64."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_search import reference

from appliance import _scan
from appliance.corpus.sketch import Sketch, build_sketch
from appliance.search import Scanner, first_stage_blocks, kernels

KERNELS = kernels()


def make_vectors(rng: np.random.Generator, n: int, d: int, mode: str) -> np.ndarray:
    """float16 rows: clustered faces, huge, subnormal, tie-heavy, equidistant, any exponent."""
    if mode == "face":  # a few clusters with a decaying spectrum: the sketch prunes most rows
        decay = 1.0 / np.arange(1, d + 1)
        centres = rng.standard_normal((max(1, n // 50), d)) * decay
        x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, d)) * 0.1 * decay
    elif mode == "large":
        x = rng.uniform(-65504, 65504, (n, d))
    elif mode == "subnormal":
        x = rng.uniform(-(2.0**-14), 2.0**-14, (n, d))
    elif mode == "ties":
        x = rng.integers(-2, 3, (n, d))
    elif mode == "sphere":  # every row the same distance from the origin (query 0)
        x = np.zeros((n, d))
        x[np.arange(n), rng.integers(0, d, n)] = rng.choice([-1.0, 1.0], n)
    else:
        bits = rng.integers(0, 0x7C00, (n, d), dtype=np.uint16)
        bits |= (rng.integers(0, 2, (n, d), dtype=np.uint16) << 15).astype(np.uint16)
        return bits.view(np.float16)
    return x.astype(np.float16)


def unaligned_copy(codes: np.ndarray, offset: int) -> np.ndarray:
    raw = np.zeros(codes.nbytes + 64, np.int8)
    out = raw[offset : offset + codes.nbytes].reshape(codes.shape)
    out[...] = codes
    return out


def codes_and_weights(rng: np.random.Generator, n: int, m: int,
                      extreme: bool) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) int8 codes and m int16 weights; `extreme`: the largest sums the scan can see."""
    codes = rng.integers(-127, 128, (n, m)).astype(np.int8)
    weights = rng.integers(-32767, 32768, m).astype(np.int16)
    if extreme:
        codes[:] = np.where(rng.random((n, m)) < 0.5, -127, 127)
        weights[:] = np.where(codes[0] < 0, -32767, 32767)
    return codes, weights


@st.composite
def cases(draw: st.DrawFn) -> dict:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.sampled_from([8, 16, 24, 32, 64, 128]))
    axes = draw(st.sampled_from([a for a in (8, 16, 24, 32, 40, 48, 64, 128) if a <= d]))
    n = draw(st.integers(1, 1200))
    mode = draw(st.sampled_from(["face", "face", "face", "large", "subnormal", "ties", "sphere",
                                 "bits"]))
    vectors = make_vectors(rng, n, d, mode)
    duplicates = draw(st.integers(0, min(n - 1, 60)))
    if duplicates:
        vectors[rng.integers(0, n, duplicates)] = vectors[rng.integers(0, n, duplicates)]
    kind = draw(st.sampled_from(["row", "near", "random", "float64", "far", "zero"]))
    row = vectors[rng.integers(0, n)].astype(np.float64)
    scale = float(np.abs(vectors.astype(np.float64)).max()) + 1.0
    if kind == "row":
        query = row.astype(np.float32)
    elif kind == "near":
        query = (row + rng.standard_normal(d) * (np.abs(row) * 1e-2 + 1e-6)).astype(np.float32)
    elif kind == "random":
        query = make_vectors(rng, 1, d, mode)[0].astype(np.float32)
    elif kind == "float64":
        query = row + rng.standard_normal(d) * 1e-9  # not representable in float32
    elif kind == "far":  # far outside the corpus: the bound prunes nothing
        query = (rng.standard_normal(d) * scale * draw(st.sampled_from([10.0, 1e6, 1e30])))
        query = query.astype(np.float32)
    else:
        query = np.zeros(d, np.float32)
    return {"vectors": vectors, "axes": axes, "query": query,
            "k": draw(st.integers(1, 60)), "offset": draw(st.integers(0, 31))}


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_sketch_topk_equals_float64_reference(kernel: str, case: dict) -> None:
    vectors = case["vectors"]
    sketch = build_sketch(vectors, case["axes"])
    if case["offset"]:
        sketch = dataclasses.replace(sketch, codes=unaligned_copy(sketch.codes, case["offset"]))
    scanner = Scanner(vectors, kernel=kernel, sketch=sketch)
    rows, distances = scanner.topk(case["query"], case["k"])
    want_rows, want_distances = reference(vectors, case["query"], case["k"])
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(distances, want_distances)
    assert rows.dtype == np.int64 and distances.dtype == np.float32
    assert min(case["k"], len(vectors)) <= scanner.rows_read <= len(vectors)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.sampled_from([8, 32, 128]),
       mode=st.sampled_from(["face", "large", "subnormal", "ties", "bits"]),
       n=st.integers(1, 500))
def test_sketch_bounds_every_row(seed: int, d: int, mode: str, n: int) -> None:
    """Codes within `error` of the rotated rows, tails their remaining norms, rotation exact."""
    rng = np.random.default_rng(seed)
    vectors = make_vectors(rng, n, d, mode)
    axes = min(d, 32)
    sketch = build_sketch(vectors, axes)
    np.testing.assert_allclose(sketch.rotation @ sketch.rotation.T, np.eye(d), atol=1e-12)
    rotated = (vectors.astype(np.float64) - sketch.mean) @ sketch.rotation.T
    quantized = sketch.codes.astype(np.float64) * sketch.scale.astype(np.float64)
    assert np.all(np.linalg.norm(rotated[:, :axes] - quantized, axis=1) <= sketch.error)
    assert np.all(np.abs(sketch.codes.astype(int)) <= 127)
    np.testing.assert_allclose(sketch.tails, np.linalg.norm(rotated[:, axes:], axis=1),
                               rtol=1e-6, atol=1e-30)
    assert np.all(np.linalg.norm(vectors.astype(np.float64) - sketch.mean, axis=1)
                  <= sketch.radius)
    assert np.all(np.linalg.norm(quantized, axis=1) <= sketch.code_norm)


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.sampled_from([8, 16, 24, 40, 48, 64, 128, 512]),
       n=st.integers(1, 300), offset=st.integers(0, 15), extreme=st.booleans())
def test_sketch_dots_are_exact_integers(kernel: str, seed: int, m: int, n: int, offset: int,
                                        extreme: bool) -> None:
    """D = codes . weights of every kernel equals the int64 numpy dot, row by row."""
    codes, weights = codes_and_weights(np.random.default_rng(seed), n, m, extreme)
    codes = unaligned_copy(codes, offset)
    got = _scan.sketch_dots(kernel, codes, weights)
    want = codes.astype(np.int64) @ weights.astype(np.int64)
    np.testing.assert_array_equal(got.astype(np.int64), want)
    alone = np.array([_scan.sketch_dots(kernel, codes[i : i + 1], weights)[0] for i in range(n)])
    np.testing.assert_array_equal(got, alone)


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.sampled_from([8, 16, 24, 40, 48, 64, 128]),
       n=st.integers(1, 300), extreme=st.booleans())
def test_first_stage_block_dots_are_exact_integers(kernel: str, seed: int, m: int, n: int,
                                                   extreme: bool) -> None:
    """The first pass' dots over 16-row blocks equal the int64 numpy dots, padding ignored."""
    rng = np.random.default_rng(seed)
    codes, weights = codes_and_weights(rng, n, m, extreme)
    blocks = first_stage_blocks(codes, rng.random(n).astype(np.float32))
    got = _scan.sketch_block_dots(kernel, blocks, m, n, weights)
    np.testing.assert_array_equal(got.astype(np.int64), codes.astype(np.int64) @ weights)


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(16384, 20000),
       mode=st.sampled_from(["face", "ties", "sphere", "large"]),
       kind=st.sampled_from(["row", "near", "far", "zero"]), k=st.integers(1, 60),
       axes=st.sampled_from([32, 48, 64]))
def test_sketch_topk_past_the_sampled_tau(kernel: str, seed: int, n: int, mode: str, kind: str,
                                          k: int, axes: int) -> None:
    """Corpora large enough for the sampled first tau (and reads during the first pass) still
    give the float64 reference's answer: ties, duplicates, equidistant rows, far queries."""
    rng = np.random.default_rng(seed)
    vectors = make_vectors(rng, n, 64, mode)
    vectors[rng.integers(0, n, 200)] = vectors[rng.integers(0, n, 200)]  # duplicated rows
    row = vectors[rng.integers(0, n)].astype(np.float32)
    query = {"row": row, "near": row + np.float32(1e-3), "zero": np.zeros(64, np.float32),
             "far": np.full(64, 1e6, np.float32)}[kind]
    scanner = Scanner(vectors, kernel=kernel, sketch=build_sketch(vectors, axes))
    rows, distances = scanner.topk(query, k)
    want_rows, want_distances = reference(vectors, query, k)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(distances, want_distances)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sketch_reads_few_rows_of_clustered_faces(kernel: str) -> None:
    rng = np.random.default_rng(7)
    vectors = make_vectors(rng, 20000, 128, "face")
    scanner = Scanner(vectors, kernel=kernel, sketch=build_sketch(vectors, 32))
    reads = []
    for i in range(5):
        query = vectors[i * 997].astype(np.float32) + np.float32(0.003)
        rows, _ = scanner.topk(query, 10)
        np.testing.assert_array_equal(rows, reference(vectors, query, 10)[0])
        reads.append(scanner.rows_read)
    assert max(reads) < len(vectors) // 20  # < 5 % of the rows read in float16


def test_far_query_reads_every_row_and_stays_exact() -> None:
    rng = np.random.default_rng(1)
    vectors = make_vectors(rng, 3000, 64, "face")
    scanner = Scanner(vectors, sketch=build_sketch(vectors, 16))
    query = np.full(64, 1e20, np.float32)
    np.testing.assert_array_equal(scanner.topk(query, 5)[0], reference(vectors, query, 5)[0])


def test_a_sketch_of_other_rows_is_refused() -> None:
    rng = np.random.default_rng(2)
    vectors = make_vectors(rng, 100, 32, "face")
    sketch = build_sketch(vectors, 16)
    with pytest.raises(ValueError, match="codes"):
        Scanner(vectors[:50], sketch=sketch)
    with pytest.raises(ValueError, match="mean of shape"):
        Scanner(np.zeros((100, 40), np.float16), sketch=sketch)
    bad = dataclasses.replace(sketch, error=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        Scanner(vectors, sketch=bad)
    with pytest.raises(ValueError, match="multiples of 8"):
        build_sketch(vectors, 12)


def test_more_than_128_axes_are_refused_at_once() -> None:
    """The scan's int32 dots and two stages are sized for 128 axes: a wider sketch is refused
    when it is built or handed to a scanner, not at the first visitor's query."""
    rng = np.random.default_rng(3)
    vectors = make_vectors(rng, 300, 256, "face")
    with pytest.raises(ValueError, match="at most 128"):
        build_sketch(vectors, 136)
    sketch = build_sketch(vectors, 128)
    wide = dataclasses.replace(
        sketch, scale=np.ones(136, np.float32), codes=np.zeros((300, 136), np.int8))
    with pytest.raises(ValueError, match="136 axes: expected a multiple of 8 up to 128"):
        Scanner(vectors, sketch=wide)
    rows, _ = Scanner(vectors, sketch=sketch).topk(vectors[7].astype(np.float32), 3)
    assert rows[0] == 7


def test_sketch_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    vectors = make_vectors(rng, 500, 32, "face")
    a, b = build_sketch(vectors, 16), build_sketch(vectors.copy(), 16)
    for field in dataclasses.fields(Sketch):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))
