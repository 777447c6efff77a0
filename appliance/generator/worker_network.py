"""The DCGAN a cluster worker loads once (for `sosie build dcgan:...` and `sosie generate` on a
Dask cluster), checked against the client's weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.compute.worker_cache import WorkerMismatch, host_name, worker_cached


def generator_network(weights: Path, sha256: str) -> Any:
    """The DCGAN with weights `sha256` in this worker thread: the client's path if this worker
    has that file, else the gan-face-generate wheel's copy; refused if the checksum differs."""

    def load() -> Any:
        from appliance.generator.dcgan import DCGAN

        net = DCGAN.load(weights if Path(weights).is_file() else None)
        if net.checksum != sha256:
            raise WorkerMismatch(f"worker on {host_name()} has other DCGAN weights than the "
                                 f"client (sha256 {net.checksum[:12]}, not {sha256[:12]}; "
                                 "install gan-face-generate==1.1.1 there or put the file at "
                                 f"{weights})")
        return net

    return worker_cached("networks", sha256, load)
