"""`Corpus.source` reads sources.tsv a line at a time (its offsets, not a list of every source):
the same names as the whole file parsed, escapes undone, a bad line refused when it is read, and
every line checked by `check_sources` (`sosie corpus verify`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance.corpus import Corpus, CorpusError, synth, verify
from appliance.corpus import format as fmt


def rewrite(path, old: str, new: str) -> None:
    """Replace one line of sources.tsv by another of the same length (the manifest's size)."""
    assert len(old) == len(new)
    text = (path / fmt.SOURCES).read_text()
    assert text.count(old + "\n") == 1
    (path / fmt.SOURCES).write_text(text.replace(old + "\n", new + "\n"))


def test_sources_row_by_row_are_the_files_rows(synthetic_corpus):
    rows = fmt.read_tsv(synthetic_corpus / fmt.SOURCES, 2)
    with Corpus.open(synthetic_corpus) as corpus:
        assert [corpus.source(i) for i in range(corpus.count)] == [s for _, s in rows]
        assert corpus.source(119) == "synthetic/0000119"
        with pytest.raises(IndexError):
            corpus.source(corpus.count)


def test_an_escaped_name_is_unescaped(corpus_copy):
    rewrite(corpus_copy, "7\tsynthetic/0000007", "7\tsynthetic\\t000007")
    with Corpus.open(corpus_copy) as corpus:
        assert corpus.source(7) == "synthetic\t000007"
        corpus.check_sources()


def test_a_misnumbered_line_is_refused_when_read_and_by_verify(corpus_copy):
    rewrite(corpus_copy, "50\tsynthetic/0000050", "51\tsynthetic/0000050")
    with Corpus.open(corpus_copy) as corpus:
        assert corpus.source(49) == "synthetic/0000049"  # the other lines still read
        with pytest.raises(CorpusError, match=r"sources\.tsv: line 52 is row '51', expected 50"):
            corpus.source(50)
        with pytest.raises(CorpusError, match="line 52 is row '51', expected 50"):
            corpus.check_sources()
    problems = verify(corpus_copy, check_model=False)
    assert any("line 52 is row '51', expected 50" in p for p in problems)


def test_a_line_with_a_third_field_is_refused(corpus_copy):
    rewrite(corpus_copy, "9\tsynthetic/0000009", "9\tsynthetic\t0000009")
    with Corpus.open(corpus_copy) as corpus, pytest.raises(CorpusError,
                                                     match="line 11 has 3 fields, expected 2"):
        corpus.source(9)


CHANGED_UNDER_IT = """
import sys
from pathlib import Path
from appliance.corpus import Corpus, CorpusError
from appliance.corpus import format as fmt

corpus = Corpus.open(sys.argv[1])
assert corpus.source(3) == "synthetic/0000003"  # its lines' offsets taken
path = Path(sys.argv[1]) / fmt.SOURCES
with open(path, "r+b") as file:  # cut in place, the same file
    file.truncate(1000)  # past the first page of a memory map: its pages would be gone
for row in (3, 390):
    try:
        print(row, corpus.source(row))
    except CorpusError as exc:
        print(row, "refused:", exc)
corpus.close()
"""


def test_a_file_cut_under_it_is_refused_a_line_at_a_time(tmp_path):
    """sources.tsv (9 KB) truncated after its offsets were taken: the lines still there read,
    those gone are a one-line CorpusError (a child process: a memory map read past the end of
    its file is a SIGBUS)."""
    corpus = synth(tmp_path / "c", 400, seed=3)
    assert (corpus / fmt.SOURCES).stat().st_size > 8192
    done = subprocess.run([sys.executable, "-c", CHANGED_UNDER_IT, str(corpus)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "3 synthetic/0000003\n" in done.stdout
    assert "390 refused: " in done.stdout and "line 392 is no longer where it was" in done.stdout


def test_a_line_moved_or_grown_under_it_is_refused(corpus_copy):
    path = corpus_copy / fmt.SOURCES
    with Corpus.open(corpus_copy) as corpus:
        assert corpus.source(60) == "synthetic/0000060"
        text = path.read_text()
        path.write_text("x" + text[:-1])  # every line one byte further on, the same size
        with pytest.raises(CorpusError, match=r"line 62 is no longer where it was"):
            corpus.source(60)
    long = "7\t" + "a/" * 5000
    with Corpus.open(corpus_copy) as corpus:  # sizes checked on open; the file changes afterwards
        path.write_text(text.replace("7\tsynthetic/0000007", long))
        with pytest.raises(CorpusError, match=r"line 9 has 10002 bytes, more than a source's"):
            corpus.source(7)
        assert corpus.source(6) == "synthetic/0000006"
