"""Which SIMD kernel scans: the best this CPU runs, or the one asked for."""

from __future__ import annotations

import os

from appliance import _scan

ENV_KERNEL = "SOSIE_KERNEL"
KNOWN_KERNELS = ("serial", "avx2", "avx512", "neon")
#: Kernels that scan faster with the norm trick than with direct differences (compute-bound:
#: the Cortex-A72 saves a subtraction per 4 lanes; AVX2 is memory-bound either way).
NORM_TRICK_KERNELS = frozenset({"neon"})


def kernels() -> list[str]:
    """Kernels this CPU can run, preferred first (``serial`` is always there)."""
    return [name for name in _scan.compiled_kernels() if _scan.supported(name)]


def pick_kernel(requested: str | None) -> str:
    name = requested if requested not in (None, "", "auto") else os.environ.get(ENV_KERNEL, "")
    where = "kernel" if requested not in (None, "", "auto") else ENV_KERNEL
    name = name.strip().lower()
    if name in ("", "auto"):
        return _scan.best()
    if name not in KNOWN_KERNELS:
        known = ", ".join(["auto", *KNOWN_KERNELS])
        raise ValueError(f"{where}={name!r}: unknown kernel (expected one of: {known})")
    if name not in _scan.compiled_kernels() or not _scan.supported(name):
        raise ValueError(f"{where}={name!r}: this CPU cannot run it (it can: {kernels()})")
    return name
