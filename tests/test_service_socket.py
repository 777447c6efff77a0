"""The control socket of a real `sosie run` process against hostile and careless clients.

One service (simulated button, image camera, virtual printer) serves every test of the module;
each test talks to it over its socket as `sosie status` / `sosie press` or an attacker would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from appliance.runtime.control_socket import CLIENT_SECONDS, MAX_CLIENTS, request

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A `sosie run` process; yields its control socket path."""
    from skimage import data

    from appliance.corpus.synth import synth

    tmp = tmp_path_factory.mktemp("socket")
    corpus = synth(tmp / "corpus", 1500, seed=5)
    photo = tmp / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    config = tmp / "sosie.yaml"
    config.write_text(
        f"camera: {{source: '{photo}'}}\n"
        f"printer: {{backend: virtual, virtual: {{out_dir: '{tmp / 'tickets'}'}}}}\n"
        "controls: {backend: virtual}\n"
        "machine: {cooldown_seconds: 600}\n"  # after one visit, presses meet the cooldown
    )
    path = tmp / "run" / "control.sock"
    env = {**os.environ, "SOSIE_CACHE": str(tmp / "cache"), "SOSIE_SOCKET": str(path)}
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "RUNTIME_DIRECTORY"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config),
                             "--corpus", str(corpus)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                if request(path, "status", timeout=2).get("state") == "ready":
                    break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("sosie run did not become ready")
        yield path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def converse(path: Path, data: bytes, timeout: float = 10) -> list[dict]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return [json.loads(line) for line in s.makefile("rb").read().splitlines()]


def test_a_thousand_brackets_are_refused_and_the_socket_lives_on(service):
    replies = converse(service, b"[" * 1000 + b"\n" + b'{"command": "status"}\n')
    assert replies[0]["ok"] is False and "nested" in replies[0]["error"]
    assert replies[1]["ok"] is True  # the same client is still served
    for bomb in (b"{" * 5000, b'{"command": ' + b"[" * 100_000):
        assert converse(service, bomb + b"\n")[0]["ok"] is False
    assert request(service, "status", timeout=3)["ok"] is True


def test_a_dribbling_client_blocks_nobody_and_is_cut_off(service):
    slow = socket.socket(socket.AF_UNIX)
    slow.settimeout(3)
    slow.connect(str(service))
    stop = threading.Event()
    cut_off_after: list[float] = []

    def dribble() -> None:
        start = time.monotonic()
        try:
            slow.sendall(b'{"command": ')
            while not stop.wait(0.5):
                slow.sendall(b" ")
        except OSError:
            cut_off_after.append(time.monotonic() - start)

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        time.sleep(0.3)
        start = time.monotonic()
        assert request(service, "status", timeout=2)["ok"] is True  # not queued behind it
        assert time.monotonic() - start < 1.5
        slow.settimeout(CLIENT_SECONDS + 5)
        assert slow.recv(100) == b""  # the service hung up on it
        thread.join(CLIENT_SECONDS + 5)
    finally:
        stop.set()
        slow.close()
        thread.join()


def test_too_many_idle_clients_are_told_to_come_back_and_then_served(service):
    idle = []
    try:
        for _ in range(MAX_CLIENTS):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(3)
            s.connect(str(service))
            idle.append(s)
        time.sleep(0.3)
        start = time.monotonic()
        reply = converse(service, b'{"command": "status"}\n', timeout=3)
        assert time.monotonic() - start < 2
        assert reply == [{"ok": False, "error": "too many clients; try again"}]
        time.sleep(CLIENT_SECONDS + 0.5)  # the idle ones have had their time
        assert request(service, "status", timeout=3)["ok"] is True
    finally:
        for s in idle:
            s.close()


def test_press_says_whether_it_was_taken_and_why_not(service):
    before = request(service, "status")["visits"]
    reply = request(service, "press")
    assert reply["taken"] is True and reply["state"] == "ready" and reply["reason"] is None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = request(service, "status")
        if status["visits"] > before and status["state"] == "cooldown":
            break
        time.sleep(0.1)
    reply = request(service, "press")
    assert reply["taken"] is False and reply["reason"] == "cooldown"
    out = subprocess.run([sys.executable, "-m", "appliance", "press", "--socket", str(service)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 1 and out.stdout.strip() == "ignored: the appliance is cooling down"
