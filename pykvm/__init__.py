"""pykvm: the libkvm interface for Python.

>>> import pykvm
>>> with pykvm.open(namelist="kallsyms.txt", corefile="vmcore") as kd:
...     kd.read_cstring(kd.symbol("linux_banner"))

On FreeBSD and illumos the platform's libkvm does the work; elsewhere the
bundled shim reads /proc/kcore and Linux crash dumps itself.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

from ._version import __version__
from ._kvm import ffi as _ffi, lib as _lib
from .compat import kvm_close, kvm_nlist, kvm_open, kvm_read, kvm_write
from .errors import (BadAddressError, ClosedError, FaultError, KvmError, KvmFileNotFoundError, KvmFormatError,
                     KvmIsADirectoryError, KvmPermissionError, PageExcludedError,
                     ReadOnlyError, SymbolNotFoundError, UnsupportedError)
from .kvm import CoreArg, Kvm, KvmInfo, Part, PathArg, Segment, Symbol, Symbols

#: "shim" or "native": which implementation this build uses.
backend: str = _ffi.string(_lib.pykvm_backend()).decode()
#: the native flavour ("freebsd", "illumos") or "shim".
platform: str = _ffi.string(_lib.pykvm_platform()).decode()

O_RDONLY = os.O_RDONLY
O_RDWR = os.O_RDWR


#: Every feature has() knows: what the C library may lack ("pread" ... "cache")
#: and the kdump codecs ("zlib", "lzo", "snappy", "zstd").
FEATURES = ("geterr", "pread", "pwrite", "physaddr", "info", "symbols", "kerndisp", "options",
            "read_many", "page_offset", "cache", "vmcoreinfo", "notes", "btf",
            "zlib", "lzo", "snappy", "zstd")
#: The optional codecs of kdump-compressed dumps (a build may lack some).
CODECS = ("zlib", "lzo", "snappy", "zstd")


def has(feature: str) -> bool:
    """Whether this build has a feature, one of :data:`FEATURES`:

    ``"geterr"``, ``"pread"``, ``"pwrite"``, ``"physaddr"``, ``"info"``,
    ``"symbols"``, ``"kerndisp"``, ``"options"``, ``"read_many"``,
    ``"page_offset"``, ``"cache"``, ``"vmcoreinfo"``, ``"notes"`` (what a
    native libkvm may lack), ``"btf"`` (kernel types: built with libbpf), and the
    kdump codecs ``"zlib"``, ``"lzo"``, ``"snappy"``, ``"zstd"`` (a shim
    built without one raises :class:`UnsupportedError` on its pages).

    Raises ValueError for a name that is none of these.
    """
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; pykvm.has() knows {', '.join(FEATURES)}")
    return bool(_lib.pykvm_has(feature.encode()))


def features() -> Dict[str, bool]:
    """Every feature of :data:`FEATURES` and whether this build has it;
    ``features()["snappy"]`` is False in a build made without libsnappy.
    Raises nothing."""
    return {name: bool(_lib.pykvm_has(name.encode())) for name in FEATURES}


def open(namelist: Optional[PathArg] = None, corefile: Optional[CoreArg] = None,
         swapfile: Optional[PathArg] = None, flag: int = os.O_RDONLY,
         errstr: Optional[str] = None, print_errors: bool = False, *,
         foreign: bool = False, excluded_zero: bool = False, cache_pages: int = 0,
         format: Optional[str] = None, map_budget: Optional[int] = None,
         pread: bool = False, btf: Optional[PathArg] = None) -> Kvm:
    """Open a kernel or process image, as kvm_open(3KVM).

    namelist: symbols (an ELF executable or vmlinux, System.map, kallsyms);
    None means the running kernel's, or those a dump carries.
    corefile: a crash dump, process core or memory device; None means the
    running kernel; a sequence of paths: the files of a dump written in parts
    (makedumpfile --split), opened as one (the shim only).  swapfile: checked
    for existence, otherwise unused.  flag: os.O_RDONLY or os.O_RDWR.
    errstr: prefix of error messages; print_errors=True also prints them to
    stderr as the C library does.

    Shim options (keywords only; a native libkvm raises UnsupportedError for
    any of them): foreign=True (another data model), excluded_zero=True
    (filtered pages read as zeros), cache_pages=N (decompressed-page cache),
    format="elf"|"kdump"|"lime"|"avml"|"raw" (force a core format; raw
    images open only so; "elf-kernel" / "elf-process" also say what an ELF
    core is), map_budget=BYTES (how much of the mapped core file stays
    mapped, so in RSS; default 48 MiB, the least recently read 2 MiB
    windows unmapped past it), pread=True (never map the core: every read a
    pread), btf=PATH (kernel types from a raw BTF file such as a copy of
    /sys/kernel/btf/vmlinux, or an ELF with a .BTF section, for kernels
    without their own BTF).  An unknown keyword raises TypeError.

    Raises:
        KvmFileNotFoundError: a namelist, core or swap file does not exist.
        KvmPermissionError: not allowed to open or read it (e.g. /proc/kcore).
        KvmIsADirectoryError: a directory where a file was expected.
        KvmFormatError: a file is not what it should be (bad or unknown
            format, truncated, another data model, an unknown format name,
            parts that do not belong together).
        UnsupportedError: an option or format this build or backend lacks.
        ValueError: cache_pages < 0, map_budget <= 0, an empty sequence of parts.
        KvmError: any other failure the library reports.
    """
    return Kvm(namelist, corefile, swapfile, flag, errstr, print_errors, foreign=foreign,
               excluded_zero=excluded_zero, cache_pages=cache_pages, format=format,
               map_budget=map_budget, pread=pread, btf=btf)


__all__ = [
    "open", "Kvm", "KvmInfo", "Segment", "Part", "Symbol", "Symbols", "backend", "platform", "has", "features", "FEATURES",
    "CODECS", "__version__", "O_RDONLY", "O_RDWR",
    "KvmError", "KvmFileNotFoundError", "KvmPermissionError", "KvmIsADirectoryError",
    "KvmFormatError", "FaultError", "BadAddressError", "ClosedError", "PageExcludedError", "ReadOnlyError", "UnsupportedError",
    "SymbolNotFoundError", "kvm_open", "kvm_read", "kvm_write", "kvm_nlist", "kvm_close",
]
