"""The map's algorithms against simple references: tiles, k-NN, k-means, world layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.cartography.kmeans import assign, kmeans
from appliance.cartography.knn import exact_neighbours, quantize
from appliance.cartography.site import world_transform
from appliance.cartography.tiles import BACKGROUND, halve, render_pyramid


def _reference_canvas(centres, faces, world):
    """Every face painted in index order onto one big canvas (what the deepest level shows)."""
    p = faces.shape[1]
    canvas = np.full((world, world, *faces.shape[3:]), BACKGROUND, dtype=np.uint8)
    for i, (cx, cy) in enumerate(centres):
        x0, y0 = int(np.rint(cx * world - p / 2)), int(np.rint(cy * world - p / 2))
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + p, world), min(y0 + p, world)
        if xa < xb and ya < yb:
            canvas[ya:yb, xa:xb] = faces[i, ya - y0 : yb - y0, xa - x0 : xb - x0]
    return canvas


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    levels=st.integers(0, 3),
    face=st.sampled_from([4, 8, 12]),
    seed=st.integers(0, 2**31),
    colour=st.booleans(),
)
def test_tiles_match_a_painted_canvas_and_halve_upwards(tmp_path_factory, n, levels, face, seed,
                                                        colour):
    rng = np.random.default_rng(seed)
    tile = 16
    world = tile << levels
    centres = rng.uniform(-0.1, 1.1, (n, 2))
    faces = rng.integers(0, 256, (n, face, face, *((3,) if colour else ())), dtype=np.uint8)
    got: dict[tuple[int, int, int], np.ndarray] = {}
    out = tmp_path_factory.mktemp("tiles")
    pyramid = render_pyramid(centres, faces, out, levels=levels, tile_px=tile,
                             sink=lambda z, x, y, t: got.__setitem__((z, x, y), t.copy()))
    reference = _reference_canvas(centres, faces, world)
    # the deepest level, tile by tile, is the painted canvas; absent tiles are empty
    for ty in range(1 << levels):
        for tx in range(1 << levels):
            want = reference[ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile]
            key = (levels, tx, ty)
            if key in got:
                np.testing.assert_array_equal(got[key], want)
                assert (out / str(levels) / str(tx) / f"{ty}.webp").is_file()
            else:
                assert (want == BACKGROUND).all()
            assert bool(pyramid.present[levels][ty, tx]) == (key in got)
    # every level above is the 2x2 box filter of the one below
    for (z, x, y), t in got.items():
        if z == levels:
            continue
        block = np.full((2 * tile, 2 * tile, *faces.shape[3:]), BACKGROUND, dtype=np.uint8)
        for dy in (0, 1):
            for dx in (0, 1):
                child = got.get((z + 1, 2 * x + dx, 2 * y + dy))
                if child is not None:
                    block[dy * tile : (dy + 1) * tile, dx * tile : (dx + 1) * tile] = child
        np.testing.assert_array_equal(t, halve(block))
    assert pyramid.count() == len(got)


def test_halve_is_a_rounded_box_filter():
    block = np.array([[0, 1, 255, 255], [1, 1, 255, 254]], dtype=np.uint8)
    np.testing.assert_array_equal(halve(block), [[1, 255]])


def _brute_knn(x, k):
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return d, np.argsort(d, axis=1, kind="stable")[:, :k]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 60), d=st.integers(1, 9), k=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_exact_neighbours_equal_brute_force(n, d, k, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    idx, dist = exact_neighbours(x, k)
    full, want = _brute_knn(x, min(k, n - 1))
    rows = np.arange(n)[:, None]
    # the reported distances are those of the reported rows; they are the k smallest (up to the
    # float32 rounding of the norm trick used to select them), self never included, ascending
    np.testing.assert_allclose(dist, full[rows, idx], rtol=1e-5, atol=1e-6)
    scale = float((x.astype(np.float64) ** 2).sum(axis=1).max()) + 1.0
    assert (dist**2 <= full[rows, want] ** 2 + 4e-6 * scale).all()
    assert not (idx == rows).any()
    assert (np.diff(dist, axis=1) >= 0).all()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 50), d=st.integers(1, 20), seed=st.integers(0, 2**31))
def test_quantized_descriptors_reconstruct_within_half_a_step(n, d, seed):
    x = (np.random.default_rng(seed).standard_normal((n, d)) * 0.1 + 0.3).astype(np.float32)
    codes, mean, scale = quantize(x, block=7)
    assert codes.dtype == np.int8 and np.abs(codes.astype(int)).max() <= 127
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-6)
    err = np.abs(mean + codes * scale - x)
    assert (err <= scale / 2 + 1e-6).all()


def test_kmeans_recovers_separated_blobs_and_assigns_to_nearest_centroid():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 4, 2000)
    centres = np.eye(4, 8) * 10
    x = (centres[truth] + rng.standard_normal((2000, 8)) * 0.3).astype(np.float32)
    found, labels = kmeans(x, 4, seed=3)
    # each found cluster is exactly one true blob
    for j in range(4):
        assert len(set(truth[labels == j])) == 1
    d = ((x[:, None, :] - found[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, np.argmin(d, axis=1))
    np.testing.assert_array_equal(assign(x, found), labels)


def test_kmeans_refuses_more_clusters_than_points():
    with pytest.raises(ValueError, match="k = 5"):
        kmeans(np.zeros((3, 2), dtype=np.float32), 5)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), sx=st.floats(0.01, 100), sy=st.floats(0.01, 100))
def test_world_transform_keeps_aspect_and_fits_faces(seed, sx, sy):
    coords = np.random.default_rng(seed).standard_normal((50, 2)) * [sx, sy]
    face = 0.02
    w = world_transform(coords, face)(coords)
    assert (w >= face / 2).all() and (w <= 1 - face / 2).all()
    # distances scale uniformly (aspect kept), y flipped (PC2 up)
    ratio = np.linalg.norm(w[1:] - w[0], axis=1) / np.linalg.norm(coords[1:] - coords[0], axis=1)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    i, j = np.argmax(coords[:, 1]), np.argmin(coords[:, 1])
    assert w[i, 1] <= w[j, 1]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), t=st.integers(1, 6), factor=st.sampled_from([1, 2, 3, 4, 8]),
       seed=st.integers(0, 2**31), colour=st.booleans())
def test_pool_is_the_box_mean(n, t, factor, seed, colour):
    from appliance.cartography.sheets import atlas, pool

    s = t * factor
    extra = (3,) if colour else ()
    stack = np.random.default_rng(seed).integers(0, 256, (n, s, s, *extra), dtype=np.uint8)
    want = stack.reshape(n, t, factor, t, factor, *extra).astype(np.float64).mean(axis=(2, 4))
    got = pool(stack, factor)
    assert got.shape == (n, t, t, *extra) and got.dtype == np.uint8
    assert np.abs(got - want).max() <= 0.5 + 1e-9
    image, cell, columns = atlas(stack, max_cell=s)
    for i in range(n):  # every face sits whole in its cell of the atlas
        r, c = divmod(i, columns)
        np.testing.assert_array_equal(image[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell],
                                      stack[i])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3000), leaf=st.sampled_from([4, 64, 256]), seed=st.integers(0, 2**31))
def test_spatial_order_makes_each_sheet_a_compact_cluster(n, leaf, seed):
    from appliance.cartography.sheets import spatial_order

    xyz = np.random.default_rng(seed).standard_normal((n, 3)) * [1.0, 0.6, 0.3]
    order = spatial_order(xyz, leaf)
    assert sorted(order.tolist()) == list(range(n))  # a permutation
    groups = [xyz[order[s : s + leaf]] for s in range(0, n, leaf)]
    if len(groups) < 4:
        return

    def spread(g):
        return float(np.linalg.norm(g - g.mean(axis=0), axis=1).mean())

    # runs of `leaf` are far tighter than the same runs in index order
    ours = np.mean([spread(g) for g in groups])
    shuffled = np.mean([spread(xyz[s : s + leaf]) for s in range(0, n, leaf)])
    assert ours < 0.75 * shuffled
