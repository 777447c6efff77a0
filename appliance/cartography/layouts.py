"""Map layouts beside the corpus' own PCA: UMAP (umap-learn, the `sosie[study]` extra), which keeps
neighbourhoods and so shows structure that three principal axes (~20 % of the variance) blur.

`umap_corpus(corpus)` returns the corpus seen through a UMAP layout: 2-D positions from one UMAP
fit (on a sample of large corpora, the other faces placed by `transform`), the 3-D view a flat
plane of the same layout, and a `pca`-like projection so a marked face lands where UMAP places
it. The map site draws it as it draws the PCA layout (its axis panel then lists the extreme
faces of the UMAP axes; their variance shares are 0: UMAP axes explain no variance).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

FIT_SAMPLE = 20_000  # faces UMAP is fitted on; the others are placed by transform
NEIGHBOURS = 15
MIN_DIST = 0.1
EPOCHS = 200  # umap-learn's choice above 10k points (500 below): the layout settles by then


def umap_model(components: int, seed: int = 0, neighbours: int = NEIGHBOURS) -> Any:
    """An unfitted, seeded umap.UMAP (Euclidean, as face distances)."""
    import umap

    return umap.UMAP(n_components=components, n_neighbors=neighbours, min_dist=MIN_DIST,
                     metric="euclidean", n_epochs=EPOCHS, random_state=seed, transform_seed=seed)


def fit_umap(x: np.ndarray, components: int, *, seed: int = 0, fit_sample: int = FIT_SAMPLE,
             block: int = 65536) -> tuple[Any, np.ndarray]:
    """(fitted model, (n, components) float64 positions of every row of `x`): fitted on all rows
    or on a seeded sample of `fit_sample`, the rest placed with `transform` block by block."""
    n = len(x)
    neighbours = max(2, min(NEIGHBOURS, n - 1))
    model = umap_model(components, seed, neighbours)
    rng = np.random.default_rng(seed)
    fitted = np.sort(rng.choice(n, fit_sample, replace=False)) if n > fit_sample \
        else np.arange(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state, etc.
        positions = np.empty((n, components), dtype=np.float64)
        positions[fitted] = model.fit_transform(np.asarray(x[fitted], dtype=np.float32))
        rest = np.setdiff1d(np.arange(n), fitted, assume_unique=True)
        for start in range(0, len(rest), block):
            part = rest[start : start + block]
            positions[part] = model.transform(np.asarray(x[part], dtype=np.float32))
    return model, positions


def place(model: Any, x: np.ndarray) -> np.ndarray:
    """Positions of new rows in a fitted layout."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.transform(np.atleast_2d(np.asarray(x, dtype=np.float32))),
                          dtype=np.float64)


@dataclass
class LayoutProjection:
    """What the map site reads from `corpus.pca` for a UMAP layout: the 2-D layout, centred,
    with a flat third axis (the 3-D view shows the layout as a plane)."""

    model: Any
    centre: np.ndarray  # (2,)
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    def project(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) positions: x, y in the centred layout, 0."""
        two = place(self.model, x) - self.centre
        return np.hstack([two, np.zeros((len(two), 1))])


class LaidOutCorpus:
    """A corpus with other 2-D and 3-D positions (everything else read from the corpus)."""

    def __init__(self, corpus: Any, coords2d: np.ndarray, coords3d: np.ndarray,
                 projection: LayoutProjection, layout: str) -> None:
        self._corpus = corpus
        self.coords2d = coords2d
        self.coords3d = coords3d
        self.pca = projection
        self.layout = layout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._corpus, name)


def umap_corpus(corpus: Any, *, seed: int = 0, fit_sample: int = FIT_SAMPLE,
                progress: Any = None) -> LaidOutCorpus:
    """`corpus` laid out by UMAP (see the module doc)."""
    say = progress or (lambda _m: None)
    x = np.asarray(corpus.vectors, dtype=np.float32)
    if len(x) < 4:
        raise ValueError(f"{getattr(corpus, 'path', 'corpus')}: UMAP needs at least 4 faces")
    say(f"layout: UMAP of {len(x)} faces (fitted on {min(len(x), fit_sample)})")
    model, two = fit_umap(x, 2, seed=seed, fit_sample=fit_sample)
    centre = two.mean(axis=0)
    two = two - centre
    three = np.hstack([two, np.zeros((len(two), 1))])
    projection = LayoutProjection(model, centre, np.zeros(3), np.zeros(3))
    return LaidOutCorpus(corpus, two, three, projection, "umap")
