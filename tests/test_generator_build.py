"""`sosie build dcgan:COUNT[:SEED]`: a generator as the build's source, without image files.
Same chunks, resume, workers and rejected list as a folder build, and the same corpus as a
folder build of the very same faces saved as lossless files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from generator_helpers import DarkMockEngine
from test_build import stable_manifest
from torch_zip_writer import dcgan_state, write_dcgan

from appliance.corpus import Corpus, CorpusSettings, MockEngine, build
from appliance.corpus import format as fmt
from appliance.corpus.build import WORK_DIR
from appliance.corpus.collector import KILL_AFTER_ENV
from appliance.corpus.info import summary
from appliance.generator.dcgan import RENDERER
from appliance.generator.draws import DcganJob, encode
from appliance.generator.job import generate
from appliance.generator.source import GeneratorSource

SMALL = CorpusSettings(chunk_size=5, thumbnail_size=64)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_dcgan(tmp_path_factory.mktemp("w") / "weights.tar", dcgan_state(seed=1))


@pytest.fixture(scope="module")
def config(weights, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "sosie.yaml"
    path.write_text(yaml.safe_dump({"generator": {"weights": str(weights)}}))
    return path


def table(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


def same_files(a: Path, b: Path, names) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_generator_builds_like_a_folder_of_its_faces(weights, tmp_path):
    source = GeneratorSource.parse("dcgan:23:4", weights)
    report = build(source, tmp_path / "gen", workers=1, settings=SMALL,
                   engine=DarkMockEngine(), progress=False)
    assert report.files == 23 and 0 < report.rejected < 23 and report.total_chunks == 5
    rows = table(tmp_path / "gen" / fmt.SOURCES)
    rejected = table(tmp_path / "gen" / fmt.REJECTED)
    assert len(rows) + len(rejected) == 23
    assert {name for _, name in rows} | {name for name, _ in rejected} == {
        f"dcgan:4:{i}" for i in range(23)}
    assert all(reason.startswith("too dark") for _, reason in rejected)
    assert [int(name.split(":")[2]) for _, name in rows] == sorted(
        int(name.split(":")[2]) for _, name in rows)  # draw order

    # The same faces as lossless files, built as a folder: the same corpus but for the names.
    folder = tmp_path / "files"
    folder.mkdir()
    for i, face in enumerate(source.face(source.name(i)) for i in range(23)):
        (folder / f"face-{i:04d}.png").write_bytes(encode(face, "png"))
    build(folder, tmp_path / "folder", workers=1, settings=SMALL, engine=DarkMockEngine(),
          progress=False)
    same = [n for n in fmt.DATA_FILES if n not in (fmt.SOURCES, fmt.REJECTED)]
    same_files(tmp_path / "gen", tmp_path / "folder", same)
    assert [name for _, name in rows] == [
        f"dcgan:4:{int(n[5:9])}" for _, n in table(tmp_path / "folder" / fmt.SOURCES)]
    source_entry = stable_manifest(tmp_path / "gen")["source"]
    assert source_entry["generator"] == "dcgan" and source_entry["seed"] == 4
    assert source_entry["weights"] == source.weights_sha256 and source_entry["files"] == 23
    assert source_entry["renderer"] == RENDERER  # faces of another version are other faces
    with Corpus.open(tmp_path / "gen", check_model=False) as corpus:
        assert summary(corpus)["source generator"] == (
            f"dcgan:23:4 (weights {source.weights_sha256[:12]})")


def test_workers_do_not_change_the_corpus(weights, tmp_path):
    source = GeneratorSource.parse("dcgan:23:4", weights)
    for workers, name in ((1, "one"), (2, "two")):
        build(source, tmp_path / name, workers=workers, settings=SMALL, engine=DarkMockEngine(),
              progress=False)
    same_files(tmp_path / "one", tmp_path / "two", fmt.DATA_FILES)
    assert stable_manifest(tmp_path / "one") == stable_manifest(tmp_path / "two")


def cli_build(spec: str, corpus: Path, *extra: str, env: dict | None = None):
    command = [sys.executable, "-m", "appliance", "build", spec, str(corpus), "--quiet",
               "--engine", "mock", "--chunk-size", "5", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_sigkilled_generator_build_resumes_to_the_same_corpus(weights, config, tmp_path):
    killed = cli_build("dcgan:23:4", tmp_path / "c", "--workers", "2", "--config", str(config),
                       env={KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    work = tmp_path / "c" / WORK_DIR
    assert 2 <= len(list(work.glob("chunk-*.bin"))) < 5
    resumed = cli_build("dcgan:23:4", tmp_path / "c", "--workers", "2", "--weights",
                        str(weights))
    assert resumed.returncode == 0, resumed.stderr
    assert "chunks reused" in resumed.stdout and "23 draws" in resumed.stdout
    build(GeneratorSource.parse("dcgan:23:4", weights), tmp_path / "ref", workers=1,
          engine=MockEngine(), progress=False, settings=CorpusSettings(chunk_size=5))
    same_files(tmp_path / "c", tmp_path / "ref", fmt.DATA_FILES)
    assert stable_manifest(tmp_path / "c") == stable_manifest(tmp_path / "ref")


def test_chunks_of_another_seed_are_not_reused(weights, config, tmp_path):
    killed = cli_build("dcgan:23:4", tmp_path / "c", "--workers", "1", "--config", str(config),
                       env={KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL
    other = cli_build("dcgan:23:5", tmp_path / "c", "--workers", "1", "--config", str(config))
    assert other.returncode == 0 and "reused" not in other.stdout
    assert table(tmp_path / "c" / fmt.SOURCES)[0][1] == "dcgan:5:0"


def test_generator_specs_and_weights_are_checked(weights, tmp_path):
    for spec in ("dcgan:0", "dcgan:x", "dcgan:5:-1", "dcgan:5:2:1"):
        bad = cli_build(spec, tmp_path / "c", "--weights", str(weights))
        assert bad.returncode == 2, spec
        assert f"'{spec}': expected dcgan:COUNT[:SEED]" in bad.stderr
    missing = cli_build("dcgan:5", tmp_path / "c", "--weights", str(tmp_path / "none.tar"))
    assert missing.returncode == 1 and "no such weights file" in missing.stderr
    assert "pip install --no-deps gan-face-generate==1.1.1" in missing.stderr
    (tmp_path / "junk.tar").write_bytes(b"PK\x03\x04 junk")
    junk = cli_build("dcgan:5", tmp_path / "c", "--weights", str(tmp_path / "junk.tar"))
    assert junk.returncode == 1 and "junk.tar: damaged or truncated zip" in junk.stderr
    assert len(junk.stderr.strip().splitlines()) == 1


def test_a_generate_folder_builds_without_its_journal(weights, tmp_path):
    from generator_helpers import DarkEngine

    from appliance.generator.draws import DcganDrawer

    drawer = DcganDrawer(DcganJob(4, 64, "png", weights), DarkEngine())
    generate(tmp_path / "faces", 6, drawer, progress=False)
    report = build(tmp_path / "faces", tmp_path / "c", workers=1, settings=SMALL,
                   engine=MockEngine(), progress=False)
    assert report.files == 6 and report.faces == 6 and report.rejected == 0
