"""The corpus map: a dot per face in PCA space, the doubles by rank, the visitor marked."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from appliance.ticket.canvas import INK, PAPER, static_piece
from appliance.ticket.content import CorpusMap
from appliance.ticket.page import Page, heading
from appliance.ticket.text import text_width


@dataclass(frozen=True)
class MapFrame:
    """The map's box on its block and the PCA window it shows (set by the corpus alone)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in dots
    pad: int
    lo: np.ndarray
    span: np.ndarray

    def to_xy(self, p: object) -> np.ndarray:
        """Dots for PCA points; points outside the window are kept on its edge."""
        x0, y0, x1, y1 = self.box
        u = np.clip((np.asarray(p, dtype=np.float64) - self.lo) / self.span, 0.0, 1.0)
        xs = x0 + self.pad + u[..., 0] * (x1 - x0 - 2 * self.pad)
        ys = y1 - self.pad - u[..., 1] * (y1 - y0 - 2 * self.pad)
        return np.rint(np.stack([xs, ys], axis=-1)).astype(int)


def _map_frame(page: Page, points: np.ndarray, known: np.ndarray) -> MapFrame:
    """The window: the corpus sample's extent (robust for a big one), else the known points."""
    basis = points if len(points) else known
    robust = len(basis) > 2000  # a few far outliers must not squeeze a big corpus
    lo = np.percentile(basis, 0.5, axis=0) if robust else basis.min(0)
    hi = np.percentile(basis, 99.5, axis=0) if robust else basis.max(0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    height = page.px(page.layout.map_height)
    box = (page.margin, 0, page.width - page.margin - 1, height - 1)
    return MapFrame(box, page.px(18), lo, span)


def _map_background(page: Page, frame: MapFrame, points: np.ndarray) -> Image.Image:
    """The frame and one dot per face (a small cross when few enough to count)."""
    x0, y0, x1, y1 = frame.box
    img = Image.new("L", (page.width, y1 + 1), PAPER)
    draw = ImageDraw.Draw(img)
    draw.rectangle([x0, y0, x1, y1], outline=INK, width=1)
    xy = frame.to_xy(points)
    xy = xy[(xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)]
    if len(points) <= 600:
        r = max(1, page.px(1.5))
        for x, y in xy:
            draw.line([x - r, y, x + r, y], fill=INK)
            draw.line([x, y - r, x, y + r], fill=INK)
    else:
        draw.point([tuple(p) for p in xy], fill=INK)
    return img


def map_part(page: Page, corpus_map: CorpusMap) -> None:
    points = np.asarray(corpus_map.points, dtype=np.float64).reshape(-1, 2)
    known = np.asarray([p for p in [corpus_map.visitor, *corpus_map.lookalikes] if p is not None],
                       dtype=np.float64).reshape(-1, 2)
    if len(points) == 0 and corpus_map.visitor is None:
        return
    page.cached(("map-head",), lambda: (page.rule(1, gap=10, dotted=True),
                                        heading(page, "where you stand"), page.space(4)))
    frame = _map_frame(page, points, known)
    if len(points):
        digest = hashlib.blake2b(points.tobytes(), digest_size=16).digest()
        background = static_piece(("map", digest, page.width, page.layout),
                                  lambda: _map_background(page, frame, points))
        img = background.copy()
    else:
        img = _map_background(page, frame, points)
    page.blocks.append(img)
    draw = ImageDraw.Draw(img)
    draw.fontmode = "1"
    _map_marks(page, draw, frame, corpus_map)
    page.space(4)
    count = f"{corpus_map.count:,}".replace(",", " ")
    page.cached(("map-count", count), lambda: page.text(
        f"{count} faces, laid out by resemblance", "text", 15, leading=1.3))


def _map_marks(page: Page, draw: ImageDraw.ImageDraw, frame: MapFrame,
               corpus_map: CorpusMap) -> None:
    """The doubles (small squares with their rank) and the visitor (crosshair, ring, label)."""
    _, y0, x1, _ = frame.box
    visitor_xy = None if corpus_map.visitor is None else frame.to_xy(corpus_map.visitor)
    ring = page.px(9) + page.px(8)
    small = page.font("bold", 13)
    for rank, p in enumerate(corpus_map.lookalikes, start=1):
        px_, py_ = frame.to_xy(p)
        s = page.px(3)
        draw.rectangle([px_ - s, py_ - s, px_ + s, py_ + s], fill=INK)
        near_visitor = visitor_xy is not None and np.hypot(*(visitor_xy - (px_, py_))) < ring
        if rank <= 3 and not near_visitor:
            tx = px_ + s + 2
            toward_visitor = (visitor_xy is not None and visitor_xy[0] > px_
                              and abs(int(visitor_xy[1]) - py_) < 2 * ring)
            if toward_visitor or tx + text_width(str(rank), small) > x1 - 2:
                tx = px_ - s - 2 - text_width(str(rank), small)
            draw.text((tx, max(y0 + 2, py_ - small.size)), str(rank), font=small, fill=INK)
    if visitor_xy is not None:
        _map_visitor(page, draw, frame, visitor_xy)


def _map_visitor(page: Page, draw: ImageDraw.ImageDraw, frame: MapFrame,
                 at: np.ndarray) -> None:
    x0, y0, x1, y1 = frame.box
    vx, vy = at
    step = page.px(4)
    for x in range(x0 + 2, x1 - 1, step):
        draw.point((x, vy), fill=INK)
    for y in range(y0 + 2, y1 - 1, step):
        draw.point((vx, y), fill=INK)
    r = page.px(9)
    draw.ellipse([vx - r, vy - r, vx + r, vy + r], fill=PAPER, outline=INK, width=page.px(3))
    draw.ellipse([vx - 2, vy - 2, vx + 2, vy + 2], fill=INK)
    label_font = page.font("bold", 17)
    label = "YOU"
    lw = text_width(label, label_font)
    lx = vx + r + page.px(4)
    if lx + lw > x1 - 2:
        lx = vx - r - page.px(4) - lw
    ly = max(y0 + 2, min(vy - label_font.size // 2, y1 - label_font.size - 4))
    draw.rectangle([lx - 2, ly, lx + lw + 1, ly + label_font.size + 2], fill=PAPER)
    draw.text((lx, ly), label, font=label_font, fill=INK)
