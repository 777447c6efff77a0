"""Words and numbers that agree: the same photo's likeness through `ticket` and `demo`, the
help of `ticket --width` and its check, plurals and states in words, the nearest known config
key, what an interrupted build or generate keeps, and a resumed build's bar."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.cli import main


@pytest.fixture(scope="module")
def tall_photo(tmp_path_factory, astronaut) -> Path:
    """A 384x512 portrait (not the camera's 4:3): the camera's fit would change it."""
    path = tmp_path_factory.mktemp("photo") / "tall.png"
    Image.fromarray(np.ascontiguousarray(astronaut[:, 64:448])).save(path)
    return path


@pytest.mark.slow
def test_the_same_photo_has_the_same_likeness_through_ticket_and_demo(tmp_path, tall_photo,
                                                                      capsys, monkeypatch):
    from appliance.corpus import demo_corpus

    corpus = demo_corpus(progress=False)
    assert main(["ticket", "--image", str(tall_photo), "--corpus", str(corpus), "--out",
                 str(tmp_path / "t.png")]) == 0
    ticket = re.search(r"N°1: face (\d+) .*distance ([\d.]+), (\d+)% alike",
                       capsys.readouterr().out)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["demo", "--image", str(tall_photo), "--corpus", str(corpus), "--out",
                 str(tmp_path / "d")]) == 0
    demo = re.search(r"closest face (\d+) % alike", capsys.readouterr().out)
    assert ticket and demo
    assert ticket.group(3) == demo.group(1)


def test_the_demo_camera_sees_the_photo_as_it_is(tmp_path, tall_photo):
    """What a no-face ticket says of the photo's size is the photo's own (384x512), as through
    `sosie ticket`, not the camera's frame it was fitted into."""
    from appliance.runtime.demo import Demo
    from appliance.settings import load_settings

    demo = Demo(load_settings(search=False), image=tall_photo, out_dir=tmp_path,
                corpus_path=tmp_path / "unused")
    demo.camera.open()
    try:
        frame = demo.camera.capture()
    finally:
        demo.camera.close()
    assert frame.shape == (512, 384, 3)


def test_no_face_reason_names_the_photos_size(analyzer, no_face_photo):
    outcome = analyzer.analyze(no_face_photo)
    h, w = no_face_photo.shape[:2]
    assert f"{w}x{h} photo" in outcome.reason


def test_ticket_width_help_says_what_its_check_accepts(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ticket", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a multiple of 8 from 128 to 4096" in help_text
    photo = tmp_path / "nope.png"
    Image.new("RGB", (8, 8)).save(photo)
    for width in (120, 130, 4104):
        assert main(["ticket", "--image", str(photo), "--out", str(tmp_path / "o.png"),
                     "--width", str(width)]) == 2
        assert "a multiple of 8 from 128 to 4096" in capsys.readouterr().err


def test_plurals_and_states_in_words():
    from appliance.runtime.machine import Machine, MachineSettings
    from appliance.runtime.service import status_line
    from appliance.runtime.states import State
    from appliance.words import plural, state_phrase

    assert plural(1, "ticket") == "1 ticket" and plural(0, "ticket") == "0 tickets"
    assert plural(2, "face") == "2 faces" and plural(1200, "face") == "1,200 faces"
    assert state_phrase("cooldown") == "cooling down"
    assert state_phrase("shutting_down") == "shutting down"
    for state in State:  # every state reads after "the appliance is"
        assert "_" not in state_phrase(state.value)
    machine = Machine(MachineSettings())
    machine.counters.tickets_printed = 1
    machine.state = State.READY
    assert status_line(machine) == "ready; 1 ticket printed"


def test_an_unknown_config_key_suggests_the_nearest_known_one(tmp_path):
    from appliance.config import ConfigError, load

    path = tmp_path / "sosie.yaml"
    path.write_text("printer:\n  widht: 384\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "unknown config key 'printer.widht'; did you mean 'printer.width'?" in str(caught.value)
    path.write_text("ticket:\n  tone:\n    gama: 2\n")
    with pytest.raises(ConfigError, match=r"did you mean 'ticket\.tone\.gamma'\?"):
        load(path)
    path.write_text("zzzzz: 1\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "did you mean" not in str(caught.value)  # nothing near: the known keys only


def _interrupted(command: list[str], kill_env: str, after: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{kill_env: str(after)})
    return subprocess.run([sys.executable, "-m", "appliance", *command], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_an_interrupted_build_says_what_it_keeps_and_a_resumed_bar_counts_it(tmp_path,
                                                                             generated_faces):
    from appliance.cli.corpus import interrupted_build
    from appliance.corpus.build import kept
    from appliance.corpus.collector import KILL_AFTER_ENV

    folder = tmp_path / "faces"
    folder.mkdir()
    for i, face in enumerate(generated_faces[:24]):
        Image.fromarray(face).save(folder / f"face-{i:02d}.png")
    corpus = tmp_path / "corpus"
    assert "no chunk was finished" in interrupted_build(corpus)
    killed = _interrupted(["build", str(folder), str(corpus), "--chunk-size", "4",
                           "--workers", "1", "--quiet"], KILL_AFTER_ENV, 2)
    assert killed.returncode != 0
    chunks, faces = kept(corpus)
    assert chunks == 2 and 0 < faces <= 8
    message = interrupted_build(corpus)
    assert message.startswith(f"2 finished chunks ({faces} face") and "resume" in message
    # the resumed build's bar starts from the faces already made (stderr: a line per update)
    resumed = subprocess.run([sys.executable, "-m", "appliance", "build", str(folder),
                              str(corpus), "--chunk-size", "4", "--workers", "1"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 of 6 chunks reused" in resumed.stdout
    counts = [int(m) for m in re.findall(r"faces=(\d+)", resumed.stderr)]
    assert counts and min(counts) >= faces
    with open(corpus / "manifest.yaml") as fh:
        total = int(re.search(r"^count: (\d+)", fh.read(), re.M).group(1))
    assert counts[-1] == total  # not only the faces made after the resume


@pytest.mark.slow
def test_an_interrupted_generate_says_how_many_faces_it_keeps(tmp_path, generated_faces):
    from appliance.cli.generate import interrupted_generate
    from appliance.generator.job import KILL_AFTER_ENV

    out = tmp_path / "made"
    assert "no face was finished" in interrupted_generate(out)
    killed = _interrupted(["generate", str(out), "--count", "20", "--size", "64",
                           "--workers", "1", "--quiet"], KILL_AFTER_ENV, 6)
    assert killed.returncode != 0
    files = sorted(p for p in out.iterdir() if p.suffix == ".png")
    message = interrupted_generate(out)
    assert files and message.startswith(f"{len(files)} face") and "resume" in message
