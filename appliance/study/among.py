"""Are a reference's doubles more alike among themselves?

Any faces near a reference are near each other too (the triangle inequality), so comparing the
nearest doubles' mutual distances with random faces of the set would always say "more alike".
The question asked here is the one that is left: do the doubles resemble the reference *in the
same way*? Each double's direction from the reference (unit vector of double - reference) is
taken, and the mean cosine between the directions of the k nearest doubles is compared with that
of random k-subsets of the reference's K nearest faces in the same set (a permutation test,
`scipy.stats.permutation_test`, one-sided). Every face of a set, seen from a reference off its
centre, points somewhat towards that centre, and the farther ones more so (the nearest have
cancelled more of that pull): the directions' component towards the set's mean is removed
first, which makes the test's p-values uniform on a structureless cloud (deciles 0.12 / 0.44 /
0.89 at 10 / 50 / 90 %; 0.23 / 0.73 / 0.97 with the pull left in: blind to real groups). Doubles
that form a group still point the same way.

Per set, the references' p-values are adjusted for multiple testing (Benjamini-Hochberg,
`scipy.stats.false_discovery_control`); the set's verdict is "more alike" when any adjusted
p-value is below 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.study.compare import seeded
from appliance.study.doubles import nearest_rows


@dataclass(frozen=True)
class AmongOptions:
    k: int = 8  # doubles per reference
    pool: int = 5  # K = pool * k nearest faces the random subsets are drawn from
    resamples: int = 999
    alpha: float = 0.05
    remove_centre: bool = True  # directions without their common pull towards the set's mean
    seed: int = 0


def mean_cosine(gram: np.ndarray, members: np.ndarray) -> float:
    """Mean off-diagonal value of `gram` among `members`."""
    inner = gram[np.ix_(members, members)]
    k = len(members)
    return float((inner.sum() - np.trace(inner)) / (k * (k - 1)))


def reference_test(reference: np.ndarray, vectors: np.ndarray, rows: np.ndarray,
                   options: AmongOptions, rng: np.random.Generator,
                   centre: np.ndarray | None = None) -> dict[str, Any]:
    """The permutation test of one reference: `rows` are its K nearest faces, nearest first.
    With `centre` (the set's mean), the directions lose their component towards it."""
    from scipy import stats

    directions = np.asarray(vectors[rows], dtype=np.float64) - reference.astype(np.float64)
    if centre is not None:
        towards = np.asarray(centre, np.float64) - reference.astype(np.float64)
        towards /= max(float(np.linalg.norm(towards)), 1e-12)
        directions -= np.outer(directions @ towards, towards)
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    gram = directions @ directions.T
    k = options.k
    ids = np.arange(len(rows))

    def statistic(first: np.ndarray, _rest: np.ndarray) -> float:
        return mean_cosine(gram, first.astype(np.int64))

    test = stats.permutation_test((ids[:k], ids[k:]), statistic, permutation_type="independent",
                                  n_resamples=options.resamples, alternative="greater",
                                  vectorized=False, **seeded(stats.permutation_test, rng))
    null = np.asarray(test.null_distribution, dtype=np.float64)
    return {"observed": round(float(test.statistic), 6), "null_mean": round(float(null.mean()), 6),
            "p": float(test.pvalue)}


def among_themselves(names: list[str], references: np.ndarray, vectors: np.ndarray,
                     distances: np.ndarray, options: AmongOptions | None = None) -> dict[str, Any]:
    """study.json's "doubles_among_themselves" record of one set."""
    from scipy import stats

    options = options or AmongOptions()
    k = options.k
    pool = min(options.pool * k, distances.shape[1])
    if pool < 2 * k or k < 2:
        return {"verdict": "not tested", "p": None,
                "reason": f"needs at least {2 * k} faces in the set"}
    rng = np.random.default_rng(options.seed)
    nearest = nearest_rows(distances, pool)
    centre = np.asarray(vectors[:: max(1, len(vectors) // 20000)], np.float64).mean(axis=0) \
        if options.remove_centre else None
    per_reference = []
    for r, name in enumerate(names):
        result = reference_test(references[r], vectors, nearest[r], options, rng, centre)
        per_reference.append({"reference": name, **result})
    raw = np.array([t["p"] for t in per_reference])
    adjusted = stats.false_discovery_control(raw, method="bh") if len(raw) > 1 else raw
    for t, a in zip(per_reference, adjusted, strict=True):
        t["p_adjusted"] = float(a)
    significant = int((adjusted < options.alpha).sum())
    return {
        "verdict": "more alike" if significant else "no difference",
        "p": float(adjusted.min()),
        "references_more_alike": significant,
        "references": len(names),
        "k": k,
        "pool": pool,
        "statistic": "mean cosine between the k nearest doubles' directions from the reference",
        "test": f"permutation test against random {k}-subsets of the reference's {pool} nearest "
                f"faces ({options.resamples} resamples), Benjamini-Hochberg across references",
        "per_reference": per_reference,
    }
