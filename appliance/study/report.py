"""The study's report: a static offline page and the data behind it.

    DIR/index.html              the four answers: verdicts, tables, figures, contact sheets
    DIR/study.json              every figure, machine-readable (the keys of `run.StudyResult`)
    DIR/best_doubles.csv        reference, rank, set, file, row, distance, likeness
    DIR/nearest.csv             each reference's nearest distance in each set
    DIR/comparisons.csv         set, versus, measure, mean difference, interval, p, verdict
    DIR/clusters.csv            per set: clusters, noise, silhouette, stability, concentration
    DIR/among.csv               per set and reference: observed, null mean, p, adjusted p
    DIR/figures/*.png           matplotlib figures
    DIR/sheets/*.jpg            contact sheets of faces

Only <img> and relative links: the page opens from file:// and fetches nothing.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from appliance import fonts
from appliance.cartography.sheets import decode_thumbnail, resize
from appliance.files import atomic_write_bytes
from appliance.study.figures import write_figures
from appliance.study.run import StudyResult

FACE = 96  # px of a face in the contact sheets
CAPTION = 28
MARKER = ".sosie-study"


def prepare_out(out: Path) -> None:
    """Create OUT, refusing a non-empty folder that is not a previous study."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.exists() and any(p for p in out.iterdir() if p.name != "sets") \
            and not (out / MARKER).exists():
        raise FileExistsError(f"{out}: not empty and not a Sosie study; refusing to overwrite")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "sheets").mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by sosie study\n", encoding="utf-8")


def write_report(result: StudyResult, out: Path, title: str | None = None) -> Path:
    """Write every file of the report (see the module doc); returns DIR/index.html."""
    prepare_out(out)
    figures = write_figures(result, out / "figures")
    sheets = _sheets(result, out / "sheets")
    _write_json(out / "study.json", result.study)
    _write_csvs(result, out)
    page = _page(result, figures, sheets, title or "Sosie — a study of the generations")
    atomic_write_bytes(out / "index.html", page.encode("utf-8"))
    return out / "index.html"


# ---------------------------------------------------------------------------------------------
# Data files


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape").decode(
        "utf-8", "replace").encode("utf-8"))


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8", "replace"))


def _write_csvs(result: StudyResult, out: Path) -> None:
    study = result.study
    _csv(out / "best_doubles.csv", ["reference", "rank", "set", "file", "row", "distance",
                                    "likeness_percent"],
         [[b["reference"], d["rank"], d["set"], d["file"], d["row"], d["distance"],
           d["likeness"]] for b in study["best_doubles"] for d in b["doubles"]])
    names = list(study["sets"])
    _csv(out / "nearest.csv", ["reference", *names],
         [[r["name"], *[study["sets"][n]["nearest"][i] for n in names]]
          for i, r in enumerate(study["references"])])
    rows = []
    for c in study["comparisons"]:
        for label, m in (("nearest", c), ("k_nearest", c.get("k_nearest"))):
            if m and m.get("interval"):
                rows.append([c["set"], c["versus"], label, m["mean_difference"],
                             m["interval"][0], m["interval"][1], m["p"], m["verdict"]])
    _csv(out / "comparisons.csv", ["set", "versus", "measure", "mean_difference",
                                   "interval_low", "interval_high", "p", "verdict"], rows)
    _csv(out / "clusters.csv", ["set", "faces", "sample", "hdbscan_clusters", "clusters",
                                "noise", "silhouette", "stability", "verdict",
                                "median_distance_to_centroid", "concentration_verdict"],
         [[n, c["faces"], c["sample"], c["found"], c["clusters"], c["noise"], c["silhouette"],
           c["stability"], c["verdict"], c["concentration"]["median_distance_to_centroid"],
           c["concentration"].get("verdict_against_photos", "")]
          for n, c in study["clusters"].items()])
    _csv(out / "among.csv", ["set", "reference", "observed", "null_mean", "p", "p_adjusted"],
         [[n, t["reference"], t["observed"], t["null_mean"], t["p"], t["p_adjusted"]]
          for n, a in study["doubles_among_themselves"].items()
          for t in a.get("per_reference", [])])


# ---------------------------------------------------------------------------------------------
# Contact sheets


def _face(result: StudyResult, set_name: str, row: int, cache: dict) -> np.ndarray:
    corpus = next(s.corpus for s in result.sets if s.name == set_name)
    return decode_thumbnail(corpus, row, FACE, cache, colour=True)


def _strip(cells: list[tuple[np.ndarray | None, str]], path: Path) -> None:
    """One row of captioned faces as a JPEG."""
    font = fonts.font("title", 11)
    sheet = Image.new("RGB", (len(cells) * (FACE + 4) + 4, FACE + CAPTION + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (face, caption) in enumerate(cells):
        x = 4 + i * (FACE + 4)
        if face is None:
            draw.rectangle([x, 4, x + FACE - 1, 4 + FACE - 1], fill=(230, 230, 230))
            draw.text((x + 8, 4 + FACE // 2 - 6), "descriptor", fill="gray", font=font)
        else:
            sheet.paste(Image.fromarray(resize(np.asarray(face, np.uint8), FACE)), (x, 4))
        for j, line in enumerate(caption.split("\n")[:2]):
            draw.text((x + 1, 6 + FACE + 12 * j), line[:16], fill="black", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=88)
    atomic_write_bytes(path, buffer.getvalue())


def _sheets(result: StudyResult, folder: Path) -> dict[str, Any]:
    cache: dict = {}
    for old in folder.glob("*.jpg"):
        old.unlink()
    doubles = []
    for i, (ref, row) in enumerate(zip(result.references, result.doubles, strict=True)):
        if i >= 200:  # the page shows the first 200 references; the CSV holds them all
            break
        cells = [(ref.thumbnail, f"{ref.name}\nreference")]
        cells += [(_face(result, d.set, d.row, cache), f"{d.set}\n{d.distance:.3f}")
                  for d in row[:10]]
        name = f"doubles-{i:03d}.jpg"
        _strip(cells, folder / name)
        doubles.append(f"sheets/{name}")
    types, clusters = {}, {}
    for s in result.sets:
        record = result.study["clusters"][s.name]
        kind = record.get("type")
        if kind:
            cells = [(_face(result, s.name, kind["medoid_row"], cache), "medoid")]
            cells += [(_face(result, s.name, r, cache), "near medoid")
                      for r in kind["nearest_medoid_rows"][1:6]]
            cells += [(_face(result, s.name, r, cache), "densest")
                      for r in kind["densest_rows"][:5]]
            _strip(cells, folder / f"type-{s.name}.jpg")
            types[s.name] = f"sheets/type-{s.name}.jpg"
        rows = []
        for c in record.get("cluster_list", [])[:12]:
            cells = [(_face(result, s.name, r, cache), f"cluster {c['id'] + 1}\n{c['size']} faces")
                     for r in c["medoid_rows"]]
            name = f"cluster-{s.name}-{c['id']}.jpg"
            _strip(cells, folder / name)
            rows.append(f"sheets/{name}")
        clusters[s.name] = rows
    return {"doubles": doubles, "types": types, "clusters": clusters}


# ---------------------------------------------------------------------------------------------
# The page

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:0 20px 60px;
color:#222}
h1{margin:24px 0 4px}h2{margin-top:36px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
font-size:13px;text-align:left}th{background:#f4f4f4}
.verdict{font-weight:bold}.closer,.more-alike,.clusters{color:#1a7f37}
.farther{color:#b42318}.answer{background:#f7f7f2;border-left:4px solid #888;padding:8px 12px}
img{max-width:100%}.sheet{display:block;margin:4px 0}.note{color:#666;font-size:13px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _verdict(text: str) -> str:
    return f'<span class="verdict {_e(text.replace(" ", "-"))}">{_e(text)}</span>'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return _e(value)


def _page(result: StudyResult, figures: dict[str, str], sheets: dict[str, Any],
          title: str) -> str:
    study = result.study
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"]
    sets = _table(["set", "faces", "from", "kind", "left out (files or draws)"],
                  [[_e(n), _e(s["faces"]), _e(s["origin"]), _e(s["kind"]), _e(s["rejected"])]
                   for n, s in study["sets"].items()])
    parts.append(f"<p>{len(study['references'])} references; sets:</p>{sets}")
    for note in study["notes"]:
        parts.append(f"<p class='note'>{_e(note)}</p>")

    parts.append("<h2 id='doubles'>1. Which generations are the most alike — my best fake "
                 "double?</h2>")
    parts.append("<p>Each reference with its nearest faces over all sets (set and distance under "
                 "each face; below 0.6 dlib takes two faces for the same person). Every double "
                 "is in <a href='best_doubles.csv'>best_doubles.csv</a>.</p>")
    for src in sheets["doubles"]:
        parts.append(f"<img class='sheet' src='{_e(src)}' alt='best doubles'>")
    parts.append(f"<img src='{_e(figures['distances'])}' alt='distance distributions'>")

    parts.append("<h2 id='compare'>2. Are one set's doubles more alike than another's?</h2>")
    rows = []
    for c in study["comparisons"]:
        if c.get("interval") is None:
            rows.append([_e(c["set"]), _e(c["versus"]), "–", "–", "–", _verdict(c["verdict"])
                         + f" ({_e(c.get('reason', ''))})"])
            continue
        k = c["k_nearest"]
        rows.append([_e(c["set"]), _e(c["versus"]),
                     f"{_fmt(c['mean_difference'], 4)} [{_fmt(c['interval'][0], 4)}, "
                     f"{_fmt(c['interval'][1], 4)}]", _fmt(c["p"]),
                     f"{_fmt(k['mean_difference'], 4)} [{_fmt(k['interval'][0], 4)}, "
                     f"{_fmt(k['interval'][1], 4)}] {_verdict(k['verdict'])}",
                     _verdict(c["verdict"])])
    parts.append(_table(["set", "versus", "nearest: mean difference [95 % interval]",
                         "p (set labels permuted)", "k nearest: difference [interval]", "verdict"],
                        rows))
    if study["comparisons"]:
        c = study["comparisons"][0]
        parts.append("<p class='answer'>Per reference, the distance to the nearest face of each "
                     "set, compared at equal set sizes"
                     + (f" (the larger set subsampled to {_e(c.get('equal_size'))} faces, "
                        f"{_e(c.get('repeats'))} times, and averaged)" if c.get("subsampled")
                        else "") +
                     ". The verdict is read from the bootstrap interval of the mean paired "
                     "difference: below 0 'closer', above 0 'farther', containing 0 'no "
                     "difference'. See <a href='comparisons.csv'>comparisons.csv</a>.</p>")
        parts.append(f"<img src='{_e(figures['comparisons'])}' alt='comparison intervals'>")
    else:
        parts.append("<p class='answer'>One set only: nothing to compare.</p>")

    parts.append("<h2 id='clusters'>3. Are there clusters — does the generator have a type?</h2>")
    rows = []
    for n, c in study["clusters"].items():
        con = c.get("concentration", {})
        rows.append([_e(n), _e(c["sample"]), _e(c["found"]), _verdict(c["verdict"]),
                     _fmt(c["noise"]), _fmt(c["silhouette"]), _fmt(c["stability"]),
                     f"{_fmt(con.get('median_distance_to_centroid'))}"
                     + (f" vs {_fmt(con.get('photos_median_distance_to_centroid'))}: "
                        f"{_verdict(con['verdict_against_photos'])} (p = {_fmt(con['p'])})"
                        if "verdict_against_photos" in con else "")])
    parts.append(_table(["set", "faces clustered", "HDBSCAN clusters", "verdict", "noise share",
                         "silhouette", "stability", "spread: median distance to centroid "
                         "(vs the references)"], rows))
    first = next(iter(study["clusters"].values()))
    parts.append(f"<p class='answer'>{_e(first.get('criteria', ''))}. A set without clusters "
                 "answers 0. See <a href='clusters.csv'>clusters.csv</a>.</p>")
    parts.append(f"<img src='{_e(figures['clusters'])}' alt='clusters'>")
    for n in study["clusters"]:
        if n in sheets["types"]:
            parts.append(f"<h3>The type of {_e(n)}: its medoid, faces near it, densest faces"
                         f"</h3><img class='sheet' src='{_e(sheets['types'][n])}' alt='type'>")
        for src in sheets["clusters"].get(n, []):
            parts.append(f"<img class='sheet' src='{_e(src)}' alt='cluster medoids'>")

    parts.append("<h2 id='among'>4. Are the doubles more alike among themselves?</h2>")
    rows = [[_e(n), _verdict(a["verdict"]), _fmt(a.get("p")),
             f"{_e(a.get('references_more_alike', '–'))} of {_e(a.get('references', '–'))}",
             _e(a.get("test", a.get("reason", "")))]
            for n, a in study["doubles_among_themselves"].items()]
    parts.append(_table(["set", "verdict", "smallest adjusted p", "references", "test"], rows))
    parts.append("<p class='answer'>Faces near a reference are near each other anyway; the "
                 "question left is whether the doubles resemble the reference <em>in the same "
                 "way</em>: the mean cosine between their directions from the reference, against "
                 "random subsets of the reference's nearest faces. See "
                 "<a href='among.csv'>among.csv</a>.</p>")
    parts.append(f"<img src='{_e(figures['among'])}' alt='among themselves'>")

    parts.append("<h2 id='map'>Map: every set in one layout, the references as stars</h2>")
    parts.append(f"<img src='{_e(figures['map'])}' alt='PCA and UMAP maps'>")
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in study["seconds"].items())
    parts.append(f"<p class='note'>Data: <a href='study.json'>study.json</a>. Time: {seconds}."
                 "</p></body></html>")
    return "\n".join(parts)
