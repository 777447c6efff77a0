"""The visit pipeline: the right faces in the right order, stage timings, nothing kept."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np
import pytest

from appliance.faces.face import NoFaceFound
from appliance.likeness import likeness
from appliance.runtime.counter import FixedCounter
from appliance.runtime.lookup import STAGES, Lookup, VisitResult
from appliance.search import Scanner
from appliance.ticket import TicketLayout

WHEN = datetime(2026, 11, 22, 2, 0)


@dataclasses.dataclass
class FakeFace:
    descriptor: np.ndarray
    timings: dict = dataclasses.field(default_factory=lambda: {
        "detect": 0.04, "landmarks": 0.001, "chip": 0.0004, "descriptor": 0.1})
    aligned_calls: int = 0

    def aligned(self, size: int, gray: bool = False) -> np.ndarray:
        self.aligned_calls += 1
        return np.full((size, size), 128, dtype=np.uint8)


def FakeNoFace(reason: str) -> NoFaceFound:
    return NoFaceFound(reason, timings={"detect": 0.05})


class FakeAnalyzer:
    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.seen = []

    def analyze(self, image):
        self.seen.append(image)
        return self.outcome


class FakePCA:
    def __init__(self, dim: int) -> None:
        self.mean = np.zeros(dim)
        self.components = np.eye(3, dim)

    def project(self, x):
        return (np.atleast_2d(np.asarray(x, np.float64)) - self.mean) @ self.components.T


class FakeCorpus:
    def __init__(self, n: int = 300, dim: int = 128, seed: int = 0,
                 broken: frozenset[int] = frozenset()) -> None:
        rng = np.random.default_rng(seed)
        self.vectors = (rng.normal(size=(n, dim)) * 0.1).astype(np.float16)
        self.count, self.dim = n, dim
        self.pca = FakePCA(dim)
        self.coords2d = self.pca.project(self.vectors)[:, :2].astype(np.float32)
        self.broken = broken

    def thumbnail(self, i: int) -> np.ndarray:
        if i in self.broken:
            raise ValueError("corrupt JPEG")
        return np.full((64, 64), (i * 37) % 256, dtype=np.uint8)

    def scanner(self, threads: int = 1) -> Scanner:
        return Scanner(self.vectors)


def brute_force(corpus: FakeCorpus, query: np.ndarray, k: int):
    d = np.sqrt(((corpus.vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(1))
    order = np.lexsort((np.arange(len(d)), d))[:k]
    return order, d[order]


def test_lookup_finds_the_nearest_faces_and_composes_a_ticket():
    corpus = FakeCorpus()
    query = corpus.vectors[17].astype(np.float32) + 0.01
    face = FakeFace(query)
    lookup = Lookup(FakeAnalyzer(face), corpus, None, TicketLayout(lookalikes=4), width=384)
    result = lookup.look_up("photo.jpg", when=WHEN)
    assert isinstance(result, VisitResult) and result.face_found and result.reason is None
    indices, distances = brute_force(corpus, query, 4)
    assert [m.index for m in result.matches] == indices.tolist()
    assert [m.rank for m in result.matches] == [1, 2, 3, 4]
    np.testing.assert_allclose([m.distance for m in result.matches], distances, rtol=1e-3)
    assert all(m.likeness == pytest.approx(likeness(m.distance)) for m in result.matches)
    assert result.matches[0].index == 17
    image = result.ticket.image()
    assert image.mode == "1" and image.width == 384
    assert set(STAGES) <= set(result.timings) and all(v >= 0 for v in result.timings.values())
    assert result.timings["search"] > 0 and result.ticket.timings["dither"] > 0
    assert face.aligned_calls == 0  # the visitor's face is not even cropped by default


def test_ticket_numbers_count_up_unless_given():
    corpus = FakeCorpus()
    lookup = Lookup(FakeAnalyzer(FakeFace(corpus.vectors[0].astype(np.float32))), corpus,
                    layout=TicketLayout(lookalikes=1, show_map=False),
                    numbers=FixedCounter(41).take)
    assert [lookup.look_up(None).number for _ in range(2)] == [41, 42]
    assert lookup.look_up(None, number=7).number == 7 and lookup.look_up(None).number == 43


def test_no_face_gives_no_ticket_and_a_reason():
    lookup = Lookup(FakeAnalyzer(FakeNoFace("face too small")), FakeCorpus())
    result = lookup.look_up("photo.jpg")
    assert result.ticket is None and not result.face_found
    assert result.no_face == "face too small" and result.matches == ()
    assert result.timings["detect"] == 0.05
    ticket = lookup.no_face_ticket(result.no_face)
    assert ticket.mode == "1" and ticket.width == 576


def test_result_holds_nothing_of_the_visitor():
    corpus = FakeCorpus()
    face = FakeFace(corpus.vectors[3].astype(np.float32))
    result = Lookup(FakeAnalyzer(face), corpus, layout=TicketLayout(layout="mugshot")).look_up(None)
    assert face.aligned_calls == 1  # the mugshot prints the visitor's face ...
    for value in vars(result).values():  # ... but only on the ticket
        assert not isinstance(value, np.ndarray | FakeFace)
    assert not result.descriptor and result.descriptor.take() is None  # not held: no conjuring
    assert not any(isinstance(v, np.ndarray) for m in result.matches for v in vars(m).values())


def test_damaged_thumbnail_still_gives_a_ticket():
    corpus = FakeCorpus()
    face = FakeFace(corpus.vectors[5].astype(np.float32))
    lookup = Lookup(FakeAnalyzer(face), FakeCorpus(broken=frozenset({5})), layout=TicketLayout())
    result = lookup.look_up(None)
    assert result.ticket is not None and result.matches[0].index == 5


def test_corpus_smaller_than_k():
    corpus = FakeCorpus(n=2)
    face = FakeFace(corpus.vectors[1].astype(np.float32))
    result = Lookup(FakeAnalyzer(face), corpus, layout=TicketLayout(lookalikes=5)).look_up(None)
    assert [m.index for m in result.matches] == [1, 0]


# ---------------------------------------------------------------------------------------------
# With the real models and a real corpus (a few seconds)


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    from appliance.corpus.store import Corpus
    from appliance.corpus.synth import synth

    path = synth(tmp_path_factory.mktemp("corpus") / "synth", 400, seed=3)
    with Corpus.open(path) as corpus:
        yield corpus


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["classic", "mugshot"])
def test_real_pipeline_on_the_astronaut(real_corpus, layout):
    from skimage import data

    from appliance.faces.analyzer import FaceAnalyzer

    lookup = Lookup(FaceAnalyzer(), real_corpus, real_corpus.scanner(),
                    TicketLayout(layout=layout), width=512)
    result = lookup.look_up(data.astronaut())
    assert result.face_found and len(result.matches) == 5 and result.ticket.width == 512
    assert result.timings["descriptor"] > 0 and result.timings["detect"] > 0
    blank = lookup.look_up(np.full((240, 320, 3), 127, np.uint8))
    assert blank.ticket is None and blank.no_face

