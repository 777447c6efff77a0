"""Decode an ESC/POS byte stream back into the paper it would print: previews and tests.

Raster images (`GS v 0`) are reproduced exactly, dot for dot. Text is drawn with Pillow's built-in
font as an approximation of the printer's font A. Feeds become white space between printed parts;
a cut ends a piece of paper (the feed just before a cut, which only moves the print past the
blade, is reported but not drawn). Unknown commands raise `DecodeError` naming their offset::

    >>> paper = decode(data, width=576)
    >>> paper.pieces[0].image.save("ticket.png")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ESC, GS, DLE, FS, LF, CR, HT = 0x1B, 0x1D, 0x10, 0x1C, 0x0A, 0x0D, 0x09
DEFAULT_LINE_SPACING = 30  # dots; ESC 2 (1/6 inch at 180 dpi)

# Commands that only set a mode: ESC/GS + letter -> number of parameter bytes to skip.
_ESC_SKIP = {
    ord("!"): 1, ord("-"): 1, ord("E"): 1, ord("G"): 1, ord("M"): 1, ord("R"): 1, ord("t"): 1,
    ord("{"): 1, ord("V"): 1, ord("c"): 2, ord("p"): 3, ord("$"): 2, ord("\\"): 2, ord("="): 1,
    ord("%"): 1, ord(" "): 1,
}
_GS_SKIP = {
    ord("!"): 1, ord("B"): 1, ord("L"): 2, ord("W"): 2, ord("H"): 1, ord("f"): 1, ord("h"): 1,
    ord("w"): 1, ord("a"): 1, ord("b"): 1, ord("P"): 2, ord("I"): 1, ord("r"): 1,
}


class DecodeError(ValueError):
    """The stream holds something this decoder does not understand (one line, with offset)."""


@dataclass
class Piece:
    """One piece of paper, from the start (or a cut) to the next cut (or the end)."""

    image: Image.Image  # mode "1", white paper
    cut: str | None  # "full", "partial" or None (stream ended without a cut)
    trailing_feed: int  # dots fed after the last print before the cut


@dataclass
class Paper:
    """Everything a stream prints."""

    pieces: list[Piece]
    rasters: int = 0  # GS v 0 blocks seen
    text_lines: int = 0
    status_queries: int = 0
    commands: list[str] = field(default_factory=list)  # one short name per command, in order

    @property
    def image(self) -> Image.Image:
        """The first piece (a single ticket)."""
        if not self.pieces:
            return Image.new("1", (8, 0), 1)
        return self.pieces[0].image


class _Builder:
    """Accumulates printed rows (True = ink) into pieces of paper."""

    def __init__(self, width: int | None) -> None:
        self.width = width
        self.blocks: list[np.ndarray] = []
        self.pending_feed = 0
        self.pieces: list[Piece] = []
        self.align = 0

    def feed(self, dots: int) -> None:
        self.pending_feed += dots

    def add(self, ink: np.ndarray) -> None:
        if self.pending_feed and self.blocks:
            self.blocks.append(np.zeros((self.pending_feed, 0), dtype=bool))
        self.pending_feed = 0
        self.blocks.append(ink)

    def cut(self, kind: str | None) -> None:
        if not self.blocks and kind is None:
            return
        widths = [b.shape[1] for b in self.blocks]
        width = self.width or max(widths, default=8)
        rows = []
        for block in self.blocks:
            out = np.zeros((block.shape[0], width), dtype=bool)
            w = min(width, block.shape[1])
            offset = {0: 0, 1: (width - w) // 2, 2: width - w}[getattr(block, "align", 0)]
            out[:, offset:offset + w] = block[:, :w]
            rows.append(out)
        ink = np.concatenate(rows) if rows else np.zeros((0, width), dtype=bool)
        image = Image.fromarray(np.ascontiguousarray(~ink))
        self.pieces.append(Piece(image=image, cut=kind, trailing_feed=self.pending_feed))
        self.blocks = []
        self.pending_feed = 0


class _Aligned(np.ndarray):
    align: int = 0


def _unpack_raster(data: bytes, width_bytes: int, height: int, mode: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).reshape(height, width_bytes * 8)
    ink = bits.astype(bool)
    if mode in (1, 3, 49, 51):  # double width
        ink = np.repeat(ink, 2, axis=1)
    if mode in (2, 3, 50, 51):  # double height
        ink = np.repeat(ink, 2, axis=0)
    return ink


def _render_text(text: str, line_spacing: int) -> np.ndarray:
    font = ImageFont.load_default(size=max(8, int(line_spacing * 0.75)))
    _left, _top, right, bottom = font.getbbox(text or " ")
    img = Image.new("L", (max(8, right + 2), max(line_spacing, bottom + 2)), 255)
    draw = ImageDraw.Draw(img)
    draw.fontmode = "1"
    draw.text((0, 0), text, font=font, fill=0)
    return np.asarray(img) < 128


def decode(data: bytes, width: int | None = None) -> Paper:
    """Decode `data` (ESC/POS) into pieces of paper `width` dots wide (else the widest raster)."""
    b = _Builder(width)
    paper = Paper(pieces=b.pieces)
    spacing = DEFAULT_LINE_SPACING
    line = bytearray()
    n = len(data)
    i = 0

    def need(count: int, what: str) -> bytes:
        if i + count > n:
            raise DecodeError(f"ESC/POS stream truncated in {what} at byte {i} (need {count})")
        return data[i:i + count]

    def flush_line(feed_line: bool) -> None:
        nonlocal line
        if line:
            ink = _render_text(line.decode("cp437", errors="replace"), spacing).view(_Aligned)
            ink.align = b.align
            b.add(ink)
            paper.text_lines += 1
            if spacing > ink.shape[0] and feed_line:
                b.feed(spacing - ink.shape[0])
            line = bytearray()
        elif feed_line:
            b.feed(spacing)

    while i < n:
        c = data[i]
        if c == ESC:
            cmd = need(2, "ESC command")[1]
            i += 2
            if cmd == ord("@"):
                b.align, spacing = 0, DEFAULT_LINE_SPACING
                paper.commands.append("init")
            elif cmd == ord("a"):
                value = need(1, "ESC a")[0]
                b.align = {48: 0, 49: 1, 50: 2}.get(value, value if value in (0, 1, 2) else 0)
                i += 1
                paper.commands.append("align")
            elif cmd == ord("d"):
                lines = need(1, "ESC d")[0]
                i += 1
                flush_line(False)
                b.feed(spacing * lines)
                paper.commands.append("feed-lines")
            elif cmd == ord("J"):
                flush_line(False)
                b.feed(need(1, "ESC J")[0])
                i += 1
                paper.commands.append("feed-dots")
            elif cmd == ord("2"):
                spacing = DEFAULT_LINE_SPACING
                paper.commands.append("line-spacing")
            elif cmd == ord("3"):
                spacing = need(1, "ESC 3")[0]
                i += 1
                paper.commands.append("line-spacing")
            elif cmd in _ESC_SKIP:
                need(_ESC_SKIP[cmd], f"ESC {chr(cmd)}")
                i += _ESC_SKIP[cmd]
                paper.commands.append(f"esc-{chr(cmd)}")
            else:
                raise DecodeError(f"unknown ESC/POS command ESC 0x{cmd:02x} at byte {i - 2}")
        elif c == GS:
            cmd = need(2, "GS command")[1]
            i += 2
            if cmd == ord("v"):
                head = need(6, "GS v 0 header")
                if head[0] not in (0x30, 0x00):
                    raise DecodeError(f"unknown GS v function 0x{head[0]:02x} at byte {i - 2}")
                mode = head[1]
                width_bytes = head[2] | head[3] << 8
                height = head[4] | head[5] << 8
                i += 6
                size = width_bytes * height
                body = need(size, f"GS v 0 raster ({width_bytes}x{height} bytes)")
                i += size
                flush_line(False)
                ink = _unpack_raster(body, width_bytes, height, mode).view(_Aligned)
                ink.align = b.align
                b.add(ink)
                paper.rasters += 1
                paper.commands.append("raster")
            elif cmd == ord("V"):
                m = need(1, "GS V")[0]
                i += 1
                flush_line(False)
                if m in (65, 66):
                    b.feed(need(1, "GS V feed")[0])
                    i += 1
                b.cut("partial" if m in (1, 49, 66) else "full")
                paper.commands.append("cut")
            elif cmd in _GS_SKIP:
                need(_GS_SKIP[cmd], f"GS {chr(cmd)}")
                i += _GS_SKIP[cmd]
                paper.commands.append(f"gs-{chr(cmd)}")
            else:
                raise DecodeError(f"unknown ESC/POS command GS 0x{cmd:02x} at byte {i - 2}")
        elif c == DLE:
            cmd = need(3, "DLE command")
            if cmd[1] != 0x04:
                raise DecodeError(f"unknown ESC/POS command DLE 0x{cmd[1]:02x} at byte {i}")
            i += 3
            paper.status_queries += 1
            paper.commands.append("status")
        elif c == 0x00:  # NUL: ignored by printers (used as harmless padding)
            i += 1
        elif c == LF:
            flush_line(True)
            i += 1
        elif c in (CR, HT) or c >= 0x20:
            if c == HT:
                line.extend(b"    ")
            elif c != CR:
                line.append(c)
            i += 1
        else:
            raise DecodeError(f"unexpected control byte 0x{c:02x} in ESC/POS stream at byte {i}")
    flush_line(False)
    b.cut(None)
    return paper
