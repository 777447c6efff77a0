"""The study's maps: every set's faces (a sample of each) in one PCA and one UMAP layout, with the
references: projected by the PCA, laid out by UMAP together with the faces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.cartography.layouts import fit_umap


@dataclass
class Layouts:
    """Positions of the sampled faces (`rows[set]` of each set) and of the references."""

    rows: dict[str, np.ndarray]
    pca: dict[str, np.ndarray]
    umap: dict[str, np.ndarray] | None
    references_pca: np.ndarray
    references_umap: np.ndarray | None
    pca_ratio: list[float]


def layouts(sets: dict[str, np.ndarray], references: np.ndarray, *, per_set: int = 2000,
            seed: int = 0, with_umap: bool = True) -> Layouts:
    """PCA (sklearn) and UMAP (umap-learn) of up to `per_set` faces of each set."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    rows = {name: (np.sort(rng.choice(len(v), per_set, replace=False)) if len(v) > per_set
                   else np.arange(len(v))) for name, v in sets.items()}
    x = np.vstack([np.asarray(sets[name][r], dtype=np.float32) for name, r in rows.items()])
    bounds = np.cumsum([0] + [len(r) for r in rows.values()])
    pca = PCA(n_components=2, random_state=seed).fit(x)
    flat = pca.transform(x)
    refs = np.asarray(references, dtype=np.float32).reshape(-1, x.shape[1])
    out_pca = {name: flat[bounds[i] : bounds[i + 1]] for i, name in enumerate(rows)}
    out_umap = refs_umap = None
    if with_umap and len(x) >= 4:  # the references are laid out with the faces: a
        # transform would cost numba another compilation (~20 s) for a few points
        _, positions = fit_umap(np.vstack([x, refs]), 2, seed=seed, fit_sample=len(x) + len(refs))
        out_umap = {name: positions[bounds[i] : bounds[i + 1]] for i, name in enumerate(rows)}
        refs_umap = positions[len(x) :]
    return Layouts(rows, out_pca, out_umap, pca.transform(refs) if len(refs) else
                   np.zeros((0, 2)), refs_umap,
                   [float(v) for v in pca.explained_variance_ratio_])
