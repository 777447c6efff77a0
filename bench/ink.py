"""Ink on paper of a corpus's darkest and brightest faces, in both ticket layouts.

    .venv/bin/python bench/ink.py CORPUS_DIR [--width 576] [--faces 2] [--out DIR]

Ranks the corpus's faces by the mean luminance of their face region (the thumbnail's centre),
then prints, for the darkest and brightest few, the share of inked dots inside the double's
frame of a one-double ticket (classic and mugshot), decoded from the ESC/POS bytes the printer
gets (`appliance.ticket.ink`). A legible face prints with 25-75 % ink. `--before-after PNG`
writes the darkest and brightest faces' frames (classic, mugshot) printed without the face
normalisation (`ticket.tone.face_level: 0`, the tone before it) and with it, side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.corpus import Corpus  # noqa: E402
from appliance.ticket import TicketLayout  # noqa: E402
from appliance.ticket.dither import Tone  # noqa: E402
from appliance.ticket.ink import double_frame, double_ink, printed_ink  # noqa: E402


def face_luminance(thumbnail: np.ndarray) -> float:
    """Mean luminance of the centre half of an aligned thumbnail (the face, little background)."""
    h, w = thumbnail.shape
    return float(thumbnail[h // 4:3 * h // 4, w // 4:3 * w // 4].mean())


def before_after(faces: list[np.ndarray], width: int) -> Image.Image:
    """A 1-bit grid: a row per face; classic and mugshot frames, each before and after."""
    cells = []
    for thumb in faces:
        row = []
        for name in ("classic", "mugshot"):
            for level in (0.0, Tone().face_level):
                layout = TicketLayout(layout=name, tone=Tone(face_level=level))
                rows, cols = double_frame(layout, width)
                row.append(printed_ink(thumb, layout, width)[rows, cols])
        cells.append(row)
    gap = 8
    widths = [max(row[c].shape[1] for row in cells) + gap for c in range(4)]
    height = max(c.shape[0] for row in cells for c in row) + gap
    grid = np.zeros((len(cells) * height, sum(widths)), bool)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            y, x = r * height, sum(widths[:c])
            grid[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return Image.fromarray(~grid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--width", type=int, default=576)
    parser.add_argument("--faces", type=int, default=2, help="darkest and brightest N faces")
    parser.add_argument("--before-after", type=Path, metavar="PNG",
                        help="write the extremes' frames without and with face normalisation")
    args = parser.parse_args()
    with Corpus.open(args.corpus) as corpus:
        thumbs = [corpus.thumbnail(i) for i in range(corpus.count)]
    order = np.argsort([face_luminance(t) for t in thumbs], kind="stable")
    picks = [("darkest", int(i)) for i in order[:args.faces]]
    picks += [("brightest", int(i)) for i in order[::-1][:args.faces]]
    layouts = {name: TicketLayout(layout=name) for name in ("classic", "mugshot")}
    print(f"{corpus.count} faces in {args.corpus}, paper {args.width} dots")
    print("| face | row | face luminance | classic ink | mugshot ink |")
    print("|---|---|---|---|---|")
    for label, row in picks:
        inks = [100 * double_ink(thumbs[row], lay, args.width) for lay in layouts.values()]
        print(f"| {label} | {row} | {face_luminance(thumbs[row]):.0f} | {inks[0]:.0f} % | "
              f"{inks[1]:.0f} % |")
    if args.before_after:
        sheet = before_after([thumbs[picks[0][1]], thumbs[picks[args.faces][1]]], args.width)
        sheet.save(args.before_after, optimize=True)
        print(f"wrote {args.before_after} (rows: darkest, brightest; columns: classic before, "
              "after, mugshot before, after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
