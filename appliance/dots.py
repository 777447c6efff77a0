"""Paper and ticket widths in printer dots: one byte per 8 dots, from MIN_DOTS to MAX_DOTS.

The one rule `printer.width`, `ticket.width` and `sosie ticket --width` follow (standard
library only, so a command's help can state it without loading the config).
"""

MIN_DOTS, MAX_DOTS = 128, 4096
DOTS_RULE = f"a multiple of 8 from {MIN_DOTS} to {MAX_DOTS}"


def dots_accepted(width: int) -> bool:
    """Whether `width` follows DOTS_RULE."""
    return width % 8 == 0 and MIN_DOTS <= width <= MAX_DOTS
