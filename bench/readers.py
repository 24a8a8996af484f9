"""Reader adapters: pykvm, drgn, libkdumpfile and the floors behind one small shape.

Every ``open_*`` returns a :class:`Handle` whose ``read(addr, size)`` is the
reader's own fastest single-read call, bound once (so a benchmark loop pays
one call per read and nothing of ours), or raises :class:`Unavailable` with
the reason the reader cannot run here.

The floors are not libraries: :class:`CoreMap` maps an ELF dump and turns
physical addresses into file offsets, so a loop can slice the mapping
(``mm[o:o + n]``), ``os.pread`` the file or ``memmove`` from it at exactly
the bytes the readers return.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import struct
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

# Debian's python3-libkdumpfile installs for /usr/bin/python3 (a cpython-311
# extension); our python3 is a pyenv 3.11 build, ABI-compatible.  Looked up
# only inside the bench, after our own site-packages.
DEBIAN_DIST = "/usr/lib/python3/dist-packages"


class Unavailable(Exception):
    """This reader cannot run here; str() says why."""


@dataclass
class Handle:
    name: str
    read: Callable  # read(addr, size) -> bytes-like
    readinto: Optional[Callable]  # readinto(addr, buffer) or None
    close: Callable[[], None]
    obj: object  # the library's own handle


# ---- pykvm ----

def open_pykvm(core: str, namelist: Optional[str], **options) -> Handle:
    import pykvm
    kd = pykvm.open(namelist, core, **options)
    return Handle("pykvm", kd.read, kd.readinto, kd.close, kd)


def pykvm_version() -> str:
    import pykvm
    codecs = ",".join(c for c in ("zlib", "lzo", "snappy", "zstd") if pykvm.has(c))
    return f"pykvm ({pykvm.backend} backend; codecs {codecs or 'none'})"


# ---- drgn ----

def open_drgn(core: str) -> Handle:
    try:
        import drgn
    except ImportError as e:
        raise Unavailable(f"drgn not importable: {e}") from None
    prog = drgn.Program()
    try:
        prog.set_core_dump(core)
    except Exception as e:  # drgn raises plain Exception for libkdumpfile errors
        raise Unavailable(f"drgn cannot open {os.path.basename(core)}: {e}") from None
    return Handle("drgn", prog.read, None, lambda: None, prog)


def drgn_version() -> str:
    try:
        import drgn
        return f"drgn {drgn.__version__}"
    except ImportError:
        return "drgn: not installed"


# ---- libkdumpfile ----

def kdumpfile_module():
    """The libkdumpfile binding (pip pykdumpfile / libkdumpfile, else Debian's)."""
    try:
        import kdumpfile  # noqa: F401
    except ImportError:
        if os.path.isdir(DEBIAN_DIST) and DEBIAN_DIST not in sys.path:
            sys.path.append(DEBIAN_DIST)
        try:
            import kdumpfile  # noqa: F811
        except ImportError as e:
            raise Unavailable("no libkdumpfile Python binding: pip pykdumpfile 0.5.5.1 needs "
                              "libkdumpfile >= 0.5.5 headers (Debian has 0.5.1), and Debian's "
                              f"python3-libkdumpfile is not installed ({e})") from None
    import kdumpfile
    return kdumpfile


def open_kdumpfile(core: str, cache_pages: Optional[int] = None) -> Handle:
    kdumpfile = kdumpfile_module()
    try:
        k = kdumpfile.kdumpfile(core)
        k.attr["addrxlat.ostype"] = "linux"
        if cache_pages is not None:
            k.attr["cache.size"] = cache_pages
    except Exception as e:
        raise Unavailable(f"libkdumpfile cannot open {os.path.basename(core)}: "
                          f"{type(e).__name__}: {e}") from None
    name = "libkdumpfile" if cache_pages is None else f"libkdumpfile cache={cache_pages}"
    return Handle(name, functools.partial(k.read, kdumpfile.KDUMP_KVADDR), None, lambda: None, k)


def kdumpfile_version() -> str:
    try:
        kdumpfile_module()
    except Unavailable as e:
        return f"libkdumpfile: n/a ({e})"
    for d in sys.path:
        for name in os.listdir(d) if os.path.isdir(d) else ():
            if name.startswith("libkdumpfile-") and name.endswith(("egg-info", "dist-info")):
                return f"libkdumpfile {name.split('-')[1].rsplit('.', 1)[0]} ({d})"
            if name.startswith("pykdumpfile-") and name.endswith("dist-info"):
                return f"pykdumpfile {name.split('-')[1].rsplit('.', 1)[0]}"
    return "libkdumpfile (version unknown)"


# ---- the floors ----

PT_LOAD = 1


class CoreMap:
    """An ELF dump mapped copy-on-write (never written: the pages stay the
    page cache's), with its PT_LOAD table to find a physical address."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY)
        self.mm = mmap.mmap(self.fd, 0, access=mmap.ACCESS_COPY)
        self._view = ctypes.c_char.from_buffer(self.mm)  # pins the mapping: drop before close
        self.base = ctypes.addressof(self._view)
        self.loads: List[Tuple[int, int, int]] = []  # (paddr, filesz, offset)
        ident = self.mm[:16]
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise ValueError(f"{path}: not a little-endian ELF64 file")
        phoff, = struct.unpack_from("<Q", self.mm, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", self.mm, 0x36)
        for i in range(phnum):
            p_type, _, p_off, _, p_paddr, p_filesz = struct.unpack_from(
                "<IIQQQQ", self.mm, phoff + i * phentsize)
            if p_type == PT_LOAD and p_filesz:
                self.loads.append((p_paddr, p_filesz, p_off))

    def offset(self, pa: int, size: int = 1) -> int:
        for start, filesz, off in self.loads:
            if start <= pa and pa + size <= start + filesz:
                return off + (pa - start)
        raise KeyError(f"physical 0x{pa:x}+{size} is not in the file")

    def close(self) -> None:
        del self._view
        self.mm.close()
        os.close(self.fd)
