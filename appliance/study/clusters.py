"""Are there clusters — does the generator have a "type"?

Density clustering that may answer "none": HDBSCAN (`sklearn.cluster.HDBSCAN`) on the
descriptors of a sample of the set (exact Euclidean distances), then two checks before any
cluster is claimed: the silhouette of the clustered faces (`sklearn.metrics.silhouette_score`;
below 0.25 Kaufman & Rousseeuw's "no substantial structure") and the stability of the partition
(HDBSCAN again on random 80 % subsamples, adjusted Rand index against the full partition on the
shared faces). Each cluster's medoid faces are reported.

The set's "type": its medoid (the face with the smallest summed distance to the others), the
faces nearest to it, and the densest faces (smallest distance to their 10th neighbour). How
concentrated the set is: each face's distance to the set's centroid, compared with the
reference photos' distances to theirs (Mann-Whitney U).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SILHOUETTE_STRUCTURE = 0.25
STABILITY_MIN = 0.6


@dataclass(frozen=True)
class ClusterOptions:
    sample: int = 3000  # faces clustered per set (a random sample of larger sets)
    min_cluster_share: float = 0.02  # smallest cluster, as a share of the sample
    min_cluster_size: int = 10
    stability_runs: int = 5
    medoids: int = 6  # faces shown per cluster
    type_faces: int = 8  # faces nearest the medoid, densest faces
    seed: int = 0


def pairwise(x: np.ndarray) -> np.ndarray:
    """(n, n) Euclidean distances, float64, exact zeros on the diagonal."""
    from sklearn.metrics import pairwise_distances

    d = pairwise_distances(np.asarray(x, dtype=np.float64), n_jobs=1)
    np.fill_diagonal(d, 0.0)
    return d


def hdbscan_labels(distances: np.ndarray, min_cluster_size: int) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN(min_cluster_size=min_cluster_size, metric="precomputed",
                    allow_single_cluster=False, copy=True)
    return model.fit_predict(distances)


def stability(distances: np.ndarray, labels: np.ndarray, min_cluster_size: int, runs: int,
              rng: np.random.Generator) -> float:
    """Mean adjusted Rand index between the full partition and HDBSCAN's on 80 % subsamples
    (noise counted as its own label)."""
    from sklearn.metrics import adjusted_rand_score

    n = len(labels)
    scores = []
    for _ in range(runs):
        keep = np.sort(rng.choice(n, int(0.8 * n), replace=False))
        again = hdbscan_labels(distances[np.ix_(keep, keep)], min_cluster_size)
        scores.append(adjusted_rand_score(labels[keep], again))
    return float(np.mean(scores))


def medoid(distances: np.ndarray, members: np.ndarray) -> int:
    """The member with the smallest summed distance to the other members."""
    inner = distances[np.ix_(members, members)]
    return int(members[int(np.argmin(inner.sum(axis=1)))])


def cluster_set(vectors: np.ndarray, options: ClusterOptions | None = None) -> dict[str, Any]:
    """The clustering record of one set (study.json's "clusters"), with `sample_rows`,
    `labels` and the medoid / type rows (indices into the set) for the report."""
    from sklearn.metrics import silhouette_score

    options = options or ClusterOptions()
    rng = np.random.default_rng(options.seed)
    n = len(vectors)
    rows = np.sort(rng.choice(n, options.sample, replace=False)) if n > options.sample \
        else np.arange(n)
    x = np.asarray(vectors[rows], dtype=np.float64)
    s = len(rows)
    record: dict[str, Any] = {"faces": n, "sample": s, "method": "HDBSCAN on the descriptors"}
    if s < 3 * options.min_cluster_size:
        record.update({"clusters": 0, "found": 0, "noise": None, "silhouette": None,
                       "stability": None, "verdict": "not tested",
                       "reason": f"needs at least {3 * options.min_cluster_size} faces"})
        return record
    d = pairwise(x)
    size = max(options.min_cluster_size, round(options.min_cluster_share * s))
    labels = hdbscan_labels(d, size)
    found = int(labels.max() + 1)
    clustered = labels >= 0
    sil = None
    if found >= 2:
        sil = float(silhouette_score(d[np.ix_(clustered, clustered)], labels[clustered],
                                     metric="precomputed"))
    stable = stability(d, labels, size, options.stability_runs, rng) if found >= 2 else None
    real = (found >= 2 and sil is not None and sil >= SILHOUETTE_STRUCTURE
            and stable is not None and stable >= STABILITY_MIN)
    record.update({
        "clusters": found if real else 0,
        "found": found,
        "noise": round(float(1.0 - clustered.mean()), 4),
        "in_clusters": round(float(clustered.mean()), 4),
        "silhouette": None if sil is None else round(sil, 4),
        "stability": None if stable is None else round(stable, 4),
        "min_cluster_size": size,
        "verdict": "clusters" if real else "no clusters",
        "criteria": f"at least 2 HDBSCAN clusters, silhouette >= {SILHOUETTE_STRUCTURE} and "
                    f"stability (adjusted Rand, {options.stability_runs} subsamples of 80 %) "
                    f">= {STABILITY_MIN}",
    })
    members = []
    for j in range(found):
        idx = np.flatnonzero(labels == j)
        inner = d[np.ix_(idx, idx)].sum(axis=1)
        central = idx[np.argsort(inner, kind="stable")[: options.medoids]]
        members.append({"id": j, "size": len(idx),
                        "medoid_rows": [int(rows[i]) for i in central]})
    record["cluster_list"] = members
    record.update(type_of_set(d, rows, options))
    record["_labels"] = labels
    record["_rows"] = rows
    return record


def type_of_set(d: np.ndarray, rows: np.ndarray, options: ClusterOptions) -> dict[str, Any]:
    """The set's "type": its medoid, the faces nearest it, the densest faces."""
    centre = int(np.argmin(d.sum(axis=1)))
    nearest = np.argsort(d[centre], kind="stable")[: options.type_faces]
    k = min(10, len(d) - 1)
    kth = np.partition(d, k, axis=1)[:, k]  # column 0 is the face itself
    densest = np.argsort(kth, kind="stable")[: options.type_faces]
    return {"type": {
        "medoid_row": int(rows[centre]),
        "nearest_medoid_rows": [int(rows[i]) for i in nearest],
        "densest_rows": [int(rows[i]) for i in densest],
        "tenth_neighbour_median": round(float(np.median(kth)), 6),
    }}


def concentration(vectors: np.ndarray, photos: np.ndarray | None, sample: int = 3000,
                  seed: int = 0) -> dict[str, Any]:
    """How spread the set is: each face's distance to the set's centroid; against the reference
    photos' distances to theirs (two-sided Mann-Whitney U) when there are 5 or more."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    n = len(vectors)
    rows = rng.choice(n, sample, replace=False) if n > sample else np.arange(n)
    x = np.asarray(vectors[rows], dtype=np.float64)
    spread = np.linalg.norm(x - x.mean(axis=0), axis=1)
    out: dict[str, Any] = {"median_distance_to_centroid": round(float(np.median(spread)), 6)}
    if photos is not None and len(photos) >= 5:
        p = np.asarray(photos, dtype=np.float64)
        theirs = np.linalg.norm(p - p.mean(axis=0), axis=1)
        test = stats.mannwhitneyu(spread, theirs, alternative="two-sided")
        ratio = float(np.median(spread) / np.median(theirs))
        verdict = ("no difference" if test.pvalue >= 0.05
                   else "more concentrated" if ratio < 1 else "more spread")
        out.update({"photos_median_distance_to_centroid": round(float(np.median(theirs)), 6),
                    "ratio": round(ratio, 4), "p": float(test.pvalue),
                    "test": "Mann-Whitney U (two-sided), distances to each group's centroid",
                    "verdict_against_photos": verdict})
    return out
