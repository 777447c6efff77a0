"""The embedded demo corpus: faces that do not exist, drawn here by the DCGAN generator.

`demo_corpus()` builds `cache_dir()/demo-corpus` on first use with the real pipeline from
`DEMO_DRAWS` draws of `appliance.generator.dcgan` (seed `DEMO_SEED`, analysed at 64x64 as the
network makes them; dlib finds a face in ~70 %, the rest are listed in `rejected.tsv`), as
`sosie build dcgan:DRAWS:SEED` would, and reuses it afterwards as long as it opens cleanly with
this appliance's models and this version of its thumbnails (`DEMO_VERSION`, kept beside it in
`demo-corpus.version`: a change to how thumbnails are cut draws it again). Every row's
`sources.tsv` name `dcgan:SEED:i` regenerates its face. A file lock makes concurrent first uses
(parallel tests, two commands) build it once.

The first use says so at once on stderr, on one line with the expected time, then shows the
build's progress bar (a line every few seconds when stderr is not a terminal): every command
that falls back on the demo corpus (`sosie demo`, `ticket`, `conjure`, `map demo`, `run`
without a corpus) gets both from here.

`$SOSIE_DEMO_DRAWS` makes a smaller (or larger) one, kept beside it in `demo-corpus-DRAWS`
(the tests use a few hundred draws). The demo's visitor, `visitor_photo()`, is a real person's
public-domain portrait shipped as package data: she is not in the corpus.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from appliance.corpus.build import WORK_DIR, build
from appliance.corpus.engines import DlibEngine
from appliance.corpus.format import MANIFEST, CorpusError
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.store import Corpus
from appliance.files import atomic_write_bytes
from appliance.paths import cache_dir
from appliance.words import plural

DEMO_CORPUS = "demo-corpus"
#: Draws of the generator: ~70 % have a face dlib finds (2,755 of these 4,000).
DEMO_DRAWS = 4000
DEMO_SEED = 0
#: Faces are analysed as the generator makes them (64x64): as often found as at 256 px
#: (Lanczos), and half the cost per draw.
DEMO_FACE_SIZE = 64
DRAWS_ENV = "SOSIE_DEMO_DRAWS"
MAX_DRAWS = 1_000_000
#: How the demo corpus's thumbnails are made: 2 = a neutral surround where a crop runs past
#: the 64-px face (1 repeated the edge pixels into bands); 3 = the face pipeline's version 2
#: (`faces.face.PIPELINE`: surround on a coarse grid, Winograd descriptors). A cached corpus of
#: another version is drawn again.
DEMO_VERSION = 3
#: CPU seconds a draw costs the build (render, detect at 64 px, describe, thumbnail): the demo's
#: 4,000 draws took 16.8 s on 2 cores of this project's x86 build machine with its C kernels
#: (2026-12-07; 0.025 before them); a Pi 4 core is ~5x slower.
DRAW_CPU_SECONDS = 0.008
#: Seconds a build spends starting (worker processes, models) and finishing (PCA, sketch).
BUILD_OVERHEAD_SECONDS = 2.0


def demo_draws() -> int:
    """`$SOSIE_DEMO_DRAWS` (1..1,000,000), else `DEMO_DRAWS`; ValueError naming a bad value."""
    text = os.environ.get(DRAWS_ENV, "").strip()
    if not text:
        return DEMO_DRAWS
    try:
        draws = int(text)
    except ValueError:
        draws = 0
    if not 1 <= draws <= MAX_DRAWS:
        raise ValueError(f"{DRAWS_ENV}={text!r}: expected an integer from 1 to {MAX_DRAWS}")
    return draws


def demo_corpus_dir(draws: int | None = None) -> Path:
    """Where the demo corpus of `draws` (default `demo_draws()`) draws is kept."""
    draws = demo_draws() if draws is None else draws
    name = DEMO_CORPUS if draws == DEMO_DRAWS else f"{DEMO_CORPUS}-{draws}"
    return cache_dir() / name


def _version_file(corpus_dir: Path) -> Path:
    return corpus_dir.with_name(f"{corpus_dir.name}.version")


def demo_corpus_ready(draws: int | None = None) -> bool:
    """Whether the demo corpus is built, at this version (it may still fail to open)."""
    corpus_dir = demo_corpus_dir(draws)
    version = _version_file(corpus_dir)
    return (corpus_dir / MANIFEST).exists() and version.is_file() and \
        version.read_text().strip() == str(DEMO_VERSION)


def demo_source(draws: int | None = None) -> Any:
    """The generator source of the demo corpus (raises WeightsNotFound without the weights)."""
    from appliance.generator.dcgan import DCGAN
    from appliance.generator.source import GeneratorSource

    net = DCGAN.load()
    assert net.path is not None
    return GeneratorSource(demo_draws() if draws is None else draws, DEMO_SEED, net.path,
                           net.checksum, size=DEMO_FACE_SIZE)


def expected_seconds(draws: int, workers: int | None = None, load: float = 0.0) -> float:
    """About how long building `draws` draws takes here with `workers` (default: every core)
    while `load` other processes are running (the load average): each worker gets its share
    of the cores."""
    cores = os.cpu_count() or 1
    running = max(1, min(workers or cores, cores))
    share = min(1.0, cores / (max(0.0, load) + running))
    return BUILD_OVERHEAD_SECONDS + draws * DRAW_CPU_SECONDS / (running * share)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def first_use_line(draws: int, workers: int | None = None, load: float | None = None) -> str:
    """The one line that says the demo corpus is being built, and how long it takes (on a
    machine busy with `load` other processes, default: the load average)."""
    load = _load() if load is None else load
    seconds = expected_seconds(draws, workers, load)
    when = f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"
    cores = min(workers or os.cpu_count() or 1, os.cpu_count() or 1)
    busy = f", load {load:.0f}: the machine is busy" if load >= cores else ""
    return (f"first use: building the demo corpus once from {draws:,} draws of the DCGAN "
            f"generator ({when} on {plural(cores, 'core')}{busy}; later runs "
            f"reuse it)...")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def demo_corpus(
    *, workers: int | None = None, progress: bool = True, face_settings: Any = None,
    say: Callable[[str], None] = _say,
) -> Path:
    """Path of the demo corpus, building it first if it is missing, invalid or made with
    other face models than `face_settings` name (default: the packaged models).

    A build is announced at once through `say` (default: a line on stderr) with its expected
    time, and shows its progress bar unless `progress` is False."""
    corpus_dir = demo_corpus_dir()
    announced = False
    if not demo_corpus_ready():
        say(first_use_line(demo_draws(), workers))
        announced = True
    with open(cache_dir() / f"{corpus_dir.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process building the demo corpus in {corpus_dir}...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        source = demo_source()
        try:
            with Corpus.open(corpus_dir, face_settings=face_settings) as corpus:
                if _drawn_by(corpus.manifest, source.key()) and demo_corpus_ready():
                    return corpus_dir
            shutil.rmtree(corpus_dir)  # another network, renderer or version: draw it again
        except CorpusError:
            pass
        finished = (corpus_dir / MANIFEST).exists()
        if corpus_dir.exists() and (finished or not (corpus_dir / WORK_DIR).exists()):
            shutil.rmtree(corpus_dir)  # invalid and not resumable: start again
        if not announced:  # it failed to open with these models: drawn again all the same
            say(first_use_line(demo_draws(), workers))
        build(source, corpus_dir, workers=workers, settings=CorpusSettings(),
              progress=progress, engine=DlibEngine(face_settings))
        Corpus.open(corpus_dir, face_settings=face_settings).close()
        atomic_write_bytes(_version_file(corpus_dir), f"{DEMO_VERSION}\n".encode())
        return corpus_dir


def _drawn_by(manifest: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether the corpus of `manifest` was drawn by the generator source with this `key`."""
    origin = manifest.get("source")
    return isinstance(origin, dict) and all(origin.get(k) == v for k, v in key.items())


def visitor_photo() -> Path:
    """The demo's visitor: NASA's public-domain portrait of Eileen Collins (package data)."""
    return Path(str(resources.files("appliance") / "data" / "visitor.jpg"))
