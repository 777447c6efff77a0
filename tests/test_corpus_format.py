"""Corpus format: open/validate, synthetic corpora, PCA, thumbnail pack, verify, TSV escaping."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.corpus import Corpus, CorpusError, CorpusSettings, fit_pca, synth, verify
from appliance.corpus import format as fmt
from appliance.corpus.thumbs import PackReader, PackWriter, decode, encode


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A synthetic corpus of 700 rows (read-only; copy it before damaging it)."""
    return synth(tmp_path_factory.mktemp("synth") / "c", 700, seed=3)


@pytest.fixture
def copy(small, tmp_path):
    target = tmp_path / "c"
    shutil.copytree(small, target)
    return target


def edit_manifest(path, change):
    manifest = yaml.safe_load((path / fmt.MANIFEST).read_text())
    change(manifest)
    (path / fmt.MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


# ---------------------------------------------------------------------------------------------
# Opening a valid corpus


def test_synthetic_corpus_contents_agree_with_each_other(small):
    with Corpus.open(small) as c:
        assert (c.count, c.dim, c.synthetic) == (700, 128, True)
        assert c.vectors.dtype == np.float16 and c.vectors.shape == (700, 128)
        assert isinstance(c.vectors, np.memmap)
        wide = np.asarray(c.vectors, np.float64)
        np.testing.assert_allclose(c.norms, np.linalg.norm(wide, axis=1), rtol=1e-6)
        reference = (wide - wide.mean(0)) @ c.pca.components.T
        np.testing.assert_allclose(c.coords3d, reference, atol=1e-5)
        np.testing.assert_array_equal(c.coords2d, c.coords3d[:, :2])
        np.testing.assert_allclose(c.pca.project(wide[:5]), reference[:5], atol=1e-9)
        assert c.thumbnail(699).shape == (256, 256) and c.thumbnail(0).dtype == np.uint8
        assert c.source(12) == "synthetic/0000012"
        with pytest.raises(IndexError):
            c.thumbnail(700)
        with pytest.raises(IndexError):
            c.source(-1)
        assert c.rejected() == []
    assert verify(small) == []


def test_synthetic_descriptors_look_like_dlib_ones(tmp_path):
    with Corpus.open(synth(tmp_path / "c", 4000, seed=1)) as c:
        assert abs(float(c.norms.mean()) - 1.46) < 0.01
        assert 0.01 < float(c.norms.std()) < 0.08
        x = np.asarray(c.vectors[:600], np.float64)
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)[np.triu_indices(600, 1)]
        assert 0.6 < float(np.median(d)) < 1.0  # different people: mostly > 0.6 apart
        assert c.pca.explained_variance_ratio[0] > 2 * 1 / 128  # structured, not isotropic


def test_synth_is_deterministic_per_seed(tmp_path):
    a, b, c = (synth(tmp_path / n, 300, seed=s) for n, s in (("a", 5), ("b", 5), ("c", 6)))
    for name in fmt.DATA_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / fmt.DESCRIPTORS).read_bytes() != (c / fmt.DESCRIPTORS).read_bytes()


def test_synth_refuses_to_overwrite_without_force(small, tmp_path):
    with pytest.raises(FileExistsError, match="not empty"):
        synth(small, 10)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "me.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a corpus"):
        synth(other, 10, overwrite=True)


def test_scanner_searches_the_corpus(small):
    with Corpus.open(small) as c:
        query = np.asarray(c.vectors[42], np.float32) + 0.01
        indices, _ = c.scanner().topk(query, 5)
        brute = np.linalg.norm(np.asarray(c.vectors, np.float32) - query, axis=1)
        np.testing.assert_array_equal(indices, np.argsort(brute, kind="stable")[:5])
        assert indices[0] == 42


# ---------------------------------------------------------------------------------------------
# Refusing damaged corpora with one line


def one_line_error(path, **kwargs) -> str:
    with pytest.raises(CorpusError) as info:
        Corpus.open(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_truncated_descriptor_file_is_refused(copy):
    data = (copy / fmt.DESCRIPTORS).read_bytes()
    (copy / fmt.DESCRIPTORS).write_bytes(data[:-256])
    message = one_line_error(copy)
    assert fmt.DESCRIPTORS in message and "truncated" in message


def test_too_long_and_missing_files_are_refused(copy):
    with open(copy / fmt.NORMS, "ab") as fh:
        fh.write(b"\0\0\0\0")
    assert "norms.f32" in one_line_error(copy) and "too long" in one_line_error(copy)
    (copy / fmt.NORMS).unlink()
    assert "norms.f32: missing" in one_line_error(copy)


def test_unknown_format_version_is_refused(copy):
    edit_manifest(copy, lambda m: m.update(format_version=99))
    assert "format_version 99 is not supported" in one_line_error(copy)


def test_count_that_disagrees_with_the_files_is_refused(copy):
    edit_manifest(copy, lambda m: m.update(count=701))
    assert fmt.DESCRIPTORS in one_line_error(copy)


def test_missing_or_broken_manifest(copy):
    (copy / fmt.MANIFEST).write_text("format: [unclosed")
    assert "invalid YAML" in one_line_error(copy)
    (copy / fmt.MANIFEST).unlink()
    assert "unfinished build" in one_line_error(copy)
    assert "does not exist" in one_line_error(copy / "nowhere")


def test_thumbnail_index_past_the_pack_is_refused(copy):
    index = np.fromfile(copy / fmt.THUMBS_INDEX, "<u8").reshape(-1, 2)
    index[321, 0] = (copy / fmt.THUMBS_PACK).stat().st_size
    index.tofile(copy / fmt.THUMBS_INDEX)
    message = one_line_error(copy)
    assert "row 321" in message and fmt.THUMBS_INDEX in message


def model_bound(path, checksums):
    def change(m):
        m["synthetic"] = False
        m["model"] = {"files": dict(checksums), "settings": {}}

    edit_manifest(path, change)


def test_wrong_model_checksum_is_refused(copy):
    from appliance.faces.model_files import model_checksums

    ours = model_checksums()
    model_bound(copy, ours)
    Corpus.open(copy).close()  # the appliance's own models: accepted
    model_bound(copy, {**ours, "descriptor": "0" * 64})
    message = one_line_error(copy)
    assert "different descriptor" in message and "sosie build" in message
    Corpus.open(copy, check_model=False).close()
    model_bound(copy, {"mock": "1" * 64})
    assert "model file" in one_line_error(copy)


# ---------------------------------------------------------------------------------------------
# verify: full checksums


def test_verify_finds_a_flipped_byte_and_the_cli_fails(copy):
    pack = bytearray((copy / fmt.THUMBS_PACK).read_bytes())
    pack[len(pack) // 2] ^= 0xFF
    (copy / fmt.THUMBS_PACK).write_bytes(bytes(pack))
    Corpus.open(copy).close()  # same size: the cheap check cannot see it
    problems = verify(copy)
    assert len(problems) == 1 and fmt.THUMBS_PACK in problems[0]
    run = subprocess.run([sys.executable, "-m", "appliance", "corpus", "verify", str(copy)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and fmt.THUMBS_PACK in run.stderr


def test_verify_finds_norms_that_disagree(copy):
    norms = np.fromfile(copy / fmt.NORMS, "<f4")
    norms[5] += 0.5
    norms.tofile(copy / fmt.NORMS)
    edit_manifest(copy, lambda m: m["files"][fmt.NORMS].update(
        sha256=fmt.sha256_file(copy / fmt.NORMS)))
    problems = verify(copy)
    assert len(problems) == 1 and "first row 5" in problems[0]


def test_cli_synth_info_verify(tmp_path):
    out = tmp_path / "s"
    cli = [sys.executable, "-m", "appliance"]
    run = subprocess.run([*cli, "corpus", "synth", str(out), "--count", "150", "--seed", "2"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    info = subprocess.run([*cli, "corpus", "info", str(out), "--json"], capture_output=True,
                          text=True)
    import json

    data = json.loads(info.stdout)
    assert data["faces"] == 150 and data["kind"] == "synthetic" and data["seed"] == 2
    ok = subprocess.run([*cli, "corpus", "verify", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout
    again = subprocess.run([*cli, "corpus", "synth", str(out), "--count", "5"],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "--force" in again.stderr
    bad = subprocess.run([*cli, "corpus", "synth", str(out), "--count", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2


# ---------------------------------------------------------------------------------------------
# PCA against a numpy reference


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(20, 300), st.integers(4, 40))
def test_pca_matches_numpy_svd(seed, n, d):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(3.0, 0.1, d)  # well separated leading variances
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = (rng.standard_normal((n, d)) * scales) @ q.T + rng.normal(0, 2, d)
    x16 = x.astype(np.float16)
    model = fit_pca(x16, block=17)  # odd block size: exercises the blockwise accumulation
    ref = np.asarray(x16, np.float64)
    centred = ref - ref.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    variance = s**2 / (n - 1)
    np.testing.assert_allclose(model.mean, ref.mean(0), atol=1e-12)
    np.testing.assert_allclose(model.explained_variance, variance[:3], rtol=1e-7)
    np.testing.assert_allclose(model.explained_variance_ratio, variance[:3] / variance.sum(),
                               rtol=1e-7)
    for got, want in zip(model.components, vt[:3], strict=True):
        pivot = np.argmax(np.abs(got))
        assert got[pivot] > 0 and abs(got[pivot]) == np.abs(got).max()
        want = want * np.sign(want[pivot])
        np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(model.project(ref), centred @ model.components.T, atol=1e-9)


def test_pca_is_independent_of_row_order_and_sign_stable():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 16)) * np.geomspace(4, 0.2, 16)
    a, b = fit_pca(x), fit_pca(x[rng.permutation(500)])
    np.testing.assert_allclose(a.components, b.components, atol=1e-9)
    c = fit_pca(-x)  # mirrored data: the same axes, by the sign convention
    np.testing.assert_allclose(a.components, c.components, atol=1e-9)


def test_pca_with_fewer_rows_than_components():
    model = fit_pca(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    assert np.count_nonzero(model.explained_variance) == 1
    np.testing.assert_allclose(np.abs(model.components[0]), [2**-0.5, 0, 2**-0.5], atol=1e-12)
    np.testing.assert_array_equal(model.components[1:], 0.0)


# ---------------------------------------------------------------------------------------------
# Thumbnail pack: random access by row


gray_images = st.tuples(st.integers(1, 40), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[1]).integers(0, 256, (t[0], t[0]), dtype=np.uint8)
)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["png", "raw"]), st.lists(st.integers(0, 2**32 - 1), min_size=1,
                                                 max_size=30), st.data())
def test_pack_random_access_is_exact(tmp_path_factory, encoding, seeds, data):
    size = 12
    images = [np.random.default_rng(s).integers(0, 256, (size, size), dtype=np.uint8)
              for s in seeds]
    folder = tmp_path_factory.mktemp("pack")
    with open(folder / "p", "wb") as fh:
        writer = PackWriter(fh)
        for image in images:
            writer.add(encode(image, encoding))
    writer.index().tofile(folder / "i")
    reader = PackReader(folder / "p", folder / "i", len(images), encoding, size)
    reader.check()
    order = data.draw(st.permutations(range(len(images))))
    for row in order:
        np.testing.assert_array_equal(reader.image(row), images[row])
    with pytest.raises(IndexError):
        reader.image(len(images))
    reader.close()


def test_jpeg_thumbnails_are_close_and_grayscale():
    y, x = np.mgrid[0:64, 0:64]
    image = ((x * 3 + y * 2) % 256).astype(np.uint8)
    blob = encode(image, "jpeg", 92)
    assert blob[:2] == b"\xff\xd8"
    from PIL import Image

    assert Image.open(io.BytesIO(blob)).mode == "L"
    assert np.abs(decode(blob, "jpeg", 64).astype(int) - image).mean() < 3


def test_corrupt_thumbnail_blob_is_a_corpus_error(copy):
    with Corpus.open(copy, check_model=False) as c:
        blob = c.thumbnail_bytes(0)
    offset, length = (copy / fmt.THUMBS_PACK).read_bytes().find(blob), len(blob)
    assert offset >= 0
    with open(copy / fmt.THUMBS_PACK, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\0" * min(length, 64))
    with Corpus.open(copy) as c, pytest.raises(CorpusError, match="row 0 is not a readable"):
        c.thumbnail(0)


# ---------------------------------------------------------------------------------------------
# TSV fields


@given(st.text())
def test_tsv_fields_round_trip(text):
    assert fmt.unescape_field(fmt.escape_field(text)) == text
    assert "\t" not in fmt.escape_field(text) and "\n" not in fmt.escape_field(text)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text(), st.text()), max_size=8))
def test_tsv_file_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("tsv") / "t.tsv"
    path.write_bytes(fmt.tsv_bytes(("a", "b"), rows))
    assert [tuple(r) for r in fmt.read_tsv(path, 2)] == rows


def test_settings_section_is_validated():
    from appliance.config import ConfigError, load, section

    assert section(load(), "corpus", CorpusSettings) == CorpusSettings()
    with pytest.raises(ConfigError, match=r"corpus\.thumbnail_encoding"):
        section({"corpus": {"thumbnail_encoding": "gif"}}, "corpus", CorpusSettings)
