"""The url engine against a local HTTP server this test starts on 127.0.0.1: polite rate,
Retry-After, 429/503 backoff, repeats and non-images rejected with reasons, a server that goes
away mid-run stops the run with the faces kept, and the same command resumes."""

from __future__ import annotations

import io
import json
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from generator_helpers import DarkEngine
from PIL import Image

from appliance.generator.job import GenerateError, generate
from appliance.generator.journal import DRAWS, WORK_DIR
from appliance.generator.url import UrlDrawer, UrlSettings, retry_after


def png(level: int, size: int = 32) -> bytes:
    """A PNG whose mean is ~`level` (DarkEngine keeps it when above 128), unique per level."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), level, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def ok(body: bytes, content_type: str = "image/png") -> tuple:
    return (200, {"Content-Type": content_type}, body)


class FakeTime:
    """A clock that only moves when slept on (the run never really waits)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Server:
    """Answers GETs from a script: (status, headers, body) items, or "drop" (hang up)."""

    def __init__(self, items: list, time: FakeTime, port: int = 0) -> None:
        self.items, self.time = deque(items), time
        self.requests: list[tuple[float, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((server.time.now, dict(self.headers)))
                item = server.items.popleft() if server.items else ok(png(250))
                if item == "drop":
                    self.close_connection = True
                    return
                status, headers, body = item
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/face"
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def serve(fake) -> Iterator:
    servers: list[Server] = []

    def start(items: list, port: int = 0) -> Server:
        servers.append(Server(items, fake, port))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def drawer(url: str, fake: FakeTime, **settings) -> UrlDrawer:
    settings.setdefault("timeout", 5.0)
    return UrlDrawer(UrlSettings(url, **settings), DarkEngine(), fake.clock, fake.sleep)


def journal(out) -> list[dict]:
    return [json.loads(x) for x in (out / WORK_DIR / DRAWS).read_text().splitlines()]


def test_faces_come_at_the_rate_and_are_stored_as_served(serve, fake, tmp_path):
    bodies = [png(200 + i) for i in range(5)]
    server = serve([ok(b) for b in bodies])
    report = generate(tmp_path / "f", 5, drawer(server.url, fake, rate=2.0), progress=False)
    assert report.faces == 5 and report.draws == 5 and not report.rejected
    times = [t for t, _ in server.requests]
    assert len(times) == 5 and times[0] == 1000.0  # the first request does not wait
    assert np.diff(times) == pytest.approx([0.5] * 4)  # no faster than 2/s, and no slower
    for i, body in enumerate(bodies):
        assert (tmp_path / "f" / f"url-{i:07d}.png").read_bytes() == body
    headers = server.requests[0][1]
    assert headers["User-Agent"].startswith("sosie/") and headers["Accept"] == "image/*"


def test_the_default_rate_is_one_request_per_second(serve, fake, tmp_path):
    server = serve([ok(png(200 + i)) for i in range(3)])
    generate(tmp_path / "f", 3, drawer(server.url, fake), progress=False)
    assert np.diff([t for t, _ in server.requests]) == pytest.approx([1.0, 1.0])


def test_retry_after_is_honoured(serve, fake, tmp_path):
    server = serve([(429, {"Retry-After": "7"}, b"slow down"), ok(png(200)),
                    (503, {"Retry-After": "30"}, b"busy"), ok(png(201))])
    generate(tmp_path / "f", 2, drawer(server.url, fake), progress=False)
    times = [t for t, _ in server.requests]
    assert np.diff(times) == pytest.approx([7.0, 1.0, 30.0])


def test_retry_after_as_an_http_date():
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after("12") == 12.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_429_and_503_without_retry_after_back_off_doubling(serve, fake, tmp_path):
    server = serve([(429, {}, b""), (503, {}, b""), (429, {}, b""), ok(png(200))])
    generate(tmp_path / "f", 1, drawer(server.url, fake, backoff=2.0), progress=False)
    assert np.diff([t for t, _ in server.requests]) == pytest.approx([2.0, 4.0, 8.0])


def test_a_server_that_keeps_refusing_stops_the_run(serve, fake, tmp_path):
    server = serve([ok(png(200))] + [(503, {}, b"")] * 20)
    with pytest.raises(GenerateError) as info:
        generate(tmp_path / "f", 3, drawer(server.url, fake, retries=3), progress=False)
    message = str(info.value)
    assert "answered 503 Service Unavailable 4 times in a row" in message
    assert "1 of 3 faces kept" in message and "run the same command again" in message
    assert len(server.requests) == 5 and "\n" not in message


def test_a_retry_after_beyond_the_limit_stops_the_run(serve, fake, tmp_path):
    server = serve([(429, {"Retry-After": "86400"}, b"")])
    with pytest.raises(GenerateError, match="asks to wait 86400 s"):
        generate(tmp_path / "f", 1, drawer(server.url, fake), progress=False)
    assert fake.sleeps == []


def test_a_missing_page_stops_at_once(serve, fake, tmp_path):
    server = serve([(404, {}, b"nothing here")])
    with pytest.raises(GenerateError, match=r"answered 404 Not Found; 0 of 1 faces kept"):
        generate(tmp_path / "f", 1, drawer(server.url, fake), progress=False)
    assert len(server.requests) == 1


def test_repeats_non_images_and_faceless_answers_are_rejected_with_reasons(serve, fake, tmp_path):
    a, b, c = png(200), png(210), png(220)
    server = serve([
        ok(a), ok(a), ok(b"<html><body>Just a moment...</body></html>", "text/html; charset=utf-8"),
        ok(b""), ok(png(50)), ok(b"\x89PNG\r\n\x1a\n garbage", "image/png"), ok(b), "drop", ok(c),
    ])
    report = generate(tmp_path / "f", 3, drawer(server.url, fake), progress=False)
    assert report.faces == 3 and report.draws == 8
    reasons = [x.get("reason") for x in journal(tmp_path / "f")]
    assert reasons == [None, "duplicate of url-0000000.png", "not an image (text/html)",
                       "empty answer", "too dark (mean 50)", "not an image (image/png)", None,
                       None]
    assert sorted(p.name for p in (tmp_path / "f").glob("url-*")) == [
        "url-0000000.png", "url-0000006.png", "url-0000007.png"]
    assert (tmp_path / "f" / "url-0000007.png").read_bytes() == c  # after the hang-up, retried
    assert report.rejected["duplicate of url-0000000.png"] == 1


def test_a_server_gone_mid_run_stops_with_the_faces_kept_and_resumes(serve, fake, tmp_path):
    first = serve([ok(png(200)), ok(png(201)), ok(png(202))])
    stopped: list[bool] = []

    def sleep(seconds: float) -> None:  # the server goes away after its third answer
        if len(first.requests) == 3 and not stopped:
            first.stop()
            stopped.append(True)
        fake.sleep(seconds)

    out = tmp_path / "f"
    d = UrlDrawer(UrlSettings(first.url, timeout=5.0, retries=2), DarkEngine(), fake.clock,
                  sleep)
    with pytest.raises(GenerateError) as info:
        generate(out, 5, d, progress=False)
    message = str(info.value)
    assert "server gone (connection refused) after 3 tries" in message
    assert f"3 of 5 faces kept in {out}: run the same command again to resume" in message
    kept = {p.name: p.read_bytes() for p in out.glob("url-*")}
    assert sorted(kept) == ["url-0000000.png", "url-0000001.png", "url-0000002.png"]
    again = serve([ok(png(203)), ok(png(204))], port=first.port)
    report = generate(out, 5, drawer(again.url, fake), progress=False)
    assert report.faces == 5 and len(again.requests) == 2
    assert all((out / name).read_bytes() == data for name, data in kept.items())
    assert (out / "url-0000004.png").read_bytes() == png(204)


def test_a_slow_answer_times_out_and_is_retried(serve, fake, tmp_path):
    import time

    slow = threading.Event()
    server = serve([])
    original = server.http.RequestHandlerClass.do_GET

    def do_get(handler) -> None:
        if not slow.is_set():
            slow.set()
            time.sleep(1.0)
            handler.close_connection = True
            return
        original(handler)

    server.http.RequestHandlerClass.do_GET = do_get
    report = generate(tmp_path / "f", 1, drawer(server.url, fake, timeout=0.2), progress=False)
    assert report.faces == 1 and slow.is_set() and fake.sleeps[0] == pytest.approx(2.0)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="--url 'ftp://x'"):
        UrlSettings("ftp://x").check()
    with pytest.raises(ValueError, match="--rate 0"):
        UrlSettings("http://x", rate=0).check()
