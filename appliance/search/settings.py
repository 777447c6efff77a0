"""The `search` section of the configuration and the limits the kernels are sized for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from appliance import _scan
from appliance.config import setting

#: Most axes a sketch may have: the scan's exact int32 dots and its two stages are sized for
#: it; defined once, in ext/kernels/sketch_shared.h, as the kernels are built. The corpus
#: format refuses more (appliance.corpus.format).
MAX_SKETCH_AXES: int = _scan.MAX_SKETCH_AXES
MAX_THREADS = 64


@dataclass(frozen=True)
class SearchSettings:
    """The `search` section of the configuration."""

    threads: int = setting(1, min=1, max=MAX_THREADS)
    kernel: Literal["auto", "serial", "avx2", "avx512", "neon"] = "auto"
