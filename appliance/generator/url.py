"""The `url` engine of `sosie generate`: one new face per request to a web endpoint.

Sites such as thispersondoesnotexist.com answer every GET with a new generated face; that is how
the original installation got its 200,000. This engine is polite: one request at a time, at
most `rate` per second (1 by default), each with a deadline for the whole request (connecting,
every interim `100 Continue`, headers and body: a server trickling a byte a second is abandoned
at the deadline, not kept alive by each byte); 429 and 503 (and 500/502/504 and network errors)
are retried after the server's Retry-After or a doubling backoff, each retry reported on one
line saying why and when. A connection refused, an unknown host or no route before the server
ever answered (a wrong host or port) stops the run at once with the reason. A server that
stays away, refuses for good (404, 403, ...) or asks to wait longer than `max_wait` stops the
run with one line; every face already fetched is kept and the same command resumes.

Each answer is one draw: the bytes are stored as they came (no re-encoding) when they decode to
an image the analyzer finds a face in; empty answers, non-images (an HTML page), byte-identical
repeats of a kept face and faceless images are counted as rejected, with the reason.
"""

from __future__ import annotations

import email.utils
import errno
import functools
import hashlib
import http.client
import io
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from appliance import __version__
from appliance.generator.draws import Draw, judge
from appliance.generator.job import GenerateError

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
              "TIFF": ".tiff"}
RETRIED = (429, 500, 502, 503, 504)
HEADER_BYTES = 1 << 20  # status lines and headers of one answer, interim ones included


class ServerGone(GenerateError):
    """The server cannot or will not answer any more (one line)."""


@dataclass(frozen=True)
class UrlSettings:
    """Where and how politely to fetch."""

    url: str
    rate: float = 1.0  # requests per second, at most
    timeout: float = 30.0  # seconds for a whole request: connecting, headers and body
    retries: int = 6  # in a row, for one draw, before the run stops
    backoff: float = 2.0  # seconds before the first retry without Retry-After; doubles
    max_wait: float = 600.0  # a longer Retry-After stops the run instead
    max_bytes: int = 20 << 20

    def check(self) -> None:
        """ValueError (one line naming the value) for unusable settings."""
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"--url {self.url!r}: expected an http:// or https:// URL")
        if not 0 < self.rate <= 100:
            raise ValueError(f"--rate {self.rate:g}: expected requests per second in (0, 100]")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def say(line: str) -> None:
    """A line on stderr that leaves the progress bar in place."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


@dataclass
class Fetcher:
    """Polite GETs of one URL; `clock` and `sleep` (the pace) are injectable for tests, the
    deadline of a request runs on the real monotonic clock; `report` gets each retry's line."""

    settings: UrlSettings
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    report: Callable[[str], None] = say
    _next: float = field(default=float("-inf"), init=False)
    _answered: bool = field(default=False, init=False)

    def get(self) -> tuple[bytes, str]:
        """(body, Content-Type) of one successful answer; ServerGone when there is none."""
        s = self.settings
        for attempt in range(s.retries + 1):
            last = attempt == s.retries
            self._wait_turn()
            try:
                answer = self._request()
                self._answered = True
                return answer
            except urllib.error.HTTPError as exc:
                self._answered = True
                code, header = exc.code, exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                if code not in RETRIED:
                    raise ServerGone(f"{s.url} answered {code} {exc.reason}") from None
                wait = retry_after(header)
                if wait is not None and wait > s.max_wait:
                    raise ServerGone(f"{s.url} answered {code} and asks to wait {wait:.0f} s "
                                     f"(more than {s.max_wait:.0f} s)") from None
                if last:
                    raise ServerGone(f"{s.url} answered {code} {exc.reason} {attempt + 1} "
                                     "times in a row") from None
                self._retry(f"answered {code} {exc.reason}",
                            wait if wait is not None else s.backoff * 2 ** attempt, attempt)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                if not self._answered and _cannot_connect(exc):
                    raise ServerGone(f"{s.url}: {_why(exc, s.timeout)} (no answer from it yet; "
                                     "check the URL and the network)") from None
                if last:
                    raise ServerGone(f"{s.url}: server gone ({_why(exc, s.timeout)}) after "
                                     f"{attempt + 1} tries") from None
                self._retry(_why(exc, s.timeout), s.backoff * 2 ** attempt, attempt)
        raise AssertionError("unreachable")

    def _retry(self, why: str, seconds: float, attempt: int) -> None:
        self._defer(seconds)
        self.report(f"sosie generate: {self.settings.url}: {why}; retry {attempt + 1} of "
                    f"{self.settings.retries} in {seconds:.0f} s")

    def _request(self) -> tuple[bytes, str]:
        s = self.settings
        request = urllib.request.Request(s.url, headers={
            "User-Agent": f"sosie/{__version__} (generated-face corpus; polite, "
                          f"{s.rate:g} request/s at most)",
            "Accept": "image/*",
        })
        deadline = time.monotonic() + s.timeout
        most = s.max_bytes + HEADER_BYTES  # interim answers and headers count too
        opener = urllib.request.build_opener(_DeadlineHTTP(deadline, most),
                                             _DeadlineHTTPS(deadline, most))
        with opener.open(request, timeout=s.timeout) as response:
            body = response.read(s.max_bytes + 1)
            return body, response.headers.get("Content-Type", "")

    def _wait_turn(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.settings.rate

    def _defer(self, seconds: float) -> None:
        self._next = max(self._next, self.clock() + seconds)


class DeadlinePassed(TimeoutError):
    """The request's deadline passed (not one read's timeout)."""


class AnswerTooLong(http.client.HTTPException):
    """More bytes came than an answer may hold (endless interim answers, headers, a body)."""


class _DeadlineSocket:
    """A connected socket whose every send and receive ends at one `deadline` (monotonic),
    receiving at most `most` bytes in all."""

    def __init__(self, sock: Any, deadline: float, most: int) -> None:
        self._sock, self._deadline, self._left, self._most = sock, deadline, most, most
        self._readers, self._closed = 0, False

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed("deadline passed")
        self._sock.settimeout(left)

    def sendall(self, data: Any) -> None:
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, buffer: Any, size: int = 0) -> int:
        self._arm()
        count = self._sock.recv_into(buffer, size)
        self._left -= count
        if self._left < 0:
            raise AnswerTooLong(f"sent more than {self._most} bytes for one answer")
        return count

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def close(self, reader: bool = False) -> None:
        """Closed when the connection and every reader made by `makefile` are (urllib closes
        the connection while the response still reads, as with a plain socket)."""
        if reader:
            self._readers -= 1
        else:
            self._closed = True
        if self._closed and self._readers <= 0:
            self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.close(reader=True)
        super().close()


class _DeadlineConnection:
    """Mixed into http.client's connections: the socket gets the request's deadline."""

    deadline: float
    most: int
    timeout: float | None
    sock: Any

    def __init__(self, *args: Any, deadline: float, most: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.deadline, self.most = deadline, most

    def connect(self) -> None:
        self.timeout = max(0.001, min(self.timeout or 0.001, self.deadline - time.monotonic()))
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock, self.deadline, self.most)  # after TLS, for https


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _DeadlineHandler:
    """Mixed into urllib's handlers: the connections they open get the request's limits."""

    def __init__(self, deadline: float, most: int) -> None:
        super().__init__()
        self.limits = {"deadline": deadline, "most": most}


class _DeadlineHTTP(_DeadlineHandler, urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_HTTPConnection, **self.limits), req)


class _DeadlineHTTPS(_DeadlineHandler, urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_HTTPSConnection, **self.limits), req)


def _cannot_connect(exc: BaseException) -> bool:
    """Whether `exc` says the server cannot be reached at all (refused, unknown host, no
    route): before any answer, that is a wrong URL or port, not worth six retries."""
    reason = getattr(exc, "reason", None) or exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror) or (
        isinstance(reason, OSError) and reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH,
                                                         errno.EADDRNOTAVAIL))


def _why(exc: BaseException, timeout: float = 0.0) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, socket.timeout | TimeoutError):
        return f"no complete answer within {timeout:g} s" if timeout else "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return " ".join(str(text).split())


@dataclass
class UrlDrawer:
    """The `url` engine: draws are requests, made one at a time in index order."""

    settings: UrlSettings
    engine: Any  # appliance.corpus.engines.Engine: the face analyzer that accepts draws
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    report: Callable[[str], None] = say
    _fetcher: Fetcher | None = field(default=None, init=False)
    _analyzer: Any = field(default=None, init=False)

    def identity(self) -> dict[str, Any]:
        return {"engine": "url", "url": self.settings.url,
                "analyzer": {"models": self.engine.checksums(),
                             "settings": self.engine.settings()}}

    def draws(self, indices: list[int], seen: dict[str, str]) -> Iterator[Draw]:
        """Fetch and judge draws `indices`; `seen`: sha256 -> file of every face kept so far."""
        if self._fetcher is None:
            self._fetcher = Fetcher(self.settings, self.clock, self.sleep, self.report)
            self._analyzer = self.engine.create()
        for index in indices:
            body, content_type = self._fetcher.get()
            yield self.judge(index, body, content_type, seen)

    def judge(self, index: int, body: bytes, content_type: str, seen: dict[str, str]) -> Draw:
        """One answer -> a kept face or a rejected draw with its reason."""
        from PIL import Image

        from appliance.images import ImageError, load_image

        if not body:
            return Draw(index, "empty answer")
        if len(body) > self.settings.max_bytes:
            return Draw(index, f"answer larger than {self.settings.max_bytes} bytes")
        digest = hashlib.sha256(body).hexdigest()
        if digest in seen:
            return Draw(index, f"duplicate of {seen[digest]}")
        kind = content_type.split(";")[0].strip() or "no Content-Type"
        try:
            rgb = load_image(body, name=f"answer {index}")
            with Image.open(io.BytesIO(body)) as image:
                extension = EXTENSIONS.get(image.format or "")
        except ImageError:
            return Draw(index, f"not an image ({kind})")
        except Exception as exc:  # a decoder crash must not stop a long run
            return Draw(index, f"unreadable image ({kind}, {type(exc).__name__})")
        if extension is None:
            return Draw(index, f"unsupported image format ({kind})")
        reason = judge(self._analyzer, rgb)
        if reason is not None:
            return Draw(index, reason)
        return Draw(index, None, body, f"url-{index:07d}{extension}")
