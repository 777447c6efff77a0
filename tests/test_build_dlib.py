"""The real dlib pipeline through `sosie build`: a SIGKILLed parallel build resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from photos import write_lfw_images

from appliance.corpus import Corpus, CorpusSettings, build
from appliance.corpus import format as fmt
from appliance.corpus.build import WORK_DIR
from appliance.corpus.collector import KILL_AFTER_ENV
from appliance.corpus.thumbs import decode

pytestmark = pytest.mark.slow

FACES = 20


@pytest.fixture(scope="module")
def lfw_folder(tmp_path_factory):
    return write_lfw_images(tmp_path_factory.mktemp("lfw") / "images", count=FACES)


def test_killed_real_build_resumes_byte_for_byte(lfw_folder, tmp_path, analyzer):
    corpus = tmp_path / "c"
    command = [sys.executable, "-m", "appliance", "build", str(lfw_folder), str(corpus),
               "--quiet", "--workers", "2", "--chunk-size", "4"]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((corpus / WORK_DIR).glob("chunk-*.bin"))) >= 2
    assert not (corpus / fmt.MANIFEST).exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "chunks reused" in resumed.stdout

    reference = tmp_path / "ref"
    build(lfw_folder, reference, workers=1, settings=CorpusSettings(chunk_size=4),
          progress=False)
    for name in fmt.DATA_FILES:
        assert (corpus / name).read_bytes() == (reference / name).read_bytes(), name

    with Corpus.open(corpus) as c:  # the appliance's own models: accepted
        assert FACES * 0.6 <= c.count <= FACES
        assert c.count + len(c.rejected()) == FACES
        assert all("no face" in reason for _, reason in c.rejected())
        for i in (0, c.count - 1):
            face = analyzer.analyze(lfw_folder / c.source(i))
            np.testing.assert_array_equal(c.vectors[i], face.descriptor.astype(np.float16))
            expected = face.aligned(256, gray=True).astype(int)
            assert np.abs(decode(c.thumbnail_bytes(i), "jpeg", 256) - expected).mean() < 3
        assert 1.2 < float(c.norms.mean()) < 1.6
