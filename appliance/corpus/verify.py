"""`sosie corpus verify`: full checksums and consistency checks of a corpus directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.corpus import format as fmt
from appliance.corpus.format import CorpusError
from appliance.corpus.sketch import sketch_problems
from appliance.corpus.store import Corpus
from appliance.corpus.writer import row_norms


def verify(path: str | Path, *, check_model: bool = True) -> list[str]:
    """Every problem found, one line each (empty: the corpus is intact).

    Beyond `Corpus.open`'s cheap checks: the sha256 of every data file against the manifest,
    the norms against the descriptors, and one row per row count in sources.tsv. Sizes are
    checked first, and a file of the wrong size is not hashed (a 1 TB sparse file would take
    hours to read).
    """
    path = Path(path)
    try:
        manifest = fmt.read_manifest(path)
    except CorpusError as exc:
        return [str(exc)]
    wrong_size = fmt.size_problems(path, manifest)
    problems = list(wrong_size.values())
    if problems:
        return problems
    for name in fmt.data_files(manifest):
        file = path / name
        entry = manifest["files"][name]
        try:
            actual = fmt.sha256_file(file)
        except OSError as exc:
            problems.append(f"{file}: unreadable ({exc.strerror or exc})")
            continue
        if actual != entry.get("sha256"):
            problems.append(
                f"{file}: sha256 {actual[:16]}… does not match the manifest "
                f"({str(entry.get('sha256'))[:16]}…)"
            )
    try:
        corpus = Corpus.open(path, check_model=check_model)
    except CorpusError as exc:
        return [*problems, str(exc)]
    with corpus:
        if corpus.count:
            norms = row_norms(corpus.vectors)
            bad = np.flatnonzero(np.abs(norms - corpus.norms) > 1e-5 * np.maximum(norms, 1))
            if bad.size:
                problems.append(f"{path / fmt.NORMS}: {bad.size} norms disagree with the "
                                f"descriptors (first row {int(bad[0])})")
            if not np.isfinite(norms).all():  # a float64 norm is finite iff its row is
                problems.append(f"{path / fmt.DESCRIPTORS}: holds NaN or infinite values")
            if fmt.sketch_axes(manifest):
                try:
                    sketch = corpus.sketch()
                except CorpusError as exc:
                    problems.append(str(exc))
                else:
                    problems += [f"{path / fmt.SKETCH_CODES}: {problem}"
                                 for problem in sketch_problems(sketch, corpus.vectors)]
        try:
            corpus.check_sources()
        except CorpusError as exc:
            problems.append(str(exc))
    return problems
