"""Hostile corpora: manifests and data files made to hurt `corpus info|verify`, `ticket`, `map`.

Each case must end with one line naming the file and the problem: never a traceback, never a
hang, never gigabytes of memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from appliance.corpus import Corpus, CorpusError, synth, verify
from appliance.corpus import format as fmt

CLI = [sys.executable, "-m", "appliance"]
#: Address space for a CLI run: plenty for the real work, far from what the attack needs.
LIMIT = 1536 << 20
#: One BLAS thread: OpenBLAS reserves buffers per core, which a many-core CI runner would
#: otherwise spend out of the address-space limit.
ONE_THREAD = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("hostile") / "c", 50, seed=5)


@pytest.fixture
def corpus(small, tmp_path):
    target = tmp_path / "c"
    shutil.copytree(small, target)
    return target


def manifest_text(path):
    return (path / fmt.MANIFEST).read_text()


def edit(path, change):
    manifest = yaml.safe_load(manifest_text(path))
    change(manifest)
    (path / fmt.MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


def one_line_failure(args, timeout=60):
    """Run the CLI under an address-space limit; it must fail with one clean line."""
    def limit():  # a billion laughs would need gigabytes: fail fast instead of swapping
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    run = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                         preexec_fn=limit, env=ONE_THREAD)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "Error:" not in run.stderr, run.stderr
    return run.stderr


BILLION_LAUGHS = "\n".join(
    ["format: sosie-corpus", "format_version: 1", 'a: &a ["lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]"
       for i in range(9)]
    + ["count: *j"]
)


@pytest.mark.parametrize("command", [["corpus", "info"], ["corpus", "verify"]])
def test_billion_laughs_manifest_is_refused_without_expanding(corpus, command):
    (corpus / fmt.MANIFEST).write_text(BILLION_LAUGHS)
    stderr = one_line_failure([*command, str(corpus)])
    assert f"{corpus / fmt.MANIFEST}: line" in stderr and "alias *a refused" in stderr


def test_deeply_nested_manifest_is_refused(corpus):
    (corpus / fmt.MANIFEST).write_text(manifest_text(corpus) + "x: " + "[" * 5000 + "]" * 5000)
    stderr = one_line_failure(["corpus", "info", str(corpus)])
    assert "nested deeper than" in stderr and str(corpus / fmt.MANIFEST) in stderr


def test_oversized_manifest_is_refused_unread(corpus):
    with open(corpus / fmt.MANIFEST, "a") as fh:
        fh.write("# padding\n" * 200_000)
    with pytest.raises(CorpusError, match=r"manifest.yaml: larger than 1048576 bytes"):
        Corpus.open(corpus)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["pca"].update(explained_variance=["a", "b", "c"]),
         "'pca.explained_variance.0' = 'a': expected a finite number >= 0"),
        (lambda m: m["pca"].update(explained_variance_ratio=[0.1, float("nan"), 0.1]),
         "'pca.explained_variance_ratio.1' = nan: expected a finite number >= 0"),
        (lambda m: m["thumbnails"].update(size="big"),
         "'thumbnails.size' = 'big': expected an integer from 0 to 4096"),
        (lambda m: m.update(count=True), "'count' = True: expected an integer from 0"),
        (lambda m: m.update(format_version=True), "format_version True is not supported"),
        (lambda m: m.update(build_seconds=".inf"), "'build_seconds' = '.inf': expected a finite"),
        (lambda m: m.update(source=[1]), "'source' = [1]: expected a mapping"),
        (lambda m: m["files"]["norms.f32"].update(bytes="200"),
         "'files.norms.f32.bytes' = '200': expected an integer >= 0"),
        (lambda m: m["files"]["pca.f64"].update(sha256=["x"]),
         "'files.pca.f64.sha256' = ['x']: expected a sha256"),
        (lambda m: m.update(model={"files": {"descriptor": 7}}),
         "'model.files.descriptor' = 7: expected a sha256"),
    ],
)
def test_every_manifest_field_is_type_checked(corpus, change, message):
    edit(corpus, change)
    with pytest.raises(CorpusError) as err:
        Corpus.open(corpus, check_model=False)
    assert message in str(err.value) and str(corpus / fmt.MANIFEST) in str(err.value)
    assert verify(corpus, check_model=False) == [str(err.value)]


@pytest.mark.parametrize("command", [["corpus", "info"], ["corpus", "verify"]])
def test_non_numeric_explained_variance_is_one_line_in_the_cli(corpus, command):
    edit(corpus, lambda m: m["pca"].update(explained_variance=["x", 1, 2]))
    stderr = one_line_failure([*command, str(corpus)])
    assert "'pca.explained_variance.0' = 'x'" in stderr


def test_non_numeric_thumbnail_size_is_one_line_in_map(corpus, tmp_path):
    edit(corpus, lambda m: m["thumbnails"].update(size=[256]))
    stderr = one_line_failure(["map", str(corpus), "--out", str(tmp_path / "site")])
    assert "'thumbnails.size' = [256]" in stderr


def test_huge_sparse_descriptor_file_is_refused_before_hashing(corpus):
    with open(corpus / fmt.DESCRIPTORS, "r+b") as fh:
        fh.truncate(1 << 40)  # 1 TB of holes: hashing it would take hours
    run = subprocess.run([*CLI, "corpus", "verify", str(corpus)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1
    assert f"{corpus / fmt.DESCRIPTORS}: too long (1099511627776 bytes" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("name", [fmt.DESCRIPTORS, fmt.THUMBS_PACK, fmt.SOURCES])
def test_data_file_that_is_a_symlink_loop(corpus, name):
    (corpus / name).unlink()
    os.symlink(corpus / name, corpus / name)
    with pytest.raises(CorpusError, match=rf"{name}: unreadable \(Too many levels of symbolic"):
        Corpus.open(corpus)
    stderr = one_line_failure(["corpus", "info", str(corpus)])
    assert "Too many levels of symbolic links" in stderr
    assert any("Too many levels" in p for p in verify(corpus))


def test_manifest_that_is_a_symlink_loop(corpus):
    (corpus / fmt.MANIFEST).unlink()
    os.symlink(corpus / fmt.MANIFEST, corpus / fmt.MANIFEST)
    stderr = one_line_failure(["corpus", "verify", str(corpus)])
    assert "manifest.yaml: unreadable (Too many levels of symbolic links)" in stderr


def test_a_fifo_in_place_of_a_file_does_not_block(corpus):
    (corpus / fmt.SOURCES).unlink()
    os.mkfifo(corpus / fmt.SOURCES)
    assert verify(corpus) == [f"{corpus / fmt.SOURCES}: not a regular file"]
    (corpus / fmt.MANIFEST).unlink()
    os.mkfifo(corpus / fmt.MANIFEST)
    with pytest.raises(CorpusError, match=r"manifest\.yaml: not a regular file"):
        Corpus.open(corpus)


def test_a_manifest_that_agrees_with_a_huge_sparse_file_is_still_refused(corpus):
    """Sizes matching a 1 TB file must not make verify hash it: the manifest's sizes are bounded
    by what `count` rows of the thumbnail size can need."""
    terabyte = 1 << 40
    with open(corpus / fmt.THUMBS_PACK, "r+b") as fh:
        fh.truncate(terabyte)
    edit(corpus, lambda m: m["files"][fmt.THUMBS_PACK].update(bytes=terabyte))
    run = subprocess.run([*CLI, "corpus", "verify", str(corpus)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1
    assert f"'files.thumbs.pack.bytes' = {terabyte}: expected an integer from 0 to" in run.stderr


@pytest.mark.parametrize(("key", "value"), [("count", 2**31), ("dim", 100_000)])
def test_row_count_and_dimension_are_bounded(corpus, key, value):
    edit(corpus, lambda m: m.update({key: value}))
    with pytest.raises(CorpusError, match=rf"'{key}' = {value}: expected an integer from"):
        Corpus.open(corpus)


def test_thumbnail_index_whose_offset_plus_length_wraps_round_is_refused(corpus):
    index = np.fromfile(corpus / fmt.THUMBS_INDEX, "<u8").reshape(-1, 2)
    index[7] = (2**63, 2**63)  # the uint64 sum is 0: inside any pack
    index.tofile(corpus / fmt.THUMBS_INDEX)
    with pytest.raises(CorpusError, match=r"thumbs\.idx: row 7 points past the end of thumbs"):
        Corpus.open(corpus)


def test_a_bomb_in_the_thumbnail_pack_is_one_line(corpus):
    from test_images import bomb_png

    blob = bomb_png(5000)  # 25 MP: no thumbnail is that large
    pack = corpus / fmt.THUMBS_PACK
    offset = pack.stat().st_size
    with open(pack, "ab") as fh:
        fh.write(blob)
    edit(corpus, lambda m: m["files"][fmt.THUMBS_PACK].update(bytes=offset + len(blob)))
    index = np.fromfile(corpus / fmt.THUMBS_INDEX, "<u8").reshape(-1, 2)
    index[3] = (offset, len(blob))
    index.tofile(corpus / fmt.THUMBS_INDEX)
    with Corpus.open(corpus) as opened:
        with pytest.raises(CorpusError, match=r"thumbs\.pack: row 3 is not a readable image "
                           r"\(5000x5000 is larger than any thumbnail\)"):
            opened.thumbnail(3)
        assert opened.thumbnail(4).shape == (256, 256)
