"""Peak memory of every entry point that decodes a photo, fed a decompression bomb.

The bomb is a 13000x13000 PNG of one colour (0.5 MB on disk, 507 MB of RGB pixels); beside it a
PNG just within the decode budget (36 MP) and a 48 MP JPEG (decoded at 1/2 scale). Each entry
point runs as its own `sosie` process; a sampler adds up the resident memory of the process and
all its children every 5 ms (so `build --workers 2` counts both workers) and keeps the peak.
Anchor: the same command on a 512x512 face photo (scikit-image's astronaut), measured in the
same run; the table shows both peaks, their ratio, and what the command said about the bomb.

    .venv/bin/python bench/bombs.py                # every entry point
    .venv/bin/python bench/bombs.py --only describe ticket --json bench/results/bombs.json

A Pi 4 has 2-4 GB; see `appliance/images.py` for the decode budget this is checked against.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from figures import write_json

SOSIE = [sys.executable, "-m", "appliance"]
SIDE = 13000


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and every descendant (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, ()))
    return total


def peak_rss(command: list[str], timeout: float = 600) -> tuple[int, int, str]:
    """(peak resident bytes of the process tree, exit status, last line of stderr)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        peak, deadline = 0, time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.005)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    return peak, proc.returncode, lines[-1] if lines else ""


def inputs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """{column: (photo, folder of images for rank/build)}: the anchor face, a PNG just within
    the decode budget, a 48 MP JPEG (decoded at 1/2 scale), and the bomb (a folder of two)."""
    from skimage import data

    face = Image.fromarray(data.astronaut())
    made = {}
    for name, image, suffix in [
        ("face", face, "png"),
        ("36 MP PNG", face.resize((7344, 4896), Image.Resampling.BILINEAR), "png"),
        ("48 MP JPEG", face.resize((8000, 6000), Image.Resampling.BILINEAR), "jpg"),
        ("bomb", Image.new("RGB", (SIDE, SIDE), (200, 180, 160)), "png"),
    ]:
        images = folder / name.replace(" ", "-")
        images.mkdir()
        photo = images / f"photo.{suffix}"
        image.save(photo, optimize=True)
        if name == "bomb":  # two different bombs: both workers decode at once
            Image.new("RGB", (SIDE, SIDE), (90, 90, 90)).save(images / "b.png", optimize=True)
        made[name] = (photo, images)
    return made


def commands(photo: Path, folder: Path, work: Path) -> dict[str, list[str]]:
    return {
        "describe": ["describe", str(photo)],
        "ticket": ["ticket", "--image", str(photo), "--out", str(work / "ticket.png")],
        "rank": ["rank", str(photo), str(folder), "--out", str(work / "rank")],
        "map --mark": ["map", "demo", "--out", str(work / "map"), "--mark", str(photo)],
        "build --workers 2": ["build", str(folder), str(work / "corpus"), "--workers", "2",
                              "--quiet", "--force"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="entry points to run (default: all)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        made = inputs(root)
        bomb = made["bomb"][0]
        print(f"bomb: {SIDE}x{SIDE} PNG, {bomb.stat().st_size / 1e6:.2f} MB on disk; peak "
              "resident MB of the whole process tree (ratio to the 512x512 face's)")
        print(f"{'entry point':<19}" + "".join(f"{name:>16}" for name in made)
              + "  what the bomb got")
        figures = {}
        for name in commands(bomb, root, root):
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            row = {}
            for column, (photo, folder) in made.items():
                work = root / f"out-{name.split()[0]}-{column.replace(' ', '-')}"
                work.mkdir()
                peak, status, said = peak_rss([*SOSIE, *commands(photo, folder, work)[name]])
                row[column] = {"mb": peak / 1e6, "status": status, "said": said}
            anchor = row["face"]["mb"]
            cells = "".join(f"{c['mb']:>9.0f} ({c['mb'] / anchor:4.1f})" if k != "face"
                            else f"{c['mb']:>16.0f}" for k, c in row.items())
            bomb_row = row["bomb"]
            print(f"{name:<19}{cells}  exit {bomb_row['status']}: {bomb_row['said'][:60]}")
            figures[name] = row
        if args.json:
            write_json(args.json, figures)


if __name__ == "__main__":
    main()
