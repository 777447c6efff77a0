"""A lazy sequence over an iterator: items are made when first asked for, and replayed after.

The ticket's bands are the one case: composed while the printer prints the ones before, and
replayed from here when the printer retries. An item that failed fails every iteration from
there on, so a ticket is never silently cut short.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Replay(Generic[T]):
    """Iterate `source` at most once, however often this is iterated."""

    def __init__(self, source: Iterable[T]) -> None:
        self._source: Iterator[T] | None = iter(source)
        self._items: list[T] = []
        self._error: BaseException | None = None
        self.item_seconds: list[float] = []  # how long each item took to make

    def __iter__(self) -> Iterator[T]:
        i = 0
        while i < len(self._items) or self._more():
            yield self._items[i]
            i += 1

    def _more(self) -> bool:
        """Make the next item; False when the source is exhausted."""
        if self._error is not None:
            raise self._error
        if self._source is None:
            return False
        start = time.perf_counter()
        try:
            self._items.append(next(self._source))
        except StopIteration:
            self._source = None
            return False
        except Exception as exc:
            self._source, self._error = None, exc
            raise
        self.item_seconds.append(time.perf_counter() - start)
        return True


def replayable(items: Iterable[T]) -> Iterable[T]:
    """`items` itself when iterating it twice gives the same items, else a `Replay` of it."""
    if isinstance(items, Replay | list | tuple):
        return items
    return Replay(items)
