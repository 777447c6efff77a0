"""What a ticket shows: the installation, the layout settings, and the visitor's doubles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Literal

import numpy as np

from appliance.config import check_dots, setting
from appliance.dots import MAX_DOTS, MIN_DOTS
from appliance.likeness import likeness
from appliance.ticket.dither import Tone


@dataclass(frozen=True)
class Installation:
    """The installation's identity (config section `installation`)."""

    # printed texts: at most `max_chars` characters, cut after `max_lines` printed lines
    title: str = setting("Sosie", max_chars=80, max_lines=3)
    subtitle: str = setting("Your double among faces that do not exist", max_chars=200,
                            max_lines=4)


@dataclass(frozen=True)
class Fonts:
    """Optional TrueType files replacing the bundled DejaVu faces (empty: bundled)."""

    title: str = ""
    text: str = ""
    bold: str = ""
    note: str = ""


#: The ticket's privacy line, true to `service.keep_captures` (see `privacy_line`).
NOTHING_KEPT = "Nothing of you was kept. Your photo lived in memory for a moment, and is gone."
PHOTO_KEPT = "This installation keeps a copy of your photo. Ask its staff to see or delete it."


def text_lines(cls: type, name: str) -> int:
    """The printed lines the text field `name` of `cls` may take (its `max_lines`)."""
    return next(f.metadata["max_lines"] for f in fields(cls) if f.name == name)


def privacy_line(line: str, keep_captures: bool) -> str:
    """`line`, unless it says nothing was kept while photos are: then PHOTO_KEPT."""
    claims_nothing = "nothing of you was kept" in " ".join(line.lower().split())
    return PHOTO_KEPT if keep_captures and claims_nothing else line


@dataclass(frozen=True)
class TicketLayout:
    """What the ticket shows and how (config section `ticket`)."""

    layout: Literal["classic", "mugshot"] = "classic"
    width: int | None = setting(None, min=MIN_DOTS, max=MAX_DOTS)  # dots; None: the printer's
    lookalikes: int = setting(5, min=1, max=10)  # how many doubles are printed
    columns: int = setting(0, min=0, max=5)  # grid columns after the first; 0: by width
    show_visitor: bool = False  # print the visitor's own face next to their double (classic)
    show_map: bool = True  # the corpus map with the visitor's place
    show_distance: bool = False  # print the raw descriptor distance under each likeness
    map_points: int = setting(4000, min=0, max=200_000)  # corpus dots drawn on the map
    map_height: int = setting(300, min=80, max=2000)  # dots at 576 wide, scales with width
    margin: int = setting(20, min=8, max=100)  # dots at 576 wide, left and right
    number_digits: int = setting(6, min=1, max=12)  # ticket number zero padding
    date_format: str = setting("%d.%m.%Y  %H:%M", max_chars=40, max_lines=1)
    date: Literal["auto", "always", "never"] = "auto"  # auto: only when the clock is synchronised
    # printed as privacy_line(privacy, service.keep_captures)
    privacy: str = setting(NOTHING_KEPT, max_chars=300, max_lines=6)
    retry_hint: str = setting("Face the camera, come a little closer, and press the button "
                              "again.", max_chars=200, max_lines=4)
    conjure: Literal["off", "after"] = "off"  # after: a second ticket with a conjured double
    conjure_seconds: float = setting(20.0, min=1.0, max=300.0)  # its search budget
    tone: Tone = field(default_factory=Tone)
    fonts: Fonts = field(default_factory=Fonts)

    def __post_init__(self) -> None:
        check_dots("ticket.width", self.width)


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
