"""What a cluster worker loads once: objects kept per worker thread, checked against the
client's checksums, so that a worker with other models stops the work instead of mixing
descriptors (`WorkerMismatch`)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Hashable
from typing import Any

_local = threading.local()


class WorkerMismatch(RuntimeError):
    """A worker has other models or generator weights than the client."""


def worker_cached(kind: str, key: Hashable, make: Callable[[], Any]) -> Any:
    """The `kind` object named `key` in this worker thread: `make()` on first use, then kept."""
    cache = _local.__dict__.setdefault(kind, {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def worker_analyzer(engine: Any, checksums: dict[str, str]) -> Any:
    """The analyzer of `engine` in this worker thread, created once, after checking that this
    worker's face models are the client's (`checksums`); WorkerMismatch otherwise."""

    def make() -> Any:
        found = engine.checksums()
        if found != checksums:
            raise WorkerMismatch(f"worker on {host_name()} has other face models than the "
                                 f"client ({first_difference(found, checksums)})")
        import cv2

        # a worker thread per core: OpenCV's own pool would only spin (the network products
        # already run on one BLAS thread per call); a local build's workers do the same
        cv2.setNumThreads(1)
        return engine.create()

    return worker_cached("analyzers", (repr(engine), tuple(sorted(checksums.items()))), make)


def host_name() -> str:
    """This worker's host name, for the messages that say which worker differs."""
    return socket.gethostname()


def first_difference(found: dict[str, str], expected: dict[str, str]) -> str:
    """The first model (by name) whose checksum here differs from the client's, in words."""
    for name in sorted(set(found) | set(expected)):
        if found.get(name) != expected.get(name):
            return (f"{name}: sha256 {str(found.get(name))[:12]} here, "
                    f"{str(expected.get(name))[:12]} on the client")
    return "same files"
