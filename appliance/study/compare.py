"""Are one set's doubles closer to the references than another set's?

For each reference, the distance to its nearest face (and the mean distance to its k nearest) in
each set. A larger set has closer nearest faces by chance alone, so both sets are compared at the
size of the smaller one: the larger is subsampled to that size, `repeats` times, and its
per-reference distances averaged over the subsamples (the expected nearest distance at that
size). The paired differences (set minus versus, one per reference) get a bootstrap confidence
interval of their mean (BCa, `scipy.stats.bootstrap`) and a Wilcoxon signed-rank test
(`scipy.stats.wilcoxon`). The verdict comes from the interval alone: entirely below 0 "closer",
entirely above 0 "farther", else "no difference".
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_REFERENCES = 3  # fewer paired differences give no usable interval


@dataclass(frozen=True)
class CompareOptions:
    confidence: float = 0.95
    repeats: int = 20  # subsamples of the larger set
    k: int = 10  # the k-nearest measure beside the nearest one
    resamples: int = 9999  # bootstrap resamples
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


def paired_verdict(differences: np.ndarray, options: CompareOptions,
                   rng: np.random.Generator) -> dict[str, Any]:
    """Mean difference, its bootstrap interval, the signed-rank test and the verdict."""
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    mean = float(d.mean())
    if np.ptp(d) == 0.0:  # every reference differs by the same amount (e.g. the same set twice)
        low = high = mean
        p = 1.0 if mean == 0.0 else 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples of tiny samples
            boot = stats.bootstrap((d,), np.mean, confidence_level=options.confidence,
                                   n_resamples=options.resamples, method="BCa",
                                   **seeded(stats.bootstrap, rng))
        low, high = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))
        if not (np.isfinite(low) and np.isfinite(high)):  # BCa undefined: percentile interval
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                boot = stats.bootstrap((d,), np.mean, confidence_level=options.confidence,
                                       n_resamples=options.resamples, method="percentile",
                                       **seeded(stats.bootstrap, rng))
            low, high = (float(boot.confidence_interval.low),
                         float(boot.confidence_interval.high))
        nonzero = d[d != 0.0]
        p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) else 1.0
    verdict = "closer" if high < 0 else "farther" if low > 0 else "no difference"
    return {"mean_difference": round(mean, 6), "interval": [round(low, 6), round(high, 6)],
            "confidence": options.confidence, "p": p, "verdict": verdict}


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
    size = min(n, m)
    rng = np.random.default_rng(options.seed)
    record: dict[str, Any] = {"set": name, "versus": versus}
    for label, k in (("nearest", 1), ("k_nearest", options.k)):
        mine = nearest_profile(distances, size, k, options.repeats, rng)
        theirs = nearest_profile(versus_distances, size, k, options.repeats, rng)
        result = paired_verdict(mine - theirs, options, rng)
        result.update({"k": min(k, size), "set_mean": round(float(mine.mean()), 6),
                       "versus_mean": round(float(theirs.mean()), 6)})
        if label == "nearest":
            record.update(result)
            record["per_reference"] = [round(float(v), 6) for v in mine - theirs]
        else:
            record["k_nearest"] = result
    record.update({
        "references": references,
        "test": "Wilcoxon signed-rank, paired by reference",
        "interval_method": f"BCa bootstrap of the mean difference, {options.resamples} resamples",
        "equal_size": size,
        "subsampled": [s for s, count in ((name, n), (versus, m)) if count > size],
        "repeats": options.repeats if n != m else 0,
    })
    return record
