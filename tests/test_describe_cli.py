"""`sosie describe` and `sosie align` on real photos (real dlib models)."""

from __future__ import annotations

import json

import numpy as np
import photos
import pytest
from PIL import Image

from appliance.cli import main
from appliance.faces.face import Face

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """astronaut.jpg (q50: also a weak badge detection), coffee.png (no face), broken.jpg,
    notes.txt (not a photo), .hidden.png."""
    root = tmp_path_factory.mktemp("photos")
    (root / "astronaut.jpg").write_bytes(photos.encode(photos.astronaut(), "JPEG", quality=50))
    (root / "coffee.png").write_bytes(photos.encode(photos.no_face_photo(), "PNG"))
    (root / "broken.jpg").write_bytes(photos.encode(photos.astronaut(), "JPEG")[:3000])
    (root / "notes.txt").write_text("not a photo")
    (root / ".hidden.png").write_bytes(photos.encode(photos.astronaut(), "PNG"))
    return root


def test_describe_json(folder, capsys, analyzer):
    status = main(["describe", "--json", str(folder / "astronaut.jpg"), str(folder / "coffee.png")])
    assert status == 0  # a photo without a face is not an error
    document = json.loads(capsys.readouterr().out)
    assert [entry["path"] for entry in document] == [
        str(folder / "astronaut.jpg"), str(folder / "coffee.png")
    ]
    astronaut, coffee = document
    assert astronaut["error"] is None and coffee == {
        "path": str(folder / "coffee.png"), "faces": [], "error": None
    }
    (face,) = astronaut["faces"]  # the weak badge beside her face is left out
    assert set(face) == {"box", "score", "chosen", "descriptor"}
    assert face["chosen"] is True
    expected = analyzer.analyze(folder / "astronaut.jpg")
    assert isinstance(expected, Face)
    assert face["box"] == list(expected.box)
    # float32 -> JSON -> float32 round-trips exactly
    np.testing.assert_array_equal(np.array(face["descriptor"], np.float32), expected.descriptor)


def test_describe_folder_text_and_chips(folder, tmp_path, capsys):
    chips = tmp_path / "chips"
    status = main(["describe", str(folder), "--chips", str(chips), "--chip-size", "200"])
    out = capsys.readouterr().out.splitlines()
    assert status == 1  # broken.jpg could not be read
    assert out[0] == f"{folder / 'astronaut.jpg'}: 1 face"
    assert out[1].startswith("  face 0: box ") and out[1].endswith("chosen")
    assert out[2] == f"{folder / 'broken.jpg'}: unreadable: truncated image file"
    assert out[3] == f"{folder / 'coffee.png'}: no face found"
    assert len(out) == 4  # notes.txt and .hidden.png are not photos of the folder
    (chip,) = chips.iterdir()
    assert chip.name == "astronaut-0.png"
    assert Image.open(chip).size == (200, 200)


def test_describe_json_reports_unreadable_photos(folder, capsys):
    assert main(["describe", "--json", str(folder / "broken.jpg")]) == 1
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry == {"path": str(folder / "broken.jpg"), "faces": [],
                     "error": "truncated image file"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["describe", "missing.jpg"], "sosie describe: missing.jpg: no such file or folder"),
        (["describe", "PHOTO", "--chip-size", "2"], "sosie describe: --chip-size 2: expected"),
        (["align", "missing", "out"], "sosie align: IN_DIR missing: does not exist"),
        (["align", "IN", "out", "--size", "0"], "sosie align: --size 0: expected"),
        (["align", "IN", "IN"], "sosie align: OUT_DIR IN: must differ from IN_DIR"),
    ],
)
def test_unusable_arguments_exit_2(folder, capsys, argv, message):
    argv = [str(folder / "astronaut.jpg") if a == "PHOTO" else str(folder) if a == "IN" else a
            for a in argv]
    message = message.replace("OUT_DIR IN", f"OUT_DIR {folder}")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_bad_config_exits_2(folder, tmp_path, capsys):
    config = tmp_path / "sosie.yaml"
    config.write_text("faces:\n  choose: loudest\n")
    assert main(["describe", str(folder / "coffee.png"), "--config", str(config)]) == 2
    assert "faces.choose" in capsys.readouterr().err


def test_align_writes_aligned_crops_and_lists_the_rest(folder, tmp_path, capsys):
    out_dir = tmp_path / "aligned"
    status = main(["align", str(folder), str(out_dir), "--size", "128", "--gray"])
    captured = capsys.readouterr()
    assert status == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["astronaut.png"]
    crop = np.asarray(Image.open(out_dir / "astronaut.png"))
    assert crop.shape == (128, 128)
    lines = captured.out.splitlines()
    assert lines[0] == f"1 aligned face from 3 photos written to {out_dir}"
    assert lines[1] == "1 without a face: coffee.png"
    assert captured.err == f"skipped {folder / 'broken.jpg'}: truncated image file\n"


def test_align_every_face_and_one_face(tmp_path, capsys):
    """Two heads in one photo give photo_0 (the chosen, larger one) and photo_1."""
    head = Image.fromarray(np.ascontiguousarray(photos.astronaut()[30:230, 120:330]))
    canvas = Image.new("RGB", (640, 300), (128, 128, 128))
    canvas.paste(head.resize((290, 280)), (0, 10))
    canvas.paste(head, (400, 50))
    in_dir = tmp_path / "in" / "sub"
    in_dir.mkdir(parents=True)
    canvas.save(in_dir / "pair.png")
    out_dir = tmp_path / "out"
    assert main(["align", str(tmp_path / "in"), str(out_dir), "--recursive",
                 "--config", str(_full_res_config(tmp_path))]) == 0
    names = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.png"))
    assert names == ["sub/pair_0.png", "sub/pair_1.png"]
    assert Image.open(out_dir / "sub" / "pair_0.png").size == (256, 256)
    one = tmp_path / "one"
    assert main(["align", str(tmp_path / "in"), str(one), "--recursive", "--one", "--format",
                 "jpg", "--config", str(_full_res_config(tmp_path))]) == 0
    assert sorted(p.name for p in one.rglob("*.jpg")) == ["pair.jpg"]
    capsys.readouterr()


def _full_res_config(tmp_path):
    path = tmp_path / "full-res.yaml"
    path.write_text("faces:\n  detect_max_side: 0\n")
    return path
