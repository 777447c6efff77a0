"""Conjuring: search the face generator's latent space for a face that looks like a photo.

`objective` scores latents (generate, find the face, describe, distance to the visitor);
`starts` finds where to begin (the latents of the nearest corpus faces, when the generator made
them); `search` runs CMA-ES over the 100-D latent within a budget; `plot` draws the distance
curve; `outputs` writes the result folder of `sosie conjure`.
"""

from appliance.conjure.objective import NO_FACE_DISTANCE, LikenessObjective
from appliance.conjure.search import Budget, Conjured, conjure
from appliance.conjure.starts import CorpusStart, corpus_start, latent_source

__all__ = [
    "NO_FACE_DISTANCE",
    "Budget",
    "Conjured",
    "CorpusStart",
    "LikenessObjective",
    "conjure",
    "corpus_start",
    "latent_source",
]
