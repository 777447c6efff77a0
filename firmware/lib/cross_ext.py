"""Cross-compile the project's C/Cython extensions for aarch64 (used by firmware/build).

Reads the extension list from setup.py (without running setup()), cythonizes on the host and
compiles each source with `aarch64-linux-gnu-gcc` against the target root's Python headers and
the aarch64 numpy installed in the image. Writes `<name>.cpython-311-aarch64-linux-gnu.so` files
under OUT, laid out as packages (appliance/_scan....so).

    python cross_ext.py REPO ROOTFS SITE_PACKAGES OUT
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

CC = os.environ.get("CROSS_CC", "aarch64-linux-gnu-gcc")
SUFFIX = ".cpython-311-aarch64-linux-gnu.so"


def extensions(repo: Path) -> list:
    """The Extension objects setup.py would build (sources present), not cythonized."""
    captured: list = []
    code = compile((repo / "setup.py").read_text(), str(repo / "setup.py"), "exec")
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        with mock.patch("setuptools.setup", lambda **kw: None), mock.patch(
            "Cython.Build.cythonize", lambda exts, **kw: captured.extend(exts) or exts
        ):
            exec(code, {"__file__": str(repo / "setup.py"), "__name__": "setup_capture"})
    finally:
        os.chdir(cwd)
    return captured


def run(cmd: list[str]) -> None:
    print("  " + " ".join(cmd[:3]) + " ...", flush=True)
    subprocess.run(cmd, check=True)


def main(repo: Path, rootfs: Path, site: Path, out: Path) -> int:
    build = out / "build"
    build.mkdir(parents=True, exist_ok=True)
    np_include = site / "numpy" / "_core" / "include"
    if not np_include.is_dir():
        np_include = site / "numpy" / "core" / "include"
    py_include = rootfs / "usr" / "include" / "python3.11"
    if not (py_include / "Python.h").exists():
        print(f"cross_ext: {py_include}/Python.h missing (libpython3.11-dev)", file=sys.stderr)
        return 1
    exts = extensions(repo)
    if not exts:
        print("cross_ext: no extension sources present; nothing to build")
    for ext in exts:
        objects = []
        for src in ext.sources:
            src_path = repo / src
            if src_path.suffix == ".pyx":
                c_file = build / (ext.name.replace(".", "_") + "_" + src_path.stem + ".c")
                run([sys.executable, "-m", "cython", "-3", "--module-name", ext.name,
                     "--directive",
                     "boundscheck=False,wraparound=False,language_level=3",
                     "-I", str(src_path.parent), "-o", str(c_file), str(src_path)])
                src_path = c_file
            obj = build / (ext.name.replace(".", "_") + "_" + src_path.stem + ".o")
            includes = []
            for inc in ext.include_dirs:
                inc_path = Path(inc)
                if "numpy" in str(inc_path) and inc_path.name == "include":
                    inc_path = np_include  # the target's numpy headers, not the host's
                elif not inc_path.is_absolute():
                    inc_path = repo / inc_path
                includes += ["-I", str(inc_path)]
            macros = [f"-D{k}={v}" if v is not None else f"-D{k}" for k, v in ext.define_macros]
            run([CC, "-fPIC", "-fno-strict-overflow", "-DNDEBUG", "-g0", *ext.extra_compile_args,
                 *macros, *includes, "-I", str(py_include),
                 "-idirafter", str(rootfs / "usr" / "include"),
                 "-c", str(src_path), "-o", str(obj)])
            objects.append(str(obj))
        target = out / (ext.name.replace(".", "/") + SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        run([CC, "-shared", *objects, *ext.extra_link_args, "-o", str(target)])
        print(f"cross_ext: built {target.relative_to(out)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(*(Path(a).resolve() for a in sys.argv[1:])))
