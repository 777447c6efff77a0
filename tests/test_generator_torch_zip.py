"""The restricted torch.save reader: plain tensors come back exactly; anything else is refused
with one line naming the file, before any foreign code could run."""

from __future__ import annotations

import math
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_zip_writer import Build, Call, Global, Tensor, pickle_bytes, write_torch_zip

from appliance.generator.torch_zip import MAX_PICKLE_BYTES, WeightsFormatError, read_torch_zip


def refused(path: Path, *words: str) -> str:
    with pytest.raises(WeightsFormatError) as info:
        read_torch_zip(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for word in words:
        assert word in message, message
    return message


def test_plain_tensors_come_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((3, 5)).astype(np.float32)
    base = rng.standard_normal(40).astype(np.float32)
    state = OrderedDict(
        w=Tensor(matrix, "0"),
        t=Tensor(matrix, "1", shape=(5, 3), stride=(1, 5)),  # a transposed view
        s=Tensor(base, "2", shape=(4, 3), stride=(6, 2), offset=5),
        n=Tensor(np.array(7, dtype=np.int64), "3"),
    )
    out = read_torch_zip(write_torch_zip(tmp_path / "w.pt", {"net": state, "epoch": 12}))
    assert out["epoch"] == 12
    net = out["net"]
    assert list(net) == ["w", "t", "s", "n"]
    np.testing.assert_array_equal(net["w"], matrix)
    np.testing.assert_array_equal(net["t"], matrix.T)
    np.testing.assert_array_equal(net["s"], base[5:29].reshape(4, 6)[:, ::2])
    assert net["w"].dtype == np.float32 and net["n"].dtype == np.int64
    assert net["n"].shape == () and int(net["n"]) == 7
    assert net["t"].flags.c_contiguous


@pytest.mark.parametrize("module, name", [
    ("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
    ("subprocess", "Popen"), ("numpy.core.multiarray", "_reconstruct"),
    ("torch._utils", "_rebuild_parameter"), ("torch", "HalfStorage"), ("collections", "deque"),
])
def test_foreign_globals_are_refused_before_anything_runs(tmp_path, module, name):
    marker = tmp_path / "ran"
    command = f"touch {marker}" if name in ("system", "Popen") else f"open({str(marker)!r}, 'w')"
    obj = {"netG_state_dict": Call(Global(module, name), (command,))}
    path = write_torch_zip(tmp_path / "evil.pt", obj)
    refused(path, "refused", f"{module}.{name}")
    assert not marker.exists()


def test_a_foreign_global_deep_inside_a_tensor_is_refused(tmp_path):
    array = np.zeros(4, np.float32)
    obj = {"w": Tensor(array, "0", extra=(Call(Global("builtins", "eval"), ("1",)),))}
    refused(write_torch_zip(tmp_path / "evil.pt", obj), "builtins.eval")


def test_attributes_other_than_torch_metadata_are_refused(tmp_path):
    ok = Build(OrderedDict(w=Tensor(np.ones(2, np.float32), "0")), {"_metadata": {"": 1}})
    out = read_torch_zip(write_torch_zip(tmp_path / "ok.pt", {"s": ok}))
    np.testing.assert_array_equal(out["s"]["w"], [1, 1])
    bad = Build(OrderedDict(), {"__class__": 1, "_metadata": {}})
    refused(write_torch_zip(tmp_path / "bad.pt", {"s": bad}), "unexpected attributes")
    on_tensor = Build(Tensor(np.ones(2, np.float32), "0"), ("x", {}))
    refused(write_torch_zip(tmp_path / "t.pt", {"s": on_tensor}), "state of a tensor")


@pytest.fixture
def good(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    state = OrderedDict((f"w{i}", Tensor(rng.standard_normal(500).astype(np.float32), str(i)))
                        for i in range(4))
    return write_torch_zip(tmp_path / "good.pt", {"netG_state_dict": state})


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -1, -22])
def test_truncated_archives_fail_with_one_line(good, keep):
    data = good.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (
        keep if keep >= 0 else len(data) + keep)
    good.write_bytes(data[:cut])
    refused(good, "zip")


def test_a_damaged_storage_is_refused(good):
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("archive/data/2")
    data[info.header_offset + 100 + len(info.filename)] ^= 0xFF  # inside the member's bytes
    good.write_bytes(bytes(data))
    refused(good, "damaged")


def test_not_an_archive(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    refused(tmp_path / "empty", "zip")
    (tmp_path / "text").write_text("hello\n" * 100)
    refused(tmp_path / "text", "zip")
    refused(tmp_path / "missing", "cannot read")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "not torch")
    refused(tmp_path / "other.zip", "data.pkl")


@pytest.mark.parametrize("numel, words", [
    (10**12, "10**12"), (-1, "element count"), (499, "holds 2000 bytes"), (2**62, "bytes"),
])
def test_element_counts_must_match_the_storage(tmp_path, numel, words):
    array = np.zeros(500, np.float32)
    path = write_torch_zip(tmp_path / "w.pt", {"w": Tensor(array, "0", numel=numel)})
    message = refused(path)
    if words == "10**12":
        assert "1000000000000 elements" in message
    else:
        assert words in message


@pytest.mark.parametrize("shape, stride, offset", [
    ((501,), (1,), 0),  # one element too many
    ((10, 50), (50, 1), 1),  # offset pushes the last element out
    ((2, 2), (10**6, 1), 0),  # stride far outside
    ((10**9, 10**9), (0, 0), 0),  # stride 0: in bounds, but 10**18 elements
    ((1,) * 9, (1,) * 9, 0),  # too many dimensions
    ((-1,), (1,), 0),
    ((5,), (-1,), 4),
    ((5,), (1,), 501),
    ((5,), (1,), -1),
])
def test_absurd_shapes_strides_and_offsets_are_refused(tmp_path, shape, stride, offset):
    array = np.zeros(500, np.float32)
    tensor = Tensor(array, "0", shape=shape, stride=stride, offset=offset)
    refused(write_torch_zip(tmp_path / "w.pt", {"w": tensor}))


def test_a_storage_without_its_member_is_refused(tmp_path):
    tensor = Tensor(np.zeros(4, np.float32), "7")
    pickle = pickle_bytes({"w": tensor})
    path = write_torch_zip(tmp_path / "w.pt", {}, pickle=pickle)
    refused(path, "no data/7")


def test_one_storage_named_with_two_sizes_is_refused(tmp_path):
    array = np.zeros(4, np.float32)
    obj = {"a": Tensor(array, "0"), "b": Tensor(array, "0", numel=5)}
    refused(write_torch_zip(tmp_path / "w.pt", obj, storages={"0": array.tobytes()}))


def test_deep_nesting_and_huge_pickles_are_refused(tmp_path):
    nested: object = 1
    for _ in range(40):
        nested = (nested,)
    refused(write_torch_zip(tmp_path / "deep.pt", {"x": nested}), "nested")
    big = {"x": "a" * (MAX_PICKLE_BYTES + 1)}
    refused(write_torch_zip(tmp_path / "big.pt", big), "data.pkl of")


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
    data=st.data(),
)
def test_any_view_is_read_exactly_or_refused_when_out_of_bounds(tmp_path_factory, shape, data):
    stride = data.draw(st.lists(st.integers(0, 40), min_size=len(shape), max_size=len(shape)))
    offset = data.draw(st.integers(0, 130))
    storage = np.arange(120, dtype=np.float32) * 0.5
    path = tmp_path_factory.mktemp("view") / "w.pt"
    tensor = Tensor(storage, "0", shape=tuple(shape), stride=tuple(stride), offset=offset)
    write_torch_zip(path, {"w": tensor})
    count = math.prod(shape)
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    if offset > storage.size or (count and last >= storage.size):
        refused(path)
        return
    out = read_torch_zip(path)["w"]
    expected = np.lib.stride_tricks.as_strided(
        storage[offset:] if count else storage, shape=tuple(shape),
        strides=[s * 4 for s in stride]) if count else np.zeros(shape, np.float32)
    assert out.shape == tuple(shape)
    np.testing.assert_array_equal(out, expected)
