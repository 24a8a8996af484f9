"""cffi builder for pykvm._kvm (out-of-line, API mode).

One cdef (csrc/pykvm_api.h), two ways to implement it, chosen once at build
time by PYKVM_BACKEND:

* ``native``: the platform's libkvm (FreeBSD, illumos) plus a small glue,
  csrc/pykvm_native.c.  PYKVM_NATIVE_CFLAGS / PYKVM_NATIVE_LDFLAGS add
  compiler and linker flags; PYKVM_NATIVE_PREFIX=DIR builds against a
  libkvm installed under DIR (``make install-lib PREFIX=DIR``: the shim as a
  C library).  Elsewhere than FreeBSD and illumos, PYKVM_NATIVE_MODE=freebsd
  or illumos picks the glue's platform branch, so both branches can be built
  and tested against the shim's libkvm (``make test-native``).
* ``shim``: the bundled C implementation in csrc/.
* ``auto`` (default): native on FreeBSD and illumos where ``<kvm.h>`` and
  ``-lkvm`` pass a try-compile, else the shim.

The shim's optional codecs (zlib, LZO, snappy, zstd) are each compiled in
when their header and library link here; one that does not is named in a
warning, and its dumps raise UnsupportedError (``pykvm.features()`` shows
what a build has).  PYKVM_WITHOUT=snappy,zstd leaves codecs out on purpose.

Beside it, pykvm._fast (csrc/python/pykvm_fast.c): the hot reads written
against the CPython C API.  It has no libkvm code: it calls the functions
of pykvm._kvm (whichever backend) through addresses pykvm/kvm.py hands it.
It uses the limited API (abi3) on Python >= 3.11, the first whose stable
ABI has both METH_FASTCALL and the buffer protocol; the full API before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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
    ("HAVE_BTF", "bpf/btf.h", "bpf", "btf__new"),
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


# Systems with a libkvm of their own that pykvm_native.c knows.
NATIVE_PLATFORMS = {"freebsd": "freebsd", "sunos": "illumos", "illumos": "illumos"}


def host_platform() -> str | None:
    """'freebsd' or 'illumos' when this system has a libkvm the glue knows."""
    name = sys.platform.rstrip("0123456789")
    return NATIVE_PLATFORMS.get(name)


def native_mode() -> str | None:
    """The glue's platform branch: PYKVM_NATIVE_MODE, else this system's."""
    mode = os.environ.get("PYKVM_NATIVE_MODE") or None
    if mode is not None and mode not in ("freebsd", "illumos"):
        sys.exit(f"PYKVM_NATIVE_MODE must be freebsd or illumos, not {mode!r}")
    return mode or host_platform()


def native_flags() -> tuple[list[str], list[str]]:
    """(compiler flags, linker flags) for building against a libkvm."""
    cflags = os.environ.get("PYKVM_NATIVE_CFLAGS", "").split()
    ldflags = os.environ.get("PYKVM_NATIVE_LDFLAGS", "").split()
    prefix = os.environ.get("PYKVM_NATIVE_PREFIX")
    if prefix:
        prefix = os.path.abspath(prefix)
        lib = os.path.join(prefix, "lib")
        cflags = [f"-I{os.path.join(prefix, 'include', 'libkvm')}",
                  f"-I{os.path.join(prefix, 'include')}"] + cflags
        ldflags = [f"-L{lib}", f"-Wl,-rpath,{lib}"] + ldflags
    return cflags, ldflags


def choose_backend() -> str:
    backend = os.environ.get("PYKVM_BACKEND", "auto")
    if backend not in ("auto", "native", "shim"):
        sys.exit(f"PYKVM_BACKEND must be auto, native or shim, not {backend!r}")
    if backend == "auto":
        cflags, ldflags = native_flags()
        # Only where the glue knows the libkvm (or is told which it is).
        backend = ("native" if native_mode() is not None and have_native_kvm(cflags + ldflags)
                   else "shim")
    if backend == "native" and native_mode() is None:
        sys.exit("PYKVM_BACKEND=native: this system has no libkvm pykvm knows (FreeBSD, illumos); "
                 "set PYKVM_NATIVE_MODE=freebsd or illumos to build the glue against a libkvm "
                 "with that API, e.g. the shim's (make install-lib; see make test-native)")
    return backend


def without() -> set[str]:
    """The codecs PYKVM_WITHOUT names (comma or space separated)."""
    names = set(os.environ.get("PYKVM_WITHOUT", "").replace(",", " ").split())
    known = {m[len("HAVE_"):].lower() for m, *_ in CODECS}
    if names - known:
        sys.exit(f"PYKVM_WITHOUT: unknown codec(s) {', '.join(sorted(names - known))}; "
                 f"choose from {', '.join(sorted(known))}")
    return names


def codec_flags() -> tuple[list[tuple[str, str]], list[str]]:
    macros: list[tuple[str, str]] = []
    libs: list[str] = []
    skip = without()
    for macro, header, lib, func in CODECS:
        if macro[len("HAVE_"):].lower() in skip:
            continue
        src = f"#include <stddef.h>\n#include <{header}>\nint main(void) {{ return (int)(size_t)&{func}; }}\n"
        if try_link(src, [lib]):
            macros.append((macro, "1"))
            libs.append(lib)
    return macros, libs


def warn_missing_codecs(macros: list[tuple[str, str]]) -> None:
    """Say which optional codecs this build lacks (their dumps then raise UnsupportedError)."""
    have = {m for m, _ in macros}
    for macro, header, lib, _ in CODECS:
        if macro not in have:
            name = macro[len("HAVE_"):].lower()
            why = ("left out by PYKVM_WITHOUT" if name in without()
                   else f"{header} or -l{lib} not found")
            print(f"pykvm build: warning: no {name} codec ({why}): kdump files compressed "
                  f"with {name} will raise UnsupportedError; install its development "
                  f"package and rebuild", file=sys.stderr)


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
        mode = native_mode()
        cflags, ldflags = native_flags()
        # Not csrc/ on the include path: <kvm.h> must be the libkvm's own.
        # The glue finds "pykvm_api.h" beside itself; the generated module
        # gets the declarations inline.
        native_cflags = ["-std=gnu99", "-Wall", "-Wextra"]
        macros = []
        if host_platform() != mode:
            # Built against the shim's libkvm elsewhere: ours to keep clean.
            native_cflags.append("-Werror")
            # a mode other than the host's is PYKVM_NATIVE_MODE's, never None
            macros.append((f"PYKVM_NATIVE_{mode.upper()}", "1"))  # type: ignore[union-attr]
        if mode == "illumos":
            native_cflags.append("-D__EXTENSIONS__")
        ffi.set_source(
            "pykvm._kvm",
            "#include <stddef.h>\n#include <stdint.h>\n" + cdef_text(),
            sources=[os.path.join(csrc, "pykvm_native.c")],
            define_macros=macros,
            libraries=["kvm"] + (["pthread"] if mode == "illumos" else []),
            extra_compile_args=native_cflags + cflags,
            extra_link_args=ldflags,
        )
    else:
        macros, libs = codec_flags()
        warn_missing_codecs(macros)
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


if __name__ != "__main__":  # setuptools (cffi_modules) takes ffi from here
    ffi, ffi_backend = make_ffi(os.path.relpath(CSRC))

# What decides the built module: when none of it changed, the in-place module
# is kept (make build is then a no-op).
BUILD_ENV = ("PYKVM_BACKEND", "PYKVM_WITHOUT", "PYKVM_NATIVE_MODE", "PYKVM_NATIVE_CFLAGS", "PYKVM_NATIVE_LDFLAGS",
             "PYKVM_NATIVE_PREFIX", "CC", "CFLAGS", "LDFLAGS", "CPPFLAGS")
HEADER_DIRS = ("/usr/include", "/usr/local/include")


def build_key(into: Path) -> str:
    """A hash of the sources, the build environment, the interpreter and
    which codec headers exist here."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(CSRC.glob("*.[ch]")) + sorted(CSRC.glob("python/*.[ch]")) + [Path(__file__).resolve()]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for var in BUILD_ENV:
        h.update(f"{var}={os.environ.get(var, '')}\0".encode())
    prefix = os.environ.get("PYKVM_NATIVE_PREFIX")
    if prefix:  # a libkvm rebuilt under the prefix
        for lib in sorted(Path(prefix, "lib").glob("libkvm.so*")):
            h.update(f"{lib}:{lib.stat().st_mtime_ns}\0".encode())
    for _, header, _, _ in CODECS:
        h.update(f"{header}:{any(Path(d, header).exists() for d in HEADER_DIRS)}\0".encode())
    h.update(f"{sys.executable}\0{sys.version}\0{into.resolve()}".encode())
    return h.hexdigest()


# The fast path's stable-ABI floor: METH_FASTCALL (3.10) and Py_buffer (3.11).
FAST_LIMITED_API = (3, 11)


def fast_extension(csrc: str) -> Any:
    """The setuptools Extension for pykvm._fast; csrc names csrc/ as make_ffi's does."""
    from setuptools import Extension

    limited = sys.version_info >= FAST_LIMITED_API and not hasattr(sys, "gettotalrefcount")
    macros = [("PYKVM_LIMITED_API", "0x030B0000")] if limited else []
    return Extension(
        "pykvm._fast",
        sources=[os.path.join(csrc, "python", "pykvm_fast.c"),
                 os.path.join(csrc, "python", "fast_value.c")],
        define_macros=macros,
        extra_compile_args=["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"],
        py_limited_api=limited,
    )


def build_fast(build: Path) -> Path:
    """Compile pykvm._fast under build/ (out of tree); returns the module file."""
    from setuptools import Distribution

    dist = Distribution({"ext_modules": [fast_extension(str(CSRC))],
                         "script_name": "_build.py"})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(build / "fast-lib")
    cmd.build_temp = str(build / "fast-temp")
    cmd.force = True
    cmd.ensure_finalized()
    cmd.run()
    [out] = cmd.get_outputs()
    return Path(out)

def main(argv: list[str]) -> None:
    """Build out of tree (--build-dir) and copy the module into --into."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", default="build/ext")
    ap.add_argument("--into", default="pykvm")
    ap.add_argument("--codec-flags", action="store_true",
                    help="print the -D and -l flags of the codecs found here and exit (make lib)")
    args = ap.parse_args(argv)
    if args.codec_flags:
        macros, libs = codec_flags()
        print(" ".join([f"-D{m}={v}" for m, v in macros] + [f"-l{lib}" for lib in libs]))
        return
    build = Path(args.build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    into = Path(args.into)
    key = build_key(into)
    stamp = build / "stamp"
    try:
        old_key, name = stamp.read_text().split()
    except (OSError, ValueError):
        old_key = name = ""
    if old_key == key and (into / name).is_file() and any(into.glob("_fast.*.so")):
        print(f"{into / name} is up to date")
        return
    absolute, backend = make_ffi(str(CSRC))
    built = Path(absolute.compile(tmpdir=str(build), verbose=False))
    for old in into.glob("_kvm.*.so"):
        old.unlink()
    shutil.copy2(built, into / built.name)
    fast = build_fast(build)
    for old in into.glob("_fast.*.so"):
        old.unlink()
    shutil.copy2(fast, into / fast.name)
    stamp.write_text(f"{key} {built.name}\n")
    print(f"built {into / built.name} ({backend}) and {into / fast.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
