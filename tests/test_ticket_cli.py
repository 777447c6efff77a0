"""`sosie ticket`: a preview PNG decoded from the ESC/POS bytes it writes beside it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from test_printer import fifo_reader

from appliance.cli import main
from appliance.parts.printer.decode import decode


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from appliance.corpus.synth import synth

    return synth(tmp_path_factory.mktemp("corpus") / "synth", 500, seed=4)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "width"), [("classic", 576), ("mugshot", 384)])
def test_ticket_preview_matches_its_escpos_bytes(tmp_path, corpus_dir, astronaut, capsys,
                                                 layout, width):
    out = tmp_path / "ticket.png"
    status = main(["ticket", "--image", str(astronaut), "--corpus", str(corpus_dir),
                   "--out", str(out), "--layout", layout, "--width", str(width),
                   "--lookalikes", "3", "--number", "12"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "N°1: face" in printed and "N°3: face" in printed and "ms: " in printed
    png = Image.open(out)
    assert png.mode == "1" and png.width == width
    paper = decode(out.with_suffix(".bin").read_bytes(), width)
    assert paper.pieces[0].cut == "full"
    assert np.array_equal(np.asarray(paper.image), np.asarray(png))


@pytest.mark.slow
def test_photo_without_a_face_gives_the_try_again_ticket(tmp_path, corpus_dir, capsys):
    photo = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (120, 120, 120)).save(photo)
    out = tmp_path / "ticket.png"
    assert main(["ticket", "--image", str(photo), "--corpus", str(corpus_dir),
                 "--out", str(out)]) == 0
    assert "no face" in capsys.readouterr().out
    assert Image.open(out).width == 576


def test_unusable_arguments_exit_2(tmp_path, corpus_dir, astronaut, capsys):
    out = str(tmp_path / "t.png")
    assert main(["ticket", "--image", str(tmp_path / "none.jpg"), "--out", out]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["ticket", "--image", str(astronaut), "--out", out, "--width", "500"]) == 2
    assert "multiple of 8" in capsys.readouterr().err
    config = tmp_path / "bad.yaml"
    config.write_text("ticket:\n  lookalikes: 42\n")
    assert main(["ticket", "--image", str(astronaut), "--out", out, "--config",
                 str(config)]) == 2
    assert "ticket.lookalikes" in capsys.readouterr().err


def test_bad_width_or_profile_in_config_exits_2(tmp_path, astronaut, capsys):
    out = str(tmp_path / "t.png")
    config = tmp_path / "bad.yaml"
    for bad, key in (("ticket:\n  width: 500\n", "ticket.width"),
                     ("printer:\n  width: 64\n", "printer.width"),
                     ("printer:\n  profile: No Such Printer\n", "printer.profile")):
        config.write_text(bad)
        assert main(["ticket", "--image", str(astronaut), "--out", out, "--config",
                     str(config)]) == 2
        err = capsys.readouterr().err
        assert key in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_missing_configured_font_is_reported_on_one_line(tmp_path, corpus_dir, astronaut,
                                                         capsys):
    config = tmp_path / "fonts.yaml"
    config.write_text(f"ticket:\n  fonts:\n    title: {tmp_path / 'NoSuchFace.ttf'}\n")
    status = main(["ticket", "--image", str(astronaut), "--corpus", str(corpus_dir),
                   "--out", str(tmp_path / "t.png"), "--config", str(config)])
    err = capsys.readouterr().err
    assert status == 1 and "NoSuchFace.ttf" in err and len(err.strip().splitlines()) == 1


def test_unreadable_photo_is_reported_on_one_line(tmp_path, corpus_dir, capsys):
    photo = tmp_path / "broken.jpg"
    photo.write_bytes(b"not a jpeg at all")
    status = main(["ticket", "--image", str(photo), "--corpus", str(corpus_dir),
                   "--out", str(tmp_path / "t.png")])
    err = capsys.readouterr().err
    assert status == 1 and "broken.jpg" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_unwritable_out_is_reported_on_one_line(tmp_path, corpus_dir, capsys):
    photo = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (120, 120, 120)).save(photo)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    status = main(["ticket", "--image", str(photo), "--corpus", str(corpus_dir),
                   "--out", str(blocker / "t.png")])
    err = capsys.readouterr().err
    assert status == 1 and "blocker" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_print_flag_sends_the_same_bytes_to_the_printer(tmp_path, corpus_dir, astronaut, capsys):
    device = tmp_path / "lp0"
    config = tmp_path / "sosie.yaml"
    config.write_text(f"printer:\n  backend: file\n  file:\n    device: {device}\n"
                      "  retries: 0\n")
    out = tmp_path / "ticket.png"
    args = ["ticket", "--image", str(astronaut), "--corpus", str(corpus_dir), "--out", str(out),
            "--lookalikes", "1", "--config", str(config), "--print"]
    device.write_text("not a printer\n")  # a regular file is never overwritten
    assert main(args) == 1
    assert "is a regular file, not a printer" in capsys.readouterr().err
    assert device.read_text() == "not a printer\n"
    device.unlink()
    os.mkfifo(device)  # a device node, as /dev/usb/lp0 is
    received, reader = fifo_reader(device)
    assert main(args) == 0
    reader.join(10)
    assert bytes(received) == out.with_suffix(".bin").read_bytes()
    assert "printed on the file printer" in capsys.readouterr().out

    config.write_text("printer:\n  backend: usb\n  retries: 1\n  backoff: 0\n"
                      "  usb: {vendor_id: 0x1234, product_id: 0x5678}\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "printer fault (absent, attempt 1)" in err
    assert "not printed: USB printer 1234:5678" in err
