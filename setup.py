"""Build the C/Cython extensions of Sosie (see ext/)."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
IS_X86 = platform.machine().lower() in {"x86_64", "amd64", "i686", "x86"}

# Per-function target attributes select AVX2/F16C/FMA on x86, so the module is built for the
# baseline ISA and still imports on CPUs without AVX2. aarch64 NEON is baseline on ARMv8.
common_c = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall"]

EXTENSIONS = [
    Extension(
        "appliance._scan",
        sources=["ext/scan.pyx", "ext/kernels/dispatch.c"],
        include_dirs=["ext/kernels", np.get_include()],
        depends=sorted(str(p) for p in Path("ext/kernels").glob("*.h")),
        # fp-contract=off: the serial reference rounds every product (no silent FMA), so
        # its error bound holds on every ISA; threads are plain pthreads (no spinning pool).
        extra_compile_args=[*common_c, "-ffp-contract=off", "-pthread"],
        extra_link_args=["-pthread"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "appliance._draw",
        sources=["ext/draw.pyx", "ext/draw_kernels/dispatch.c"],
        include_dirs=["ext/draw_kernels", np.get_include()],
        depends=sorted(str(p) for p in Path("ext/draw_kernels").glob("*.h")),
        # fp-contract=off: no FMA, so the float sums are numpy's, bit for bit, on every ISA
        extra_compile_args=[*common_c, "-ffp-contract=off"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "appliance._resnet",
        sources=["ext/resnet.pyx", "ext/resnet_kernels/dispatch.c"],
        include_dirs=["ext/resnet_kernels", np.get_include()],
        depends=sorted(str(p) for p in Path("ext/resnet_kernels").glob("*.h")),
        # fp-contract=off: no FMA, so the Winograd transforms are numpy's, bit for bit
        extra_compile_args=[*common_c, "-ffp-contract=off"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "appliance._dither",
        sources=["ext/dither.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=common_c,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]


def _checked(extensions: list[Extension]) -> list[Extension]:
    """The extensions, after checking every source file is there (a clear one-line error)."""
    for ext in extensions:
        missing = [src for src in ext.sources if not (HERE / src).exists()]
        if missing:
            raise SystemExit(f"setup.py: {ext.name} needs {', '.join(missing)}, which is missing")
    return extensions


setup(
    ext_modules=cythonize(
        _checked(EXTENSIONS),
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)
