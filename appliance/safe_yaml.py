"""YAML files from people and disks we do not trust: the config file and corpus manifests.

`read(path, max_bytes=..., max_depth=...)` parses with pyyaml's SafeLoader, and on top of it
refuses what a hostile or careless file can do to a small machine: aliases (a 3 KB "billion
laughs" expands to gigabytes), nesting deeper than `max_depth` (a RecursionError in the
composer), files larger than `max_bytes` (read no further than that), text that is not UTF-8
(a file saved as Latin-1 by Notepad), and scalars that make Python's constructors raise
(a 5,000-digit integer, the 31st of February). Every failure is a `YAMLFileError` whose message
is one line without the file name; the caller prefixes its own label.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from appliance.errors import one_line

#: Defaults: a config file or manifest is a few kilobytes, at most four or five levels deep.
MAX_BYTES = 1 << 20
MAX_DEPTH = 32


class YAMLFileError(ValueError):
    """An unusable YAML file; the message is one line and does not name the file."""


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with bounded nesting and one-line constructor errors."""

    max_depth = MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(None, None, f"alias *{event.anchor} refused (write the value "
                                "out: anchors and aliases are not accepted)", event.start_mark)
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                event = self.peek_event()
                raise ComposerError(None, None, f"nested deeper than {self.max_depth} levels",
                                    event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, OverflowError, TypeError) as exc:  # int('9' * 5000), 2023-02-31
            raise ConstructorError(None, None, f"unusable value {_short(node.value)} "
                                   f"({one_line(exc, 60)})", node.start_mark) from None


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The document in `text`, or a one-line YAMLFileError."""
    loader = None
    try:
        loader = LimitedLoader(text)
        loader.max_depth = max_depth
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise YAMLFileError(_describe(exc)) from None
    except yaml.YAMLError as exc:  # ReaderError (control characters), ...
        raise YAMLFileError(f"invalid YAML ({one_line(exc)})") from None
    except RecursionError:  # not reachable with a sane max_depth; never a traceback
        raise YAMLFileError("invalid YAML (nested too deeply)") from None
    finally:
        if loader is not None:
            loader.dispose()


def read(
    path: str | Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    regular_only: bool = False,
) -> Any:
    """The YAML document in the file `path`, or a one-line YAMLFileError (OSError if unreadable).

    At most `max_bytes` are read: a bigger file, or a device that never ends, is refused.
    `regular_only` also refuses FIFOs and devices before opening them (opening a FIFO blocks).
    """
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise YAMLFileError("is a directory, not a YAML file")
    if regular_only and not stat.S_ISREG(mode):
        raise YAMLFileError("not a regular file")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YAMLFileError(f"larger than {max_bytes} bytes; refusing to parse it")
    return loads(decode(data), max_depth=max_depth)


def decode(data: bytes) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or a YAMLFileError saying where not."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YAMLFileError("saved as UTF-16; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YAMLFileError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, column {column}; "
            "saved as Latin-1 or Windows-1252?): save it as UTF-8"
        ) from None


def _describe(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = exc.problem or exc.context or one_line(exc)
    return f"{where}invalid YAML ({problem})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
