"""`sosie build --scheduler tcp://HOST:PORT`: the build's chunks as tasks on a Dask cluster.

The client (this machine) lists the source, cuts it into the same chunks as a local build and
submits one task per unfinished chunk to the scheduler; a worker turns a chunk into the bytes of
its chunk file (`chunks.chunk_bytes`) and sends them back, and the client checks them and
writes them atomically into `CORPUS_DIR/.build/` as a local build does. Resume, rejected list,
duplicates, ordering and the assembled corpus are therefore those of a local build, byte for
byte (`built` and `build_seconds` aside).

Each worker thread loads the face models (and the generator's network) once, on its first task,
and checks their checksums against the client's: a worker with other models stops the build
instead of mixing descriptors. Sources on a cluster:

- `dcgan:COUNT[:SEED]`: only index ranges travel; the faces are drawn on the workers.
- a folder, `shared`: the workers read the files at the client's path (a shared file system).
  A worker first checks each file's size and mtime against the client's listing; a file it
  cannot see, or sees differently, sends its chunk back to the client, which streams it.
- a folder, `stream`: the client reads the files and sends them in batches of at most
  `STREAM_BATCH_BYTES`, with at most `STREAM_BUDGET_BYTES` in flight, never the whole folder.
  `auto` (default) asks one worker whether it sees the folder (first, middle and last files)
  and picks `shared` if it does.

Faults: a worker that dies mid-chunk has its chunk run again elsewhere by the scheduler; a chunk
that kills workers `distributed.scheduler.allowed-failures` times is split into single images,
and an image that does it again is rejected ("analyzer crashed"). A scheduler that goes away (no
reconnection within `CONNECT_TIMEOUT`), or has no worker for `NO_WORKER_TIMEOUT`, stops the
build with one line; the chunks finished so far stay for the resume. Every call to the
scheduler has a deadline.

Dask moves pickles between client, scheduler and workers: a cluster must only listen on a
network its users trust (see the README).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.corpus.analysis import analyze_data, analyze_drawn_group, read_source
from appliance.corpus.chunks import ItemResult, SourceFile, chunk_bytes, parse_chunk
from appliance.corpus.format import CorpusError
from appliance.errors import one_line
from appliance.generator.source import describe_groups

CONNECT_TIMEOUT = 10.0  # s: connecting, and reconnecting after the scheduler dropped us
CALL_TIMEOUT = 30.0  # s: one question to the scheduler (workers, threads)
COMM_SETTLE_SECONDS = 3.0  # s: after a closed connection, for the client to see its scheduler gone
RESULT_TIMEOUT = 300.0  # s: fetching one finished chunk's bytes from its worker
NO_WORKER_TIMEOUT = 120.0  # s: a cluster without any worker for this long stops the build
STREAM_BATCH_BYTES = 8 << 20  # streamed files per task, at most (one larger file goes alone)
STREAM_BUDGET_BYTES = 64 << 20  # streamed bytes submitted and not finished, at most
FILE_MODES = ("auto", "shared", "stream")
_ADDRESS = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
                      r":(\d{1,5})")


class ClusterError(CorpusError):
    """The cluster cannot run the build (one line; finished chunks are kept)."""


class NotShared(Exception):
    """A worker does not see a source file as the client listed it (the client streams it)."""


class WorkerMismatch(RuntimeError):
    """A worker has other models or generator weights than the client."""


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
            raise ClusterError(f"{self.address}: building on a cluster needs Dask: "
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
            self._check_alive(0.0)
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.address}: no worker joined the scheduler within "
                                   f"{seconds:.0f} s (start some: dask worker {self.address})")
            time.sleep(0.5)

    def _check_alive(self, lost_since: float) -> float:
        """Raise once the scheduler is gone for good; returns since when it has been away."""
        status = self.client.status
        if status == "running":
            return 0.0
        now = time.monotonic()
        lost_since = lost_since or now
        if status in ("closed", "closing", "failed") or now - lost_since > CONNECT_TIMEOUT + 5:
            raise ClusterError(f"{self.address}: lost the Dask scheduler ({status})")
        return lost_since

    def run(self, tasks: Iterable[Task], on_threads: Callable[[int], None] | None = None,
            threads: int = 1) -> _Window:
        """Submit `tasks` (at most twice the cluster's threads, and `STREAM_BUDGET_BYTES` of
        payload, at a time) and yield (task, result, None) or (task, None, error) as they end.
        Tasks given to the returned window's `first(tasks)` while iterating run next."""
        return _Window(self, tasks, on_threads, threads)


@dataclass(frozen=True)
class Task:
    """One Dask task: `function(*args)`, `payload` bytes of it streamed from here."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    label: str
    payload: int = 0
    tag: Any = None


class _Window:
    """The iterator `Session.run` returns."""

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

    def __iter__(self) -> _Window:
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
                self.session._check_alive(time.monotonic() - CONNECT_TIMEOUT - 6)
            return None, exc
        finally:
            with contextlib.suppress(Exception):
                future.release()
        self.session._check_alive(time.monotonic() - CONNECT_TIMEOUT - 6)  # cancelled
        raise ClusterError(f"{self.session.address}: the scheduler dropped {task.label}")

    def _health(self) -> None:
        now = time.monotonic()
        self.lost_since = self.session._check_alive(self.lost_since)
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


# ---------------------------------------------------------------------------------------------
# The build on a cluster (client side)


@dataclass(frozen=True)
class ChunkJob:
    """What every chunk task needs: the build key, engine and the checksums the client expects,
    thumbnail settings, and the source (generator or folder path)."""

    key: str
    engine: Any
    checksums: dict[str, str]
    thumbs: tuple[int, str, int]
    generator: Any = None  # GeneratorSource
    folder: str = ""


@dataclass(frozen=True)
class _Batch:
    chunk: int
    first: int  # index of its first image in the chunk
    files: tuple[SourceFile, ...]
    whole: bool


class ClusterRun:
    """A build's processing step on the cluster at `address` (see the module)."""

    def __init__(self, address: str, files: str = "auto") -> None:
        self.address = parse_address(address)
        if files not in FILE_MODES:
            raise ValueError(f"cluster files {files!r}: expected one of {', '.join(FILE_MODES)}")
        self.files = files
        self.mode = ""  # what was used: generator, shared or stream
        self.threads = 0  # worker threads when the build started

    def describe(self) -> str:
        how = {"generator": "faces drawn on the workers",
               "shared": "workers read the files at the same path (shared file system)",
               "stream": "files streamed from this machine in batches"}.get(self.mode, "")
        return f"on {self.address}: {how}" if how else f"on {self.address}"

    def run(self, source: Any, collector: Any, engine: Any, settings: Any,
            progress: bool = True) -> None:
        from appliance.generator.source import GeneratorSource

        generator = source if isinstance(source, GeneratorSource) else None
        thumbs = (settings.thumbnail_size, settings.thumbnail_encoding, settings.jpeg_quality)
        job = ChunkJob(collector.key, engine, engine.checksums(), thumbs, generator,
                       "" if generator else str(Path(source).resolve()))
        batches = [_Batch(k, 0, tuple(collector.chunks[k]), True)
                   for k in sorted(collector.remaining)]
        with Session(self.address) as session:
            self.threads = session.wait_for_workers()
            self.mode = "generator" if generator else self._choose(session, job, batches)
            if progress:
                collector.bar.write(f"sosie build {self.describe()}", file=sys.stderr)
            def show(threads: int) -> None:
                collector.bar.set_description(f"sosie build ({threads} cluster threads)",
                                              refresh=False)

            show(self.threads)
            window = session.run(self._tasks(job, batches, self.mode), show, self.threads)
            try:
                for task, result, error in window:
                    self._finish(window, job, task, result, error, collector)
            finally:
                window.close()

    def _choose(self, session: Session, job: ChunkJob, batches: list[_Batch]) -> str:
        if self.files != "auto":
            return self.files
        files = [f for b in batches for f in b.files]
        if not files:
            return "stream"
        sample = [files[0], files[len(files) // 2], files[-1]]
        future = session.client.submit(sees_files, job.folder, sample, pure=False)
        try:
            return "shared" if future.result(timeout=CALL_TIMEOUT) else "stream"
        except Exception:
            session._check_alive(time.monotonic() - CONNECT_TIMEOUT - 6)
            return "stream"
        finally:
            with contextlib.suppress(Exception):
                future.release()

    def _tasks(self, job: ChunkJob, batches: Iterable[_Batch], mode: str) -> Iterator[Task]:
        for batch in batches:
            if mode == "stream":
                yield from _streamed(job, batch)
            elif mode == "generator":
                first = job.generator.index(batch.files[0].rel)
                yield Task(run_generated, (job, first, len(batch.files)),
                           f"chunk-{batch.chunk:06d}-{batch.first}", tag=batch)
            else:
                yield Task(run_shared, (job, batch.files),
                           f"chunk-{batch.chunk:06d}-{batch.first}", tag=batch)

    def _finish(self, window: _Window, job: ChunkJob, task: Task, result: Any,
                error: BaseException | None, collector: Any) -> None:
        batch: _Batch = task.tag
        if error is None:
            results = _checked(result, job, batch)
            if batch.whole:
                collector.add_chunk(batch.chunk, results, result)
            else:
                for j, item in enumerate(results):
                    collector.add(batch.chunk, batch.first + j, item)
            return
        if isinstance(error, NotShared):  # this worker cannot see the files: send them
            window.first(_streamed(job, batch))
            return
        if type(error).__name__ == "KilledWorker":
            if len(batch.files) > 1:  # find the image that kills workers: one task each
                singles = [_Batch(batch.chunk, batch.first + j, (f,), False)
                           for j, f in enumerate(batch.files)]
                window.first(self._tasks(job, singles, task_mode(task)))
                return
            collector.add(batch.chunk, batch.first, ItemResult(
                "analyzer crashed on this file (it killed the cluster's workers)"))
            return
        if isinstance(error, ClusterError):
            raise error
        raise ClusterError(f"{self.address}: {task.label} failed on the cluster: "
                           f"{one_line(error, typed=True)}{_hint(error)}") from None


def task_mode(task: Task) -> str:
    return {run_generated: "generator", run_shared: "shared"}.get(task.function, "stream")


def _streamed(job: ChunkJob, batch: _Batch) -> Iterator[Task]:
    """The batch's files read here, cut into tasks of at most `STREAM_BATCH_BYTES`."""

    files: list[SourceFile] = []
    payload: list[bytes | str] = []
    size, first = 0, batch.first
    whole = batch.whole
    for j, source in enumerate(batch.files):
        data = read_source(os.path.join(job.folder, source.rel))
        item = data if isinstance(data, bytes) else str(data.reason)
        length = len(data) if isinstance(data, bytes) else 0
        if files and size + length > STREAM_BATCH_BYTES:
            whole = False
            yield _stream_task(job, batch, first, files, payload, size, whole)
            files, payload, size, first = [], [], 0, batch.first + j
        files.append(source)
        payload.append(item)
        size += length
    if files:
        yield _stream_task(job, batch, first, files, payload, size,
                           whole and first == batch.first)


def _stream_task(job: ChunkJob, batch: _Batch, first: int, files: list[SourceFile],
                 payload: list[bytes | str], size: int, whole: bool) -> Task:
    part = _Batch(batch.chunk, first, tuple(files), whole)
    return Task(run_streamed, (job, part.files, tuple(payload)),
                f"chunk-{batch.chunk:06d}-{first}", payload=size, tag=part)


def _checked(data: Any, job: ChunkJob, batch: _Batch) -> list[ItemResult]:
    """The results in a worker's chunk bytes, which must be of this build and these files."""
    try:
        if not isinstance(data, bytes):
            raise ValueError("not chunk bytes")
        header, results = parse_chunk(data, "a worker's chunk")
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"a worker sent a damaged chunk ({one_line(exc, typed=True)})") from None
    if (header.get("key") != job.key or header.get("files") != [f.key() for f in batch.files]
            or len(results) != len(batch.files)):
        raise ClusterError("a worker sent the chunk of another build or other files "
                           "(is it running another version of sosie?)")
    return results


# ---------------------------------------------------------------------------------------------
# The worker side: loaded once per worker thread


_local = threading.local()


def worker_analyzer(engine: Any, checksums: dict[str, str]) -> Any:
    """The analyzer of `engine` in this worker thread, created once, after checking that this
    worker's face models are the client's (`checksums`); WorkerMismatch otherwise."""
    cache = _local.__dict__.setdefault("analyzers", {})
    name = (repr(engine), tuple(sorted(checksums.items())))
    if name not in cache:
        found = engine.checksums()
        if found != checksums:
            raise WorkerMismatch(f"worker on {_host()} has other face models than the client "
                                 f"({_first_difference(found, checksums)})")
        cache[name] = engine.create()
    return cache[name]


def generator_network(weights: Path, sha256: str) -> Any:
    """The DCGAN with weights `sha256` in this worker process: the client's path if this worker
    has that file, else the gan-face-generate wheel's copy; refused if the checksum differs."""
    cache = _local.__dict__.setdefault("networks", {})
    if sha256 not in cache:
        from appliance.generator.dcgan import DCGAN

        net = DCGAN.load(weights if Path(weights).is_file() else None)
        if net.checksum != sha256:
            raise WorkerMismatch(f"worker on {_host()} has other DCGAN weights than the client "
                                 f"(sha256 {net.checksum[:12]}, not {sha256[:12]}; install "
                                 f"gan-face-generate==1.1.1 there or put the file at {weights})")
        cache[sha256] = net
    return cache[sha256]


def run_generated(job: ChunkJob, first: int, count: int) -> bytes:
    """Draws first..first+count-1 of the generator -> chunk bytes (task on a worker)."""
    source = job.generator
    net = generator_network(source.weights, source.weights_sha256)
    analyzer = worker_analyzer(job.engine, job.checksums)
    files, results = [], []
    for group in describe_groups(range(first, first + count)):  # as a local build's tasks
        files += [SourceFile(source.name(index), source.size, 0) for index in group]
        results += analyze_drawn_group(source.faces(group, net), analyzer, *job.thumbs)
    return chunk_bytes(job.key, files, results)


def run_shared(job: ChunkJob, files: tuple[SourceFile, ...]) -> bytes:
    """Files read at the client's path -> chunk bytes; NotShared when one is not as listed."""

    analyzer = worker_analyzer(job.engine, job.checksums)
    results = []
    for source in files:
        path = os.path.join(job.folder, source.rel)
        try:
            with open(path, "rb") as fh:
                info = os.fstat(fh.fileno())
                if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
                    raise NotShared(source.rel)
                data = fh.read()
        except OSError:
            raise NotShared(source.rel) from None
        if len(data) != source.size:
            raise NotShared(source.rel)
        results.append(analyze_data(data, source.rel, analyzer, *job.thumbs) if data
                       else ItemResult("empty file"))
    return chunk_bytes(job.key, list(files), results)


def run_streamed(job: ChunkJob, files: tuple[SourceFile, ...],
                 payload: tuple[bytes | str, ...]) -> bytes:
    """Files sent by the client (bytes, or the reason it could not read one) -> chunk bytes."""

    analyzer = worker_analyzer(job.engine, job.checksums)
    results = [analyze_data(item, source.rel, analyzer, *job.thumbs)
               if isinstance(item, bytes) else ItemResult(item)
               for source, item in zip(files, payload, strict=True)]
    return chunk_bytes(job.key, list(files), results)


def sees_files(folder: str, sample: list[SourceFile]) -> bool:
    """Whether this worker sees `sample` under `folder` as the client listed them."""
    for source in sample:
        try:
            info = os.stat(os.path.join(folder, source.rel))
        except OSError:
            return False
        if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
            return False
    return True


def _host() -> str:
    import socket

    return socket.gethostname()


def _first_difference(found: dict[str, str], expected: dict[str, str]) -> str:
    for name in sorted(set(found) | set(expected)):
        if found.get(name) != expected.get(name):
            return (f"{name}: sha256 {str(found.get(name))[:12]} here, "
                    f"{str(expected.get(name))[:12]} on the client")
    return "same files"


def _hint(error: BaseException) -> str:
    if "deserializ" in str(error) or isinstance(error, ImportError):
        return (" (the scheduler or a worker cannot load this build's code: install the same "
                "sosie[cluster] on every machine of the cluster)")
    return ""
