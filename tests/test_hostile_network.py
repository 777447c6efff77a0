"""Peers that misbehave get one line within their deadline (issue 22, items 3 and 4): a
scheduler address that is not a Dask scheduler, a generator server that trickles or sends
`100 Continue` for ever. Every server here listens on 127.0.0.1 and stops by itself."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.compute import dask_session as cluster

LIFETIME = 30.0  # s: every test server closes by itself after this


@contextmanager
def tcp_server(behave: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-thread TCP server on 127.0.0.1 running `behave(connection)` per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    born = time.monotonic()

    def serve() -> None:
        with listener:
            while not stop.is_set() and time.monotonic() - born < LIFETIME:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn, suppress(OSError):
                    behave(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)


def garbage(conn: socket.socket) -> None:
    conn.sendall(b"\xff" * 64 + b"hello, I am not Dask\r\n")
    time.sleep(1.0)


def silent(conn: socket.socket) -> None:
    conn.settimeout(0.2)
    end = time.monotonic() + 15.0
    while time.monotonic() < end:
        try:
            if not conn.recv(1024):
                return
        except TimeoutError:
            continue


def http(conn: socket.socket) -> None:
    """What the dashboard port does: wait for a request, answer it."""
    conn.settimeout(15.0)
    if conn.recv(4096):
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def images(folder: Path, count: int = 2) -> Path:
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((48, 48, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def test_a_port_sending_garbage_gets_one_line_at_once(tmp_path):
    with tcp_server(garbage) as port:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "appliance", "build", str(images(tmp_path / "i")),
             str(tmp_path / "c"), "--engine", "mock", "--quiet",
             "--scheduler", f"tcp://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"tcp://127.0.0.1:{port}" in lines[0] and "not Dask's protocol" in lines[0]
    assert seconds < cluster.CONNECT_TIMEOUT + 30  # startup on a loaded machine included


@pytest.mark.parametrize("behave", [silent, http], ids=["silent", "http"])
def test_a_port_that_stays_silent_gets_one_line_at_the_connect_timeout(monkeypatch, behave):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.5)
    with tcp_server(behave) as port:
        address = f"tcp://127.0.0.1:{port}"
        started = time.monotonic()
        with pytest.raises(cluster.ClusterError) as caught, cluster.Session(address):
            pass
        seconds = time.monotonic() - started
    message = str(caught.value)
    assert "\n" not in message and address in message and "no Dask greeting within 1.5 s" in (
        message)
    assert seconds < 1.5 + 5.0


def test_a_closed_port_is_reported_as_such(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    closed = cluster.Session(f"tcp://127.0.0.1:{port}")
    with pytest.raises(cluster.ClusterError, match="no Dask scheduler answers"), closed:
        pass


def test_the_probe_accepts_a_real_schedulers_greeting():
    pytest.importorskip("distributed")
    import asyncio

    from distributed import Scheduler

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Scheduler:
        return await Scheduler(host="127.0.0.1", port=0, dashboard_address=None)

    scheduler = asyncio.run_coroutine_threadsafe(start(), loop).result(20)
    try:
        cluster.probe_scheduler(scheduler.address, 5.0)
    finally:
        asyncio.run_coroutine_threadsafe(scheduler.close(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


# ---------------------------------------------------------------------------------------------
# The url engine of sosie generate (item 4)


def trickle(conn: socket.socket) -> None:
    """Headers promising 100 kB, then one byte every 0.1 s (each read is quick)."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
    end = time.monotonic() + 15.0
    while time.monotonic() < end:
        conn.sendall(b"x")
        time.sleep(0.1)


def endless_continue(conn: socket.socket) -> None:
    """Interim `100 Continue` answers, never a final one."""
    conn.recv(4096)
    end = time.monotonic() + 15.0
    while time.monotonic() < end:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 64)
        time.sleep(0.001)


@pytest.mark.parametrize("behave", [trickle, endless_continue], ids=["trickle", "continue"])
def test_a_request_is_abandoned_at_its_deadline(behave):
    from appliance.generator.url import Fetcher, ServerGone, UrlSettings

    lines: list[str] = []
    with tcp_server(behave) as port:
        url = f"http://127.0.0.1:{port}/face"
        fetcher = Fetcher(UrlSettings(url, timeout=1.5, retries=1, backoff=0.1),
                          report=lines.append)
        started = time.monotonic()
        with pytest.raises(ServerGone) as caught:
            fetcher.get()
        seconds = time.monotonic() - started
    message = str(caught.value)
    assert "\n" not in message and url in message
    assert "no complete answer within 1.5 s" in message and "after 2 tries" in message
    assert lines == [f"sosie generate: {url}: no complete answer within 1.5 s; retry 1 of 1 "
                     "in 0 s"]
    assert seconds < 2 * 1.5 + 5.0  # two deadlines, not 15 s of trickle


def test_a_refused_first_connection_fails_at_once_with_the_reason():
    from appliance.generator.url import Fetcher, ServerGone, UrlSettings

    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    sleeps: list[float] = []
    fetcher = Fetcher(UrlSettings(f"http://127.0.0.1:{port}/"), sleep=sleeps.append,
                      report=sleeps.append)
    with pytest.raises(ServerGone, match=r"connection refused \(no answer from it yet") as caught:
        fetcher.get()
    assert sleeps == [] and "\n" not in str(caught.value)


def test_each_retry_says_why_and_when(tmp_path):
    from test_generator_url import FakeTime, Server, ok, png

    from appliance.generator.url import Fetcher, UrlSettings

    fake = FakeTime()
    server = Server([(503, {"Retry-After": "7"}, b""), (502, {}, b""), ok(png(200))], fake)
    lines: list[str] = []
    try:
        fetcher = Fetcher(UrlSettings(server.url, backoff=2.0), fake.clock, fake.sleep,
                          lines.append)
        body, _ = fetcher.get()
    finally:
        server.stop()
    assert body == png(200)
    assert lines == [
        f"sosie generate: {server.url}: answered 503 Service Unavailable; retry 1 of 6 in 7 s",
        f"sosie generate: {server.url}: answered 502 Bad Gateway; retry 2 of 6 in 4 s",
    ]


def test_endless_interim_answers_are_cut_at_the_answers_size():
    from appliance.generator.url import HEADER_BYTES, Fetcher, ServerGone, UrlSettings

    with tcp_server(endless_continue) as port:
        url = f"http://127.0.0.1:{port}/face"
        fetcher = Fetcher(UrlSettings(url, timeout=20.0, retries=0, max_bytes=1024),
                          report=print)
        started = time.monotonic()
        with pytest.raises(ServerGone) as caught:
            fetcher.get()
        seconds = time.monotonic() - started
    assert f"sent more than {1024 + HEADER_BYTES} bytes for one answer" in str(caught.value)
    assert seconds < 20.0  # long before the deadline: the answer's size ran out first
