"""`sosie study`'s statistics are honest: on descriptors with planted structure they find it, on
null data they claim nothing. Sets are synthetic descriptors written as corpora by the
`sosie corpus import` Python API and opened as the command opens them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the study extra is not installed")
pytest.importorskip("scipy", reason="the study extra is not installed")

from appliance.corpus.importer import import_descriptors
from appliance.study.among import AmongOptions, among_themselves
from appliance.study.clusters import ClusterOptions, cluster_set
from appliance.study.compare import CompareOptions, compare_sets
from appliance.study.doubles import distance_matrix, nearest_rows
from appliance.study.inputs import Reference, open_set
from appliance.study.run import StudyOptions, run_study

D = 128
SPREAD = 0.06  # per-axis sd: random pairs ~0.96 apart, like dlib's ~0.7-1.0


def face_set(tmp_path, name, vectors):
    """A set as `sosie study --set NAME=CORPUS` opens it, from descriptors."""
    np.save(tmp_path / f"{name}.npy", np.asarray(vectors, np.float32))
    import_descriptors(tmp_path / f"{name}.npy", tmp_path / name)
    return open_set(name, tmp_path / name, tmp_path / "out", build_corpus=None, say=print)


def blobs(rng, k, per, separation=0.3):
    centres = rng.normal(0, separation, (k, D))
    return np.vstack([c + rng.normal(0, SPREAD, (per, D)) for c in centres])


# ---------------------------------------------------------------------------------------------
# Clusters


@pytest.mark.parametrize("k", [2, 3, 6])
def test_well_separated_clusters_are_found_with_their_number(k):
    rng = np.random.default_rng(k)
    record = cluster_set(blobs(rng, k, 150), ClusterOptions(seed=k))
    assert record["verdict"] == "clusters"
    assert record["clusters"] == k
    assert record["silhouette"] > 0.5 and record["stability"] > 0.9
    assert record["noise"] < 0.1
    assert len(record["cluster_list"]) == k


def test_one_isotropic_cloud_has_no_clusters():
    for seed in range(3):
        cloud = np.random.default_rng(seed).normal(0, SPREAD, (1500, D))
        record = cluster_set(cloud, ClusterOptions(seed=seed))
        assert record["verdict"] == "no clusters" and record["clusters"] == 0, record


def test_a_corpus_like_cloud_has_no_clusters(tmp_path):
    """One anisotropic Gaussian with dlib's spectrum (`sosie corpus synth`): no clusters."""
    from appliance.corpus import Corpus, synth

    synth(tmp_path / "s", 2000, seed=4)
    with Corpus.open(tmp_path / "s") as corpus:
        record = cluster_set(np.asarray(corpus.vectors, np.float32), ClusterOptions())
    assert record["clusters"] == 0, record


def test_the_type_is_the_medoid_of_the_set():
    rng = np.random.default_rng(9)
    x = rng.normal(0, SPREAD, (400, D))
    record = cluster_set(x, ClusterOptions(sample=400))
    medoid = record["type"]["medoid_row"]
    summed = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).sum(1)
    assert medoid == int(np.argmin(summed))
    assert record["type"]["nearest_medoid_rows"][0] == medoid


# ---------------------------------------------------------------------------------------------
# Comparing sets


def test_a_set_made_closer_to_the_references_is_closer_and_the_other_farther(tmp_path):
    rng = np.random.default_rng(1)
    refs = rng.normal(0, SPREAD, (20, D))
    far = face_set(tmp_path, "far", rng.normal(0, SPREAD, (800, D)))
    # 30 faces planted near the references among 370 ordinary ones: a smaller, closer set
    near_rows = np.vstack([rng.normal(0, SPREAD, (370, D)),
                           refs[rng.integers(0, 20, 30)] + rng.normal(0, 0.02, (30, D))])
    near = face_set(tmp_path, "near", near_rows)
    q = refs.astype(np.float32)
    record = compare_sets("near", "far", distance_matrix(q, near.corpus.vectors),
                          distance_matrix(q, far.corpus.vectors))
    assert record["verdict"] == "closer"
    low, high = record["interval"]
    assert low < high < 0
    assert record["p"] < 0.01
    assert record["equal_size"] == 400 and record["subsampled"] == ["far"]
    reverse = compare_sets("far", "near", distance_matrix(q, far.corpus.vectors),
                           distance_matrix(q, near.corpus.vectors))
    assert reverse["verdict"] == "farther" and reverse["interval"][0] > 0


def test_a_larger_set_from_the_same_distribution_is_not_called_closer():
    """Without equal-size subsampling a 10x larger set has closer nearest faces by chance."""
    rng = np.random.default_rng(2)
    refs = rng.normal(0, SPREAD, (20, D)).astype(np.float32)
    small, large = rng.normal(0, SPREAD, (200, D)), rng.normal(0, SPREAD, (2000, D))
    ds, dl = distance_matrix(refs, small), distance_matrix(refs, large)
    assert (dl.min(axis=1) < ds.min(axis=1)).mean() > 0.8  # the naive comparison is biased
    assert compare_sets("large", "small", dl, ds)["verdict"] == "no difference"


def test_two_sets_from_one_distribution_show_no_difference_in_95_percent_of_seeds():
    seeds, calm = 40, 0
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        refs = rng.normal(0, SPREAD, (15, D)).astype(np.float32)
        a, b = rng.normal(0, SPREAD, (150, D)), rng.normal(0, SPREAD, (300, D))
        record = compare_sets("b", "a", distance_matrix(refs, b), distance_matrix(refs, a),
                              CompareOptions(repeats=5, resamples=499, permutations=99, seed=seed))
        calm += record["verdict"] == "no difference"
    assert calm >= 0.95 * seeds, calm


def test_too_few_references_are_not_tested():
    refs = np.zeros((2, D), np.float32)
    x = np.random.default_rng(0).normal(0, SPREAD, (50, D))
    record = compare_sets("b", "a", distance_matrix(refs, x), distance_matrix(refs, x))
    assert record["verdict"] == "not tested" and record["interval"] is None


# ---------------------------------------------------------------------------------------------
# Doubles among themselves


def _among(refs, x, **kw):
    q = refs.astype(np.float32)
    names = [str(i) for i in range(len(refs))]
    return among_themselves(names, q, x, distance_matrix(q, x), AmongOptions(**kw))


def test_doubles_planted_mutually_close_are_detected():
    rng = np.random.default_rng(5)
    refs = rng.normal(0, SPREAD, (10, D))
    x = rng.normal(0, SPREAD, (1500, D))
    # reference 3's eight best doubles: one face varied slightly, 0.4 from the reference
    direction = rng.normal(0, 1, D)
    centre = refs[3] + 0.4 * direction / np.linalg.norm(direction)
    planted = centre + rng.normal(0, 0.01, (8, D))
    record = _among(refs, np.vstack([x, planted]))
    assert record["verdict"] == "more alike"
    by_reference = {t["reference"]: t for t in record["per_reference"]}
    assert by_reference["3"]["p_adjusted"] < 0.05
    assert by_reference["3"]["observed"] > 0.9 > by_reference["3"]["null_mean"]
    assert record["references_more_alike"] == 1


def test_doubles_of_a_structureless_set_are_not_called_more_alike():
    quiet = 0
    for seed in range(10):
        rng = np.random.default_rng(50 + seed)
        record = _among(rng.normal(0, SPREAD, (10, D)), rng.normal(0, SPREAD, (800, D)),
                        resamples=299, seed=seed)
        quiet += record["verdict"] == "no difference"
    assert quiet >= 9


def test_nearest_rows_are_sorted_with_ties_by_index():
    d = np.array([[0.5, 0.2, 0.2, 0.9, 0.1]], np.float32)
    assert nearest_rows(d, 3).tolist() == [[4, 1, 2]]
    assert nearest_rows(d, 9).tolist() == [[4, 1, 2, 0, 3]]


def test_distance_matrix_matches_numpy():
    rng = np.random.default_rng(0)
    q, x = rng.normal(0, 0.1, (4, D)), rng.normal(0, 0.1, (70000, D)).astype(np.float16)
    want = np.sqrt(((q[:, None].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(-1))
    assert np.allclose(distance_matrix(q, x), want, atol=2e-5)


# ---------------------------------------------------------------------------------------------
# The whole study


def test_the_study_answers_every_question_in_its_json(tmp_path):
    rng = np.random.default_rng(7)
    refs = rng.normal(0, SPREAD, (12, D))
    a = face_set(tmp_path, "a", blobs(rng, 3, 120))
    b = face_set(tmp_path, "b", rng.normal(0, SPREAD, (500, D)))
    references = [Reference(f"r{i}", r.astype(np.float32), None, False)
                  for i, r in enumerate(refs)]
    result = run_study([a, b], references, StudyOptions(umap=False, doubles=5))
    study = result.study
    assert study["sets"]["a"]["faces"] == 360 and study["sets"]["b"]["faces"] == 500
    (c,) = study["comparisons"]
    assert (c["set"], c["versus"], c["verdict"]) == ("b", "a", "closer")
    assert c["interval"][1] < 0 and 0 <= c["p"] <= 1
    assert study["clusters"]["a"]["clusters"] == 3 and study["clusters"]["b"]["clusters"] == 0
    assert set(study["doubles_among_themselves"]) == {"a", "b"}
    for entry in study["doubles_among_themselves"].values():
        assert entry["verdict"] in ("more alike", "no difference") and 0 <= entry["p"] <= 1
    # best doubles: the true nearest faces over both sets
    both = np.vstack([np.asarray(a.corpus.vectors, np.float64),
                      np.asarray(b.corpus.vectors, np.float64)])
    d = np.sqrt(((refs[:, None] - both[None]) ** 2).sum(-1))
    for i, entry in enumerate(study["best_doubles"]):
        got = [x["distance"] for x in entry["doubles"]]
        assert np.allclose(got, np.sort(d[i])[:5], atol=1e-4)
