"""The whole study, stage by stage: distances, best doubles, set comparisons, clusters and the
set's type, doubles among themselves, maps. `run_study` returns everything the report needs;
`StudyResult.study` is the JSON document (study.json)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.study.among import AmongOptions, among_themselves
from appliance.study.clusters import ClusterOptions, cluster_set, concentration
from appliance.study.compare import CompareOptions, compare_sets
from appliance.study.doubles import Double, best_doubles, distance_matrix
from appliance.study.embed import Layouts, layouts
from appliance.study.inputs import FaceSet, Reference

STAGES = ("distances", "best doubles", "comparisons", "clusters", "among themselves", "maps")


@dataclass(frozen=True)
class StudyOptions:
    doubles: int = 12  # best doubles listed per reference
    compare: CompareOptions = field(default_factory=CompareOptions)
    clusters: ClusterOptions = field(default_factory=ClusterOptions)
    among: AmongOptions = field(default_factory=AmongOptions)
    map_per_set: int = 2000  # faces of each set on the maps
    umap: bool = True


@dataclass
class StudyResult:
    study: dict[str, Any]
    sets: list[FaceSet]
    references: list[Reference]
    distances: dict[str, np.ndarray]  # (R, N) per set
    doubles: list[list[Double]]
    cluster_samples: dict[str, tuple[np.ndarray, np.ndarray]]  # set: (rows, labels)
    maps: Layouts | None


def run_study(sets: list[FaceSet], references: list[Reference],
              options: StudyOptions | None = None, *,
              stage: Callable[[str], None] | None = None, notes: list[str] | None = None,
              ) -> StudyResult:
    """Answer the four questions for `sets` and `references` (see the package doc)."""
    options = options or StudyOptions()
    step = stage or (lambda _name: None)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

    names = [r.name for r in references]
    q = np.stack([r.descriptor for r in references]).astype(np.float32)
    step("distances")
    distances = {s.name: distance_matrix(q, s.vectors()) for s in sets}  # read once
    lap("distances")

    step("best doubles")
    sources = {s.name: s.corpus.source for s in sets}
    doubles = best_doubles(names, distances, sources, options.doubles)
    lap("best doubles")

    step("comparisons")
    comparisons = []
    for j, later in enumerate(sets):
        for earlier in sets[:j]:
            comparisons.append(compare_sets(later.name, earlier.name, distances[later.name],
                                            distances[earlier.name], options.compare))
    lap("comparisons")

    step("clusters")
    clusters, samples = {}, {}
    for s in sets:
        record = cluster_set(s.vectors(), options.clusters)
        rows, labels = record.pop("_rows", None), record.pop("_labels", None)
        if rows is not None:
            samples[s.name] = (rows, labels)
        record["concentration"] = concentration(s.vectors(), q, seed=options.clusters.seed)
        clusters[s.name] = record
    lap("clusters")

    step("among themselves")
    among = {s.name: among_themselves(names, q, s.vectors(), distances[s.name], options.among)
             for s in sets}
    lap("among themselves")

    step("maps")
    maps = layouts({s.name: s.vectors() for s in sets}, q, per_set=options.map_per_set,
                   seed=options.compare.seed, with_umap=options.umap)
    lap("maps")

    study = {
        "version": 1,
        "sets": {s.name: {"faces": s.count, "origin": s.origin, "kind": s.kind,
                          "rejected": len(s.rejected),
                          "model": "recorded" if s.model else None,
                          "nearest": [round(float(v), 6) for v in distances[s.name].min(axis=1)]}
                 for s in sets},
        "references": [{"name": r.name, "kind": "photo" if r.described else "descriptor"}
                       for r in references],
        "best_doubles": [{"reference": n, "doubles": [
            {"rank": d.rank, "set": d.set, "file": d.file, "row": d.row,
             "distance": round(d.distance, 6), "likeness": round(d.likeness, 2)}
            for d in row]} for n, row in zip(names, doubles, strict=True)],
        "comparisons": comparisons,
        "clusters": clusters,
        "doubles_among_themselves": among,
        "maps": {"faces_per_set": {k: len(v) for k, v in maps.rows.items()},
                 "pca_explained_variance_ratio": maps.pca_ratio,
                 "umap": maps.umap is not None},
        "notes": list(notes or []),
        "seconds": seconds,
    }
    return StudyResult(study, sets, references, distances, doubles, samples, maps)
