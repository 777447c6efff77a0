"""Conjuring with the real generator and dlib: the search gets closer than where it starts, is
a pure function of its seed under an evaluation budget, starts from the latents that made the
nearest corpus faces, and writes a face that describes to the distance it reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from audit import AUDIT, sandbox_dirs, snapshot
from PIL import Image

from appliance.conjure import NO_FACE_DISTANCE, Budget, LikenessObjective, conjure, corpus_start
from appliance.conjure.objective import upscale
from appliance.conjure.plot import distance_curve, nice_ticks
from appliance.conjure.starts import generator_record, latent_source

pytestmark = pytest.mark.slow

BUDGET = Budget(seconds=None, evaluations=44)  # 4 starts + 5 generations of 8


@pytest.fixture(scope="module")
def net():
    from appliance.generator.dcgan import DCGAN, WeightsNotFound, default_weights_path

    try:
        return DCGAN.load(default_weights_path())
    except WeightsNotFound as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def corpus_dir(net, tmp_path_factory) -> Path:
    """A real corpus of 24 DCGAN draws of seed 5, built by `sosie build dcgan:24:5`'s code."""
    from appliance.corpus import CorpusSettings, build
    from appliance.generator.source import GeneratorSource

    out = tmp_path_factory.mktemp("conjure") / "corpus"
    build(GeneratorSource.parse("dcgan:24:5", net.path), out, workers=1, progress=False,
          settings=CorpusSettings(thumbnail_size=64))
    return out


@pytest.fixture(scope="module")
def target(astronaut_face) -> np.ndarray:
    return np.array(astronaut_face.descriptor)


def test_sources_name_draws_of_the_generator():
    assert latent_source("dcgan:7:12") == (7, 12)
    assert latent_source("gen/dcgan-3-0000042.png") == (3, 42)
    assert latent_source("dcgan-3-0000042.JPG") == (3, 42)
    for other in ("photo.png", "dcgan:7", "dcgan:-1:2", "xdcgan:1:2", "dcgan-3-42.gif",
                  "dcgan:1:2 ", f"dcgan:{2**64}:1", "dcgan-1-2.png/x"):
        assert latent_source(other) is None, other
    assert generator_record({"source": {"generator": "dcgan", "size": 64}}) is not None
    assert generator_record({"source": {"folder": "/x"}}) is None
    assert generator_record("junk") is None


def test_budgets_are_checked_and_counted():
    for bad in ({"seconds": None}, {"seconds": 0}, {"seconds": math.inf}, {"evaluations": 0}):
        with pytest.raises(ValueError):
            Budget(**bad)
    assert Budget(seconds=None, evaluations=10).room(4, 99.0, 1.0) == 6
    assert Budget(seconds=10.0).room(4, 6.0, 0.5) == 8
    assert Budget(seconds=10.0, evaluations=5).room(4, 0.0, 0.5) == 1
    assert Budget(seconds=10.0).room(4, 11.0, 0.5) == 0


def test_the_objective_scores_the_faces_the_generator_draws(net, analyzer, target):
    objective = LikenessObjective(net, analyzer, target)
    latents = np.stack([net.latent(2, i) for i in range(6)])
    assert np.array_equal(objective.images(latents), net.faces(2, range(6), size=256))
    distances = objective(latents)
    assert objective.evaluations == 6 and distances.shape == (6,)
    for image, distance in zip(objective.images(latents), distances, strict=True):
        face = analyzer.analyze(image)
        expected = (np.linalg.norm(face.descriptor - target) if hasattr(face, "descriptor")
                    else NO_FACE_DISTANCE)
        assert distance == pytest.approx(expected, abs=1e-6)
    gray = np.full((1, 64, 64, 3), 128, np.uint8)
    assert upscale(gray, 64) is gray and upscale(gray, 100).shape == (1, 100, 100, 3)
    with pytest.raises(ValueError):
        objective(np.full((1, 100), np.nan))


def test_the_search_gets_closer_and_repeats_itself_for_a_seed(net, analyzer, target):
    def run(seed):
        objective = LikenessObjective(net, analyzer, target)
        return conjure(objective, np.zeros((0, 100)), budget=BUDGET, seed=seed, popsize=8,
                       random_draws=4)

    first, again, other = run(3), run(3), run(4)
    assert first.evaluations == 44 and first.generations == 5 and first.start == "random"
    assert first.distance < first.start_distance < NO_FACE_DISTANCE
    assert first.distance == first.history.min()
    assert np.all(np.diff(first.best_so_far()) <= 0)
    assert np.array_equal(first.history, again.history)
    assert np.array_equal(first.latent, again.latent)
    assert not np.array_equal(first.history, other.history)
    # the latent is the face: rendering it again gives the distance the search recorded
    assert LikenessObjective(net, analyzer, target)(first.latent[None])[0] == first.distance


def test_corpus_draws_are_the_starting_points(net, analyzer, target, corpus_dir):
    from appliance.corpus import Corpus

    with Corpus.open(corpus_dir) as corpus:
        start = corpus_start(corpus, target, k=4, weights_sha256=net.checksum)
        other_weights = corpus_start(corpus, target, k=4, weights_sha256="0" * 64)
    assert start.face_size == 256 and len(start.latents) == 4 and len(start.rows) == 4
    assert len(other_weights.latents) == 0 and other_weights.nearest_distance == (
        start.nearest_distance)
    objective = LikenessObjective(net, analyzer, target, start.face_size)
    # each start latent draws the corpus face it came from (descriptors stored as float16)
    assert objective(start.latents) == pytest.approx(start.distances, abs=3e-3)
    result = conjure(objective, start.latents, budget=BUDGET, seed=0, popsize=8)
    assert result.start == "corpus" and result.evaluations == 44
    assert result.start_distance == pytest.approx(start.nearest_distance, abs=3e-3)
    assert result.distance < result.start_distance


def test_cli_writes_a_face_that_describes_to_its_distance(net, analyzer, target, corpus_dir,
                                                          astronaut, tmp_path, capsys):
    from appliance.cli import main

    photo = tmp_path / "visitor.png"
    Image.fromarray(astronaut).save(photo)
    out = tmp_path / "out"
    args = ["conjure", str(photo), "--out", str(out), "--evaluations", "30", "--seed", "1",
            "--corpus", str(corpus_dir), "--starts", "3"]
    assert main(args) == 0
    assert "closer than the nearest of" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "conjured-64.png", "conjured.npy", "conjured.png", "curve.png", "sheet.png",
        "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 30 and summary["seed"] == 1
    assert summary["start"] == "corpus" and summary["corpus"]["latents_started_from"] == 3
    assert summary["corpus"]["count"] == len((corpus_dir / "sources.tsv").read_text()
                                             .splitlines()) - 1
    assert summary["distance"] <= summary["start_distance"]
    assert summary["closer_than_corpus"] == (summary["distance"]
                                             < summary["nearest_corpus_distance"])
    latent = np.load(out / "conjured.npy")
    assert latent.dtype == np.float32 and latent.shape == (100,)
    raw = np.asarray(Image.open(out / "conjured-64.png"))
    assert np.array_equal(raw, net.render(latent[None])[0])  # the network's own output
    # conjured.png: at the ticket's face size (576 dots: 400), resampled with Lanczos
    face = np.asarray(Image.open(out / "conjured.png"))
    assert summary["face_size"] == 400 and face.shape == (400, 400, 3)
    assert np.array_equal(face, np.asarray(Image.fromarray(raw).resize(
        (400, 400), Image.Resampling.LANCZOS)))
    # the distance reported is that of the face as scored (at the corpus's face size)
    scored = upscale(raw[None], summary["scored_size"])[0]
    described = analyzer.analyze(scored).descriptor
    assert np.linalg.norm(described - target) == pytest.approx(summary["distance"], abs=1e-6)
    assert "not a human judgement" in summary["measure"]
    with Image.open(out / "curve.png") as curve:
        assert curve.format == "PNG" and curve.size == (800, 480)
    # the same seed and evaluations: the same face
    assert main([*args[:3], str(tmp_path / "again"), *args[4:]]) == 0
    assert np.array_equal(np.load(tmp_path / "again" / "conjured.npy"), latent)


def test_several_distinct_doubles_ranked_best_first(net, analyzer, target, corpus_dir,
                                                   astronaut, tmp_path, capsys):
    """--doubles 3: three searches sharing the budget, each from its own corpus face; the
    files of each, best first; the sheet shows the photo's face only with --sheet-photo."""
    from appliance.cli import main

    photo = tmp_path / "visitor.png"
    Image.fromarray(astronaut).save(photo)
    out = tmp_path / "out"
    assert main(["conjure", str(photo), "--out", str(out), "--evaluations", "18", "--doubles",
                 "3", "--corpus", str(corpus_dir), "--sheet-photo"]) == 0
    printed = capsys.readouterr().out
    assert "double N°2" in printed and "double N°3" in printed
    summary = json.loads((out / "summary.json").read_text())
    doubles = summary["doubles"]
    assert [d["rank"] for d in doubles] == [1, 2, 3]
    distances = [d["distance"] for d in doubles]
    assert distances == sorted(distances) and distances[0] == summary["distance"]
    assert summary["evaluations"] == 18 and all(d["evaluations"] == 6 for d in doubles)
    latents = [np.load(out / d["files"]["latent"]) for d in doubles]
    assert all(not np.array_equal(a, b) for i, a in enumerate(latents) for b in latents[i + 1:])
    for d, latent in zip(doubles, latents, strict=True):
        raw = np.asarray(Image.open(out / d["files"]["raw"]))
        assert np.array_equal(raw, net.render(latent[None])[0])
        assert Image.open(out / d["files"]["face"]).size == (400, 400)
        described = analyzer.analyze(upscale(raw[None], summary["scored_size"])[0]).descriptor
        assert np.linalg.norm(described - target) == pytest.approx(d["distance"], abs=1e-6)
    with Image.open(out / "sheet.png") as sheet:
        assert sheet.width > 5 * 256  # photo, nearest corpus face, three doubles
        first = np.asarray(sheet.convert("L"))[12:12 + 256, 12:12 + 256]
    assert np.count_nonzero(first == first[0, 0]) < 0.5 * first.size  # the photo's face
    assert main(["conjure", str(photo), "--out", str(out), "--doubles", "11"]) == 2


def test_a_photo_without_a_face_gets_one_line(no_face_photo, tmp_path, capsys, net):
    from appliance.cli import main

    photo = tmp_path / "coffee.png"
    Image.fromarray(no_face_photo).save(photo)
    assert main(["conjure", str(photo), "--out", str(tmp_path / "o"), "--no-corpus",
                 "--evaluations", "5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sosie conjure: {photo}: no usable face (") and "\n" not in err
    assert not (tmp_path / "o").exists()
    for bad in (["--budget", "0"], ["--evaluations", "0"], ["--seed", "-1"],
                ["--corpus", "x", "--no-corpus"], ["--size", "8"]):
        assert main(["conjure", str(photo), "--out", str(tmp_path / "o"), *bad]) == 2
        assert "\n" not in capsys.readouterr().err.strip()
    assert main(["conjure", str(tmp_path / "none.png"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_a_bad_out_fails_at_once_before_any_corpus_or_model(astronaut, tmp_path, capsys,
                                                             monkeypatch):
    """Without --corpus the demo corpus would be built (minutes): an --out that cannot be
    written is refused first, on one line naming it, and nothing is written or built."""
    import appliance.corpus
    from appliance.cli import main
    from appliance.faces import analyzer

    dirs = sandbox_dirs(tmp_path, monkeypatch)
    photo = dirs["home"] / "me.png"
    Image.fromarray(astronaut).save(photo)
    a_file = dirs["home"] / "notes.txt"
    a_file.write_text("x")
    called: list[str] = []
    monkeypatch.setattr(appliance.corpus, "demo_corpus", lambda **_: called.append("corpus"))
    monkeypatch.setattr(analyzer.FaceAnalyzer, "analyze",
                        lambda *_: called.append("analyze"))
    before = snapshot([tmp_path])
    for out, why in ((a_file, "exists and is not a folder"),
                     (a_file / "sub" / "dir", f"{a_file} is not a folder")):
        assert main(["conjure", str(photo), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"sosie conjure: --out {out}: {why}; expected a folder, existing or to "
                       "be created"), err
    assert called == [] and snapshot([tmp_path]) == before


def test_the_curve_shows_the_search():
    history = np.array([0.7, NO_FACE_DISTANCE, 0.6, 0.65, 0.5])
    image = distance_curve(history, 0.55, NO_FACE_DISTANCE)
    pixels = np.asarray(image)
    assert image.size == (800, 480)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 90)
    assert red.any()  # the corpus line
    without = np.asarray(distance_curve(history, None, NO_FACE_DISTANCE))
    assert not ((without[..., 0] > 150) & (without[..., 1] < 90)).any()
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 44) == [0, 10, 20, 30, 40]


def test_conjuring_writes_nothing_of_the_photo(net, corpus_dir, astronaut, tmp_path,
                                               monkeypatch):
    """The privacy audit of tests/test_privacy.py on the conjure path: Python's file writes and
    a snapshot of HOME, TMPDIR, the working directory, the cache and the corpus; only --out's
    four files appear, and none of them holds the photo's pixels or its descriptor."""
    from appliance.cli import main

    dirs = sandbox_dirs(tmp_path, monkeypatch)
    photo = dirs["home"] / "visitor.png"
    Image.fromarray(astronaut).save(photo)
    out = dirs["home"] / "conjured"
    roots = [*dirs.values(), corpus_dir]
    before = snapshot(roots)
    AUDIT.paths.clear()
    AUDIT.active = True
    try:
        status = main(["conjure", str(photo), "--out", str(out), "--evaluations", "12",
                       "--corpus", str(corpus_dir)])
    finally:
        AUDIT.active = False
    assert status == 0
    inside = out.resolve()
    written = [p for p in AUDIT.paths
               if Path(p).resolve() != inside and inside not in Path(p).resolve().parents]
    assert written == []
    after = snapshot(roots)
    changed = sorted(p for p in set(after) | set(before) if after.get(p) != before.get(p))
    assert changed == sorted(str(out / name) for name in (
        "conjured-64.png", "conjured.npy", "conjured.png", "curve.png", "sheet.png",
        "summary.json"))
    face = np.asarray(Image.open(out / "conjured.png"))
    assert face.shape != astronaut.shape
    # the sheet's first cell says the photo is not written: a flat placeholder, not a face
    first = np.asarray(Image.open(out / "sheet.png").convert("L"))[12:12 + 256, 12:12 + 256]
    assert np.count_nonzero(first == first[0, 0]) > 0.9 * first.size
    def lists(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from lists(item)
        elif isinstance(value, list):
            yield value

    summary = json.loads((out / "summary.json").read_text())
    assert all(len(values) < 128 for values in lists(summary))  # no descriptor in it


def test_the_appliance_conjures_a_double_and_its_short_ticket(net, analyzer, target, corpus_dir):
    from appliance.conjure.double import Conjurer
    from appliance.corpus import Corpus

    with Corpus.open(corpus_dir) as corpus:
        conjurer = Conjurer(analyzer, corpus, budget=Budget(seconds=None, evaluations=20),
                            weights=net.path)
        double = conjurer.conjure(target)
        nearest = corpus_start(corpus, target, 1).nearest_distance
    assert double.found and double.result.evaluations == 20 and double.result.start == "corpus"
    assert double.nearest == nearest and double.corpus_count == corpus.count
    assert double.face.shape == (256, 256, 3)
    assert np.linalg.norm(analyzer.analyze(double.face).descriptor - target) == pytest.approx(
        double.result.distance, abs=1e-6)
    ticket = double.ticket(number=7, width=384)
    assert ticket.mode == "1" and ticket.width == 384 and ticket.height > 384
    ink = 1 - np.asarray(ticket, np.float64)
    assert 0.05 < ink.mean() < 0.6  # a dithered face and text, neither blank nor black


def test_the_appliance_prints_the_double_after_the_ticket(net, corpus_dir, astronaut, tmp_path,
                                                          monkeypatch):
    """ticket.conjure: after — one press, two tickets (the visit's, then the double's), and the
    session's file writes are still only the tickets and the ticket counter."""
    import dataclasses

    from test_privacy import AUDIT, allowed, run_demo, snapshot

    from appliance.settings import load_settings

    dirs = sandbox_dirs(tmp_path, monkeypatch)
    tickets = tmp_path / "tickets"
    tickets.mkdir()
    settings = load_settings(search=False)
    settings = settings.replace(ticket=dataclasses.replace(settings.ticket, conjure="after",
                                                           conjure_seconds=2.0))
    from appliance.parts.printer import escpos_module

    escpos_module()  # python-escpos writes its capabilities cache on first import
    roots = [*dirs.values(), corpus_dir]
    before = snapshot(roots)
    AUDIT.paths.clear()
    AUDIT.active = True
    try:
        status, _, lines = run_demo(settings, tickets, corpus_dir, 1, image=astronaut)
    finally:
        AUDIT.active = False
    assert status == 0, lines
    printed = sorted(tickets.glob("*.png"))
    assert len(printed) == 2, lines
    first, double = (Image.open(p) for p in printed)
    assert first.width == double.width and double.height < first.height  # the short one
    where = {"tickets": tickets, "cache": dirs["cache"]}
    outside = [p for p in AUDIT.paths if not allowed(p, where)]
    assert outside == []
    after = snapshot(roots)
    changed = [p for p in set(after) | set(before) if after.get(p) != before.get(p)]
    assert [p for p in changed if not allowed(p, where)] == []


def test_a_press_while_the_double_is_conjured_is_answered_busy(net, corpus_dir, astronaut,
                                                               tmp_path, monkeypatch):
    import dataclasses
    import threading

    from appliance.conjure.double import Conjurer
    from appliance.runtime.demo import Demo
    from appliance.runtime.machine import State
    from appliance.settings import load_settings

    sandbox_dirs(tmp_path, monkeypatch)
    conjuring, answered = threading.Event(), threading.Event()
    original = Conjurer.conjure

    def held(self, descriptor, budget=None):
        conjuring.set()
        answered.wait(20)
        return original(self, descriptor, Budget(seconds=None, evaluations=10))

    monkeypatch.setattr(Conjurer, "conjure", held)
    settings = load_settings(search=False)
    settings = settings.replace(ticket=dataclasses.replace(settings.ticket, conjure="after"))
    demo = Demo(settings, image=astronaut, out_dir=tmp_path / "tickets", echo=lambda _: None,
                corpus_path=corpus_dir)
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(demo.run(1)), daemon=True)
    thread.start()
    try:
        assert conjuring.wait(60)
        answer = demo.service.press_and_wait("button")
    finally:
        answered.set()
        thread.join(60)
    assert status == [0]
    assert not answer.taken and answer.state is State.CONJURING and answer.reason == "busy"
    counters = demo.service.machine.counters
    assert counters.visits == 1 and counters.presses_ignored == 1
    assert len(list((tmp_path / "tickets").glob("*.png"))) == 2


def test_a_reopened_corpus_is_the_one_the_double_starts_from(net, corpus_dir, astronaut, tmp_path,
                                                             monkeypatch):
    """A corpus fault's recovery closes the corpus and opens it again: the conjurer must start
    its searches from the new one, not from the closed one it was given at start-up."""
    import dataclasses

    from appliance.faults import Fault
    from appliance.parts.camera import FileCamera, fit_inside
    from appliance.parts.printer import VirtualPrinter
    from appliance.runtime.appliance import Appliance
    from appliance.settings import load_settings

    sandbox_dirs(tmp_path, monkeypatch)
    settings = load_settings(search=False)
    settings = settings.replace(ticket=dataclasses.replace(settings.ticket, conjure="after",
                                                           conjure_seconds=1.0))
    parts = Appliance(settings, camera=FileCamera(fit_inside(astronaut, 640, 480)),
                      printer=VirtualPrinter(tmp_path / "tickets", settings.printer),
                      corpus_path=corpus_dir)
    parts.start()
    first, conjurer = parts.corpus, parts.conjurer
    assert conjurer is not None and conjurer.corpus is first
    parts.probe(Fault.CORPUS)
    assert parts.corpus is not first and parts.conjurer is conjurer  # the generator kept
    assert conjurer.corpus is parts.corpus
    descriptor = parts.analyzer.analyze(fit_inside(astronaut, 640, 480)).descriptor
    double = conjurer.conjure(descriptor, Budget(seconds=None, evaluations=4))
    assert double.corpus_count == parts.corpus.count  # searched from the open corpus
