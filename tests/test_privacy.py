"""Privacy: a full `sosie demo` session writes nothing of the visitor anywhere but the tickets.

Two independent witnesses: a Python audit hook recording every file opened for writing,
renamed, copied or created (covers Pillow, numpy, logging, tempfile, ...), and a snapshot of
every file under HOME, TMPDIR, the working directory and the cache before and after the session
(covers native code that bypasses Python's open). The only files that may appear are the tickets
in the output folder, the ticket-number counter, which holds one integer, and dlib's face
detector saved in the cache in dlib's own format on first use (the model, not visitor data).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
from audit import AUDIT, sandbox_dirs, snapshot
from PIL import Image

from appliance.settings import load_settings

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 2000, seed=3)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    return sandbox_dirs(tmp_path, monkeypatch, ("home", "tmp", "cwd", "cache", "tickets"))


def run_demo(settings, out_dir: Path, corpus_dir: Path, presses: int, image=None):
    from appliance.runtime.demo import Demo

    lines: list[str] = []
    demo = Demo(settings, image=image, out_dir=out_dir, echo=lines.append,
                corpus_path=corpus_dir)
    status = demo.run(presses)
    return status, demo, lines


def allowed(path: str, dirs: dict[str, Path]) -> bool:
    """The tickets, the counter with the temporary file it is written through, and dlib's
    face detector kept in the cache in dlib's file format (the model, nothing of a visitor)."""
    p = Path(path).resolve()
    tickets = dirs["tickets"].resolve()
    counter = (dirs["cache"] / "ticket-number").resolve()
    in_cache = p.parent == counter.parent
    kept = in_cache and (
        re.fullmatch(r"\.ticket-number\.[^/]+\.tmp", p.name)
        or re.fullmatch(r"\.?dlib-[0-9.]+-frontal-face-detector-[0-9a-f]+\.svm", p.name))
    return p in (tickets, counter) or tickets in p.parents or bool(kept)


def test_a_session_writes_nothing_but_tickets(sandbox, corpus_dir):
    settings = load_settings(search=False)
    # a visitor whose face is found and one whose face is not
    from skimage import data

    photos = sandbox["home"] / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()).save(photos / "a.png")
    Image.fromarray(np.full((300, 300, 3), 77, np.uint8)).save(photos / "b.png")
    roots = [sandbox[k] for k in ("home", "tmp", "cwd", "cache")] + [corpus_dir]
    from appliance.parts.printer import escpos_module

    escpos_module()  # python-escpos writes its capabilities cache on first import
    before = snapshot(roots)
    threads_before = threading.active_count()
    AUDIT.paths.clear()
    AUDIT.active = True
    try:
        status, demo, lines = run_demo(settings, sandbox["tickets"], corpus_dir, 2, photos)
    finally:
        AUDIT.active = False
    assert status == 0, lines
    assert demo.service.machine.counters.tickets_printed == 2
    assert demo.service.machine.counters.no_face == 1

    written = [p for p in AUDIT.paths if not allowed(p, sandbox)]
    assert written == [], f"written outside the ticket folder: {written}"
    after = snapshot(roots)
    changed = sorted(p for p in set(after) | set(before)
                     if after.get(p) != before.get(p) and not allowed(p, sandbox))
    assert changed == [], f"files changed outside the ticket folder: {changed}"
    counter = sandbox["cache"] / "ticket-number"
    assert counter.read_text().strip().isdigit()
    tickets = sorted(p.suffix for p in sandbox["tickets"].iterdir())
    assert tickets == [".bin", ".bin", ".png", ".png"]
    assert threading.active_count() <= threads_before + 1


def test_keep_captures_opt_in_writes_the_photo_there_only(sandbox, corpus_dir):
    from appliance.runtime.service import ServiceSettings

    keep = sandbox["home"] / "kept"
    settings = load_settings(search=False)
    settings = settings.replace(service=ServiceSettings(keep_captures=True, captures_dir=keep))
    AUDIT.paths.clear()
    AUDIT.active = True
    try:
        status, _, lines = run_demo(settings, sandbox["tickets"], corpus_dir, 1)
    finally:
        AUDIT.active = False
    assert status == 0, lines
    kept = list(keep.iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".jpg"
    assert kept[0].stat().st_mode & 0o777 == 0o600  # the service's user only, whatever the umask
    photo = np.asarray(Image.open(kept[0]))
    from appliance.corpus.demo import visitor_photo

    seen = np.asarray(Image.open(visitor_photo()).convert("RGB"))
    assert photo.shape == seen.shape  # the frame the demo's camera gave: the photo as it is
    written = [Path(p).resolve() for p in AUDIT.paths if not allowed(p, sandbox)]
    assert written and all(p == keep.resolve() or keep.resolve() in p.parents for p in written)


def test_keep_captures_without_a_folder_is_refused(tmp_path):
    from appliance.config import ConfigError

    cfg = tmp_path / "sosie.yaml"
    cfg.write_text("service:\n  keep_captures: true\n")
    with pytest.raises(ConfigError, match=r"service\.captures_dir"):
        load_settings(cfg)


def test_the_ticket_says_photos_are_kept_when_they_are(tmp_path):
    from appliance.ticket.settings import NOTHING_KEPT, PHOTO_KEPT

    cfg = tmp_path / "sosie.yaml"
    cfg.write_text(f"service:\n  keep_captures: true\n  captures_dir: {tmp_path / 'kept'}\n")
    assert load_settings(cfg).ticket.privacy == PHOTO_KEPT
    cfg.write_text("service:\n  keep_captures: false\n")
    assert load_settings(cfg).ticket.privacy == NOTHING_KEPT
