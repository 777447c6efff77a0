"""`sosie generate` on the command line: arguments checked on one line, weights found through
--weights or the config, the summary line, and a killed run resumed by the same command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from generator_helpers import folder_bytes
from torch_zip_writer import dcgan_state, write_dcgan

from appliance.cli import main
from appliance.generator.job import KILL_AFTER_ENV


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_dcgan(tmp_path_factory.mktemp("w") / "weights.tar", dcgan_state(seed=1))


def sosie(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count 0: expected a positive number of faces"),
    (["--count", "2", "--seed", "-3"], "--seed -3: expected an integer >= 0"),
    (["--count", "2", "--size", "8"], "--size 8: expected 16 to 4096 pixels"),
    (["--count", "2", "--workers", "-1"], "--workers -1: expected 0 (one per core) or more"),
    (["--count", "2", "--engine", "url"], "--engine url needs --url URL"),
    (["--count", "2", "--url", "http://x"], "--url is for --engine url"),
    (["--count", "2", "--engine", "url", "--url", "ftp://x"], "expected an http:// or https://"),
    (["--count", "2", "--engine", "url", "--url", "http://x", "--rate", "0"], "--rate 0:"),
])
def test_unusable_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert main(["generate", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_or_foreign_weights_exit_1_saying_how_to_get_them(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "out"), "--count", "2",
                 "--weights", str(tmp_path / "none.tar")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sosie generate: {tmp_path / 'none.tar'}: no such weights file")
    assert "pip install --no-deps gan-face-generate==1.1.1" in err and "\n" not in err
    (tmp_path / "pickle.tar").write_bytes(b"\x80\x02cos\nsystem\n.")
    assert main(["generate", str(tmp_path / "out"), "--count", "2",
                 "--weights", str(tmp_path / "pickle.tar")]) == 1
    assert "damaged or truncated zip" in capsys.readouterr().err


def test_weights_come_from_the_config_when_not_given(weights, tmp_path, capsys):
    config = tmp_path / "sosie.yaml"
    config.write_text(yaml.safe_dump({"generator": {"weights": str(weights)}}))
    args = ["--count", "3", "--seed", "2", "--size", "64", "--workers", "1", "--quiet",
            "--analyzer", "mock"]
    assert main(["generate", str(tmp_path / "a"), *args, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'a'}: 3 faces from 3 draws, 0 rejected; 3 drawn in")
    assert main(["generate", str(tmp_path / "b"), *args, "--weights", str(weights)]) == 0
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    config.write_text(yaml.safe_dump({"generator": {"weight": "x"}}))
    assert main(["generate", str(tmp_path / "c"), *args, "--config", str(config)]) == 2
    assert "generator.weight" in capsys.readouterr().err


def test_the_weights_are_read_and_hashed_once_per_run(weights, tmp_path, monkeypatch):
    """`DCGAN.load` hashes the file; the journal's identity and the drawing in this process
    reuse that digest and that network (a 14 MB file: ~15 ms to hash, ~80 ms to load)."""
    import appliance.files
    from appliance.generator import dcgan

    hashed: list[Path] = []
    real_hash, real_load = appliance.files.sha256_file, dcgan.DCGAN.load.__func__

    def counting_hash(path, *a, **k):
        hashed.append(Path(path))
        return real_hash(path, *a, **k)

    loaded: list[Path] = []

    def counting_load(cls, path=None):
        loaded.append(Path(path))
        return real_load(cls, path)

    monkeypatch.setattr(appliance.files, "sha256_file", counting_hash)
    monkeypatch.setattr(dcgan, "sha256_file", counting_hash)
    monkeypatch.setattr(dcgan.DCGAN, "load", classmethod(counting_load))
    args = ["--count", "3", "--seed", "2", "--size", "64", "--workers", "1", "--quiet",
            "--analyzer", "mock", "--weights", str(weights)]
    assert main(["generate", str(tmp_path / "a"), *args]) == 0
    assert hashed == [weights] and loaded == [weights]
    monkeypatch.undo()
    assert main(["generate", str(tmp_path / "b"), *args]) == 0  # the digest passed along is
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")  # the file's


def test_a_killed_command_resumes_when_run_again(weights, tmp_path):
    args = ["generate", str(tmp_path / "out"), "--count", "10", "--size", "64", "--workers", "2",
            "--weights", str(weights), "--analyzer", "mock", "--quiet"]
    killed = sosie(*args, env={KILL_AFTER_ENV: "4"})
    assert killed.returncode == -signal.SIGKILL
    resumed = sosie(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "10 faces from 10 draws" in resumed.stdout
    reference = sosie(*[a if a != str(tmp_path / "out") else str(tmp_path / "ref")
                        for a in args])
    assert reference.returncode == 0
    assert folder_bytes(tmp_path / "out") == folder_bytes(tmp_path / "ref")
