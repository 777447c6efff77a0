"""`generate`: COUNT faces, each a pure function of (seed, index); same bytes with any number of
workers, after a rerun, and after a SIGKILL at any moment followed by a rerun."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from generator_helpers import BrokenEngine, DarkEngine, folder_bytes
from PIL import Image
from torch_zip_writer import dcgan_state, write_dcgan

from appliance.generator.dcgan import DCGAN
from appliance.generator.draws import DcganDrawer, DcganJob
from appliance.generator.job import KILL_AFTER_ENV, GenerateError, generate
from appliance.generator.journal import DRAWS, WORK_DIR

HELPER = Path(__file__).with_name("generator_helpers.py")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_dcgan(tmp_path_factory.mktemp("w") / "weights.tar", dcgan_state(seed=1))


def drawer(weights: Path, seed: int = 3, workers: int = 1, engine=None) -> DcganDrawer:
    return DcganDrawer(DcganJob(seed, 64, "png", weights), engine or DarkEngine(),
                       workers=workers)


@pytest.fixture(scope="module")
def reference(weights, tmp_path_factory) -> Path:
    """12 faces of seed 3, one worker, never interrupted."""
    out = tmp_path_factory.mktemp("ref") / "faces"
    generate(out, 12, drawer(weights), progress=False)
    return out


def faces_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_count_faces_each_the_draw_it_names(weights, reference):
    net, analyzer = DCGAN.load(weights), DarkEngine().create()
    names = faces_in(reference)
    assert len(names) == 12 and all(n.startswith("dcgan-3-") for n in names)
    kept = [int(n[8:15]) for n in names]
    last = max(kept)
    for index, face in enumerate(net.faces(3, range(last + 1), size=64)):
        accepted = hasattr(analyzer.analyze(face), "descriptor")
        assert accepted == (index in kept), index
        if accepted:
            stored = np.asarray(Image.open(reference / f"dcgan-3-{index:07d}.png"))
            np.testing.assert_array_equal(stored, face)
    lines = [json.loads(x) for x in (reference / WORK_DIR / DRAWS).read_text().splitlines()]
    assert [x["i"] for x in lines] == list(range(last + 1))
    assert 0 < sum("reason" in x for x in lines) == last + 1 - 12  # some draws were rejected
    assert all(x["reason"].startswith("too dark") for x in lines if "reason" in x)


def test_the_report_counts_draws_and_reasons(weights, tmp_path):
    report = generate(tmp_path / "f", 5, drawer(weights), progress=False)
    assert report.faces == 5 and report.draws == 5 + sum(report.rejected.values())
    assert report.drawn_now >= report.draws  # busy workers may draw past the last face
    assert all(reason.startswith("too dark") for reason in report.rejected)
    again = generate(tmp_path / "f", 5, drawer(weights), progress=False)
    assert again.drawn_now == 0 and again.rejected == report.rejected


def test_workers_and_reruns_leave_the_same_bytes(weights, reference, tmp_path):
    generate(tmp_path / "two", 12, drawer(weights, workers=2), progress=False)
    assert folder_bytes(tmp_path / "two") == folder_bytes(reference)
    generate(tmp_path / "two", 12, drawer(weights, workers=2), progress=False)
    assert folder_bytes(tmp_path / "two") == folder_bytes(reference)


def test_a_larger_count_extends_and_a_smaller_one_trims(weights, reference, tmp_path):
    out = tmp_path / "f"
    generate(out, 5, drawer(weights), progress=False)
    assert faces_in(out) == faces_in(reference)[:5]
    generate(out, 12, drawer(weights), progress=False)
    assert folder_bytes(out) == folder_bytes(reference)
    generate(out, 5, drawer(weights), progress=False)
    assert faces_in(out) == faces_in(reference)[:5]


def run_helper(out: Path, weights: Path, workers: int, kill_after: int = 0,
               count: int = 12) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    if kill_after:
        env[KILL_AFTER_ENV] = str(kill_after)
    return subprocess.run([sys.executable, str(HELPER), str(out), str(count), "3", str(workers),
                           str(weights)], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("workers, kill_after", [(1, 1), (1, 7), (2, 3), (2, 14)])
def test_killed_then_rerun_equals_an_uninterrupted_run(weights, reference, tmp_path, workers,
                                                       kill_after):
    out = tmp_path / "f"
    killed = run_helper(out, weights, workers, kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "Traceback" not in killed.stderr  # orphaned workers go quietly
    assert len((out / WORK_DIR / DRAWS).read_bytes().splitlines()) == kill_after
    finished = run_helper(out, weights, workers)
    assert finished.returncode == 0, finished.stderr
    assert folder_bytes(out) == folder_bytes(reference)


def test_killed_from_outside_mid_write_then_rerun_equals_an_uninterrupted_run(
        weights, reference, tmp_path):
    out = tmp_path / "f"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    journal = out / WORK_DIR / DRAWS
    for delay in (0.0, 0.005, 0.01):
        before = journal.stat().st_size if journal.exists() else 0
        process = subprocess.Popen([sys.executable, str(HELPER), str(out), "12", "3", "2",
                                    str(weights)], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and not (
                journal.exists() and journal.stat().st_size > before):
            time.sleep(0.001)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL  # killed while drawing, not finished
    # a kill can also cut a journal line short
    with open(out / WORK_DIR / DRAWS, "ab") as fh:
        fh.write(b'{"i":99,"fi')
    assert run_helper(out, weights, 2).returncode == 0
    assert folder_bytes(out) == folder_bytes(reference)


def test_a_face_file_lost_or_damaged_is_drawn_again(weights, reference, tmp_path):
    out = tmp_path / "f"
    generate(out, 12, drawer(weights), progress=False)
    names = faces_in(out)
    (out / names[2]).unlink()
    (out / names[5]).write_bytes(b"half")
    (out / ".dcgan-3-0000099.png.tmp").write_bytes(b"left by a kill")
    report = generate(out, 12, drawer(weights), progress=False)
    assert report.drawn_now == 2
    assert folder_bytes(out) == folder_bytes(reference)


def test_another_seed_or_analyzer_in_the_same_folder_is_refused(weights, reference, tmp_path):
    out = tmp_path / "f"
    generate(out, 3, drawer(weights), progress=False)
    with pytest.raises(GenerateError, match=r"made with seed = 3, not 4"):
        generate(out, 3, drawer(weights, seed=4), progress=False)
    with pytest.raises(GenerateError, match=r"made with analyzer"):
        generate(out, 3, drawer(weights, engine=DarkEngine(100.0)), progress=False)
    job = out / WORK_DIR / "job.json"
    job.write_text(job.read_text().replace('"renderer": 2', '"renderer": 1'))
    with pytest.raises(GenerateError, match=r"made with renderer = 1, not 2"):
        generate(out, 3, drawer(weights), progress=False)


def test_a_folder_of_other_files_is_refused(weights, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(GenerateError, match=r"holds holiday\.jpg, which sosie generate did not"):
        generate(tmp_path / "mine", 3, drawer(weights), progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(GenerateError, match="not a folder"):
        generate(tmp_path / "file", 3, drawer(weights), progress=False)


def test_an_analyzer_that_never_finds_a_face_stops_the_run(weights, tmp_path):
    with pytest.raises(GenerateError) as info:
        generate(tmp_path / "f", 3, drawer(weights, engine=DarkEngine(255.0)), progress=False)
    message = str(info.value)
    assert "no face in the first 50 draws" in message and "too dark" in message
    assert "0 of 3 faces kept" in message and "\n" not in message


def test_progress_shows_rate_and_eta(weights, tmp_path, capsys):
    generate(tmp_path / "f", 4, drawer(weights), progress=True)
    err = capsys.readouterr().err
    assert "sosie generate" in err and "4/4" in err and "face/s" in err and "<" in err


def test_encoded_faces_decode_to_their_pixels(weights, tmp_path):
    jpeg = DcganDrawer(DcganJob(3, 64, "jpeg", weights), DarkEngine())
    generate(tmp_path / "j", 2, jpeg, progress=False)
    names = faces_in(tmp_path / "j")
    assert all(n.endswith(".jpg") for n in names)
    image = Image.open(io.BytesIO((tmp_path / "j" / names[0]).read_bytes()))
    assert image.format == "JPEG" and image.size == (64, 64)
    assert Counter(n[:8] for n in names) == {"dcgan-3-": 2}


def test_workers_that_cannot_load_their_models_stop_the_run_in_one_line(weights, tmp_path):
    with pytest.raises(GenerateError) as info:
        generate(tmp_path / "f", 9, drawer(weights, workers=2, engine=BrokenEngine()),
                 progress=False)
    assert str(info.value) == (f"shape_predictor.dat: no such model file; 0 of 9 faces kept in "
                               f"{tmp_path / 'f'}: run the same command again to resume")
