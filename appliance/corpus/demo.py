"""The embedded demo corpus: faces that do not exist, drawn here by the DCGAN generator.

`demo_corpus()` builds `cache_dir()/demo-corpus` on first use with the real pipeline from
`DEMO_DRAWS` draws of `appliance.generator.dcgan` (seed `DEMO_SEED`, analysed at 64x64 as the
network makes them; dlib finds a face in ~70 %, the rest are listed in `rejected.tsv`), as
`sosie build dcgan:DRAWS:SEED` would, and reuses it afterwards as long as it opens cleanly with
this appliance's models and this version of its thumbnails (`DEMO_VERSION`, kept beside it in
`demo-corpus.version`: a change to how thumbnails are cut draws it again). Every row's
`sources.tsv` name `dcgan:SEED:i` regenerates its face. A file lock makes concurrent first uses
(parallel tests, two commands) build it once.

`$SOSIE_DEMO_DRAWS` makes a smaller (or larger) one, kept beside it in `demo-corpus-DRAWS`
(the tests use a few hundred draws). The demo's visitor, `visitor_photo()`, is a real person's
public-domain portrait shipped as package data: she is not in the corpus.
"""

from __future__ import annotations

import fcntl
import os
import shutil
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

DEMO_CORPUS = "demo-corpus"
#: Draws of the generator: ~70 % have a face dlib finds (2,783 of these 4,000).
DEMO_DRAWS = 4000
DEMO_SEED = 0
#: Faces are analysed as the generator makes them (64x64): as often found as at 256 px
#: (Lanczos), and half the cost per draw.
DEMO_FACE_SIZE = 64
DRAWS_ENV = "SOSIE_DEMO_DRAWS"
MAX_DRAWS = 1_000_000
#: How the demo corpus's thumbnails are made: 2 = a neutral surround where a crop runs past
#: the 64-px face (1 repeated the edge pixels into bands). A cached corpus of another version
#: is drawn again.
DEMO_VERSION = 2


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


def demo_corpus(
    *, workers: int | None = None, progress: bool = False, face_settings: Any = None
) -> Path:
    """Path of the demo corpus, building it first if it is missing, invalid or made with
    other face models than `face_settings` name (default: the packaged models)."""
    corpus_dir = demo_corpus_dir()
    with open(cache_dir() / f"{corpus_dir.name}.lock", "w") as lock:
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
