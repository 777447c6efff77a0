"""The one-line error message every part of the appliance shows to a person."""

from __future__ import annotations


def one_line(exc: BaseException, limit: int | None = None, *, typed: bool = False) -> str:
    """`exc` as one line: the first non-blank line of its message (whitespace runs collapsed),
    else its type name; `typed` puts the type name first ("CommClosedError: ...", for errors
    from another library whose message alone says little). A line longer than `limit`
    characters is cut with "..." (a printer's or a camera's error text can be a page long).
    """
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    text = next((line for line in lines if line), "")
    if typed and text:
        text = f"{type(exc).__name__}: {text}"
    text = text or type(exc).__name__
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 3)] + "..."
    return text
