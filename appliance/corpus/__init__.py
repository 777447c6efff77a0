"""The searchable corpus of generated faces: format, build, synthetic corpora, demo corpus.

See the README section "Corpus format" for the files of a corpus directory.
"""

from appliance.corpus.build import BuildReport, build
from appliance.corpus.demo import demo_corpus
from appliance.corpus.engines import DlibEngine, MockEngine
from appliance.corpus.format import FORMAT_VERSION, CorpusError
from appliance.corpus.pca import PCAModel, fit_pca
from appliance.corpus.settings import CorpusSettings
from appliance.corpus.store import Corpus
from appliance.corpus.synth import synth
from appliance.corpus.verify import verify

__all__ = [
    "FORMAT_VERSION",
    "BuildReport",
    "Corpus",
    "CorpusError",
    "CorpusSettings",
    "DlibEngine",
    "MockEngine",
    "PCAModel",
    "build",
    "demo_corpus",
    "fit_pca",
    "synth",
    "verify",
]
