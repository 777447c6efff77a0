"""The build's tasks as a Dask worker runs them: a chunk of drawn faces, of files read at the
client's path, or of files the client streamed -> the bytes of its chunk file
(`chunks.chunk_bytes`). Each worker thread loads the face models (and the generator's network)
once, checked against the client's (`appliance.compute.worker_cache`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from appliance.compute.worker_cache import worker_analyzer
from appliance.corpus.analysis import item_of_bytes, items_of_drawn_faces
from appliance.corpus.chunks import ItemResult, SourceFile, chunk_bytes
from appliance.generator.source import describe_groups
from appliance.generator.worker_network import generator_network


class NotShared(Exception):
    """A worker does not see a source file as the client listed it (the client streams it)."""



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



def run_generated(job: ChunkJob, first: int, count: int) -> bytes:
    """Draws first..first+count-1 of the generator -> chunk bytes (task on a worker)."""
    source = job.generator
    net = generator_network(source.weights, source.weights_sha256)
    analyzer = worker_analyzer(job.engine, job.checksums)
    files, results = [], []
    for group in describe_groups(range(first, first + count)):  # as a local build's tasks
        files += [SourceFile(source.name(index), source.size, 0) for index in group]
        results += items_of_drawn_faces(source.faces(group, net), analyzer, *job.thumbs)
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
        results.append(item_of_bytes(data, source.rel, analyzer, *job.thumbs) if data
                       else ItemResult("empty file"))
    return chunk_bytes(job.key, list(files), results)


def run_streamed(job: ChunkJob, files: tuple[SourceFile, ...],
                 payload: tuple[bytes | str, ...]) -> bytes:
    """Files sent by the client (bytes, or the reason it could not read one) -> chunk bytes."""

    analyzer = worker_analyzer(job.engine, job.checksums)
    results = [item_of_bytes(item, source.rel, analyzer, *job.thumbs)
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
