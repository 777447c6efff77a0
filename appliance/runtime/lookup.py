"""One visit's lookup: photo -> face -> descriptor -> nearest faces -> the ticket to print.

Everything about the visitor (photo, descriptor) lives in local variables only and is dropped
when `look_up` returns; the result holds the matches (corpus rows and distances), how long each
stage took, and the ticket as a lazy `Ticket`: its bands are composed while the printer prints
the ones before (only the aligned face it prints, if the layout prints one, waits in it)::

    >>> lookup = Lookup(FaceAnalyzer(), corpus, corpus.scanner(), TicketLayout(),
    ...                 installation=Installation(), width=printer.width)
    >>> result = lookup.look_up(photo, number=counter.take())
    >>> printer.print_ticket(result.ticket)  # band by band; None with result.no_face saying why
    >>> result.ticket.image()         # the whole ticket as one PIL mode "1" image
    >>> result.timings                # seconds: detect, landmarks, descriptor, search, prepare

The ticket's date follows `ticket.date` (appliance.ticket.clock): by default none is printed while
the system clock is not synchronised, as on a Pi without a real-time clock or network.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from appliance.errors import one_line
from appliance.faces.face import NoFaceFound
from appliance.faults import Fault, PartFault
from appliance.fonts import font
from appliance.images import ImageError
from appliance.likeness import likeness
from appliance.ticket import (
    CorpusMap,
    Installation,
    Lookalike,
    Ticket,
    TicketContent,
    TicketLayout,
    compose_no_face,
    visitor_ticket,
)
from appliance.ticket.clock import ticket_time

if TYPE_CHECKING:
    from appliance.corpus import Corpus
    from appliance.faces.analyzer import FaceAnalyzer
    from appliance.images import Source
    from appliance.search import Scanner

log = logging.getLogger(__name__)

STAGES = ("detect", "landmarks", "descriptor", "search", "prepare")  # before the ticket
VISITOR_FACE_SIZE = 400  # dots of the aligned visitor crop (mugshot, show_visitor)
#: The longest a search waits for the corpus's background check (start-up's passes over every
#: row: seconds, even on a Pi's card) before it is a corpus fault; under the machine's search
#: timeout (30 s by default), so the fault says why.
CHECK_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class Match:
    rank: int  # 1 = closest
    index: int  # corpus row
    distance: float
    likeness: float  # percent


class Held:
    """The visitor's descriptor, in memory only and only with `ticket.conjure: after` (the
    conjured double is searched for once the ticket has printed): taken once, or dropped."""

    def __init__(self, value: np.ndarray | None = None) -> None:
        self._value = value

    def take(self) -> np.ndarray | None:
        """The descriptor, which is no longer held."""
        value, self._value = self._value, None
        return value

    def drop(self) -> None:
        self._value = None

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return f"Held({'a descriptor' if self else 'nothing'})"


@dataclass(frozen=True)
class VisitResult:
    """What one lookup produced. Holds nothing of the visitor but the printed ticket (and the
    descriptor, held in memory while a conjured double is searched for)."""

    ticket: Ticket | None  # composed band by band as it is printed; None when no face was found
    matches: tuple[Match, ...] = ()
    no_face: str | None = None  # why there is no ticket
    number: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage of the lookup
    when: datetime | None = None  # the date printed (None: none, the clock is not trusted)
    descriptor: Held = field(default_factory=Held, repr=False, compare=False)

    @property
    def face_found(self) -> bool:
        return self.no_face is None

    @property
    def reason(self) -> str | None:
        return self.no_face


class Lookup:
    """The visit pipeline over a loaded analyzer, an open corpus and its scanner."""

    def __init__(
        self,
        analyzer: FaceAnalyzer,
        corpus: Corpus,
        scanner: Scanner | None = None,
        layout: TicketLayout | None = None,
        *,
        installation: Installation | None = None,
        width: int | None = None,
        numbers: Callable[[], int] | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.corpus = corpus
        self.scanner = scanner if scanner is not None else corpus.scanner()
        self.layout = layout or TicketLayout()
        self.installation = installation or Installation()
        self.width = width
        self.numbers = numbers if numbers is not None else itertools.count(1).__next__
        self._map_points: np.ndarray | None = None  # sampled for the first map, not at start

    def _number(self, number: int | None) -> int:
        """`number`, else the next one from the visit counter (`numbers`, its one owner)."""
        return number if number is not None else self.numbers()

    def look_up(self, image: Source, *, number: int | None = None,
            when: datetime | None = None) -> VisitResult:
        """Analyze `image` (RGB ndarray or path), search the corpus, prepare the ticket.

        `when` is the date printed; by default the clock's, as `ticket.date` allows.
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        check_fonts(self.layout)  # a bad font file fails here (a ticket fault), not half-way
        face = self._analyze(image)  # down the ticket
        analyzed = time.perf_counter() - start
        if isinstance(face, NoFaceFound):
            timings.update(face.timings)
            timings.setdefault("detect", analyzed)
            timings["total"] = time.perf_counter() - start
            return VisitResult(None, no_face=str(face.reason), number=self._number(number),
                               timings=timings)

        t = time.perf_counter()
        descriptor = np.asarray(face.descriptor, dtype=np.float32)
        described = time.perf_counter() - t
        face_timings = dict(face.timings)
        face_timings.setdefault("descriptor", described)
        known = sum(v for k, v in face_timings.items() if k != "descriptor")
        face_timings.setdefault("detect", max(0.0, analyzed - known))
        face_timings.setdefault("landmarks", 0.0)
        timings.update(face_timings)

        t = time.perf_counter()
        indices, distances = self._search(descriptor)
        timings["search"] = time.perf_counter() - t

        matches = tuple(
            Match(rank, int(i), float(d), likeness(max(0.0, float(d))))
            for rank, (i, d) in enumerate(zip(indices, distances, strict=True), start=1)
        )
        t = time.perf_counter()
        visitor_face = None
        if self.layout.layout == "mugshot" or self.layout.show_visitor:
            visitor_face = face.aligned(VISITOR_FACE_SIZE, gray=True)
        corpus_map = self._map(descriptor, matches) if self.layout.show_map else None
        timings["prepare"] = time.perf_counter() - t
        kept = descriptor if self.layout.conjure == "after" else None
        del face, descriptor  # nothing of the visitor outlives this call but the ticket (and
        # `kept`, the descriptor in memory for the conjured double, when that is on)

        number = self._number(number)
        when = when or self._when()
        ticket = self._ticket(matches, number, when, visitor_face, corpus_map)
        timings["total"] = time.perf_counter() - start
        return VisitResult(ticket, matches, None, number, timings, when, Held(kept))

    def _analyze(self, image: Source) -> Any:
        """The analyzer's face (or NoFaceFound); its failures are the models' (the photo's
        own, unreadable or unusable, the camera's)."""
        try:
            return self.analyzer.analyze(image)
        except PartFault:
            raise
        except ImageError as exc:
            raise PartFault(Fault.CAMERA, str(exc)) from None
        except Exception as exc:
            raise PartFault(Fault.MODELS, f"face models: {one_line(exc)}") from None

    def _search(self, descriptor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest rows and their distances; any failure is the corpus's."""
        k = min(self.layout.lookalikes, int(self.corpus.count))
        if k == 0:
            raise PartFault(Fault.CORPUS, "the corpus is empty: nothing to compare the visitor "
                            "with")
        try:
            check_rows = getattr(self.corpus, "check_rows", None)
            if check_rows is not None:  # waits for the checks start-up left to a thread, once
                check_rows(timeout=CHECK_WAIT_SECONDS)
            return self.scanner.topk(descriptor, k)
        except Exception as exc:
            raise PartFault(Fault.CORPUS, f"search: {one_line(exc)}") from None

    def _ticket(self, matches: tuple[Match, ...], number: int, when: datetime | None,
                visitor_face: np.ndarray | None, corpus_map: CorpusMap | None) -> Ticket:
        """The lazy ticket; the lookalikes' photos are read once its header band is out."""
        compose: dict[str, float] = {}

        def content() -> TicketContent:
            t = time.perf_counter()
            lookalikes = [Lookalike(m.rank, m.index, max(0.0, m.distance),
                                    self._thumbnail(m.index)) for m in matches]
            compose["thumbnails"] = time.perf_counter() - t
            return TicketContent(lookalikes, number, when, visitor_face, corpus_map)

        return visitor_ticket(content, self.layout, self.installation, width=self.width,
                              timings=compose)

    def _when(self) -> datetime | None:
        return ticket_time(self.layout.date)

    def no_face_ticket(self, reason: str, *, number: int | None = None,
                       when: datetime | None = None) -> Image.Image:
        """The short "no face found, try again" ticket (dated as `ticket.date` allows)."""
        return compose_no_face(self.layout, self.installation, reason=reason,
                               number=self._number(number), when=when or self._when(),
                               width=self.width)

    def _thumbnail(self, index: int) -> np.ndarray:
        try:
            return np.asarray(self.corpus.thumbnail(index), dtype=np.uint8)
        except Exception as exc:  # a damaged thumbnail must not cost the visitor their ticket
            log.warning("thumbnail %d unreadable (%s); printing a blank frame", index, exc)
            return np.full((64, 64), 200, dtype=np.uint8)

    def _map(self, descriptor: np.ndarray, matches: tuple[Match, ...]) -> CorpusMap | None:
        coords = getattr(self.corpus, "coords2d", None)
        pca = getattr(self.corpus, "pca", None)
        if coords is None or pca is None:
            return None
        visitor = np.asarray(pca.project(descriptor), dtype=np.float64).reshape(-1)[:2]
        if not np.all(np.isfinite(visitor)):
            return None
        doubles = tuple((float(coords[m.index][0]), float(coords[m.index][1])) for m in matches)
        if self._map_points is None:
            self._map_points = _sample_map(self.corpus, self.layout.map_points)
        return CorpusMap(self._map_points, int(self.corpus.count),
                         (float(visitor[0]), float(visitor[1])), doubles)


def check_fonts(layout: TicketLayout) -> None:
    """Load every configured font file (cached); raises FontError (a `TicketError`: a ticket
    fault) naming a bad one."""
    for role, path in vars(layout.fonts).items():
        if path:
            font(role, 12, path)


def _sample_map(corpus: Any, limit: int) -> np.ndarray:
    """An evenly spaced sample of the corpus's 2-D coordinates (computed once)."""
    coords = getattr(corpus, "coords2d", None)
    if coords is None or limit == 0 or len(coords) == 0:
        return np.zeros((0, 2))
    n = len(coords)
    rows = np.unique(np.linspace(0, n - 1, min(n, limit)).astype(np.int64))
    return np.asarray(coords[rows], dtype=np.float64)
