"""How much ink a double's photo puts on paper, read back from the printer's own bytes.

A face is legible on thermal paper when its photo is neither a black blob nor washed out: the
share of inked dots inside the double's frame says which. `double_ink` composes a one-double
ticket, encodes it with python-escpos as the printer would get it, decodes the bytes
(`appliance.parts.printer.decode`) and counts the inked dots where the photo lies. Where it lies
is found the same way: the dots that differ between a black and a white double.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np

from appliance.ticket.content import Lookalike, TicketContent
from appliance.ticket.settings import Installation, TicketLayout
from appliance.ticket.stream import compose_ticket


def printed_ink(thumbnail: np.ndarray, layout: TicketLayout, width: int) -> np.ndarray:
    """(H, W) bool, True where the printer inks a one-double ticket showing `thumbnail`."""
    from appliance.parts.printer.decode import decode
    from appliance.parts.printer.encoding import encode_ticket
    from appliance.parts.printer.settings import PrinterSettings

    content = TicketContent([Lookalike(1, 0, 0.4, np.asarray(thumbnail, np.uint8))], when=None)
    one = replace(layout, lookalikes=1, show_map=False, show_visitor=False)
    image = compose_ticket(content, one, Installation(), width=width)
    paper = decode(encode_ticket(image, PrinterSettings(), width).data, width)
    return np.asarray(paper.image.convert("L")) < 128


@cache
def double_frame(layout: TicketLayout, width: int) -> tuple[slice, slice]:
    """Rows and columns of the double's photo on the ticket: where a black and a white face
    print differently."""
    black = printed_ink(np.zeros((64, 64), np.uint8), layout, width)
    white = printed_ink(np.full((64, 64), 255, np.uint8), layout, width)
    rows, cols = np.nonzero(black != white)
    if not len(rows):
        raise ValueError("the double's photo is not on this ticket")
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def double_ink(thumbnail: np.ndarray, layout: TicketLayout, width: int) -> float:
    """Share (0..1) of inked dots inside the double's frame when `thumbnail` is printed."""
    rows, cols = double_frame(layout, width)
    return float(printed_ink(thumbnail, layout, width)[rows, cols].mean())
