"""Names read back from a folder's own records never reach outside it, and removing or
overwriting files never follows a symbolic link out of the folder (issue 22, item 1)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from generator_helpers import DarkEngine
from torch_zip_writer import dcgan_state, write_dcgan

from appliance import files
from appliance.generator.draws import DcganDrawer, DcganJob
from appliance.generator.job import GenerateError, generate
from appliance.generator.journal import DRAWS, WORK_DIR


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_dcgan(tmp_path_factory.mktemp("w") / "weights.tar", dcgan_state(seed=1))


def drawer(weights: Path) -> DcganDrawer:
    return DcganDrawer(DcganJob(3, 64, "png", weights), DarkEngine(), workers=1)


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious")
    return path


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", ["../victim", "ABSOLUTE", "dcgan-3-0000001.png/../../victim",
                                  "..", 7, "url-0000001.png\x00"])
def test_a_journal_naming_a_path_is_refused_before_any_file_is_touched(weights, tmp_path, name):
    target = victim(tmp_path)
    out = tmp_path / "faces"
    generate(out, 2, drawer(weights), progress=False)
    journal = out / WORK_DIR / DRAWS
    lines = journal.read_bytes().splitlines()
    if name == "ABSOLUTE":
        name = str(target)
    size = target.stat().st_size
    hostile = json.dumps({"i": 9999, "file": name, "size": size, "sha256": "x"}).encode()
    journal.write_bytes(b"\n".join([*lines, hostile]) + b"\n")
    before = folder_state(out)
    with pytest.raises(GenerateError) as caught:  # fewer faces: generate would trim
        generate(out, 1, drawer(weights), progress=False)
    message = str(caught.value)
    assert "\n" not in message and str(journal) in message and "refusing" in message
    assert target.read_text() == "precious"
    assert folder_state(out) == before and journal.read_bytes().endswith(hostile + b"\n")


def test_build_force_never_writes_through_a_planted_data_file_link(tmp_path):
    from appliance.corpus import CorpusError, MockEngine, build, synth
    from appliance.corpus import format as fmt

    target = victim(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    corpus_dir = tmp_path / "corpus"
    synth(corpus_dir, 20, 0)
    (corpus_dir / fmt.DESCRIPTORS).unlink()
    (corpus_dir / fmt.DESCRIPTORS).symlink_to(target)
    with pytest.raises(CorpusError) as caught:
        build(images, corpus_dir, workers=1, engine=MockEngine(), progress=False, force=True)
    assert "symbolic link" in str(caught.value) and str(corpus_dir / fmt.DESCRIPTORS) in str(
        caught.value)
    assert target.read_text() == "precious" and (corpus_dir / fmt.MANIFEST).exists()


def test_a_map_rebuild_unlinks_a_planted_folder_link_and_never_empties_its_target(tmp_path):
    from test_map_site import StandInCorpus

    from appliance.cartography.site import MapOptions, build_site

    corpus = StandInCorpus(30, seed=5)
    out = tmp_path / "m"
    build_site(corpus, out, options=MapOptions(neighbours=3))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("x")
    files.remove_tree(out / "data")
    (out / "data").symlink_to(elsewhere)
    build_site(corpus, out, options=MapOptions(neighbours=3))
    assert sorted(os.listdir(elsewhere)) == ["keep.txt"]
    assert (out / "data").is_dir() and not (out / "data").is_symlink()
    (out / "index.html").unlink()
    (out / "index.html").symlink_to(victim(tmp_path))
    with pytest.raises(ValueError, match="symbolic link"):
        build_site(corpus, out, options=MapOptions(neighbours=3))
    assert (tmp_path / "victim").read_text() == "precious"


def test_a_link_in_place_of_the_work_folder_is_refused(weights, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("x")
    out = tmp_path / "faces"
    out.mkdir()
    (out / WORK_DIR).symlink_to(elsewhere)
    with pytest.raises(GenerateError, match="symbolic link"):
        generate(out, 1, drawer(weights), progress=False)
    assert sorted(os.listdir(elsewhere)) == ["keep"]


def test_name_inside_takes_only_the_writers_names(tmp_path):
    pattern = re.compile(r"chunk-\d{6}\.bin")
    assert files.name_inside(tmp_path, "chunk-000001.bin", pattern, "x") == (
        tmp_path / "chunk-000001.bin")
    for bad in ("../chunk-000001.bin", "/chunk-000001.bin", "chunk-1.bin", None, ".."):
        with pytest.raises(files.UnsafeName, match="refusing"):
            files.name_inside(tmp_path, bad, pattern, "list.json")


def test_remove_tree_unlinks_a_link_and_never_empties_its_target(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / "tiles"
    link.symlink_to(target)
    files.remove_tree(link)
    assert not link.exists() and not link.is_symlink()
    assert (target / "keep").read_text() == "x"
    inside = tmp_path / "data"
    inside.mkdir()
    (inside / "out").symlink_to(target)
    files.remove_tree(inside)
    assert not inside.exists() and (target / "keep").read_text() == "x"
    files.remove_inside(tmp_path / "missing")
    (tmp_path / "file-link").symlink_to(target / "keep")
    files.remove_inside(tmp_path / "file-link")
    assert (target / "keep").exists()
