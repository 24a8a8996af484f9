"""C-style names for people porting libkvm programs.

They raise like the rest of pykvm instead of returning -1 / NULL.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, SupportsIndex, Tuple

if TYPE_CHECKING:
    from .kvm import CoreArg, Kvm, PathArg


def kvm_open(namelist: Optional[PathArg] = None, corefile: Optional[CoreArg] = None,
             swapfile: Optional[PathArg] = None, flag: int = os.O_RDONLY,
             errstr: Optional[str] = None) -> Kvm:
    """kvm_open(3KVM): returns a Kvm handle.  Errors print to stderr with errstr, as in C.

    Raises what :func:`pykvm.open` raises (KvmFileNotFoundError,
    KvmPermissionError, KvmFormatError, ...)."""
    from .kvm import Kvm
    return Kvm(namelist, corefile, swapfile, flag, errstr, print_errors=errstr is not None)


def kvm_read(kd: Kvm, addr: SupportsIndex, size: int) -> bytes:
    """kvm_read(3KVM): size bytes at the kernel virtual address addr.

    Raises FaultError (no memory there), PageExcludedError (a page the dump
    left out), BadAddressError (addr outside 0 .. 2**64 - 1), ClosedError."""
    return kd.read(addr, size)


def kvm_write(kd: Kvm, addr: SupportsIndex, data: Any) -> int:
    """kvm_write(3KVM): write data (any bytes-like object) at addr; returns its length.

    Raises ReadOnlyError (a handle opened O_RDONLY), FaultError,
    BadAddressError, ClosedError."""
    return kd.write(addr, data)


def kvm_nlist(kd: Kvm, names: Iterable[str]) -> List[Optional[Tuple[int, int]]]:
    """kvm_nlist(3KVM): (value, n_type) for each name, None where the namelist lacks it.

    Raises KvmFileNotFoundError when the handle has no namelist, ClosedError."""
    return kd.nlist(names)


def kvm_close(kd: Kvm) -> int:
    """kvm_close(3KVM): close the handle (closing twice is harmless); returns 0.  Raises nothing."""
    kd.close()
    return 0
