"""A small process pool for the build that survives a worker crash and never hangs.

`multiprocessing.Pool` loses the task of a worker that dies (a segfault in a native decoder,
the OOM killer) and then waits for it forever. Here every worker gets one task at a time over
its own pipe, so the parent always knows which image a dead worker held: that image is retried
once in a fresh worker, then rejected ("analyzer crashed"), and the build goes on. A failure to
start (e.g. a missing model file) stops the build with that worker's one-line error.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from appliance.errors import one_line

Task = tuple[Any, ...]


class WorkerFailed(RuntimeError):
    """A worker could not start or raised an unexpected error (one line)."""


def run_tasks(
    tasks: list[Task],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    function: Callable[[Task], Any],
    on_crash: Callable[[Task, int | None], Any],
) -> Iterator[Any]:
    """Yield `function(task)` for every task, in completion order, from `workers` processes.

    `initializer(*initargs)` runs once per process. A task whose worker dies twice yields
    `on_crash(task, exitcode)` instead.
    """
    context = multiprocessing.get_context("spawn")
    if min(workers, len(tasks)) > 1:  # N processes x N library threads would thrash the cores
        context = _SingleThreaded(context)
    queue: deque[Task] = deque(tasks)
    crashes: dict[int, int] = {}
    pool: list[_Worker] = []
    try:
        for _ in range(min(workers, len(tasks))):
            pool.append(_Worker(context, initializer, initargs, function))
        for worker in pool:
            worker.feed(queue)
        while any(w.task is not None for w in pool):
            busy = [w for w in pool if w.task is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn in ready or worker.conn.poll():
                    try:
                        kind, payload = worker.conn.recv()
                    except (EOFError, OSError):
                        kind, payload = "crashed", None
                    if kind == "ok":
                        worker.task = None
                        yield payload
                        worker.feed(queue)
                        continue
                    if kind == "error":
                        raise WorkerFailed(payload)
                if worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join(1)
                    task, code = worker.task, worker.process.exitcode
                    pool.remove(worker)
                    worker.close()
                    index = id(task)
                    crashes[index] = crashes.get(index, 0) + 1
                    if crashes[index] >= 2:
                        yield on_crash(task, code)
                    else:
                        queue.appendleft(task)  # type: ignore[arg-type]
                    if queue:
                        replacement = _Worker(context, initializer, initargs, function)
                        pool.append(replacement)
                        replacement.feed(queue)
    finally:
        for worker in pool:
            worker.stop()


def guard_orphan() -> None:
    """Call first in a worker: Ctrl-C is left to the parent, the worker exits when the parent
    dies (e.g. SIGKILL), and its stderr goes quiet then (no BrokenPipe tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    sys.stderr = _OrphanSilencedStream(sys.stderr, parent)


class _OrphanSilencedStream:
    """stderr of a worker: drops output once the parent is gone (killed runs stay quiet)."""

    def __init__(self, stream: Any, parent: int) -> None:
        self._stream, self._parent = stream, parent

    def write(self, text: str) -> int:
        return len(text) if os.getppid() != self._parent else self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def single_threaded_process() -> None:
    """This process's BLAS and OpenCV on one thread each from the start, unless the environment
    says otherwise: for a command whose work runs one process per core (`sosie build`). Only
    effective before numpy and OpenCV load (their thread pools start then: OpenBLAS's spent
    ~0.25 CPU-s of every build process here, however small the build)."""
    for name in _SingleThreaded.VARIABLES:
        os.environ.setdefault(name, "1")


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS and OpenCV on the calling thread only, for a build's work in this process (restored
    after): with one process per core, their thread pools only add CPU (idle threads spinning:
    ~9 % of a generated-face build here)."""
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(before)


class _SingleThreaded:
    """A spawn context whose processes start with one BLAS and one OpenCV thread each (unless the
    environment already says how many): see `single_threaded`."""

    VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")

    def __init__(self, context: Any) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # multiprocessing's name
        return _EnvironmentProcess(self._context.Process(*args, **kwargs),
                                   {v: "1" for v in self.VARIABLES if v not in os.environ})


class _EnvironmentProcess:
    """A process started with extra environment variables (spawn copies os.environ at start)."""

    def __init__(self, process: Any, extra: dict[str, str]) -> None:
        self._process = process
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self._process, name)

    def start(self) -> None:
        os.environ.update(self._extra)
        try:
            self._process.start()
        finally:
            for name in self._extra:
                os.environ.pop(name, None)


class _Worker:
    def __init__(self, context: Any, initializer: Callable, initargs: tuple, function: Callable):
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, initializer, initargs, function), daemon=True
        )
        self.process.start()
        child.close()
        self.task: Task | None = None

    def feed(self, queue: deque[Task]) -> None:
        self.task = queue.popleft() if queue else None
        if self.task is not None:
            with contextlib.suppress(OSError):  # a dead worker: its sentinel reports it
                self.conn.send(self.task)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(2)
        self.close()

    def close(self) -> None:
        self.conn.close()


def _worker_main(conn: Connection, initializer: Callable, initargs: tuple, function: Callable):
    try:
        initializer(*initargs)
    except Exception as exc:
        _send(conn, ("error", one_line(exc)))
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = function(task)
        except Exception as exc:
            _send(conn, ("error", one_line(exc)))
            return
        if not _send(conn, ("ok", result)):
            return


def _send(conn: Connection, message: tuple[str, Any]) -> bool:
    """Send to the parent; False (quietly) when it is gone, e.g. killed mid-task."""
    try:
        conn.send(message)
    except OSError:  # BrokenPipeError, ConnectionResetError
        return False
    return True
