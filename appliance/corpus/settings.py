"""The `corpus` configuration section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.config import setting


@dataclass(frozen=True)
class CorpusSettings:
    """Which corpus the appliance searches, and how `sosie build` stores thumbnails."""

    path: Path | None = None  # corpus directory; None = the embedded demo corpus
    thumbnail_size: int = setting(256, min=32, max=1024)
    thumbnail_encoding: Literal["png", "jpeg", "raw"] = "jpeg"
    jpeg_quality: int = setting(92, min=50, max=100)
    workers: int = setting(0, min=0, max=256)  # 0 = one per CPU core
    chunk_size: int = setting(256, min=1, max=65536)
    duplicates: Literal["reject", "keep"] = "reject"
    scheduler: str | None = None  # tcp://HOST:PORT of a Dask scheduler: build on that cluster
