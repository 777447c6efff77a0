"""The `url` engine of `sosie generate`: one new face per request to a web endpoint.

Sites such as thispersondoesnotexist.com answer every GET with a new generated face; that is how
the original installation got its 200,000. This engine is polite: one request at a time, at
most `rate` per second (1 by default), each with a timeout; 429 and 503 (and 500/502/504 and
network errors) are retried after the server's Retry-After or a doubling backoff. A server that
stays away, refuses for good (404, 403, ...) or asks to wait longer than `max_wait` stops the
run with one line; every face already fetched is kept and the same command resumes.

Each answer is one draw: the bytes are stored as they came (no re-encoding) when they decode to
an image the analyzer finds a face in; empty answers, non-images (an HTML page), byte-identical
repeats of a kept face and faceless images are counted as rejected, with the reason.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import io
import socket
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


class ServerGone(GenerateError):
    """The server cannot or will not answer any more (one line)."""


@dataclass(frozen=True)
class UrlSettings:
    """Where and how politely to fetch."""

    url: str
    rate: float = 1.0  # requests per second, at most
    timeout: float = 30.0  # seconds for connecting and for each read
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


@dataclass
class Fetcher:
    """Polite GETs of one URL; `clock` and `sleep` are injectable for tests."""

    settings: UrlSettings
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float = field(default=float("-inf"), init=False)

    def get(self) -> tuple[bytes, str]:
        """(body, Content-Type) of one successful answer; ServerGone when there is none."""
        s = self.settings
        for attempt in range(s.retries + 1):
            last = attempt == s.retries
            self._wait_turn()
            try:
                return self._request()
            except urllib.error.HTTPError as exc:
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
                self._defer(wait if wait is not None else s.backoff * 2 ** attempt)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                if last:
                    raise ServerGone(f"{s.url}: server gone ({_why(exc)}) after "
                                     f"{attempt + 1} tries") from None
                self._defer(s.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def _request(self) -> tuple[bytes, str]:
        s = self.settings
        request = urllib.request.Request(s.url, headers={
            "User-Agent": f"sosie/{__version__} (generated-face corpus; polite, "
                          f"{s.rate:g} request/s at most)",
            "Accept": "image/*",
        })
        with urllib.request.urlopen(request, timeout=s.timeout) as response:
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


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, socket.timeout | TimeoutError):
        return "timed out"
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
    _fetcher: Fetcher | None = field(default=None, init=False)
    _analyzer: Any = field(default=None, init=False)

    def identity(self) -> dict[str, Any]:
        return {"engine": "url", "url": self.settings.url,
                "analyzer": {"models": self.engine.checksums(),
                             "settings": self.engine.settings()}}

    def run(self, indices: list[int], seen: dict[str, str]) -> Iterator[Draw]:
        """Fetch and judge draws `indices`; `seen`: sha256 -> file of every face kept so far."""
        if self._fetcher is None:
            self._fetcher = Fetcher(self.settings, self.clock, self.sleep)
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
