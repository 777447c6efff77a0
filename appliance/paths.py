"""Where Sosie keeps files it makes for itself (the demo corpus, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$SOSIE_CACHE`, else `$XDG_CACHE_HOME/sosie`, else `~/.cache/sosie` (created)."""
    env = os.environ.get("SOSIE_CACHE")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "sosie"
    path.mkdir(parents=True, exist_ok=True)
    return path
