"""Are one set's doubles closer to the references than another set's?

For each reference, the distance to its nearest face (and the mean distance to its k nearest) in
each set. A larger set has closer nearest faces by chance alone, so both sets are compared at the
size of the smaller one (at most `CompareOptions.cap` faces): the larger is subsampled to that
size, `repeats` times, and its per-reference distances averaged over the subsamples. The mean of
the paired differences (set minus versus, one per reference) is the estimate.

Its confidence interval (`scipy.stats.bootstrap`, percentile) resamples the references *and*
the faces of both sets: the doubles of different references are not independent (a few faces
are the nearest of many references), and the sets are themselves samples of what made them, so
an interval over references alone would be too narrow. Faces drawn twice in a resample count
once, and both sets are cut to the same number of distinct faces. The verdict comes from the
interval alone: entirely below 0 "closer", entirely above 0 "farther", else "no difference".
Beside it, a Wilcoxon signed-rank test of the per-reference differences (`scipy.stats.wilcoxon`)
and a permutation test of the set labels (`scipy.stats.permutation_test`: exact when both sets
come from one source).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.study.doubles import nearest_rows

MIN_REFERENCES = 3  # fewer paired differences give no usable interval


@dataclass(frozen=True)
class CompareOptions:
    confidence: float = 0.95
    repeats: int = 20  # subsamples of the larger set
    k: int = 10  # the k-nearest measure beside the nearest one
    resamples: int = 1999  # bootstrap resamples
    permutations: int = 999  # permutations of the set labels
    cap: int = 5000  # at most this many faces per set in each resample
    seed: int = 0


def seeded(function: Any, rng: np.random.Generator) -> dict[str, Any]:
    """The keyword that seeds a scipy.stats function: `rng` (scipy >= 1.15) or
    `random_state`."""
    parameters = inspect.signature(function).parameters
    return {"rng": rng} if "rng" in parameters else {"random_state": rng}


def nearest_profile(distances: np.ndarray, size: int, k: int, repeats: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(R,) mean distance from each reference to its k nearest faces among `size` faces of the
    set: the whole set when it has `size` faces, else averaged over `repeats` random subsets."""
    n = distances.shape[1]
    k = min(k, size)
    if size >= n:
        return _k_mean(distances, k)
    total = np.zeros(len(distances), dtype=np.float64)
    for _ in range(repeats):
        subset = rng.choice(n, size, replace=False)
        total += _k_mean(distances[:, subset], k)
    return total / repeats


def _k_mean(distances: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return distances.min(axis=1).astype(np.float64)
    part = np.partition(distances, k - 1, axis=1)[:, :k]
    return part.mean(axis=1, dtype=np.float64)


class Nearest:
    """Each reference's nearest candidates, sorted, so that the k nearest among any subset of
    the candidates (a resample, a permutation) is read from the first few: the statistics of
    thousands of resamples without a pass over every face for each."""

    HEAD = 256

    def __init__(self, distances: np.ndarray) -> None:
        self.distances = distances
        self.ids = nearest_rows(distances, self.HEAD)
        self.sorted = np.take_along_axis(distances, self.ids, axis=1).astype(np.float64)

    def k_mean(self, members: np.ndarray, k: int, refs: np.ndarray) -> np.ndarray:
        """(len(refs),) mean distance to the k nearest candidates where `members` is True."""
        inside = members[self.ids[refs]]
        counts = np.cumsum(inside, axis=1)
        if (counts[:, -1] < k).any():  # too few members among the head: every candidate
            return _k_mean(np.where(members, self.distances[refs], np.inf), k)
        chosen = inside & (counts <= k)
        return (self.sorted[refs] * chosen).sum(axis=1) / k


def interval(distances: np.ndarray, versus_distances: np.ndarray, size: int, k: int,
             options: CompareOptions, rng: np.random.Generator) -> tuple[float, float]:
    """Bootstrap interval of the mean paired difference, references and faces resampled."""
    from scipy import stats

    mine = rng.permutation(distances.shape[1])[:size]  # random order: the first ids of a
    theirs = rng.permutation(versus_distances.shape[1])[:size]  # resample are a random subset
    near_mine, near_theirs = Nearest(distances[:, mine]), Nearest(versus_distances[:, theirs])

    def statistic(refs: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        in_a, in_b = np.bincount(a, minlength=size) > 0, np.bincount(b, minlength=size) > 0
        m = int(min(in_a.sum(), in_b.sum()))
        for drawn in (in_a, in_b):  # the m distinct faces of lowest id (a random subset)
            drawn[np.flatnonzero(drawn)[m - 1] + 1 :] = False
        kk = min(k, m)
        return float((near_mine.k_mean(in_a, kk, refs) - near_theirs.k_mean(in_b, kk, refs))
                     .mean())

    ids = (np.arange(distances.shape[0]), np.arange(size), np.arange(size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples of tiny samples
        boot = stats.bootstrap(ids, statistic, paired=False, vectorized=False,
                               confidence_level=options.confidence,
                               n_resamples=options.resamples, method="percentile",
                               **seeded(stats.bootstrap, rng))
    return float(boot.confidence_interval.low), float(boot.confidence_interval.high)


def label_test(distances: np.ndarray, versus_distances: np.ndarray, size: int, k: int,
               options: CompareOptions, rng: np.random.Generator) -> float:
    """Two-sided permutation test of the set labels: `size` random faces of each set, exchanged
    between the two (exact when both sets come from one source)."""
    from scipy import stats

    mine = rng.choice(distances.shape[1], size, replace=False)
    theirs = rng.choice(versus_distances.shape[1], size, replace=False)
    near = Nearest(np.hstack([distances[:, mine], versus_distances[:, theirs]]))
    every = np.arange(len(distances))

    def statistic(a: np.ndarray, _b: np.ndarray) -> float:
        first = np.zeros(2 * size, bool)
        first[a] = True
        return float((near.k_mean(first, k, every) - near.k_mean(~first, k, every)).mean())

    ids = np.arange(2 * size)
    test = stats.permutation_test((ids[:size], ids[size:]), statistic,
                                  permutation_type="independent",
                                  n_resamples=options.permutations, vectorized=False,
                                  **seeded(stats.permutation_test, rng))
    return float(test.pvalue)


def paired_verdict(differences: np.ndarray, low: float, high: float,
                   confidence: float) -> dict[str, Any]:
    """Mean difference, its interval, the signed-rank test and the verdict."""
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    nonzero = d[d != 0.0]
    p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) > 1 else 1.0
    verdict = "closer" if high < 0 else "farther" if low > 0 else "no difference"
    return {"mean_difference": round(float(d.mean()), 6),
            "interval": [round(low, 6), round(high, 6)], "confidence": confidence,
            "p_signed_rank": p, "verdict": verdict}


def compare_sets(name: str, versus: str, distances: np.ndarray, versus_distances: np.ndarray,
                 options: CompareOptions | None = None) -> dict[str, Any]:
    """The comparison record of set `name` against set `versus` (study.json's "comparisons"):
    per-reference distances at equal set sizes, the nearest and the k-nearest measures."""
    options = options or CompareOptions()
    references = distances.shape[0]
    if references < MIN_REFERENCES:
        return {"set": name, "versus": versus, "verdict": "not tested", "interval": None,
                "p": None, "references": references,
                "reason": f"needs at least {MIN_REFERENCES} references"}
    n, m = distances.shape[1], versus_distances.shape[1]
    size = min(n, m, options.cap)
    rng = np.random.default_rng(options.seed)
    record: dict[str, Any] = {"set": name, "versus": versus}
    for label, k in (("nearest", 1), ("k_nearest", options.k)):
        k = min(k, size)
        mine = nearest_profile(distances, size, k, options.repeats, rng)
        theirs = nearest_profile(versus_distances, size, k, options.repeats, rng)
        low, high = interval(distances, versus_distances, size, k, options, rng)
        result = paired_verdict(mine - theirs, low, high, options.confidence)
        result["p"] = label_test(distances, versus_distances, size, k, options, rng)
        result.update({"k": k, "set_mean": round(float(mine.mean()), 6),
                       "versus_mean": round(float(theirs.mean()), 6)})
        if label == "nearest":
            record.update(result)
            record["per_reference"] = [round(float(v), 6) for v in mine - theirs]
        else:
            record["k_nearest"] = result
    record.update({
        "references": references,
        "test": f"permutation of the set labels ({options.permutations} permutations); "
                "p_signed_rank: Wilcoxon signed-rank, paired by reference",
        "interval_method": f"percentile bootstrap of the mean difference, references and faces "
                           f"resampled ({options.resamples} resamples)",
        "equal_size": size,
        "subsampled": [s for s, count in ((name, n), (versus, m)) if count > size],
        "repeats": options.repeats if n != m else 0,
    })
    return record
