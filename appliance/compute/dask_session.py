"""A Dask client with deadlines, and a bounded window of tasks over it: how corpus/ (the build)
and generator/ (the draws) run tasks on a cluster.

Every call to the scheduler has a deadline; a scheduler that goes away (no reconnection within
`CONNECT_TIMEOUT`), or has no worker for `NO_WORKER_TIMEOUT`, raises `ClusterError` on one line.
Dask moves pickles between client, scheduler and workers: a cluster must only listen on a
network its users trust (see the README).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from appliance.errors import one_line

CONNECT_TIMEOUT = 10.0  # s: connecting, and reconnecting after the scheduler dropped us
CALL_TIMEOUT = 30.0  # s: one question to the scheduler (workers, threads)
COMM_SETTLE_SECONDS = 3.0  # s: after a closed connection, for the client to see its scheduler gone
RESULT_TIMEOUT = 300.0  # s: fetching one finished chunk's bytes from its worker
NO_WORKER_TIMEOUT = 120.0  # s: a cluster without any worker for this long stops the build
STREAM_BUDGET_BYTES = 64 << 20  # streamed bytes submitted and not finished, at most
_ADDRESS = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
                      r":(\d{1,5})")


class ClusterError(RuntimeError):
    """The cluster cannot run the work (one line)."""


def parse_address(text: str, key: str = "--scheduler") -> str:
    """`tcp://HOST:PORT`, checked (ValueError naming `key` otherwise)."""
    match = _ADDRESS.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError(f"{key} {text!r}: expected tcp://HOST:PORT of a Dask scheduler")
    return text.strip()


# ---------------------------------------------------------------------------------------------
# The connection


#: A Dask comm's greeting: its first message (the handshake), a few hundred bytes.
GREETING_MAX_BYTES = 64 * 1024
GREETING_MAX_FRAMES = 64


def probe_scheduler(address: str, timeout: float) -> None:
    """Check, within `timeout` seconds in all, that `address` speaks Dask's protocol first.

    A Dask scheduler greets every new connection with its handshake: an 8-byte frame length,
    then a frame count and frame lengths that add up. Anything else (garbage, which Dask's own
    client would take as a length and allocate, an HTTP server waiting for a request, a port
    that accepts and stays silent) raises ClusterError on one line instead of a MemoryError or
    a wait without end. OSError when nothing accepts the connection.
    """
    import socket
    import struct

    match = _ADDRESS.fullmatch(address)
    assert match is not None
    host, port = match.group(1).strip("[]"), int(match.group(2))
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    def read(sock: socket.socket, count: int) -> bytes:
        data = b""
        while len(data) < count:
            sock.settimeout(left())
            block = sock.recv(count - len(data))
            if not block:
                raise ClusterError(f"{address}: the port closed the connection without the "
                                   "greeting of a Dask scheduler (not a scheduler's port?)")
            data += block
        return data

    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            (total,) = struct.unpack("<Q", read(sock, 8))
            if not 16 <= total <= GREETING_MAX_BYTES:
                raise ValueError
            body = read(sock, total)
            (frames,) = struct.unpack_from("<Q", body)
            if not 1 <= frames <= GREETING_MAX_FRAMES or 8 + 8 * frames > total:
                raise ValueError
            lengths = struct.unpack_from(f"<{frames}Q", body, 8)
            if sum(lengths) > total - 8 - 8 * frames:
                raise ValueError
        except TimeoutError:
            raise ClusterError(
                f"{address}: accepts connections but sent no Dask greeting within "
                f"{timeout:g} s (an HTTP server, e.g. the dashboard, or another service? a "
                "scheduler listens on tcp://HOST:8786 by default)") from None
        except ValueError:
            raise ClusterError(f"{address}: answered with something that is not Dask's "
                               "protocol (another service on that port?)") from None


class Session:
    """A connected Dask client with deadlines, and a bounded window of tasks over it."""

    def __init__(self, address: str) -> None:
        self.address = parse_address(address)
        self.client: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Session:
        try:
            import dask
            from distributed import Client
        except ImportError:
            raise ClusterError(f"{self.address}: --scheduler (work on a Dask cluster) needs Dask: "
                               "pip install 'sosie[cluster]'") from None
        self._stack.enter_context(dask.config.set({
            "distributed.comm.timeouts.connect": f"{CONNECT_TIMEOUT}s",
            "distributed.comm.timeouts.tcp": "30s",
        }))
        self._stack.enter_context(_quiet_dask())
        try:
            probe_scheduler(self.address, CONNECT_TIMEOUT)
            self.client = Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self._stack.close()
            raise ClusterError(f"{self.address}: no Dask scheduler answers "
                               f"({one_line(exc, typed=True)})") from None
        except ClusterError:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        client, self.client = self.client, None
        with contextlib.suppress(Exception):
            client.close(timeout=5)
        self._stack.close()

    def threads(self) -> int:
        """Worker threads the scheduler knows of now (ClusterError when it does not answer)."""
        if self.client.status != "running":
            return 0
        try:
            nthreads = self.client.sync(self.client.scheduler.ncores,
                                        callback_timeout=CALL_TIMEOUT)
        except Exception as exc:
            if self.client.status != "running":
                return 0
            raise ClusterError(f"{self.address}: the scheduler does not answer "
                               f"({one_line(exc, typed=True)})") from None
        return sum(int(n) for n in nthreads.values())

    def wait_for_workers(self, seconds: float = NO_WORKER_TIMEOUT) -> int:
        deadline = time.monotonic() + seconds
        while True:
            threads = self.threads()
            if threads:
                return threads
            self.check_alive(0.0)
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.address}: no worker joined the scheduler within "
                                   f"{seconds:.0f} s (start some: dask worker {self.address})")
            time.sleep(0.5)

    def check_alive(self, lost_since: float) -> float:
        """Raise once the scheduler is gone for good; returns since when it has been away."""
        status = self.client.status
        if status == "running":
            return 0.0
        now = time.monotonic()
        lost_since = lost_since or now
        if status in ("closed", "closing", "failed") or now - lost_since > CONNECT_TIMEOUT + 5:
            raise ClusterError(f"{self.address}: lost the Dask scheduler ({status})")
        return lost_since

    def as_completed(self, tasks: Iterable[Task], on_threads: Callable[[int], None] | None = None,
            threads: int = 1) -> TaskWindow:
        """Submit `tasks` (at most twice the cluster's threads, and `STREAM_BUDGET_BYTES` of
        payload, at a time) and yield (task, result, None) or (task, None, error) as they end.
        Tasks given to the returned window's `first(tasks)` while iterating run next."""
        return TaskWindow(self, tasks, on_threads, threads)


@dataclass(frozen=True)
class Task:
    """One Dask task: `function(*args)`, `payload` bytes of it streamed from here."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    label: str
    payload: int = 0
    tag: Any = None


class TaskWindow:
    """The iterator `Session.as_completed` returns."""

    def __init__(self, session: Session, tasks: Iterable[Task],
                 on_threads: Callable[[int], None] | None, threads: int) -> None:
        self.session, self.on_threads = session, on_threads
        self.sources: deque[Iterator[Task]] = deque([iter(tasks)])
        self.held: Task | None = None  # the next task, waiting for the payload budget
        self.inflight: dict[Any, Task] = {}
        self.payload = 0
        self.limit = max(2, 2 * threads)
        self.checked = time.monotonic()
        self.finished = threading.Event()  # set by Dask when any task ends
        self.lost_since = 0.0
        self.idle_since = 0.0

    def __iter__(self) -> TaskWindow:
        return self

    def __next__(self) -> tuple[Task, Any, BaseException | None]:
        while True:
            self._fill()
            if not self.inflight:
                raise StopIteration
            for future, task in list(self.inflight.items()):
                if future.done():
                    del self.inflight[future]
                    self.payload -= task.payload
                    return (task, *self._outcome(future, task))
            self._health()
            self.finished.wait(0.5)
            self.finished.clear()

    def first(self, tasks: Iterable[Task]) -> None:
        """Run these (pulled lazily) before the rest."""
        self.sources.appendleft(iter(tasks))

    def close(self) -> None:
        """Cancel what is still running (a stopped build leaves nothing queued)."""
        futures, self.inflight = list(self.inflight), {}
        if futures and self.session.client.status == "running":
            with contextlib.suppress(Exception):
                self.session.client.cancel(futures, asynchronous=False)

    def _fill(self) -> None:
        while len(self.inflight) < self.limit:
            task, self.held = self.held, None
            while task is None and self.sources:
                task = next(self.sources[0], None)
                if task is None:
                    self.sources.popleft()
            if task is None:
                return
            if self.inflight and self.payload + task.payload > STREAM_BUDGET_BYTES:
                self.held = task
                return
            key = f"sosie-{task.label}-{uuid.uuid4().hex[:12]}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "large graph": streamed files, bounded here
                future = self.session.client.submit(task.function, *task.args, key=key,
                                                    pure=False)
            self.inflight[future] = task
            self.payload += task.payload
            future.add_done_callback(lambda _: self.finished.set())

    def _outcome(self, future: Any, task: Task) -> tuple[Any, BaseException | None]:
        status = future.status
        try:
            if status == "finished":
                return future.result(timeout=RESULT_TIMEOUT), None
            if status == "error":
                return None, future.exception(timeout=CALL_TIMEOUT)
        except Exception as exc:
            if _connection_lost(exc):  # the client may learn a moment later that it is alone
                _wait_while_running(self.session.client, COMM_SETTLE_SECONDS)
            if self.session.client.status != "running":
                self.session.check_alive(time.monotonic() - CONNECT_TIMEOUT - 6)
            return None, exc
        finally:
            with contextlib.suppress(Exception):
                future.release()
        self.session.check_alive(time.monotonic() - CONNECT_TIMEOUT - 6)  # cancelled
        raise ClusterError(f"{self.session.address}: the scheduler dropped {task.label}")

    def _health(self) -> None:
        now = time.monotonic()
        self.lost_since = self.session.check_alive(self.lost_since)
        if self.lost_since or now - self.checked < 2.0:
            return
        self.checked = now
        threads = self.session.threads()
        self.limit = max(2, 2 * threads)
        if self.on_threads is not None:
            self.on_threads(threads)
        if threads:
            self.idle_since = 0.0
            return
        self.idle_since = self.idle_since or now
        if now - self.idle_since > NO_WORKER_TIMEOUT:
            raise ClusterError(f"{self.session.address}: no worker for "
                               f"{NO_WORKER_TIMEOUT:.0f} s")


def _connection_lost(exc: BaseException) -> bool:
    """A closed connection (Dask's CommClosedError, tornado's StreamClosedError, OSError)."""
    return isinstance(exc, OSError) or type(exc).__name__ in ("CommClosedError",
                                                              "StreamClosedError")


def _wait_while_running(client: Any, seconds: float) -> None:
    """Give the client up to `seconds` to notice that its scheduler has gone."""
    deadline = time.monotonic() + seconds
    while client.status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own log lines (reconnecting, lost workers, tracebacks of its closing client) stay
    out of the build's output: the build reports what matters in one line."""
    names = [name for name in list(logging.root.manager.loggerDict)
             if name.split(".")[0] in ("distributed", "tornado", "asyncio")]
    loggers = [logging.getLogger(name) for name in {"distributed", "tornado", "asyncio", *names}]
    states = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, state in zip(loggers, states, strict=True):
            logger.disabled = state
