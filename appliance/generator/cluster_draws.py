"""`sosie generate --scheduler tcp://HOST:PORT`: the dcgan engine's draws on a Dask cluster.

Only blocks of draw indices travel to the workers; each worker thread loads the network and the
analyzer once (checked against the client's checksums, see `appliance.compute.worker_cache`)
and sends back the encoded files of the accepted draws, which `generate` writes and journals
here exactly as with local workers. The drawer's identity is the local one's, so a run can start
on one and resume on the other, and the folder ends byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from appliance.compute.dask_session import ClusterError, Session, Task
from appliance.compute.worker_cache import worker_analyzer
from appliance.errors import one_line
from appliance.generator.draws import DcganDrawer, DcganJob, Draw, judge_faces
from appliance.generator.worker_network import generator_network


@dataclass(frozen=True)
class DrawJob:
    """What a worker needs: the job, the analyzer engine and the checksums the client has."""

    job: DcganJob
    engine: Any
    checksums: dict[str, str]
    weights_sha256: str


def draw_on_worker(work: DrawJob, indices: tuple[int, ...]) -> list[Draw]:
    """The draws `indices` (a task on a worker)."""
    net = generator_network(work.job.weights, work.weights_sha256)
    analyzer = worker_analyzer(work.engine, work.checksums)
    faces = (net.faces(work.job.seed, [index], work.job.size)[0] for index in indices)
    return judge_faces(work.job, analyzer, indices, faces)


@dataclass
class ClusterDrawer:
    """The `dcgan` engine of `sosie generate` on the Dask cluster at `address`; use it as a
    context manager (one connection for the whole run)."""

    job: DcganJob
    engine: Any
    address: str
    block: int = 8
    _session: Session | None = field(default=None, repr=False)
    _work: DrawJob | None = field(default=None, repr=False)
    _threads: int = field(default=1, repr=False)

    def identity(self) -> dict[str, Any]:
        return DcganDrawer(self.job, self.engine).identity()

    def __enter__(self) -> ClusterDrawer:
        self._work = DrawJob(self.job, self.engine, self.engine.checksums(), self.job.digest())
        from appliance.generator.job import GenerateError

        try:
            self._session = Session(self.address).__enter__()
            self._threads = self._session.wait_for_workers()
        except ClusterError as exc:
            self.__exit__()
            raise GenerateError(str(exc)) from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.__exit__()

    def draws(self, indices: list[int], seen: dict[str, str]) -> Iterator[Draw]:
        """The draws `indices`, in any order, from the cluster's workers."""
        from appliance.generator.job import GenerateError

        if self._session is None or self._work is None:
            raise RuntimeError("ClusterDrawer.draws outside `with drawer:`")
        blocks = [tuple(indices[i:i + self.block]) for i in range(0, len(indices), self.block)]
        tasks = (Task(draw_on_worker, (self._work, block), f"draws-{block[0]}", tag=block)
                 for block in blocks)
        window = self._session.as_completed(tasks, threads=self._threads)
        try:
            for task, draws, error in window:
                if error is not None:
                    if type(error).__name__ == "KilledWorker":
                        yield from (Draw(i, "the generator crashed the cluster's workers on "
                                         "this draw") for i in task.tag)
                        continue
                    raise GenerateError(f"{self.address}: draws {task.tag[0]}.. failed on the "
                                        f"cluster: {one_line(error, typed=True)}")
                yield from draws
        except ClusterError as exc:
            raise GenerateError(str(exc)) from None
        finally:
            window.close()
