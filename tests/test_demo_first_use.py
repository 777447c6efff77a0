"""What a user meets first: the demo corpus built on first use, said at once, with progress;
rebuilt when its thumbnails' version changes. Tiny corpora (30 draws) in a private cache."""

from __future__ import annotations

import pytest

from appliance.corpus import demo
from appliance.corpus import format as fmt


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch, generated_faces):  # skips without the weights
    monkeypatch.setenv("SOSIE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(demo.DRAWS_ENV, "30")
    return tmp_path / "cache"


def test_a_demo_corpus_of_another_thumbnail_version_is_drawn_again(tiny_cache):
    path = demo.demo_corpus(progress=False)
    assert demo.demo_corpus_ready()
    version = path.with_name(f"{path.name}.version")
    assert version.read_text().strip() == str(demo.DEMO_VERSION)
    built = (path / fmt.MANIFEST).stat().st_mtime_ns
    assert demo.demo_corpus(progress=False) == path  # same version: reused
    assert (path / fmt.MANIFEST).stat().st_mtime_ns == built
    version.write_text("1\n")  # made by an older appliance (edge pixels in bands)
    assert not demo.demo_corpus_ready()
    assert demo.demo_corpus(progress=False) == path
    assert (path / fmt.MANIFEST).stat().st_mtime_ns != built
    assert demo.demo_corpus_ready()


def _run_until_done(command, env, timeout=300):
    """Run `command`, recording when each stderr line arrived (seconds since the start)."""
    import subprocess
    import time

    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines = []
    assert proc.stderr is not None
    for raw in proc.stderr:
        lines.append((time.monotonic() - start, raw.decode()))
    proc.wait(timeout)
    return proc.returncode, lines, time.monotonic() - start


@pytest.mark.parametrize("command", [["ticket", "--image", "{visitor}", "--out", "{out}"],
                                     ["map", "demo", "--out", "{out}"]])
def test_first_use_is_said_at_once_with_a_line_per_progress_step(tiny_cache, tmp_path, command):
    """No silent first use: the line comes within seconds (before the build's end), then the
    build's progress as plain lines (stderr is a pipe here: no carriage returns)."""
    import os
    import sys

    env = dict(os.environ, SOSIE_DEMO_DRAWS="200")
    visitor = str(demo.visitor_photo())
    out = str(tmp_path / ("ticket.png" if command[0] == "ticket" else "map"))
    argv = [sys.executable, "-m", "appliance", *(a.format(visitor=visitor, out=out)
                                                      for a in command)]
    status, lines, total = _run_until_done(argv, env)
    assert status == 0, "".join(text for _, text in lines)
    first = [(t, text) for t, text in lines if text.startswith("first use: building the demo")]
    assert len(first) == 1, lines
    seen, text = first[0]
    assert "200 draws of the DCGAN generator" in text and " core" in text
    assert seen < 10 and seen < total / 2, (seen, total)
    stderr = "".join(text for _, text in lines)
    assert "\r" not in stderr
    assert any("200/200" in text for _, text in lines), stderr  # the bar's last line
    # a second use says nothing of a build
    status, lines, _ = _run_until_done(argv, env)
    assert status == 0 and not any("first use" in text for _, text in lines)


def test_the_expected_time_follows_draws_cores_and_load():
    assert demo.expected_seconds(4000, 2) <= demo.expected_seconds(4000, 1)
    assert demo.expected_seconds(4000, 1) > demo.expected_seconds(400, 1)
    assert demo.expected_seconds(4000, 1, load=15) > 4 * demo.expected_seconds(4000, 1, load=0)
    line = demo.first_use_line(4000, 1, load=0)
    assert "4,000 draws" in line and "on 1 core;" in line and "\n" not in line
    assert "load 15: the machine is busy" in demo.first_use_line(4000, 1, load=15)
