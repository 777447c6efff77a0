"""The ticket the visitor takes home, composed with Pillow at the printer's width in dots.

Two layouts (config `ticket.layout`):

* classic: the installation's title, the closest lookalike large, the next ones in a grid, each
  with its rank and likeness; optionally the visitor's own face; a map of the corpus in PCA space
  with the visitor marked; a footer with date, ticket number and the privacy line.
* mugshot: the visitor's aligned face on a height chart with a placard (installation, date,
  number), beside their closest lookalike on the same chart.

Photos are tone-prepared and dithered (appliance.dither); text and lines are drawn without
anti-aliasing, so they print crisp. Sizes are given for 576 dots and scale with the width.

The ticket is composed as full-width bands, header first, so the printer can start on the header
while the photos are still being dithered (`Ticket`, `ticket_bands`). What does not depend on the
visitor (header art, rules, headings, the privacy line, the corpus map's dots) is drawn once per
process and reused::

    >>> image = compose_ticket(content, TicketLayout(), Installation(), width=576)  # mode "1"
    >>> ticket = Ticket(ticket_bands(content, width=576), 576)  # lazy; iterate for the bands
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from appliance.config import check_dots, setting
from appliance.dither import Tone, dither, prepare, render
from appliance.fonts import font
from appliance.likeness import likeness

BASE_WIDTH = 576
INK, PAPER = 0, 255
MIN_TEXT = 11  # dots: smaller letters do not survive thermal paper

# ---------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Installation:
    """The installation's identity (config section `installation`)."""

    title: str = "Sosie"
    subtitle: str = "Your double among faces that do not exist"


@dataclass(frozen=True)
class Fonts:
    """Optional TrueType files replacing the bundled DejaVu faces (empty: bundled)."""

    title: str = ""
    text: str = ""
    bold: str = ""
    note: str = ""


@dataclass(frozen=True)
class TicketLayout:
    """What the ticket shows and how (config section `ticket`)."""

    layout: Literal["classic", "mugshot"] = "classic"
    width: int | None = setting(None, min=128, max=4096)  # dots; None: the printer's width
    lookalikes: int = setting(5, min=1, max=10)  # how many doubles are printed
    columns: int = setting(0, min=0, max=5)  # grid columns after the first; 0: by width
    show_visitor: bool = False  # print the visitor's own face next to their double (classic)
    show_map: bool = True  # the corpus map with the visitor's place
    show_distance: bool = False  # print the raw descriptor distance under each likeness
    map_points: int = setting(4000, min=0, max=200_000)  # corpus dots drawn on the map
    map_height: int = setting(300, min=80, max=2000)  # dots at 576 wide, scales with width
    margin: int = setting(20, min=8, max=100)  # dots at 576 wide, left and right
    number_digits: int = setting(6, min=1, max=12)  # ticket number zero padding
    date_format: str = "%d.%m.%Y  %H:%M"
    date: Literal["auto", "always", "never"] = "auto"  # auto: only when the clock is synchronised
    privacy: str = "Nothing of you was kept. Your photo lived in memory for a moment, and is gone."
    retry_hint: str = "Face the camera, come a little closer, and press the button again."
    tone: Tone = field(default_factory=Tone)
    fonts: Fonts = field(default_factory=Fonts)

    def __post_init__(self) -> None:
        check_dots("ticket.width", self.width)


# ---------------------------------------------------------------------------------------------
# What is printed


@dataclass(frozen=True)
class Lookalike:
    rank: int  # 1 = closest
    index: int  # row in the corpus
    distance: float  # Euclidean descriptor distance
    thumbnail: np.ndarray  # uint8 gray aligned face (h, w)

    @property
    def likeness(self) -> float:
        return likeness(self.distance)


@dataclass(frozen=True)
class CorpusMap:
    points: np.ndarray  # (n, 2) float PCA coordinates of (a sample of) the corpus
    count: int  # faces in the whole corpus
    visitor: tuple[float, float] | None  # the visitor's coordinates, same axes
    lookalikes: tuple[tuple[float, float], ...] = ()  # in rank order


@dataclass(frozen=True)
class TicketContent:
    lookalikes: Sequence[Lookalike]
    number: int = 1
    when: datetime | None = field(default_factory=datetime.now)  # None: no date is printed
    visitor_face: np.ndarray | None = None  # uint8 gray aligned face, only if it is printed
    corpus_map: CorpusMap | None = None


# ---------------------------------------------------------------------------------------------
# What does not depend on the visitor, drawn once per process

STATIC_LIMIT = 64  # cached pieces kept (a few per layout and paper width)
_static: dict[tuple[object, ...], Image.Image] = {}
_BITS = [PAPER if v >= 128 else INK for v in range(256)]  # 8-bit block -> 1-bit band


def static_piece(key: tuple[object, ...], draw: Callable[[], Image.Image]) -> Image.Image:
    """The image `draw` makes for `key`, drawn on first use; callers must not draw on it."""
    piece = _static.get(key)
    if piece is None:
        piece = draw()
        if len(_static) >= STATIC_LIMIT:
            _static.pop(next(iter(_static)))
        _static[key] = piece
    return piece


def clear_static() -> None:
    """Forget every pre-rendered piece (tests; a changed font file)."""
    _static.clear()


def stack(blocks: Iterable[Image.Image], width: int, mode: str = "L") -> Image.Image:
    """`blocks` one under the other, as one image `width` wide."""
    blocks = list(blocks)
    canvas = Image.new(mode, (width, sum(b.height for b in blocks)), PAPER if mode == "L" else 1)
    y = 0
    for b in blocks:
        canvas.paste(b, (0, y))
        y += b.height
    return canvas


# ---------------------------------------------------------------------------------------------
# Typesetting


class Page:
    """A ticket being composed: a stack of full-width 8-bit blocks (0 ink / 255 paper)."""

    def __init__(self, width: int, layout: TicketLayout) -> None:
        if width % 8 or width < 128:
            raise ValueError(f"ticket width must be a multiple of 8 and >= 128, got {width}")
        self.width = width
        self.layout = layout
        self.scale = width / BASE_WIDTH
        self.margin = self.px(layout.margin)
        self.inner = width - 2 * self.margin
        self.blocks: list[Image.Image] = []
        self.dither_seconds = 0.0

    def px(self, value: float) -> int:
        return max(1, round(value * self.scale))

    def font(self, role: str, size: float) -> ImageFont.FreeTypeFont:
        path = getattr(self.layout.fonts, role) or None
        return font(role, max(MIN_TEXT, self.px(size)), path)

    def block(self, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("L", (self.width, max(0, int(height))), PAPER)
        draw = ImageDraw.Draw(img)
        draw.fontmode = "1"
        self.blocks.append(img)
        return img, draw

    def space(self, height: float) -> None:
        self.block(self.px(height))

    def cached(self, key: tuple[object, ...], draw: Callable[[], object]) -> None:
        """Append the blocks `draw` adds, drawn once per process for this key, width, layout."""

        def render() -> Image.Image:
            mark = len(self.blocks)
            draw()
            piece = stack(self.blocks[mark:], self.width)
            del self.blocks[mark:]
            return piece

        self.blocks.append(static_piece((*key, self.width, self.layout), render))

    def number(self, number: int) -> str:
        return f"N° {number:0{self.layout.number_digits}d}"

    def photo(self, gray: np.ndarray, size: tuple[int, int]) -> Image.Image:
        start = time.perf_counter()
        bits = render(crop_to_aspect(np.asarray(gray, dtype=np.uint8), size), self.layout.tone,
                      size)
        self.dither_seconds += time.perf_counter() - start
        return Image.fromarray(bits)

    def dither_gray(self, gray: np.ndarray) -> Image.Image:
        """Dither an already prepared gray composition (no further tone changes)."""
        start = time.perf_counter()
        tone = self.layout.tone
        bits = dither(gray, tone.method, serpentine=tone.serpentine, bayer_size=tone.bayer_size)
        self.dither_seconds += time.perf_counter() - start
        return Image.fromarray(bits)

    def text(self, text: str, role: str, size: float, *, align: str = "center",
             tracking: float = 0.0, leading: float = 1.25, width: int | None = None) -> None:
        """Wrapped text across the inner width (or `width`), as its own block."""
        f = self.font(role, size)
        track = tracking * f.size
        lines = wrap(text, f, width or self.inner, track)
        line_height = round(f.size * leading)
        _, draw = self.block(line_height * len(lines))
        for i, line in enumerate(lines):
            w = text_width(line, f, track)
            x = {"left": self.margin, "right": self.width - self.margin - w}.get(
                align, (self.width - w) // 2
            )
            draw_text(draw, (x, i * line_height), line, f, track)

    def rule(self, thickness: float = 1, *, gap: float = 6, dotted: bool = False) -> None:
        t = self.px(thickness) if thickness >= 1 else 1
        g = self.px(gap)
        _, draw = self.block(t + 2 * g)
        if dotted:
            step = self.px(6)
            for x in range(self.margin, self.width - self.margin, step):
                draw.rectangle([x, g, x + max(1, step // 3) - 1, g + t - 1], fill=INK)
        else:
            draw.rectangle([self.margin, g, self.width - self.margin - 1, g + t - 1], fill=INK)

    def flush(self) -> Image.Image | None:
        """The blocks added since the last flush as one mode "1" band; None if there are none."""
        blocks, self.blocks = self.blocks, []
        if not sum(b.height for b in blocks):
            return None
        return stack(blocks, self.width).point(_BITS, "1")


def crop_to_aspect(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The centred crop of `gray` with the aspect ratio of `size` (width, height)."""
    h, w = gray.shape[:2]
    want = size[0] / size[1]
    if w > h * want + 1:
        keep = max(1, round(h * want))
        return gray[:, (w - keep) // 2:(w - keep) // 2 + keep]
    if h > w / want + 1:
        keep = max(1, round(w / want))
        return gray[(h - keep) // 2:(h - keep) // 2 + keep]
    return gray


def text_width(text: str, f: ImageFont.FreeTypeFont, tracking: float = 0.0) -> int:
    """Advance width of `text` in dots, with `tracking` extra dots between letters."""
    if not text:
        return 0
    if not tracking:
        return round(f.getlength(text))
    return round(sum(f.getlength(c) for c in text) + tracking * (len(text) - 1))


def draw_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
              f: ImageFont.FreeTypeFont, tracking: float = 0.0, fill: int = INK) -> None:
    x, y = xy
    if not tracking:
        draw.text((x, y), text, font=f, fill=fill)
        return
    for c in text:
        draw.text((x, y), c, font=f, fill=fill)
        x += f.getlength(c) + tracking


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int, tracking: float = 0.0) -> list[str]:
    """Greedy word wrap to `width` dots; words longer than a line are split (never clipped)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if text_width(candidate, f, tracking) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while len(word) > 1 and text_width(word, f, tracking) > width:
                cut = _fitting_prefix(word, f, width, tracking)
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def _fitting_prefix(word: str, f: ImageFont.FreeTypeFont, width: int, tracking: float) -> int:
    """How many leading letters of `word` fit in `width` (at least one)."""
    used = 0.0
    for i, c in enumerate(word):
        used += f.getlength(c) + (tracking if i else 0.0)
        if i and round(used) > width:
            return i
    return len(word)


def fit_size(text: str, role: str, page: Page, largest: float, smallest: float,
             tracking: float, max_lines: int) -> float:
    """The largest size (576-dot units) whose wrap of `text` takes at most `max_lines`."""
    size = largest
    while size > smallest:
        f = page.font(role, size)
        if len(wrap(text, f, page.inner, tracking * f.size)) <= max_lines:
            longest = max(text_width(w, f, tracking * f.size) for w in text.split() or [""])
            if longest <= page.inner:
                return size
        size -= 2
    return smallest


# ---------------------------------------------------------------------------------------------
# Parts


def _title(page: Page, installation: Installation, *, compact: bool = False) -> None:
    """The header art: rules, the installation's title and subtitle (drawn once)."""
    page.cached(("header", installation, compact),
                lambda: _header_art(page, installation, compact=compact))


def _number_and_date(page: Page, number: int, when: datetime | None) -> None:
    date = when.strftime(page.layout.date_format) if when is not None else ""
    _meta_row(page, page.number(number), date)
    page.cached(("header-rule",), lambda: page.rule(1, gap=6, dotted=True))


def _header_art(page: Page, installation: Installation, *, compact: bool) -> None:
    page.space(10)
    page.rule(5, gap=0)
    page.space(4)
    page.rule(1, gap=0)
    page.space(18 if not compact else 12)
    title = installation.title.strip().upper() or "SOSIE"
    tracking = 0.16
    largest = 58 if compact else 76
    size = fit_size(title, "title", page, largest, 26, tracking, 3)
    page.text(title, "title", size, tracking=tracking, leading=1.12)
    if installation.subtitle.strip():
        page.space(4)
        page.text(installation.subtitle.strip(), "note", 21, leading=1.3)
    page.space(14)
    page.rule(1, gap=0)
    page.space(4)
    page.rule(5, gap=0)
    page.space(8)


def _meta_row(page: Page, left: str, right: str) -> None:
    f = page.font("text", 19)
    line_height = round(f.size * 1.35)
    lw, rw = text_width(left, f), text_width(right, f)
    if lw + rw + page.px(16) <= page.inner:
        _, draw = page.block(line_height)
        draw.text((page.margin, 0), left, font=f, fill=INK)
        draw.text((page.width - page.margin - rw, 0), right, font=f, fill=INK)
    else:
        page.text(left, "text", 19, align="left")
        page.text(right, "text", 19, align="left")


def _likeness_bar(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], share: float,
                  page: Page) -> None:
    """A bar of ticks, filled up to `share` (0..1): reads like a gauge, prints clean."""
    x0, y0, x1, y1 = box
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=INK, width=1)
    inner_x0, inner_x1 = x0 + 3, x1 - 4
    filled = inner_x0 + round((inner_x1 - inner_x0) * max(0.0, min(1.0, share)))
    step = max(3, page.px(5))
    for x in range(inner_x0, filled, step):
        draw.rectangle([x, y0 + 3, min(x + step - 2, filled), y1 - 4], fill=INK)


def _caption(page: Page, match: Lookalike, x: int, width: int, draw: ImageDraw.ImageDraw,
             y: int, *, big: bool) -> int:
    """Rank, likeness bar and percentage in one line at (x, y); returns the height used."""
    rank_font = page.font("bold", 30 if big else 21)
    pct_font = page.font("bold", 30 if big else 21)
    rank = f"N°{match.rank}"
    pct = f"{match.likeness:.0f}%"
    rw, pw = text_width(rank, rank_font), text_width(pct, pct_font)
    height = round(rank_font.size * 1.25)
    gap = page.px(10 if big else 6)
    bar_width = width - rw - pw - 2 * gap
    draw.text((x, y), rank, font=rank_font, fill=INK)
    draw.text((x + width - pw, y), pct, font=pct_font, fill=INK)
    if bar_width >= page.px(24):
        bar_h = max(8, round(rank_font.size * 0.55))
        top = y + (round(rank_font.size * 1.1) - bar_h) // 2
        _likeness_bar(draw, (x + rw + gap, top, x + rw + gap + bar_width, top + bar_h),
                      match.likeness / 100, page)
    lines = 0
    if page.layout.show_distance:
        small = page.font("text", 15 if big else 13)
        draw.text((x, y + height), f"distance {match.distance:.3f}", font=small, fill=INK)
        lines = round(small.size * 1.3)
    return height + lines


def _framed(photo: Image.Image, page: Page) -> Image.Image:
    """The photo inside a thin frame with a white gap, like a print mounted on card."""
    gap, line = page.px(4), 1 if page.width < 500 else 2
    w, h = photo.size
    framed = Image.new("L", (w + 2 * (gap + line), h + 2 * (gap + line)), PAPER)
    draw = ImageDraw.Draw(framed)
    draw.rectangle([0, 0, framed.width - 1, framed.height - 1], outline=INK, width=line)
    framed.paste(photo.convert("L"), (gap + line, gap + line))
    return framed


def _heading(page: Page, text: str) -> None:
    page.text(text.upper(), "bold", 17, tracking=0.25, leading=1.5)


def _hero(page: Page, content: TicketContent) -> None:
    best = content.lookalikes[0]
    visitor = content.visitor_face if page.layout.show_visitor else None
    frame_extra = 2 * (page.px(4) + (1 if page.width < 500 else 2))
    if visitor is None:
        page.cached(("hero-head",), lambda: (_heading(page, "your closest double"),
                                              page.space(4)))
        side = page.inner - frame_extra
        framed = _framed(page.photo(best.thumbnail, (side, side)), page)
        img, draw = page.block(framed.height + page.px(12))
        img.paste(framed, (page.margin, 0))
        page.space(2)
        img, draw = page.block(page.px(44))
        _caption(page, best, page.margin, page.inner, draw, 0, big=True)
        return
    gap = page.px(16)
    cell = (page.inner - gap) // 2
    side = cell - frame_extra
    f = page.font("bold", 17)
    labels = [("you", visitor), (f"your double  N°{best.rank}", best.thumbnail)]
    img, draw = page.block(round(f.size * 1.5) + side + frame_extra + page.px(10))
    for i, (label, face) in enumerate(labels):
        x = page.margin + i * (cell + gap)
        draw_text(draw, (x, 0), label.upper(), f, 0.2 * f.size)
        img.paste(_framed(page.photo(face, (side, side)), page), (x, round(f.size * 1.5)))
    img, draw = page.block(page.px(44))
    _caption(page, best, page.margin, page.inner, draw, 0, big=True)


def _grid(page: Page, others: Sequence[Lookalike]) -> Iterator[None]:
    """The other doubles in rows; yields after each row (a band)."""
    if not others:
        return
    columns = page.layout.columns or (2 if page.width < 480 or len(others) in (1, 2, 4) else 3)
    page.cached(("grid-head",), lambda: (page.rule(1, gap=10, dotted=True),
                                         _heading(page, "and then"), page.space(4)))
    gap = page.px(14)
    cell = (page.inner - gap * (columns - 1)) // columns
    frame_extra = 2 * (page.px(4) + (1 if page.width < 500 else 2))
    side = cell - frame_extra
    caption_h = round(page.font("bold", 21).size * 1.25) + (
        round(page.font("text", 13).size * 1.3) if page.layout.show_distance else 0
    )
    for row_start in range(0, len(others), columns):
        row = others[row_start:row_start + columns]
        img, draw = page.block(side + frame_extra + page.px(6) + caption_h + page.px(14))
        offset = (columns - len(row)) * (cell + gap) // 2  # a short last row is centred
        for i, match in enumerate(row):
            x = page.margin + offset + i * (cell + gap)
            img.paste(_framed(page.photo(match.thumbnail, (side, side)), page), (x, 0))
            _caption(page, match, x, cell, draw, side + frame_extra + page.px(6), big=False)
        yield


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


def _map(page: Page, corpus_map: CorpusMap) -> None:
    points = np.asarray(corpus_map.points, dtype=np.float64).reshape(-1, 2)
    known = np.asarray([p for p in [corpus_map.visitor, *corpus_map.lookalikes] if p is not None],
                       dtype=np.float64).reshape(-1, 2)
    if len(points) == 0 and corpus_map.visitor is None:
        return
    page.cached(("map-head",), lambda: (page.rule(1, gap=10, dotted=True),
                                        _heading(page, "where you stand"), page.space(4)))
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


def _footer(page: Page, number: int, when: datetime | None) -> None:
    page.cached(("footer-top",), lambda: (page.rule(1, gap=12), page.text(
        page.layout.privacy, "note", 19, leading=1.35), page.space(8)))
    stamp = page.number(number)
    if when is not None:
        stamp = f"{when:%Y-%m-%d %H:%M:%S} · {stamp}"
    page.text(stamp, "text", 14)
    page.cached(("footer-end",), lambda: (page.space(6), page.rule(5, gap=0), page.space(16)))


# ---------------------------------------------------------------------------------------------
# Mugshot


def height_chart(width: int, height: int, page: Page) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """A gray height-chart background: lines every 2 cm of a 'wall', labels every 10 cm."""
    chart = np.full((height, width), PAPER, dtype=np.uint8)
    labels: list[tuple[int, str]] = []
    step = max(6, page.px(18))  # dots per 2 cm of wall
    top_cm = 200
    for i, y in enumerate(range(step // 2, height, step)):
        cm = top_cm - 2 * i
        major = cm % 10 == 0
        x_start = 0 if major else width // 3
        thickness = 2 if major else 1
        chart[y:y + thickness, x_start:] = INK
        if major:
            labels.append((y, str(cm)))
    return chart, labels


def _face_on_chart(page: Page, face: np.ndarray, width: int, height: int) -> Image.Image:
    """The face over the height chart through a soft oval, dithered as one picture."""
    chart, labels = height_chart(width, height, page)
    face_img = Image.fromarray(np.ascontiguousarray(face)).resize((width, width),
                                                                  Image.Resampling.LANCZOS)
    prepared = prepare(np.asarray(face_img), page.layout.tone).astype(np.float64)
    top = height - width
    yy, xx = np.mgrid[0:width, 0:width] / width
    oval = ((xx - 0.5) / 0.44) ** 2 + ((yy - 0.55) / 0.52) ** 2
    mask = np.clip((1.15 - oval) / 0.3, 0.0, 1.0)  # 1 inside the head, 0 on the wall
    gray = chart.astype(np.float64)
    region = gray[top:top + width]
    gray[top:top + width] = region * (1 - mask) + prepared * mask
    picture = page.dither_gray(np.clip(np.rint(gray), 0, 255).astype(np.uint8)).convert("L")
    draw = ImageDraw.Draw(picture)
    draw.fontmode = "1"
    f = page.font("bold", 13)
    for y, label in labels:  # crisp labels on the wall, over the dithered picture
        lw = text_width(label, f)
        if y - f.size - 2 < 0:
            continue
        draw.rectangle([0, y - f.size - 3, lw + 3, y - 1], fill=PAPER)
        draw.text((1, y - f.size - 2), label, font=f, fill=INK)
    return picture


def _placard(page: Page, lines: Sequence[str], width: int) -> Image.Image:
    """White letters on a black board, like the sign held in a police photograph."""
    fonts = [page.font("title", 24)] + [page.font("bold", 17)] * (len(lines) - 1)
    pad = page.px(8)
    wrapped: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for text, f in zip(lines, fonts, strict=True):
        wrapped += [(line, f) for line in wrap(text, f, width - 2 * pad)]
    heights = [round(f.size * 1.3) for _, f in wrapped]
    board = Image.new("L", (width, sum(heights) + 2 * pad), INK)
    draw = ImageDraw.Draw(board)
    draw.fontmode = "1"
    y = pad
    for (line, f), h in zip(wrapped, heights, strict=True):
        draw.text(((width - text_width(line, f)) // 2, y), line, font=f, fill=PAPER)
        y += h
    return board


def _mugshot(page: Page, content: TicketContent, installation: Installation) -> None:
    best = content.lookalikes[0]
    gap = page.px(14)
    cell = (page.inner - gap) // 2
    height = round(cell * 1.45)
    number = page.number(content.number)
    panels = []
    visitor = content.visitor_face
    if visitor is not None:
        date = [] if content.when is None else [content.when.strftime("%d.%m.%Y")]
        panels.append((_face_on_chart(page, visitor, cell, height),
                       [installation.title.upper(), *date, number]))
    panels.append((_face_on_chart(page, best.thumbnail, cell, height),
                   ["YOUR DOUBLE", f"N°{best.rank} · {best.likeness:.0f}% alike",
                    f"face {best.index}"]))
    placards = [_placard(page, lines, cell) for _, lines in panels]
    placard_h = max(p.height for p in placards)
    img, draw = page.block(height + page.px(6) + placard_h + page.px(10))
    total = len(panels) * cell + (len(panels) - 1) * gap
    x = (page.width - total) // 2
    for (picture, _), placard in zip(panels, placards, strict=True):
        img.paste(picture, (x, 0))
        draw.rectangle([x, 0, x + cell - 1, height - 1], outline=INK, width=1)
        img.paste(placard, (x, height + page.px(6)))
        x += cell + gap
    if visitor is not None:
        page.text("you, and the face closest to yours", "note", 18)


# ---------------------------------------------------------------------------------------------
# Entry points


class Ticket:
    """A ticket composed lazily, band by band (header first), for streaming to the printer.

    Iterating yields the bands (mode "1", full width), composing each when it is first asked
    for; a second iteration replays the composed ones (a printer's retry). A band that failed
    to compose fails every iteration from there on: a ticket is never silently cut short.
    """

    def __init__(self, bands: Iterator[Image.Image], width: int,
                 timings: dict[str, float] | None = None) -> None:
        self.width = width
        self.timings = timings if timings is not None else {}
        self.band_seconds: list[float] = []  # composing time of each band
        self._source: Iterator[Image.Image] | None = bands
        self._bands: list[Image.Image] = []
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[Image.Image]:
        i = 0
        while i < len(self._bands) or self._more():
            yield self._bands[i]
            i += 1

    def _more(self) -> bool:
        """Compose the next band; False when the ticket is complete."""
        if self._error is not None:
            raise self._error
        if self._source is None:
            return False
        start = time.perf_counter()
        try:
            self._bands.append(next(self._source))
        except StopIteration:
            self._source = None
            return False
        except Exception as exc:
            self._source, self._error = None, exc
            raise
        self.band_seconds.append(time.perf_counter() - start)
        return True

    def image(self) -> Image.Image:
        """The whole ticket as one mode "1" image (composes what is left)."""
        return stack(self, self.width, "1")


ContentSource = TicketContent | Callable[[], TicketContent]


def ticket_bands(content: ContentSource, layout: TicketLayout | None = None,
                 installation: Installation | None = None, *, width: int | None = None,
                 timings: dict[str, float] | None = None) -> Iterator[Image.Image]:
    """The visitor's ticket as mode "1" bands, top to bottom, each composed when asked for.

    The first band is the header art, the same for every visitor; `content` may be a function,
    called only after that band is out (reading the lookalikes' photos then costs nothing
    before the printer's first byte). `timings`, if given, accumulates "dither" (photos) and
    "layout" (everything else, including a `content` function), seconds.
    """
    layout = layout or TicketLayout()
    installation = installation or Installation()
    if isinstance(content, TicketContent):
        _check_content(content)
    page = Page(layout.width or width or BASE_WIDTH, layout)
    return _banded(page, _parts(page, content, installation), timings)


def _check_content(content: TicketContent) -> None:
    if not content.lookalikes:
        raise ValueError("a ticket needs at least one lookalike")


def _fitted(content: TicketContent, layout: TicketLayout) -> TicketContent:
    """`content` with at most `layout.lookalikes` doubles (and as many on the map)."""
    _check_content(content)
    matches = list(content.lookalikes)[: layout.lookalikes]
    corpus_map = content.corpus_map
    if corpus_map is not None:
        corpus_map = dataclasses.replace(corpus_map,
                                         lookalikes=corpus_map.lookalikes[: len(matches)])
    return dataclasses.replace(content, lookalikes=matches, corpus_map=corpus_map)


def _banded(page: Page, parts: Iterator[None], timings: dict[str, float] | None
            ) -> Iterator[Image.Image]:
    """Run `parts` (which yield at band boundaries) and yield the page's bands."""
    start = time.perf_counter()
    for _ in parts:
        band = page.flush()
        _record(timings, start, page)
        if band is not None:
            yield band
        start = time.perf_counter()


def _parts(page: Page, source: ContentSource, installation: Installation) -> Iterator[None]:
    """The whole ticket; yields at each band boundary."""
    mugshot = page.layout.layout == "mugshot"
    _title(page, installation, compact=mugshot)
    yield  # the same for every visitor: no work before the first byte
    content = _fitted(source() if callable(source) else source, page.layout)
    _number_and_date(page, content.number, content.when)
    page.space(8 if mugshot else 6)
    yield
    if mugshot:
        _mugshot(page, content, installation)
        yield
    else:
        yield from _classic_parts(page, content)
    _footer(page, content.number, content.when)
    yield


def _classic_parts(page: Page, content: TicketContent) -> Iterator[None]:
    _hero(page, content)
    yield
    yield from _grid(page, content.lookalikes[1:])
    if page.layout.show_map and content.corpus_map is not None:
        _map(page, content.corpus_map)
        yield


def compose_ticket(content: TicketContent, layout: TicketLayout | None = None,
                   installation: Installation | None = None, *, width: int | None = None,
                   timings: dict[str, float] | None = None) -> Image.Image:
    """The visitor's whole ticket as one PIL mode "1" image: the bands of `ticket_bands`."""
    bands = ticket_bands(content, layout, installation, width=width, timings=timings)
    return stack(bands, (layout and layout.width) or width or BASE_WIDTH, "1")


def compose_no_face(layout: TicketLayout | None = None, installation: Installation | None = None,
                    *, reason: str = "", number: int = 1, when: datetime | None = None,
                    width: int | None = None) -> Image.Image:
    """A short ticket saying no face was found, and how to try again (no date if `when` is None)."""
    layout = layout or TicketLayout()
    installation = installation or Installation()
    page = Page(layout.width or width or BASE_WIDTH, layout)
    _title(page, installation, compact=True)
    _number_and_date(page, number, when)
    page.cached(("no-face-head",), lambda: (page.space(22), page.text(
        "NO FACE FOUND", "title", 44, tracking=0.12), page.space(8)))
    if reason:
        reason = reason.strip().rstrip(".")
        page.text(reason[:1].upper() + reason[1:] + ".", "note", 19)
        page.space(8)
    page.cached(("no-face-hint",), lambda: (page.text(layout.retry_hint, "text", 18,
                                                      leading=1.35), page.space(14)))
    _footer(page, number, when)
    return page.flush() or Image.new("1", (page.width, 0))


def _record(timings: dict[str, float] | None, start: float, page: Page) -> None:
    """Add the time since `start` to `timings`: the page's dither time, the rest as layout."""
    if timings is None:
        return
    total = time.perf_counter() - start
    timings["dither"] = timings.get("dither", 0.0) + page.dither_seconds
    timings["layout"] = timings.get("layout", 0.0) + total - page.dither_seconds
    page.dither_seconds = 0.0
