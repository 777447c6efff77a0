"""`sosie generate` records what it learned of each face; `sosie build` of its folder reuses it
(no detector, no descriptor network) for files whose checksum and pixels are the recorded ones,
and builds the very same corpus as from the bare files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from appliance.corpus import CorpusSettings, DlibEngine, build
from appliance.corpus import format as fmt
from appliance.faces.detection import MultiScaleDetector
from appliance.faces.resnet import FaceNet
from appliance.faces.settings import FaceSettings
from appliance.generator.analyses import recalled, recorded
from appliance.generator.draws import DcganDrawer, DcganJob
from appliance.generator.job import generate
from appliance.generator.journal import DRAWS, WORK_DIR

pytestmark = pytest.mark.slow
SETTINGS = CorpusSettings(chunk_size=3, thumbnail_size=64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, generated_faces) -> Path:  # (skips without the weights)
    from appliance.generator.dcgan import default_weights_path

    out = tmp_path_factory.mktemp("gen") / "faces"
    generate(out, 5, DcganDrawer(DcganJob(2, 128, "png", default_weights_path()), DlibEngine()),
             progress=False)
    return out


def bare_copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for path in folder.glob("*.png"):
        shutil.copy2(path, to / path.name)
    return to


def corpus_bytes(corpus: Path) -> dict[str, bytes]:
    return {name: (corpus / name).read_bytes() for name in fmt.DATA_FILES
            if name != fmt.MANIFEST}


class Counting:
    """Counts the detector's looks and the descriptor network's batches while patched in."""

    def __init__(self, monkeypatch) -> None:
        self.looks = self.described = 0
        detect_at, forward = MultiScaleDetector.detect_at, FaceNet.forward

        def counted_detect(detector, *args, **kwargs):
            self.looks += 1
            return detect_at(detector, *args, **kwargs)

        def counted_forward(net, chips):
            self.described += len(chips)
            return forward(net, chips)

        monkeypatch.setattr(MultiScaleDetector, "detect_at", counted_detect)
        monkeypatch.setattr(FaceNet, "forward", counted_forward)


def test_a_generated_folder_builds_from_its_records_to_the_same_corpus(
        folder, tmp_path, monkeypatch):
    lines = [json.loads(line) for line in (folder / WORK_DIR / DRAWS).read_text().splitlines()]
    kept = [line for line in lines if "file" in line]
    assert len(kept) == 5 and all(len(line["analysis"]["descriptor"]) == 684 for line in kept)
    where = recorded(folder, DlibEngine())  # only where each line is, read again per file
    assert len(where) == 5
    for name, (path, offset, length) in where.items():
        assert recalled((path, offset, length))[0] == name
        assert recalled((path, offset + 1, length)) is None  # not a line's start

    fresh = build(bare_copy(folder, tmp_path / "bare"), tmp_path / "fresh", workers=1,
                  settings=SETTINGS, progress=False)
    counting = Counting(monkeypatch)
    reused = build(folder, tmp_path / "reused", workers=1, settings=SETTINGS, progress=False)
    assert (counting.looks, counting.described) == (0, 0)  # every face from its record
    assert reused.faces == fresh.faces == 5
    assert corpus_bytes(tmp_path / "reused") == corpus_bytes(tmp_path / "fresh")


def test_a_changed_file_or_a_damaged_record_is_analysed_afresh(folder, tmp_path, monkeypatch):
    from PIL import Image

    copy = tmp_path / "faces"
    shutil.copytree(folder, copy)
    names = sorted(p.name for p in copy.glob("*.png"))
    changed = Image.open(copy / names[0]).convert("RGB")  # other pixels, other checksum
    changed.putpixel((5, 5), (0, 0, 0))
    changed.save(copy / names[0])
    journal = copy / WORK_DIR / DRAWS
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    for line in lines:
        if line.get("file") == names[1]:
            line["analysis"]["descriptor"] = line["analysis"]["descriptor"][:-8]  # cut short
        if line.get("file") == names[2]:
            line["analysis"]["chip"] = "0" * 64  # a chip it does not make
        if line.get("file") == names[3]:
            line["analysis"]["rect"] = [-1e300, 0.0, 1e300, 5.0]  # a box far outside
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))

    fresh = build(bare_copy(copy, tmp_path / "bare"), tmp_path / "fresh", workers=1,
                  settings=SETTINGS, progress=False)
    counting = Counting(monkeypatch)
    build(copy, tmp_path / "mixed", workers=1, settings=SETTINGS, progress=False)
    assert counting.described == 4  # the changed file, the cut record, the chip, the box
    assert counting.looks >= 4
    assert corpus_bytes(tmp_path / "mixed") == corpus_bytes(tmp_path / "fresh")
    assert fresh.faces >= 4 and fresh.rejected == 0


def test_records_of_another_analyzer_are_not_used(folder):
    other = DlibEngine(FaceSettings(detect_max_side=320))
    assert recorded(folder, other) == {}
    assert recorded(folder.parent, DlibEngine()) == {}  # no journal there
