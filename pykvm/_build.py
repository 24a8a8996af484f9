"""cffi builder for pykvm._kvm (out-of-line, API mode).

One cdef (csrc/pykvm_api.h), two ways to implement it, chosen once at build
time by PYKVM_BACKEND:

* ``native``: the platform's libkvm (FreeBSD, illumos) plus a small glue.
* ``shim``: the bundled C implementation in csrc/.
* ``auto`` (default): native where ``<kvm.h>`` and ``-lkvm`` pass a
  try-compile, else the shim.

The shim's optional codecs (zlib, LZO, snappy, zstd) are each compiled in
when their header and library link here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"

# C99, warnings as errors, POSIX interfaces (pread, strdup) only.
CFLAGS = ["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror"]

# The shim's files: everything in csrc/ but the native glue.
NATIVE_ONLY = {"pykvm_native.c"}

# (macro, header, library, function) for each optional codec.
CODECS = [
    ("HAVE_ZLIB", "zlib.h", "z", "uncompress"),
    ("HAVE_LZO", "lzo/lzo1x.h", "lzo2", "lzo1x_decompress_safe"),
    ("HAVE_SNAPPY", "snappy-c.h", "snappy", "snappy_uncompress"),
    ("HAVE_ZSTD", "zstd.h", "zstd", "ZSTD_decompress"),
]


def _compiler() -> str:
    return os.environ.get("CC", "cc")


def try_link(source: str, libs: list[str], extra: list[str] | None = None) -> bool:
    """Compile and link a small program; True if that works here."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.c")
        src.write_text(source)
        cmd = [_compiler(), *(extra or []), str(src), "-o", str(Path(tmp, "probe"))]
        cmd += [f"-l{lib}" for lib in libs]
        try:
            res = subprocess.run(cmd, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return res.returncode == 0


def have_native_kvm(extra: list[str]) -> bool:
    src = "#include <kvm.h>\nint main(void) { return kvm_close(0) == 12345; }\n"
    return try_link(src, ["kvm"], extra)


def codec_flags() -> tuple[list[tuple[str, str]], list[str]]:
    macros: list[tuple[str, str]] = []
    libs: list[str] = []
    for macro, header, lib, func in CODECS:
        src = f"#include <stddef.h>\n#include <{header}>\nint main(void) {{ return (int)(size_t)&{func}; }}\n"
        if try_link(src, [lib]):
            macros.append((macro, "1"))
            libs.append(lib)
    return macros, libs


def choose_backend() -> str:
    backend = os.environ.get("PYKVM_BACKEND", "auto")
    if backend not in ("auto", "native", "shim"):
        sys.exit(f"PYKVM_BACKEND must be auto, native or shim, not {backend!r}")
    native_cflags = os.environ.get("PYKVM_NATIVE_CFLAGS", "").split()
    native_libs = os.environ.get("PYKVM_NATIVE_LDFLAGS", "").split()
    if backend == "auto":
        backend = "native" if have_native_kvm(native_cflags + native_libs) else "shim"
    return backend


def cdef_text() -> str:
    text = (CSRC / "pykvm_api.h").read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def make_ffi(csrc: str) -> tuple[FFI, str]:
    """The builder; csrc is how to name csrc/ for the compiler (setuptools
    wants it relative to setup.py's directory, ffi.compile absolute)."""
    backend = choose_backend()
    ffi = FFI()
    ffi.cdef(cdef_text())
    common = dict(include_dirs=[csrc], extra_compile_args=CFLAGS)
    if backend == "native":
        cflags = os.environ.get("PYKVM_NATIVE_CFLAGS", "").split()
        ldflags = os.environ.get("PYKVM_NATIVE_LDFLAGS", "").split()
        ffi.set_source(
            "pykvm._kvm",
            '#include <kvm.h>\n#include "pykvm_api.h"\n',
            sources=[os.path.join(csrc, "pykvm_native.c")],
            libraries=["kvm"],
            include_dirs=[csrc],
            extra_compile_args=CFLAGS + cflags,
            extra_link_args=ldflags,
        )
    else:
        macros, libs = codec_flags()
        sources = sorted(
            os.path.join(csrc, p.name) for p in CSRC.glob("*.c") if p.name not in NATIVE_ONLY
        )
        ffi.set_source(
            "pykvm._kvm",
            '#include "kvm_ext.h"\n#include "pykvm_api.h"\n',
            sources=sources,
            define_macros=macros,
            libraries=libs + ["pthread"],
            **common,
        )
    return ffi, backend


ffi, ffi_backend = make_ffi(os.path.relpath(CSRC))

def main(argv: list[str]) -> None:
    """Build out of tree (--build-dir) and copy the module into --into."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", default="build/ext")
    ap.add_argument("--into", default="pykvm")
    args = ap.parse_args(argv)
    build = Path(args.build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    absolute, backend = make_ffi(str(CSRC))
    built = Path(absolute.compile(tmpdir=str(build), verbose=False))
    into = Path(args.into)
    for old in into.glob("_kvm.*.so"):
        old.unlink()
    shutil.copy2(built, into / built.name)
    print(f"built {into / built.name} ({backend})")


if __name__ == "__main__":
    main(sys.argv[1:])
