"""The mugshot layout: the visitor and their double on a height chart, each with a placard."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from appliance.ticket.canvas import INK, PAPER
from appliance.ticket.content import TicketContent
from appliance.ticket.dither import prepare
from appliance.ticket.page import Page, likeness_note
from appliance.ticket.settings import Installation
from appliance.ticket.text import text_width, wrap


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
        wrapped += [(line, f) for line in wrap(text, f, width - 2 * pad, max_lines=3)]
    heights = [round(f.size * 1.3) for _, f in wrapped]
    board = Image.new("L", (width, sum(heights) + 2 * pad), INK)
    draw = ImageDraw.Draw(board)
    draw.fontmode = "1"
    y = pad
    for (line, f), h in zip(wrapped, heights, strict=True):
        draw.text(((width - text_width(line, f)) // 2, y), line, font=f, fill=PAPER)
        y += h
    return board


def mugshot_part(page: Page, content: TicketContent, installation: Installation) -> None:
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
    likeness_note(page)
