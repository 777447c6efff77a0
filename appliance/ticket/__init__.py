"""The ticket the visitor takes home, composed with Pillow at the printer's width in dots.

Two layouts (config `ticket.layout`):

* classic: the installation's title, the closest lookalike large, the next ones in a grid, each
  with its rank and likeness; optionally the visitor's own face; a map of the corpus in PCA space
  with the visitor marked; a footer with date, ticket number and the privacy line.
* mugshot: the visitor's aligned face on a height chart with a placard (installation, date,
  number), beside their closest lookalike on the same chart.

Photos are tone-prepared and dithered (appliance.ticket.dither); text and lines are drawn without
anti-aliasing, so they print crisp. Sizes are given for 576 dots and scale with the width.

The ticket is composed as full-width bands, header first, so the printer can start on the header
while the photos are still being dithered (`Ticket`, `ticket_bands`). What does not depend on the
visitor (header art, rules, headings, the privacy line, the corpus map's dots) is drawn once per
process and reused::

    >>> image = compose_ticket(content, TicketLayout(), Installation(), width=576)  # mode "1"
    >>> ticket = visitor_ticket(content, layout, width=paper.width)  # lazy; iterate for bands

Every ticket is composed here, at `ticket_width(layout, paper_width)` dots (`ticket.width`,
else the paper's, else 576: the one width rule): the visitor's (`visitor_ticket`,
`compose_ticket`), the no-face one (`compose_no_face`), the conjured double's
(`compose_conjured`) and the plain fallback (`simple_text_ticket`).

One module per concern: `settings` (the config sections), `content` (what is printed),
`canvas` (ink, paper, pieces drawn once), `text` (typesetting), `page` (the page being
composed), the parts (`header_footer`, `classic`, `corpus_map`, `mugshot`), `stream` (bands,
`Ticket`, the width rule, the entry points), `conjured` (the double's short ticket) and `plain`
(the fallback).
Everything public is importable from here.
"""

from appliance.ticket.canvas import (
    BASE_WIDTH,
    INK,
    MIN_TEXT,
    PAPER,
    STATIC_LIMIT,
    clear_static,
    stack,
    static_piece,
)
from appliance.ticket.conjured import compose_conjured, face_side
from appliance.ticket.content import CorpusMap, Lookalike, TicketContent
from appliance.ticket.corpus_map import MapFrame
from appliance.ticket.mugshot import height_chart
from appliance.ticket.page import Page, crop_to_aspect
from appliance.ticket.plain import NO_FACE_TEXT, simple_text_ticket
from appliance.ticket.settings import Fonts, Installation, TicketLayout
from appliance.ticket.stream import (
    ContentSource,
    Ticket,
    TicketError,
    compose_no_face,
    compose_ticket,
    ticket_bands,
    ticket_width,
    visitor_ticket,
)
from appliance.ticket.text import draw_text, fit_size, text_width, wrap

__all__ = [
    "BASE_WIDTH",
    "INK",
    "MIN_TEXT",
    "NO_FACE_TEXT",
    "PAPER",
    "STATIC_LIMIT",
    "ContentSource",
    "CorpusMap",
    "Fonts",
    "Installation",
    "Lookalike",
    "MapFrame",
    "Page",
    "Ticket",
    "TicketContent",
    "TicketError",
    "TicketLayout",
    "clear_static",
    "compose_conjured",
    "compose_no_face",
    "compose_ticket",
    "crop_to_aspect",
    "draw_text",
    "face_side",
    "fit_size",
    "height_chart",
    "simple_text_ticket",
    "stack",
    "static_piece",
    "text_width",
    "ticket_bands",
    "ticket_width",
    "visitor_ticket",
    "wrap",
]
