"""An error reply from the control socket is an error (issue 22, item 6): `sosie status`,
`press` and `doctor` on {"ok": false, ...} exit non-zero and say what the service answered;
`status --json` prints JSON in every case."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from appliance.cli import main

REFUSAL = {"ok": False, "error": "too many clients; try again"}


@contextmanager
def answering(path: Path, reply: dict) -> Iterator[Path]:
    """A control socket at `path` answering every request with `reply`, for at most 20 s."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    end = time.monotonic() + 20.0

    def serve() -> None:
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                conn.makefile("rb").readline()
                conn.sendall(json.dumps(reply).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture
def refusing(tmp_path) -> Iterator[Path]:
    with answering(tmp_path / "control.sock", REFUSAL) as path:
        yield path


def test_status_on_an_error_reply_fails_and_quotes_it(refusing, capsys):
    assert main(["status", "--socket", str(refusing)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "state: ?" not in out
    assert err.strip() == (f"sosie status: the service on {refusing} answered 'status' with an "
                           "error: too many clients; try again")


def test_status_json_prints_json_in_every_case(refusing, tmp_path, capsys):
    assert main(["status", "--json", "--socket", str(refusing)]) == 1
    out, _ = capsys.readouterr()
    reply = json.loads(out)
    assert reply["ok"] is False and "too many clients" in reply["error"]
    assert main(["status", "--json", "--socket", str(tmp_path / "nothing.sock")]) == 1
    out, _ = capsys.readouterr()
    reply = json.loads(out)
    assert reply["ok"] is False and "no control socket" in reply["error"]


def test_press_on_an_error_reply_fails_and_quotes_it(refusing, capsys):
    assert main(["press", "--socket", str(refusing)]) == 1
    out, err = capsys.readouterr()
    assert "pressed" not in out and "too many clients; try again" in err
    assert len(err.strip().splitlines()) == 1


def test_doctor_reports_a_refusing_service_as_a_problem(refusing):
    from appliance.runtime.doctor import PROBLEM, Doctor, check_service
    from appliance.settings import load_settings

    doc = Doctor(echo=lambda line: None)
    assert check_service(doc, load_settings(search=False), refusing) is True
    [check] = doc.checks
    assert check.level == PROBLEM and "too many clients; try again" in check.message
    assert "None" not in check.message
