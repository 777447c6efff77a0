"""The latent search: CMA-ES (the `cma` package) over the generator's latent, within a budget.

The search first scores its starting points (the latents of the nearest corpus faces, or random
draws from the generator's prior), then runs CMA-ES from the best of them: each generation
is a population of latents scored in one batch by the objective. It stops when the budget
(seconds, evaluations, or both) is spent: a last generation that does not fit is scored only as
far as it fits. With an evaluation budget the result is a pure function of (objective, starts,
seed): the clock never decides anything.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Initial step size in latent units (the prior is N(0, 1) per dimension): a face close to the
#: start but visibly different (0.3 beat 0.7 on 5 of 6 photos at 400 evaluations, and stays
#: nearer the prior: latent norms ~11-13 against ~17).
SIGMA = 0.3
#: Random draws scored first when there is no corpus latent to start from.
RANDOM_DRAWS = 64
#: Starting points scored per batch (the budget is checked between batches).
STARTS_BATCH = 8


class MissingOptimiser(ImportError):
    """The `cma` package is not installed (one line telling how to get it)."""


@dataclass(frozen=True)
class Budget:
    """When the search stops: after `seconds`, after `evaluations`, whichever comes first."""

    seconds: float | None = 30.0
    evaluations: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.evaluations is None:
            raise ValueError("a budget needs seconds, evaluations or both")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"budget of {self.seconds} seconds: expected a positive number")
        if self.evaluations is not None and self.evaluations < 1:
            raise ValueError(f"budget of {self.evaluations} evaluations: expected 1 or more")

    def room(self, evaluations: int, elapsed: float, per_evaluation: float) -> int:
        """How many more evaluations fit (time estimated at `per_evaluation` seconds each)."""
        room = math.inf
        if self.evaluations is not None:
            room = self.evaluations - evaluations
        if self.seconds is not None:
            left = self.seconds - elapsed
            room = min(room, left / per_evaluation if per_evaluation > 0 else math.inf)
        return max(0, int(room)) if math.isfinite(room) else 1 << 30


@dataclass
class Conjured:
    """The closest face found: its latent, its distance, and how the search got there."""

    latent: np.ndarray  # (dim,) float32
    distance: float
    start_distance: float  # the best starting point's distance
    start: str  # "corpus" or "random"
    seconds: float
    generations: int
    #: The distance of every evaluation, in order (NO_FACE_DISTANCE where no face was found).
    history: np.ndarray = field(repr=False)

    @property
    def evaluations(self) -> int:
        return len(self.history)

    def best_so_far(self) -> np.ndarray:
        """The best distance after each evaluation."""
        return np.minimum.accumulate(self.history) if len(self.history) else self.history


Progress = Callable[[Conjured], None]


def conjure(objective: Callable[[np.ndarray], np.ndarray], starts: np.ndarray, *,
            budget: Budget, seed: int = 0, dim: int = 100, sigma: float = SIGMA,
            popsize: int | None = None, random_draws: int = RANDOM_DRAWS,
            progress: Progress | None = None, clock: Callable[[], float] = time.perf_counter,
            ) -> Conjured:
    """Search for the latent whose face is closest under `objective` ((n, dim) -> (n,)).

    `starts` are (m, dim) latents to begin from, closest first (m may be 0: then
    `random_draws` latents are drawn from N(0, 1) with `seed`). `progress` is called after each
    batch with the result so far.
    """
    cma = require_cma()
    rng = np.random.default_rng(seed)
    began = clock()
    history: list[float] = []
    starts = np.asarray(starts, np.float32).reshape(-1, dim)
    start = "corpus" if len(starts) else "random"
    if not len(starts):
        starts = rng.standard_normal((random_draws, dim)).astype(np.float32)

    best = Conjured(np.zeros(dim, np.float32), math.inf, math.inf, start, 0.0, 0,
                    np.zeros(0))

    def score(latents: np.ndarray) -> np.ndarray:
        distances = np.asarray(objective(latents), np.float64).reshape(-1)
        if len(distances) != len(latents) or not np.isfinite(distances).all():
            raise ValueError("the objective must give one finite distance per latent")
        history.extend(distances.tolist())
        i = int(np.argmin(distances))
        if distances[i] < best.distance:
            best.latent, best.distance = np.array(latents[i], np.float32), float(distances[i])
        best.seconds = clock() - began
        best.history = np.asarray(history)
        if progress is not None:
            progress(best)
        return distances

    def room() -> int:
        elapsed = clock() - began
        return budget.room(len(history), elapsed, elapsed / len(history) if history else 0.0)

    # The starting points, at least one, as many as fit (in batches, so the clock is heard).
    scored = 0
    while scored < len(starts) and (fits := room() if scored else 1) > 0:
        batch = starts[scored:scored + min(fits, STARTS_BATCH)]
        score(batch)
        scored += len(batch)
    best.start_distance = best.distance

    options = {
        "seed": np.nan,  # leave numpy's global generator alone: samples come from `rng`
        "randn": lambda count, n: rng.standard_normal((count, n)),
        "verbose": -10,  # no console output, no log files, no signals file read
        "verb_disp": 0,
        "verb_log": 0,
        "tolfun": 0.0,
        "tolflatfitness": 10**9,  # plateaus of "no face" are part of the landscape
    }
    if popsize is not None:
        options["popsize"] = popsize
    strategy = cma.CMAEvolutionStrategy(best.latent.astype(np.float64), sigma, options)
    while (fits := room()) > 0:
        if strategy.stop():  # converged or degenerate: begin again around the best face
            strategy = cma.CMAEvolutionStrategy(best.latent.astype(np.float64), sigma, options)
        population = strategy.ask()
        if fits < len(population):  # the last, partial generation: scored, not learnt from
            score(np.asarray(population[:fits], np.float32))
            break
        distances = score(np.asarray(population, np.float32))
        strategy.tell(population, distances.tolist())
        best.generations += 1
    best.seconds = clock() - began
    return best


#: What cma imports when it is installed and Sosie never uses: matplotlib for its plots (which
#: writes a config folder under HOME) and scipy.stats for a surrogate model's rank correlation
#: (cma has its own fallback): 66 MB of the service's RSS and ~2 s of its start-up here.
CMA_OPTIONAL_IMPORTS = ("matplotlib", "scipy")


@contextlib.contextmanager
def _without(names: tuple[str, ...]) -> Iterator[None]:
    """Import as on a Pi, where the runtime has none of `names`: each one not imported yet
    raises ImportError inside the block, and is importable again after it."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def require_cma() -> Any:
    try:
        with warnings.catch_warnings(), _without(CMA_OPTIONAL_IMPORTS):
            warnings.simplefilter("ignore")  # it mentions matplotlib, which Sosie does not use
            import cma
    except ImportError:
        raise MissingOptimiser(
            "conjuring needs the cma package: .venv/bin/pip install 'sosie[conjure]' "
            "(or pip install 'cma>=3.3')"
        ) from None
    return cma
