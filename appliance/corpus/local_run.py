"""A build's processing step on this machine: its tasks (a file, or a group of draws described
as one batch) run in worker processes (`appliance.compute.pool`), each loading the models once;
every result goes to the `Collector`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.compute.pool import guard_orphan, run_tasks, single_threaded
from appliance.corpus.analysis import item_of_file, items_of_drawn_faces
from appliance.corpus.chunks import ItemResult
from appliance.corpus.collector import Collector
from appliance.corpus.engines import Engine
from appliance.corpus.settings import CorpusSettings
from appliance.generator.analyses import recorded
from appliance.generator.source import GeneratorSource, describe_groups

#: One task of a local build: (chunk, indices in the chunk, file paths, names, what
#: `sosie generate` recorded of the file); a folder's tasks hold one file each, a generator's
#: the draws described as one batch.
Task = tuple[int, tuple[int, ...], tuple[str, ...], tuple[str, ...], Any]
Item = tuple[int, int, ItemResult]


def run_locally(
    images_dir: Path | GeneratorSource,
    collector: Collector,
    engine: Engine,
    settings: CorpusSettings,
    workers: int,
) -> None:
    """Run the tasks of the collector's unfinished chunks in `workers` processes (here, for one
    worker or one task), each result to the collector, which writes the chunk files."""
    generator = images_dir if isinstance(images_dir, GeneratorSource) else None
    known = {} if generator is not None else recorded(Path(images_dir), engine)
    chunks = collector.chunks
    tasks: list[Task] = []
    for k in collector.remaining:
        if generator is not None:  # the draws described as one batch make one task
            first = generator.index(chunks[k][0].rel)
            indices = [generator.index(f.rel) for f in chunks[k]]
            tasks += [(k, tuple(i - first for i in group), (), tuple(generator.name(i)
                       for i in group), None) for group in describe_groups(indices)]
        else:  # a folder `sosie generate` made: what it learned of each face goes along
            tasks += [(k, (j,), (str(Path(images_dir) / f.rel),), (f.rel,), known.get(f.rel))
                      for j, f in enumerate(chunks[k])]
    collect = collector.add
    thumbs = (settings.thumbnail_size, settings.thumbnail_encoding, settings.jpeg_quality)
    if workers <= 1 or len(tasks) == 1:
        init_worker(engine, thumbs, watch_parent=False, generator=generator)
        with single_threaded():
            for task in tasks:
                for item in process_task(task):
                    collect(*item)
        return
    for items in run_tasks(tasks, workers, init_worker, (engine, thumbs, True, generator),
                           process_task, crashed_task):
        for item in items:
            collect(*item)


def crashed_task(task: Task, exitcode: int | None) -> list[Item]:
    """The rejections of a task whose worker died twice on it."""
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit {exitcode}"
    return [(task[0], j, ItemResult(f"analyzer crashed on this file twice ({how})"))
            for j in task[1]]


_analyzer: Any = None
_thumbs: tuple[int, str, int] = (256, "jpeg", 92)
_generator: GeneratorSource | None = None


def init_worker(engine: Engine, thumbs: tuple[int, str, int], watch_parent: bool = True,
                 generator: GeneratorSource | None = None) -> None:
    """Per worker process: load the models once; exit if the parent dies (e.g. SIGKILL)."""
    global _analyzer, _thumbs, _generator
    if watch_parent:
        guard_orphan()
    _analyzer = engine.create()
    _thumbs = thumbs
    _generator = generator


def process_task(task: Task) -> list[Item]:
    """One task in a worker process (after `init_worker`): its (chunk, index, result) items."""
    k, js, paths, names, known = task
    if _generator is not None:
        faces = _generator.faces([_generator.index(name) for name in names])
        return list(zip([k] * len(js), js, items_of_drawn_faces(faces, _analyzer, *_thumbs),
                        strict=True))
    return [(k, js[0], item_of_file(paths[0], names[0], _analyzer, *_thumbs, known))]
