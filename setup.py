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

NUMPY_API = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]


def kernels_extension(name: str, kernels: str, **options: list[str]) -> Extension:
    """`appliance._NAME` from ext/NAME.pyx and the C kernels of ext/KERNELS/ (its dispatch.c;
    its headers and ext/cpu_features.h rebuild it when they change). fp-contract=off: no
    silent FMA, so every ISA rounds as the serial reference (the scan's error bound; the draw's
    and the ResNet's sums bit for bit those of numpy)."""
    return Extension(
        f"appliance._{name}",
        sources=[f"ext/{name}.pyx", f"ext/{kernels}/dispatch.c"],
        include_dirs=[f"ext/{kernels}", np.get_include()],
        depends=[*sorted(str(p) for p in Path(f"ext/{kernels}").glob("*.h")),
                 "ext/cpu_features.h"],
        extra_compile_args=[*common_c, "-ffp-contract=off", *options.get("compile", [])],
        extra_link_args=options.get("link", []),
        define_macros=NUMPY_API,
    )


EXTENSIONS = [
    # the scan's threads are plain pthreads (no spinning pool)
    kernels_extension("scan", "kernels", compile=["-pthread"], link=["-pthread"]),
    kernels_extension("draw", "draw_kernels"),
    kernels_extension("resnet", "resnet_kernels"),
    Extension(
        "appliance._dither",
        sources=["ext/dither.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=common_c,
        define_macros=NUMPY_API,
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
