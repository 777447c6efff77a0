"""The study's figures (matplotlib, written as PNG into the report's figures/ folder)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from appliance.files import atomic_write_bytes
from appliance.study.run import StudyResult

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")


def write_figures(result: StudyResult, folder: Path) -> dict[str, str]:
    """Every figure of the report into `folder`: {name: its path relative to the report}."""
    import matplotlib

    matplotlib.use("Agg")
    return {
        "distances": _figure_distances(result, folder / "distances.png"),
        "comparisons": _figure_comparisons(result, folder / "comparisons.png"),
        "map": _figure_maps(result, folder / "map.png"),
        "clusters": _figure_clusters(result, folder / "clusters.png"),
        "among": _figure_among(result, folder / "among.png"),
    }


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return f"figures/{path.name}"


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _figure_distances(result: StudyResult, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rng = np.random.default_rng(0)
    for i, (name, d) in enumerate(result.distances.items()):
        nearest = np.sort(d.min(axis=1))
        left.step(nearest, np.arange(1, len(nearest) + 1) / len(nearest), where="post",
                  color=_colour(i), label=f"{name} ({d.shape[1]} faces)")
        flat = d.reshape(-1)
        sample = flat if len(flat) <= 200_000 else rng.choice(flat, 200_000, replace=False)
        right.hist(sample, bins=80, density=True, histtype="step", color=_colour(i), label=name)
    left.set(xlabel="distance to the nearest face (per reference)", ylabel="share of references",
             title="Best double of each reference (ECDF)")
    right.set(xlabel="distance from a reference to a face", ylabel="density",
              title="All distances to the references")
    for ax in (left, right):
        ax.axvline(0.6, color="0.5", lw=0.8, ls="--")
        ax.legend(fontsize=8)
    return _save(fig, path)


def _figure_comparisons(result: StudyResult, path: Path) -> str:
    import matplotlib.pyplot as plt

    rows = [(c, m, label) for c in result.study["comparisons"]
            for label, m in (("nearest", c), (f"{c.get('k_nearest', {}).get('k', 'k')} nearest",
                                                c.get("k_nearest")))
            if m and m.get("interval")]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(1, len(rows))))
    for y, (_, m, _label) in enumerate(rows):
        lo, hi = m["interval"]
        colour = {"closer": "#2ca02c", "farther": "#d62728"}.get(m["verdict"], "0.4")
        ax.plot([lo, hi], [y, y], color=colour, lw=3)
        ax.plot([m["mean_difference"]], [y], "o", color=colour)
        ax.text(hi, y, f"  {m['verdict']} (p = {m['p']:.3g})", va="center", fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)),
                  [f"{c['set']} vs {c['versus']}: {label}" for c, _, label in rows])
    ax.set(xlabel="mean difference of distance to the references (negative: closer)",
           title=f"{int(100 * result.study['comparisons'][0].get('confidence', 0.95))} % "
                 "bootstrap intervals" if rows else "no comparison")
    ax.invert_yaxis()
    return _save(fig, path)


def _figure_maps(result: StudyResult, path: Path) -> str:
    import matplotlib.pyplot as plt

    maps = result.maps
    panels = [("PCA", maps.pca, maps.references_pca)]
    if maps.umap is not None:
        panels.append(("UMAP", maps.umap, maps.references_umap))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.5), squeeze=False)
    for ax, (label, points, refs) in zip(axes[0], panels, strict=True):
        for i, (name, xy) in enumerate(points.items()):
            ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.5, color=_colour(i), label=name,
                       linewidths=0)
        if refs is not None and len(refs):
            ax.scatter(refs[:, 0], refs[:, 1], s=90, marker="*", color="black",
                       edgecolors="white", linewidths=0.6, label="references")
        if label == "PCA":
            ratio = sum(maps.pca_ratio)
            label = f"PCA (2 axes: {100 * ratio:.0f} % of the variance)"
        ax.set(title=label, xticks=[], yticks=[])
        ax.legend(fontsize=8, markerscale=2)
    return _save(fig, path)


def _figure_clusters(result: StudyResult, path: Path) -> str:
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    samples = result.cluster_samples
    fig, axes = plt.subplots(1, max(1, len(samples)), figsize=(5 * max(1, len(samples)), 4.5),
                             squeeze=False)
    vectors = {s.name: s for s in result.sets}
    for ax, (name, (rows, labels)) in zip(axes[0], samples.items(), strict=False):
        x = vectors[name].vectors()[rows]
        xy = PCA(n_components=2, random_state=0).fit_transform(x)
        noise = labels < 0
        ax.scatter(xy[noise, 0], xy[noise, 1], s=3, color="0.75", linewidths=0, label="noise")
        for j in range(int(labels.max()) + 1):
            member = labels == j
            ax.scatter(xy[member, 0], xy[member, 1], s=4, color=_colour(j), linewidths=0,
                       label=f"cluster {j + 1}")
        record = result.study["clusters"][name]
        ax.set(title=f"{name}: {record['verdict']} (HDBSCAN found {record['found']})",
               xticks=[], yticks=[])
        if int(labels.max()) < 10:
            ax.legend(fontsize=7, markerscale=2)
    return _save(fig, path)


def _figure_among(result: StudyResult, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (name, a) in enumerate(result.study["doubles_among_themselves"].items()):
        tests = a.get("per_reference") or []
        if not tests:
            continue
        x = np.arange(len(tests)) + 0.15 * i
        ax.plot(x, [t["observed"] for t in tests], "o", color=_colour(i),
                label=f"{name}: the {a['k']} nearest doubles")
        ax.plot(x, [t["null_mean"] for t in tests], "_", color=_colour(i), markersize=12,
                label=f"{name}: random {a['k']} of the {a['pool']} nearest (mean)")
    ax.set(xlabel="reference", ylabel="mean cosine between directions",
           title="Do the doubles resemble the reference in the same way?")
    ax.legend(fontsize=7)
    return _save(fig, path)
