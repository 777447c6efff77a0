"""`sosie rank`: ranking order, output files, and the end-to-end command on real faces."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.cartography.rank import Ranking, format_table, rank_rows, write_ranking
from appliance.likeness import likeness


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), d=st.integers(1, 8), seed=st.integers(0, 2**31), dup=st.booleans())
def test_ranking_is_by_distance_then_name(n, d, seed, dup):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float16)
    if dup and n > 2:
        x[1] = x[0]  # an exact tie, broken by file name
    q = rng.standard_normal(d)
    names = [f"f{int(v):03d}.png" for v in rng.permutation(n)]
    ranked = rank_rows(x, q, names)
    assert [f.rank for f in ranked] == list(range(1, n + 1))
    assert sorted(f.row for f in ranked) == list(range(n))
    reference = np.sqrt(((x.astype(np.float64) - q) ** 2).sum(axis=1))
    keys = [(round(float(reference[f.row]), 6), f.file) for f in ranked]
    assert keys == sorted(keys)
    for f in ranked:
        assert f.file == names[f.row]
        assert f.distance == pytest.approx(reference[f.row], abs=1e-6)
        assert f.likeness == pytest.approx(likeness(reference[f.row]), abs=0.01)


def test_ranking_files_round_trip(tmp_path):
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.5, 0.0]], dtype=np.float16)
    faces = rank_rows(x, np.zeros(2), ["a.jpg", "b, with comma.jpg", "c.jpg"])
    ranking = Ranking("ref.jpg", "folder", faces, [("bad.jpg", "not an image")])
    csv_path, json_path = write_ranking(ranking, tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["rank", "distance", "likeness_percent", "file"]
    assert [r[3] for r in rows[1:]] == ["a.jpg", "c.jpg", "b, with comma.jpg"]
    assert [float(r[1]) for r in rows[1:]] == [0.0, 0.5, 5.0]
    data = json.loads(json_path.read_text())
    assert data["count"] == 3 and data["skipped"] == [{"file": "bad.jpg", "reason": "not an image"}]
    assert data["ranking"][1]["likeness"] == pytest.approx(likeness(0.5), abs=0.01)
    table = format_table(ranking, top=2)
    assert "a.jpg" in table and "c.jpg" in table and "b, with" not in table and "1 more" in table


# ---------------------------------------------------------------------------------------------
# End to end, real dlib models


@pytest.mark.slow
def test_rank_puts_the_references_own_variants_first(tmp_path, capsys):
    from photos import write_lfw_images
    from PIL import Image
    from skimage import data

    from appliance.cli import main

    astronaut = Image.fromarray(data.astronaut())
    reference = tmp_path / "reference.png"
    astronaut.save(reference)
    folder = tmp_path / "lookalikes"
    write_lfw_images(folder, count=10)  # other people (LFW crops, upscaled)
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "variant-flipped.png")
    astronaut.resize((330, 330)).save(folder / "variant-small.jpg", quality=90)
    astronaut.save(folder / "variant-recompressed.jpg", quality=35)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"

    status = main(["rank", str(reference), str(folder), "--out", str(out), "--workers", "1",
                   "--neighbours", "4"])
    assert status == 0
    printed = capsys.readouterr().out
    data_ = json.loads((out / "ranking.json").read_text())
    ranked = [row["file"] for row in data_["ranking"]]
    assert set(ranked[:3]) == {"variant-flipped.png", "variant-small.jpg",
                               "variant-recompressed.jpg"}, ranked
    assert all(row["distance"] < 0.3 for row in data_["ranking"][:3])
    assert all(row["distance"] > 0.5 for row in data_["ranking"][3:])
    assert [row["rank"] for row in data_["ranking"]] == list(range(1, len(ranked) + 1))
    assert any(s["file"] == "broken.jpg" for s in data_["skipped"])
    assert printed.splitlines()[1].split()[-1] in ranked[:3]
    with open(out / "ranking.csv", newline="") as fh:
        assert [r["file"] for r in csv.DictReader(fh)] == ranked
    # the folder's map, with the reference marked next to its variants
    meta_text = (out / "map" / "data" / "meta.js").read_text()
    meta = json.loads(meta_text[meta_text.index("{") : meta_text.rindex("}") + 1])
    assert meta["count"] == len(ranked)
    assert meta["marks"][0]["label"] == "reference"  # no file name, no crop unless asked
    assert meta["marks"][0]["image"] is None and "reference.png" not in meta_text
    names = {row["row"]: row["file"] for row in data_["ranking"]}
    assert {names[i] for i in meta["marks"][0]["neighbours"][:3]} == set(ranked[:3])
    # a second run reuses the described folder (resumable) and gives the same ranking
    assert main(["rank", str(reference), str(folder), "--out", str(out), "--no-map"]) == 0
    assert [r["file"] for r in json.loads((out / "ranking.json").read_text())["ranking"]] == ranked


def test_rank_refuses_unusable_arguments(tmp_path, capsys):
    from appliance.cli import main

    folder = tmp_path / "f"
    folder.mkdir()
    out = str(tmp_path / "o")
    assert main(["rank", str(tmp_path / "missing.jpg"), str(folder), "--out", out]) == 2
    assert "missing.jpg: no such file" in capsys.readouterr().err
    assert main(["rank", str(tmp_path / "x.jpg"), str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["rank", str(tmp_path / "x.jpg"), str(folder), "--out", str(folder / "o")]) == 2
    assert "must not be inside FOLDER" in capsys.readouterr().err
