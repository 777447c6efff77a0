"""`sosie build --scheduler` / `sosie generate --scheduler` on a real Dask cluster: a scheduler
and two worker processes on 127.0.0.1 (tests/cluster_helpers.py), compared byte for byte with
local builds; a worker killed with SIGKILL mid-build; the scheduler vanishing mid-build."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from cluster_helpers import LoopbackCluster
from generator_helpers import DarkEngine, DarkMockEngine, folder_bytes
from PIL import Image
from test_build import stable_manifest, textured
from torch_zip_writer import dcgan_state, write_dcgan

from appliance.compute import dask_session
from appliance.compute.dask_session import ClusterError, Session, parse_address
from appliance.compute.worker_cache import WorkerMismatch
from appliance.corpus import CorpusSettings, MockEngine, build
from appliance.corpus import cluster as cluster_module
from appliance.corpus import format as fmt
from appliance.corpus.build import WORK_DIR
from appliance.corpus.chunks import SourceFile
from appliance.corpus.cluster_tasks import ChunkJob, NotShared, run_shared, sees_files
from appliance.generator.draws import DcganDrawer, DcganJob
from appliance.generator.job import generate
from appliance.generator.source import GeneratorSource

SMALL = CorpusSettings(chunk_size=4, thumbnail_size=48)
DATA = (fmt.DESCRIPTORS, fmt.NORMS, fmt.PCA, fmt.COORDS2D, fmt.COORDS3D, fmt.THUMBS_PACK,
        fmt.THUMBS_INDEX, fmt.SOURCES, fmt.REJECTED)


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    with LoopbackCluster(tmp_path_factory.mktemp("cluster"), workers=2) as running:
        yield running


@pytest.fixture
def cluster(loopback) -> LoopbackCluster:
    loopback.ensure()  # after the tests that kill a worker or the scheduler
    return loopback


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_dcgan(tmp_path_factory.mktemp("w") / "weights.tar", dcgan_state(seed=1))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Faces in nested folders, a duplicate, an empty file, a non-image, a faceless image."""
    root = tmp_path_factory.mktemp("src") / "images"
    for i in range(26):
        path = root / f"{'ab'[i % 2]}/sub {i % 3}/face-{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        textured(i).save(path)
    shutil.copy(root / "a/sub 0/face-00.png", root / "z copy.png")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image\n")
    Image.new("RGB", (40, 40), (90, 90, 90)).save(root / "flat gray.png")
    (root / "visages/éloïse.jpg").parent.mkdir()
    textured(99).save(root / "visages/éloïse.jpg", format="JPEG")
    return root


@pytest.fixture(scope="module")
def local_folder(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "corpus"
    build(folder, out, workers=1, settings=SMALL, engine=MockEngine(), progress=False)
    return out


def assert_same_corpus(a: Path, b: Path) -> None:
    for name in DATA:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert stable_manifest(a) == stable_manifest(b)
    assert not (b / WORK_DIR).exists()


# ---------------------------------------------------------------------------------------------
# Without a cluster


@pytest.mark.parametrize("text", ["tcp://127.0.0.1:8786", "tcp://sched.lan:1", "tcp://[::1]:99"])
def test_scheduler_addresses_are_accepted(text):
    assert parse_address(text) == text


@pytest.mark.parametrize("text", ["127.0.0.1:8786", "tcp://host", "tcp://host:0",
                                  "tcp://host:70000", "http://host:8786", "tcp://a b:1", ""])
def test_other_scheduler_addresses_are_refused_naming_the_key(text):
    with pytest.raises(ValueError, match=r"^corpus.scheduler .*expected tcp://HOST:PORT"):
        parse_address(text, "corpus.scheduler")


def test_cli_refuses_a_bad_address_in_one_line(folder, tmp_path, capsys):
    from appliance.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("corpus:\n  scheduler: 'tcp://x'\n")
    for args, named in ((["--scheduler", "localhost:8786"], "--scheduler 'localhost:8786'"),
                        ([], "config key 'corpus.scheduler' = 'tcp://x'")):
        code = main(["build", str(folder), str(tmp_path / "o"), "--engine", "mock", "--quiet",
                     "--config", str(config), *args])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith(f"sosie build: {named}: expected tcp://HOST:PORT"), lines
        code = main(["generate", str(tmp_path / "g"), "--count", "1", "--config", str(config),
                     *args])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and named in lines[0], lines
    code = main(["build", str(folder), str(tmp_path / "o"), "--engine", "mock", "--quiet",
                 "--cluster-files", "stream"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines == ["sosie build: --cluster-files stream is for a build on a "
                                   "cluster (--scheduler or corpus.scheduler)"]
    assert not (tmp_path / "o").exists() and not (tmp_path / "g").exists()


def test_no_scheduler_listening_fails_in_one_line_within_the_deadline(monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(dask_session, "CONNECT_TIMEOUT", 2.0)
    start = time.monotonic()
    with pytest.raises(ClusterError, match=r"no Dask scheduler answers"), \
            Session(f"tcp://127.0.0.1:{port}"):
        pass
    assert time.monotonic() - start < 15


def test_a_worker_reads_shared_files_only_as_the_client_listed_them(folder):
    rel = "a/sub 0/face-00.png"
    info = (folder / rel).stat()
    listed = SourceFile(rel, info.st_size, info.st_mtime_ns)
    job = ChunkJob("k", MockEngine(), MockEngine().checksums(), (48, "jpeg", 92), None,
                   str(folder))
    assert sees_files(str(folder), [listed])
    assert run_shared(job, (listed,))  # chunk bytes
    for other in (SourceFile(rel, info.st_size + 1, info.st_mtime_ns),
                  SourceFile(rel, info.st_size, info.st_mtime_ns + 1),
                  SourceFile("missing.png", 10, 0)):
        assert not sees_files(str(folder), [other])
        with pytest.raises(NotShared):
            run_shared(job, (other,))


def test_a_worker_with_other_models_refuses_the_job(folder):
    rel = "a/sub 0/face-00.png"
    info = (folder / rel).stat()
    job = ChunkJob("k", MockEngine(), {"mock": "0" * 64}, (48, "jpeg", 92), None, str(folder))
    with pytest.raises(WorkerMismatch, match="other face models"):
        run_shared(job, (SourceFile(rel, info.st_size, info.st_mtime_ns),))


# ---------------------------------------------------------------------------------------------
# On the loopback cluster


@pytest.mark.parametrize("files", ["auto", "shared", "stream"])
def test_a_folder_built_on_the_cluster_equals_the_local_build(cluster, folder, local_folder,
                                                              tmp_path, files, monkeypatch,
                                                              capsys):
    if files == "stream":  # several tasks per chunk, and the budget holding some back
        monkeypatch.setattr(cluster_module, "STREAM_BATCH_BYTES", 2500)
        monkeypatch.setattr(dask_session, "STREAM_BUDGET_BYTES", 6000)
    report = build(folder, tmp_path / "c", settings=SMALL, engine=MockEngine(), progress=True,
                   scheduler=cluster.address, cluster_files=files)
    assert_same_corpus(local_folder, tmp_path / "c")
    expected = "streamed" if files == "stream" else "same path"
    assert cluster.address in report.where and expected in report.where
    err = capsys.readouterr().err
    assert f"sosie build on {cluster.address}: " in err  # which way the files went
    assert "sosie build (2 cluster threads)" in err and "img/s" in err and "31/31" in err


def test_a_client_without_dask_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(ClusterError, match=r"needs Dask: pip install 'sosie\[cluster\]'"), \
            Session("tcp://127.0.0.1:8786"):
        pass


def test_a_generator_source_built_on_the_cluster_equals_the_local_build(cluster, weights,
                                                                        tmp_path):
    source = replace(GeneratorSource.parse("dcgan:30:5", weights), size=64)
    build(source, tmp_path / "local", workers=1, settings=SMALL, engine=DarkMockEngine(),
          progress=False)
    report = build(source, tmp_path / "c", settings=SMALL, engine=DarkMockEngine(),
                   progress=False, scheduler=cluster.address)
    assert_same_corpus(tmp_path / "local", tmp_path / "c")
    assert "drawn on the workers" in report.where
    assert 0 < report.faces < 30  # the dark draws are rejected, with their reason
    assert "too dark" in (tmp_path / "c" / fmt.REJECTED).read_text()


def test_a_cluster_build_resumes_a_local_one_and_the_reverse(cluster, folder, local_folder,
                                                             tmp_path):
    env = {**os.environ, "SOSIE_BUILD_KILL_AFTER_CHUNKS": "3"}
    command = [sys.executable, "-m", "appliance", "build", str(folder), str(tmp_path / "c"),
               "--engine", "mock", "--quiet", "--chunk-size", "4", "--workers", "1"]
    config = tmp_path / "thumbs.yaml"
    config.write_text("corpus:\n  thumbnail_size: 48\n")
    command += ["--config", str(config)]
    killed = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run([*command, "--scheduler", cluster.address], capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "3 of 8 chunks reused" in resumed.stdout and cluster.address in resumed.stdout
    assert_same_corpus(local_folder, tmp_path / "c")


def test_a_worker_killed_mid_build_has_its_chunks_run_elsewhere(cluster, weights, tmp_path):
    source = replace(GeneratorSource.parse("dcgan:80:7", weights), size=64)
    settings = CorpusSettings(chunk_size=6, thumbnail_size=48)
    build(source, tmp_path / "local", workers=1, settings=settings, engine=MockEngine(),
          progress=False)
    work = tmp_path / "c" / WORK_DIR
    seen: dict[str, int] = {}
    victim = cluster.worker_pids()[0]

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            chunks = len(list(work.glob("chunk-*.bin"))) if work.is_dir() else 0
            if chunks:
                os.kill(victim, signal.SIGKILL)
                seen["chunks"] = chunks
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        report = build(source, tmp_path / "c", settings=settings, engine=MockEngine(),
                       progress=False, scheduler=cluster.address)
    finally:
        killer.join()
    assert 0 < seen["chunks"] < report.total_chunks  # killed while chunks were left to do
    assert_same_corpus(tmp_path / "local", tmp_path / "c")


def test_generate_on_the_cluster_writes_the_local_runs_files(cluster, weights, tmp_path):
    from appliance.generator.cluster_draws import ClusterDrawer

    job = DcganJob(3, 64, "png", weights)
    generate(tmp_path / "local", 12, DcganDrawer(job, DarkEngine()), progress=False)
    with ClusterDrawer(job, DarkEngine(), cluster.address, block=3) as drawer:
        report = generate(tmp_path / "c", 12, drawer, progress=False)
    assert report.faces == 12 and report.draws > 12  # some dark draws were rejected
    assert folder_bytes(tmp_path / "c") == folder_bytes(tmp_path / "local")


def test_a_chunk_that_kills_workers_is_split_and_the_killer_image_rejected(folder):
    """What the client does with Dask's KilledWorker (the scheduler gave up on a task after
    `allowed-failures` dead workers): one task per image, then that image is rejected."""
    from distributed.scheduler import KilledWorker

    from appliance.compute.dask_session import Task
    from appliance.corpus.cluster import ChunkBatch, ClusterBuild

    files = tuple(SourceFile(f"f{i}.png", 1, 0) for i in range(3))
    job = ChunkJob("k", MockEngine(), {}, (48, "jpeg", 92), None, str(folder))

    class Window:
        def __init__(self):
            self.tasks = []

        def first(self, tasks):
            self.tasks += list(tasks)

    class Collector:
        def __init__(self):
            self.added = []

        def add(self, k, j, result):
            self.added.append((k, j, result.reason))

    run, window, collector = ClusterBuild("tcp://127.0.0.1:1", "shared"), Window(), Collector()
    killed = KilledWorker("sosie-chunk-000007-0", None, 3)
    chunk = Task(run_shared, (job, files), "chunk-000007-0", tag=ChunkBatch(7, 0, files, True))
    run.handle_outcome(window, job, chunk, None, killed, collector)
    assert [(t.tag.chunk, t.tag.first, t.tag.files, t.tag.whole) for t in window.tasks] == [
        (7, j, (f,), False) for j, f in enumerate(files)]
    assert all(t.function is run_shared for t in window.tasks) and not collector.added
    run.handle_outcome(window, job, window.tasks[1], None, killed, collector)
    assert collector.added == [(7, 1, "analyzer crashed on this file (it killed the "
                                      "cluster's workers)")]
    with pytest.raises(ClusterError, match="chunk-000007-0 failed on the cluster: "
                       "RuntimeError: model broken"):
        run.handle_outcome(window, job, chunk, None, RuntimeError("model broken\nmore"), collector)


def test_files_a_worker_does_not_see_as_listed_are_streamed_instead(cluster, folder, tmp_path,
                                                                    monkeypatch):
    """A worker that sees another size or mtime than the client listed (another copy, a stale
    mount) sends the chunk back; the client streams it, and the corpus is the local one."""
    import importlib

    from appliance.corpus.walk import list_sources

    build_module = importlib.import_module("appliance.corpus.build")

    def listing(root, exclude=None):  # the client's view: face-03 "changed" since
        files, problems = list_sources(root, exclude)
        return [SourceFile(f.rel, f.size, f.mtime_ns + 1) if "face-03" in f.rel else f
                for f in files], problems

    monkeypatch.setattr(build_module, "list_sources", listing)
    build(folder, tmp_path / "local", workers=1, settings=SMALL, engine=MockEngine(),
          progress=False)
    streamed = []
    original = cluster_module.streamed_tasks
    monkeypatch.setattr(cluster_module, "streamed_tasks",
                        lambda job, batch: streamed.append(batch.chunk) or original(job, batch))
    report = build(folder, tmp_path / "c", settings=SMALL, engine=MockEngine(), progress=False,
                   scheduler=cluster.address, cluster_files="shared")
    assert "same path" in report.where
    assert len(streamed) == 1  # only face-03's chunk came back to be streamed
    assert_same_corpus(tmp_path / "local", tmp_path / "c")


def run_and_kill_scheduler(cluster, command: list[str],
                           started: Callable[[], bool]) -> tuple[int, str, str]:
    """Run `command`, kill the cluster's scheduler once `started()` holds (within 120 s, the
    command still running), then wait for the command: (return code, stdout, stderr)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not started():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.01)
        cluster.kill_scheduler()
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr


def test_the_scheduler_vanishing_stops_the_build_in_one_line_and_it_resumes(
        cluster, weights, tmp_path):
    out = tmp_path / "c"
    config = tmp_path / "thumbs.yaml"
    config.write_text("corpus:\n  thumbnail_size: 48\n")
    command = [sys.executable, "-m", "appliance", "build", "dcgan:60:2", str(out),
               "--engine", "mock", "--weights", str(weights), "--chunk-size", "1", "--quiet",
               "--config", str(config), "--scheduler", cluster.address]
    returncode, _, stderr = run_and_kill_scheduler(
        cluster, command, lambda: (out / WORK_DIR).is_dir()
        and bool(list((out / WORK_DIR).glob("chunk-*.bin"))))
    assert returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("sosie: tcp://127.0.0.1:") and "lost the Dask scheduler" in (
        lines[0]) and "run the same command again to resume" in lines[0]
    kept = len(list((out / WORK_DIR).glob("chunk-*.bin")))
    assert 0 < kept < 60 and f"{kept} of 60 chunks are kept" in lines[0]
    assert not (out / fmt.MANIFEST).exists()
    source = GeneratorSource.parse("dcgan:60:2", weights)
    settings = CorpusSettings(chunk_size=1, thumbnail_size=48)
    report = build(source, out, workers=1, settings=settings, engine=MockEngine(),
                   progress=False)  # byte equality of resumed builds: tests above
    assert report.reused_chunks == kept and report.faces == 60


def test_the_scheduler_vanishing_stops_generate_in_one_line_and_it_resumes(
        cluster, weights, tmp_path):
    """`sosie generate --scheduler`: the scheduler killed mid-run stops the run on one line, the
    faces written are kept as written, and the same command without the cluster finishes the
    folder byte for byte as an uninterrupted run makes it."""
    from appliance.generator.journal import WORK_DIR as GENERATE_WORK

    out, whole = tmp_path / "c", tmp_path / "whole"
    args = ["--count", "60", "--seed", "2", "--size", "64", "--analyzer", "mock", "--weights",
            str(weights), "--workers", "1", "--quiet"]
    command = [sys.executable, "-m", "appliance", "generate", str(out), *args,
               "--scheduler", cluster.address]
    returncode, stdout, stderr = run_and_kill_scheduler(
        cluster, command, lambda: len(list(out.glob("dcgan-*.png"))) >= 3)
    assert returncode == 1 and stdout == "", stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"sosie generate: {cluster.address}: lost the Dask scheduler")
    kept = {p.name: p.read_bytes() for p in out.glob("dcgan-*.png")}
    assert 3 <= len(kept) < 60, len(kept)
    assert f"{len(kept)} of 60 faces kept in {out}: run the same command again to resume" in (
        lines[0])
    assert (out / GENERATE_WORK).is_dir() and not list(out.glob(".*.tmp"))

    from appliance.cli import main

    assert main(["generate", str(whole), *args]) == 0
    assert {name: (whole / name).read_bytes() for name in kept} == kept  # kept as written
    assert main(["generate", str(out), *args]) == 0  # resumed here, without the cluster
    assert folder_bytes(out) == folder_bytes(whole)
