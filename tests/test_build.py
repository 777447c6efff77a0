"""`sosie build` with the mock engine (fast): messy folders, determinism, kill and resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.corpus import Corpus, CorpusError, CorpusSettings, MockEngine, build
from appliance.corpus import format as fmt
from appliance.corpus.build import WORK_DIR
from appliance.corpus.chunks import (
    ItemResult,
    SourceFile,
    chunk_is_current,
    chunk_path,
    read_chunk,
    write_chunk,
)
from appliance.corpus.collector import KILL_AFTER_ENV
from appliance.corpus.engines import MockAnalyzer
from appliance.corpus.thumbs import decode

MOCK = MockEngine()


def textured(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6), dtype=np.uint8)
    big = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    return big.convert("RGB")


def make_images(folder: Path, count: int, start: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(start, start + count):
        name = f"img-{i:03d}.png"
        textured(i).save(folder / name)
        names.append(name)
    return names


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[Path, set[str], dict[str, str]]:
    """A folder with good images under odd names plus every kind of bad file.

    Returns (folder, names that must be in the corpus, {rejected name: reason keyword}).
    """
    root = tmp_path_factory.mktemp("messy") / "images"
    root.mkdir()
    good: set[str] = set()

    def put(rel: str, image: Image.Image, fmt_: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format=fmt_)
        good.add(rel)

    put("plain.png", textured(1), "PNG")
    put("photo.jpg", textured(2), "JPEG")
    put("no-extension", textured(3), "JPEG")  # type by content, not by name
    put("looks-like-text.txt", textured(4), "PNG")
    put("scan.bmp", textured(5), "BMP")
    put("anim.gif", textured(6), "GIF")
    put("a/b/c/deep.webp", textured(7), "WEBP")
    put("visages/éloïse 日本 😀.png", textured(8), "PNG")
    put("odd/tab\tname.png", textured(9), "PNG")
    put("odd/new\nline.png", textured(10), "PNG")
    (root / "z-copies").mkdir()
    shutil.copy(root / "plain.png", root / "z-copies" / "plain again.png")
    bad = {
        "z-copies/plain again.png": "duplicate of plain.png",
        "empty.jpg": "empty file",
        "notes.txt": "not an image",
        "fake.jpg": "not an image",
        "broken.jpg": "truncated",
        "garbage.png": "",
        "flat-grey.png": "no face found",
        "pipe": "not a regular file",
    }
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("shopping list\n")
    (root / "fake.jpg").write_text("<html>not a photo</html>")
    jpeg = (root / "photo.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    Image.new("RGB", (40, 40), (128, 128, 128)).save(root / "flat-grey.png")
    os.mkfifo(root / "pipe")
    os.symlink(".", root / "loop")  # a folder link: not followed
    return root, good, bad


def data_files(corpus: Path) -> dict[str, bytes]:
    return {name: (corpus / name).read_bytes() for name in fmt.DATA_FILES}


def stable_manifest(corpus: Path) -> dict:
    manifest = yaml.safe_load((corpus / fmt.MANIFEST).read_text())
    for key in fmt.VOLATILE_KEYS:
        manifest.pop(key, None)
    return manifest


def assert_same_corpus(a: Path, b: Path) -> None:
    files_a, files_b = data_files(a), data_files(b)
    for name in fmt.DATA_FILES:
        assert files_a[name] == files_b[name], f"{name} differs"
    assert stable_manifest(a) == stable_manifest(b)


SMALL = CorpusSettings(chunk_size=3, thumbnail_encoding="png", thumbnail_size=40)


# ---------------------------------------------------------------------------------------------


def test_messy_folder_builds_and_lists_every_rejection(messy, tmp_path):
    root, good, bad = messy
    report = build(root, tmp_path / "c", workers=1, settings=SMALL, engine=MOCK, progress=False)
    assert (report.faces, report.rejected) == (len(good), len(bad))
    with Corpus.open(tmp_path / "c", check_model={"mock": MOCK.checksums()["mock"]}) as c:
        sources = [c.source(i) for i in range(c.count)]
        assert sources == sorted(good)
        rejected = dict(c.rejected())
        assert set(rejected) == set(bad)
        for name, keyword in bad.items():
            assert keyword.lower() in rejected[name].lower(), (name, rejected[name])
            assert "\n" not in rejected[name] and str(root) not in rejected[name]
        analyzer = MockAnalyzer()
        for i, rel in enumerate(sources):  # each row is the analysis of its own source file
            from appliance.images import load_image

            face = analyzer.analyze(load_image(root / rel))
            np.testing.assert_array_equal(c.vectors[i], face.descriptor.astype(np.float16))
            np.testing.assert_array_equal(c.thumbnail(i), face.aligned(40, gray=True))
        assert c.manifest["source"]["files"] == len(good) + len(bad)
    assert not (tmp_path / "c" / WORK_DIR).exists()


def test_keeping_duplicates(messy, tmp_path):
    root, _, _ = messy
    settings = CorpusSettings(chunk_size=5, duplicates="keep")
    build(root, tmp_path / "c", workers=1, settings=settings, engine=MOCK, progress=False)
    with Corpus.open(tmp_path / "c", check_model=False) as c:
        sources = [c.source(i) for i in range(c.count)]
        assert "z-copies/plain again.png" in sources
        a, b = sources.index("plain.png"), sources.index("z-copies/plain again.png")
        np.testing.assert_array_equal(c.vectors[a], c.vectors[b])


def test_parallel_build_equals_serial_build(messy, tmp_path):
    root, _, _ = messy
    build(root, tmp_path / "one", workers=1, settings=SMALL, engine=MOCK, progress=False)
    build(root, tmp_path / "two", workers=2, settings=SMALL, engine=MOCK, progress=False)
    assert_same_corpus(tmp_path / "one", tmp_path / "two")


def cli_build(images: Path, corpus: Path, *extra: str, env: dict | None = None):
    command = [sys.executable, "-m", "appliance", "build", str(images), str(corpus), "--quiet",
               "--engine", "mock", "--chunk-size", "4", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_sigkilled_build_resumes_to_the_same_corpus(tmp_path):
    images = tmp_path / "images"
    make_images(images, 30)
    killed = cli_build(images, tmp_path / "c", "--workers", "2", env={KILL_AFTER_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL
    work = tmp_path / "c" / WORK_DIR
    chunks = sorted(p.name for p in work.glob("chunk-*.bin"))
    assert 3 <= len(chunks) < 8 and not (tmp_path / "c" / fmt.MANIFEST).exists()
    # A half-written chunk from the moment of the kill is ignored.
    (work / ".chunk-000007.bin.tmp").write_bytes(b"\0" * 10)
    resumed = cli_build(images, tmp_path / "c", "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(chunks)} of 8 chunks reused" in resumed.stdout
    build(images, tmp_path / "ref", workers=1, engine=MOCK, progress=False,
          settings=CorpusSettings(chunk_size=4))
    assert_same_corpus(tmp_path / "c", tmp_path / "ref")


def test_resume_redoes_only_chunks_whose_files_changed(tmp_path):
    images = tmp_path / "images"
    make_images(images, 12)
    settings = CorpusSettings(chunk_size=4)
    killed = cli_build(images, tmp_path / "c", "--workers", "1", env={KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL
    textured(99).save(images / "img-001.png")  # chunk 0 is now stale
    report = build(images, tmp_path / "c", workers=1, settings=settings, engine=MOCK,
                   progress=False)
    assert report.reused_chunks == 1
    build(images, tmp_path / "ref", workers=1, settings=settings, engine=MOCK, progress=False)
    assert_same_corpus(tmp_path / "c", tmp_path / "ref")


def test_chunks_made_with_other_settings_are_not_reused(tmp_path):
    images = tmp_path / "images"
    make_images(images, 8)
    killed = cli_build(images, tmp_path / "c", "--workers", "1", env={KILL_AFTER_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL
    other = CorpusSettings(chunk_size=4, thumbnail_size=64)
    report = build(images, tmp_path / "c", workers=1, settings=other, engine=MOCK,
                   progress=False)
    assert report.reused_chunks == 0
    with Corpus.open(tmp_path / "c", check_model=False) as c:
        assert c.thumbnail(0).shape == (64, 64)
        assert decode(c.thumbnail_bytes(0), "jpeg", 64).shape == (64, 64)


def test_another_version_of_the_face_pipeline_is_another_build(tmp_path, monkeypatch):
    """A chunk described or cropped by other code is never reused: the pipeline's version is in
    the engine's settings, hence in the build key, the manifest and generate's analyzer."""
    from appliance.corpus.demo import visitor_photo
    from appliance.corpus.engines import DlibEngine
    from appliance.faces import face

    images = tmp_path / "images"
    images.mkdir()
    photo = Image.open(visitor_photo()).convert("RGB")
    photo.save(images / "a.png")
    photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(images / "b.png")
    command = [sys.executable, "-m", "appliance", "build", str(images), str(tmp_path / "c"),
               "--quiet", "--chunk-size", "1", "--workers", "1"]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, KILL_AFTER_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    shutil.copytree(tmp_path / "c", tmp_path / "other")
    settings = CorpusSettings(chunk_size=1)
    same = build(images, tmp_path / "c", workers=1, engine=DlibEngine(), settings=settings,
                 progress=False)
    assert (same.reused_chunks, same.faces) == (1, 2)
    monkeypatch.setattr(face, "PIPELINE", face.PIPELINE + 1)
    other = build(images, tmp_path / "other", workers=1, engine=DlibEngine(), settings=settings,
                  progress=False)
    assert (other.reused_chunks, other.faces) == (0, 2)
    manifest = yaml.safe_load((tmp_path / "other" / fmt.MANIFEST).read_text())
    assert manifest["model"]["settings"]["pipeline"] == face.PIPELINE


def test_existing_and_foreign_folders_are_protected(tmp_path):
    images = tmp_path / "images"
    make_images(images, 3)
    build(images, tmp_path / "c", workers=1, engine=MOCK, progress=False)
    with pytest.raises(CorpusError, match="already holds a finished corpus"):
        build(images, tmp_path / "c", workers=1, engine=MOCK, progress=False)
    make_images(images, 1, start=50)
    report = build(images, tmp_path / "c", workers=1, engine=MOCK, progress=False, force=True)
    assert report.faces == 4
    foreign = tmp_path / "holiday"
    make_images(foreign, 1)
    with pytest.raises(CorpusError, match="not empty and not a corpus"):
        build(images, foreign, workers=1, engine=MOCK, progress=False)


def test_folder_without_faces_fails_clearly(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.txt").write_text("x")
    Image.new("L", (30, 30), 200).save(images / "blank.png")
    with pytest.raises(CorpusError, match=r"no usable face in 2 files .*rejected\.tsv"):
        build(images, tmp_path / "c", workers=1, engine=MOCK, progress=False)
    rejected = fmt.read_tsv(tmp_path / "c" / fmt.REJECTED, 2)
    assert [r[0] for r in rejected] == ["a.txt", "blank.png"]


def test_corpus_inside_the_image_folder_is_skipped(tmp_path):
    images = tmp_path / "images"
    make_images(images, 4)
    build(images, images / "corpus", workers=1, engine=MOCK, progress=False)
    (images / "corpus" / "manifest.yaml").rename(tmp_path / "m")  # force a fresh walk
    report = build(images, images / "corpus", workers=1, engine=MOCK, progress=False)
    assert (report.files, report.faces) == (4, 4)


class CrashingAnalyzer(MockAnalyzer):
    def analyze(self, image):
        if image.shape[0] == 33:  # the poisoned file: a native crash in the worker
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().analyze(image)


class CrashingEngine(MockEngine):
    def create(self):
        return CrashingAnalyzer()


class BrokenEngine(MockEngine):
    def create(self):
        raise RuntimeError("dlib descriptor model unreadable: /nowhere.dat")


def test_a_worker_crash_rejects_that_file_and_the_build_goes_on(tmp_path):
    images = tmp_path / "images"
    make_images(images, 9)
    textured(77, size=33).save(images / "img-004.png")
    report = build(images, tmp_path / "c", workers=2, engine=CrashingEngine(), progress=False,
                   settings=CorpusSettings(chunk_size=4))
    assert (report.faces, report.rejected) == (8, 1)
    with Corpus.open(tmp_path / "c", check_model=False) as c:
        [(path, reason)] = c.rejected()
        assert path == "img-004.png" and "crashed" in reason and "signal 11" in reason


def test_workers_that_cannot_start_stop_the_build_with_their_error(tmp_path):
    images = tmp_path / "images"
    make_images(images, 4)
    with pytest.raises(RuntimeError, match=r"model unreadable: /nowhere\.dat"):
        build(images, tmp_path / "c", workers=2, engine=BrokenEngine(), progress=False)


def test_cli_usage_errors(tmp_path):
    missing = cli_build(tmp_path / "nowhere", tmp_path / "c")
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    (tmp_path / "i").mkdir()
    bad = cli_build(tmp_path / "i", tmp_path / "c", "--workers", "-1")
    assert bad.returncode == 2 and "--workers" in bad.stderr


# ---------------------------------------------------------------------------------------------
# Chunk files


names = st.text(min_size=1, max_size=20) | st.just("caf\udce9.png")  # undecodable byte
results = st.one_of(
    st.builds(lambda r: ItemResult(r), st.text(min_size=1, max_size=30)),
    st.builds(
        lambda seed, blob: ItemResult(
            None, "ab" * 32,
            np.random.default_rng(seed).standard_normal(128).astype(np.float32), blob),
        st.integers(0, 2**32 - 1), st.binary(max_size=64)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(names, st.integers(0, 2**40), results), min_size=1, max_size=6))
def test_chunk_files_round_trip(tmp_path_factory, rows):
    work = tmp_path_factory.mktemp("work")
    files = [SourceFile(name, size, 1_700_000_000_000_000_000 + i)
             for i, (name, size, _) in enumerate(rows)]
    items = [r for _, _, r in rows]
    write_chunk(work, 7, "key", files, items)
    _, back = read_chunk(chunk_path(work, 7))
    for a, b in zip(items, back, strict=True):
        assert (a.reason, a.thumbnail or None) == (b.reason, b.thumbnail or None)
        if a.accepted:
            np.testing.assert_array_equal(a.descriptor, b.descriptor)
    assert chunk_is_current(chunk_path(work, 7), "key", files)
    assert not chunk_is_current(chunk_path(work, 7), "other key", files)
    changed = [*files[:-1], SourceFile(files[-1].rel, files[-1].size + 1, files[-1].mtime_ns)]
    assert not chunk_is_current(chunk_path(work, 7), "key", changed)
    assert not chunk_is_current(chunk_path(work, 8), "key", files)


def test_two_builds_of_one_corpus_cannot_run_at_once(tmp_path):
    import fcntl

    images = tmp_path / "images"
    make_images(images, 2)
    (tmp_path / "c" / WORK_DIR).mkdir(parents=True)
    with open(tmp_path / "c" / WORK_DIR / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(CorpusError, match="another build is writing"):
            build(images, tmp_path / "c", workers=1, engine=MOCK, progress=False)
    assert build(images, tmp_path / "c", workers=1, engine=MOCK, progress=False).faces == 2
