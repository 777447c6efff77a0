"""Generator weights in safetensors, read by the appliance with numpy alone: the same faces as
the same tensors in a torch.save archive, anything not the DCGAN's refused on one line, and
`sosie generate --weights X.safetensors` drawing with them (no JAX involved)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_zip_writer import dcgan_state, write_dcgan

from appliance.files import sha256_file
from appliance.generator.dcgan import DCGAN, expected_tensors
from appliance.generator.safetensors_weights import (
    MAX_HEADER_BYTES,
    is_safetensors,
    read_metadata,
)
from appliance.generator.torch_zip import WeightsFormatError

DTYPE_NAMES = {"<f4": "F32", "<f2": "F16", "<i8": "I64", "<i4": "I32", "<f8": "F64"}


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict | None = None,
                      header_edit=None) -> bytes:  # type: ignore[no-untyped-def]
    """A safetensors file written by hand from its specification (data in the given order)."""
    header: dict = {}
    chunks, position = [], 0
    for name, value in tensors.items():
        raw = np.ascontiguousarray(value).tobytes()
        dtype = DTYPE_NAMES[value.dtype.newbyteorder("<").str]
        header[name] = {"dtype": dtype, "shape": list(value.shape),
                        "data_offsets": [position, position + len(raw)]}
        chunks.append(raw)
        position += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    if header_edit is not None:
        header_edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return dict(dcgan_state(seed=3))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_safetensors_and_torch_zip_of_one_state_draw_the_same_faces(tmp_path, state):
    tar = write_dcgan(tmp_path / "w.tar", state)
    st_path = write(tmp_path / "w.safetensors", safetensors_bytes(state, {"sosie": "{}"}))
    a, b = DCGAN.load(tar), DCGAN.load(st_path)
    assert np.array_equal(a.faces(5, [0, 1, 2], 64), b.faces(5, [0, 1, 2], 64))
    assert b.checksum == sha256_file(st_path) != a.checksum
    assert is_safetensors(st_path) and not is_safetensors(tar)
    assert read_metadata(st_path) == {"sosie": "{}"}


def test_the_library_writes_what_we_read(tmp_path, state):
    from safetensors.numpy import save_file

    path = tmp_path / "lib.safetensors"
    save_file(state, str(path), metadata={"format": "x"})
    net = DCGAN.load(path)
    reference = DCGAN.load(write_dcgan(tmp_path / "w.tar", state))
    assert np.array_equal(net.faces(1, [4], 64), reference.faces(1, [4], 64))


def _drop(name):  # type: ignore[no-untyped-def]
    return lambda h: h.pop(name)


def _set(name, field, value):  # type: ignore[no-untyped-def]
    return lambda h: h[name].__setitem__(field, value)


@pytest.mark.parametrize("edit, message", [
    (_drop("main.12.weight"), "not the DCGAN generator (missing main.12.weight)"),
    (lambda h: h.__setitem__("evil", h["main.1.bias"]), "not the DCGAN generator (unexpected"),
    (_set("main.1.bias", "dtype", "I32"), "main.1.bias is I32 (expected a float dtype)"),
    (_set("main.1.bias", "dtype", "O"), "main.1.bias is O (expected a float dtype)"),
    (_set("main.1.bias", "shape", [256]), "main.1.bias has shape [256] (expected [512])"),
    (_set("main.1.bias", "data_offsets", [0, 2048]), "(ranges overlap or leave a hole)"),
    (_set("main.1.bias", "data_offsets", [-4, 2044]), "main.1.bias: data_offsets"),
    (_set("main.1.bias", "data_offsets", [0, 10**12]), "main.1.bias: data_offsets"),
    (lambda h: h["main.1.bias"].__setitem__("extra", 1), "main.1.bias: expected exactly"),
    (lambda h: h.__setitem__("__metadata__", {"a": 1}), "__metadata__ 'a' is not a short"),
    (lambda h: h.__setitem__("__metadata__", [1]), "__metadata__ is not a small object"),
])
def test_a_header_that_is_not_the_dcgans_is_refused_naming_what(tmp_path, state, edit, message):
    path = write(tmp_path / "bad.safetensors", safetensors_bytes(state, header_edit=edit))
    with pytest.raises(WeightsFormatError) as info:
        DCGAN.load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_sizes_are_bounded_before_anything_is_read(tmp_path, state):
    good = safetensors_bytes(state)
    cases = {
        "huge header": struct.pack("<Q", 2**63) + b"{" + good[9:],
        "header past the end": struct.pack("<Q", len(good)) + good[8:],
        "header above the bound": struct.pack("<Q", MAX_HEADER_BYTES + 1) + good[8:],
        "truncated data": good[:-100],
        "trailing bytes": good + b"\0" * 8,
        "not json": struct.pack("<Q", 8) + b"{nope!!}" + good[8:],
        "nan in the header": good.replace(b'"shape": [512]', b'"shape": NaN  ', 1),
    }
    for what, data in cases.items():
        path = write(tmp_path / "x.safetensors", data)
        with pytest.raises(WeightsFormatError, match=rf"^{path}: ") as info:
            DCGAN.load(path)
        assert "\n" not in str(info.value), what


def test_duplicate_names_and_non_finite_values_are_refused(tmp_path, state):
    good = safetensors_bytes(state)
    length = struct.unpack("<Q", good[:8])[0]
    header = good[8:8 + length].decode()
    first = header.index('"main.1.bias"')
    entry_end = header.index("}", first) + 1
    doubled = header[:entry_end] + ", " + header[first:entry_end] + header[entry_end:]
    doubled_bytes = doubled.encode()
    path = write(tmp_path / "dup.safetensors",
                 struct.pack("<Q", len(doubled_bytes)) + doubled_bytes + good[8 + length:])
    with pytest.raises(WeightsFormatError, match="named twice"):
        DCGAN.load(path)
    state = {**state, "main.4.bias": np.full(256, np.inf, np.float32)}
    path = write(tmp_path / "inf.safetensors", safetensors_bytes(state))
    with pytest.raises(WeightsFormatError, match=r"main\.4\.bias holds values that are not finite"):
        DCGAN.load(path)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 4000), value=st.integers(0, 255))
def test_any_damaged_byte_of_the_header_loads_or_is_refused(tmp_path, state, position, value):
    data = bytearray(safetensors_bytes(state))
    position %= 8 + struct.unpack("<Q", data[:8])[0]
    data[position] = value
    path = write(tmp_path / "fuzz.safetensors", bytes(data))
    try:
        net = DCGAN.load(path)
    except WeightsFormatError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:
        assert net.faces(0, [0], 64).shape == (1, 64, 64, 3)


def test_expected_tensors_are_the_torch_state_dict(state):
    assert {k: (v.shape, v.dtype.kind) for k, v in state.items()} == expected_tensors()


def sosie(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ))


def test_generate_draws_with_safetensors_weights_and_refuses_a_wrong_file(tmp_path, state):
    from PIL import Image

    weights = write(tmp_path / "mine.safetensors", safetensors_bytes(state))
    out = tmp_path / "out"
    done = sosie("generate", str(out), "--count", "2", "--size", "64", "--weights", str(weights),
                 "--analyzer", "mock", "--quiet")
    assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*.png"))
    assert len(files) == 2
    drawn = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    assert np.array_equal(drawn, DCGAN.load(weights).faces(0, [0, 1], 64))
    wrong = write(tmp_path / "wrong.safetensors",
                  safetensors_bytes({"weight": np.zeros(3, np.float32)}))
    done = sosie("generate", str(tmp_path / "o2"), "--count", "1", "--weights", str(wrong),
                 "--analyzer", "mock")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"sosie generate: {wrong}: not the DCGAN generator (missing main.0.weight)"]


def test_the_generator_of_a_corpus_is_named_from_its_weights_digest(tmp_path, state):
    from appliance.generator.dcgan import default_weights_path
    from appliance.generator.provenance import describe_weights

    try:
        shipped = sha256_file(default_weights_path())
    except LookupError as exc:
        pytest.skip(str(exc))
    assert describe_weights(shipped).startswith("the shipped gan-face-generate 1.1.1 weights")
    made = {"format": "sosie-dcgan-generator", "steps": "600", "start": f"sha256:{shipped}",
            "seed": "0", "batch": "8"}
    trained = write(tmp_path / "mine.safetensors",
                    safetensors_bytes(state, {"sosie": json.dumps(made)}))
    digest = sha256_file(trained)
    assert describe_weights(digest, [None, tmp_path / "absent", trained]) == (
        f"weights trained by sosie train (600 steps from the shipped weights, seed 0, batch "
        f"8), {trained} (sha256 {digest[:12]})")
    plain = write_dcgan(tmp_path / "other.tar", state)
    assert describe_weights(sha256_file(plain), [plain]) == (
        f"weights {plain} (sha256 {sha256_file(plain)[:12]})")
    assert describe_weights("ab" * 32, [trained]).startswith("other weights (sha256 abababababab")


def test_corpus_info_and_doctor_say_which_generator_drew_a_corpus(tmp_path):
    from appliance.generator.dcgan import default_weights_path, read_state

    try:  # the shipped network draws faces dlib finds (random weights do not)
        state = read_state(default_weights_path())
    except LookupError as exc:
        pytest.skip(str(exc))
    state = {**state, "main.12.weight": state["main.12.weight"] * np.float32(0.95)}
    made = {"steps": "12", "start": "scratch", "seed": "3", "batch": "4"}
    weights = write(tmp_path / "mine.safetensors",
                    safetensors_bytes(state, {"sosie": json.dumps(made)}))
    corpus = tmp_path / "corpus"
    done = sosie("build", "dcgan:12:5", str(corpus), "--weights", str(weights), "--quiet")
    assert done.returncode == 0, done.stderr
    short = sha256_file(weights)[:12]
    phrase = (f"weights trained by sosie train (12 steps from scratch, seed 3, batch 4), "
              f"{weights} (sha256 {short})")
    info = sosie("corpus", "info", str(corpus), "--weights", str(weights))
    assert f"generator weights:      {phrase}" in info.stdout.splitlines()
    config = tmp_path / "sosie.yaml"
    config.write_text(f"generator:\n  weights: {weights}\n")
    doctor = sosie("doctor", "--corpus", str(corpus), "--config", str(config))
    assert f"   note  corpus     faces drawn with {phrase}" in doctor.stdout.splitlines()
    unknown = sosie("corpus", "info", str(corpus))  # not given the file: the build's record
    assert (f"generator weights:      weights trained by sosie train (12 steps from scratch, "
            f"seed 3, batch 4) (sha256 {short}; as its build recorded)"
            ) in unknown.stdout.splitlines()
    missing = sosie("corpus", "info", str(corpus), "--weights", str(tmp_path / "absent.st"))
    assert missing.returncode == 2 and missing.stdout == ""
    absent = tmp_path / "absent.st"
    assert missing.stderr.strip() == f"sosie corpus: --weights {absent}: no such weights file"


def test_a_corpus_keeps_how_its_trained_generator_was_made_without_the_weights_file(tmp_path):
    from appliance.generator.dcgan import default_weights_path, read_state

    try:
        state = read_state(default_weights_path())
    except LookupError as exc:
        pytest.skip(str(exc))
    state = {**state, "main.12.weight": state["main.12.weight"] * np.float32(0.97)}
    made = {"steps": "40", "start": "scratch", "seed": "2", "batch": "8",
            "data": "/home/artist/photos of me"}  # a path where a name belongs: cut to a name
    weights = write(tmp_path / "mine.safetensors",
                    safetensors_bytes(state, {"sosie": json.dumps(made)}))
    short = sha256_file(weights)[:12]
    corpus = tmp_path / "corpus"
    done = sosie("build", "dcgan:8:5", str(corpus), "--weights", str(weights), "--quiet")
    assert done.returncode == 0, done.stderr
    manifest = (corpus / "manifest.yaml").read_text()
    assert "photos of me" in manifest and "/home/artist" not in manifest
    weights.unlink()  # the corpus travels; the weights stay on the workstation
    phrase = ("weights trained by sosie train (40 steps from scratch, seed 2, batch 8, photos "
              f"'photos of me') (sha256 {short}; as its build recorded)")
    info = sosie("corpus", "info", str(corpus))
    assert f"generator weights:      {phrase}" in info.stdout.splitlines(), info.stdout
    doctor = sosie("doctor", "--corpus", str(corpus))
    assert f"   note  corpus     faces drawn with {phrase}" in doctor.stdout.splitlines()
