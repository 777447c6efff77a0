"""What a ticket shows: the visitor's doubles, the corpus map, the number and the date (the
installation and layout settings are in `ticket/settings.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from appliance.likeness import likeness


@dataclass(frozen=True)
class Lookalike:
    rank: int  # 1 = closest
    index: int  # row in the corpus
    distance: float  # Euclidean descriptor distance
    thumbnail: np.ndarray  # uint8 gray aligned face (h, w)

    @property
    def likeness(self) -> float:
        return likeness(self.distance)


@dataclass(frozen=True)
class CorpusMap:
    points: np.ndarray  # (n, 2) float PCA coordinates of (a sample of) the corpus
    count: int  # faces in the whole corpus
    visitor: tuple[float, float] | None  # the visitor's coordinates, same axes
    lookalikes: tuple[tuple[float, float], ...] = ()  # in rank order


@dataclass(frozen=True)
class TicketContent:
    lookalikes: Sequence[Lookalike]
    number: int = 1
    when: datetime | None = field(default_factory=datetime.now)  # None: no date is printed
    visitor_face: np.ndarray | None = None  # uint8 gray aligned face, only if it is printed
    corpus_map: CorpusMap | None = None
