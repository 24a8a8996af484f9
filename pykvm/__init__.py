"""pykvm: the libkvm interface for Python.

>>> import pykvm
>>> with pykvm.open(namelist="kallsyms.txt", corefile="vmcore") as kd:
...     kd.read_cstring(kd.symbol("linux_banner"))

On FreeBSD and illumos the platform's libkvm does the work; elsewhere the
bundled shim reads /proc/kcore and Linux crash dumps itself.
"""

from __future__ import annotations

import os
from typing import Optional

from ._kvm import ffi as _ffi, lib as _lib
from .compat import kvm_close, kvm_nlist, kvm_open, kvm_read, kvm_write
from .errors import (FaultError, KvmError, KvmFileNotFoundError, KvmFormatError,
                     KvmIsADirectoryError, KvmPermissionError, PageExcludedError,
                     ReadOnlyError, SymbolNotFoundError, UnsupportedError)
from .kvm import Kvm, Symbol, Symbols

#: "shim" or "native": which implementation this build uses.
backend: str = _ffi.string(_lib.pykvm_backend()).decode()
#: the native flavour ("freebsd", "illumos") or "shim".
platform: str = _ffi.string(_lib.pykvm_platform()).decode()

O_RDONLY = os.O_RDONLY
O_RDWR = os.O_RDWR


def has(feature: str) -> bool:
    """Whether this build has a feature ("pread", "zlib", "lzo", ...)."""
    return bool(_lib.pykvm_has(feature.encode()))


def open(namelist=None, corefile=None, swapfile=None, flag: int = os.O_RDONLY,
         errstr: Optional[str] = None, print_errors: bool = False, **options) -> Kvm:
    """Open a kernel or process image, as kvm_open(3KVM).

    namelist: symbols (an ELF executable or vmlinux, System.map, kallsyms);
    None means the running kernel's, or those a dump carries.
    corefile: a crash dump, process core or memory device; None means the
    running kernel.  swapfile: checked for existence, otherwise unused.
    flag: os.O_RDONLY or os.O_RDWR.  errstr: prefix of error messages;
    print_errors=True also prints them to stderr as the C library does.
    Shim options: foreign=True (another data model), excluded_zero=True
    (filtered pages read as zeros), cache_pages=N (decompressed-page cache),
    format="elf"|"kdump"|"lime"|"avml"|"raw" (force a core format; raw
    images open only so; another name is an error).
    """
    return Kvm(namelist, corefile, swapfile, flag, errstr, print_errors, **options)


__all__ = [
    "open", "Kvm", "Symbol", "Symbols", "backend", "platform", "has", "O_RDONLY", "O_RDWR",
    "KvmError", "KvmFileNotFoundError", "KvmPermissionError", "KvmIsADirectoryError",
    "KvmFormatError", "FaultError", "PageExcludedError", "ReadOnlyError", "UnsupportedError",
    "SymbolNotFoundError", "kvm_open", "kvm_read", "kvm_write", "kvm_nlist", "kvm_close",
]
