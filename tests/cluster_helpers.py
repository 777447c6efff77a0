"""A real Dask cluster on 127.0.0.1 for the tests and bench/cluster.py: `dask scheduler` and
`dask worker` processes (the commands an installer runs), torn down whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
START_TIMEOUT = 120.0  # s: a loaded 2-core machine starts a worker in ~5-20 s


class LoopbackCluster:
    """A scheduler and `workers` single-threaded workers, listening on 127.0.0.1 only."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.scheduler: subprocess.Popen | None = None
        self.worker_procs: list[subprocess.Popen] = []
        self.address = ""

    def __enter__(self) -> LoopbackCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        file = self.folder / "scheduler.json"
        file.unlink(missing_ok=True)
        log = open(self.folder / "scheduler.log", "ab")  # noqa: SIM115 (kept with the process)
        self.scheduler = subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--scheduler-file", str(file), "--no-dashboard", "--no-show"],
            stdout=log, stderr=log, start_new_session=True, env=self._env())
        deadline = time.monotonic() + START_TIMEOUT
        while not file.exists() or not file.read_text().strip():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start (see {log.name})")
            time.sleep(0.1)
        time.sleep(0.1)
        self.address = json.loads(file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:"), self.address
        for i in range(self.workers):
            self.add_worker(i)
        self.wait_for_workers(self.workers)

    def add_worker(self, i: int) -> None:
        log = open(self.folder / f"worker-{i}.log", "ab")  # noqa: SIM115
        self.worker_procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1",
             "--nthreads", "1", "--no-dashboard", "--no-nanny", "--name", f"w{i}",
             "--memory-limit", "0", "--local-directory", str(self.folder / f"worker-{i}")],
            stdout=log, stderr=log, start_new_session=True, env=self._env()))

    def _env(self) -> dict[str, str]:
        """Scheduler and workers import the tests' own engines (generator_helpers) too: the
        scheduler unpickles the tasks."""
        tests = str(Path(__file__).resolve().parent)
        path = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": f"{tests}{os.pathsep}{path}" if path else tests}

    def wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=START_TIMEOUT)

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.worker_procs if p.poll() is None]

    def ensure(self) -> None:
        """A live scheduler with at least one worker (started again after a test killed it)."""
        alive = self.scheduler is not None and self.scheduler.poll() is None
        if not alive or not self.worker_pids():
            self.stop()
            self.start()

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(10)

    def stop(self) -> None:
        for proc in [*self.worker_procs, self.scheduler]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in [*self.worker_procs, self.scheduler]:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
        self.worker_procs = []
        self.scheduler = None
