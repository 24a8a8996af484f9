"""C-style names for people porting libkvm programs.

They raise like the rest of pykvm instead of returning -1 / NULL.
"""

from __future__ import annotations

import os
from typing import Iterable, List, Optional, Tuple


def kvm_open(namelist=None, corefile=None, swapfile=None, flag: int = os.O_RDONLY,
             errstr: Optional[str] = None):
    """kvm_open(3KVM): returns a Kvm handle.  Errors print to stderr with errstr, as in C."""
    from .kvm import Kvm
    return Kvm(namelist, corefile, swapfile, flag, errstr, print_errors=errstr is not None)


def kvm_read(kd, addr: int, size: int) -> bytes:
    return kd.read(addr, size)


def kvm_write(kd, addr: int, data) -> int:
    return kd.write(addr, data)


def kvm_nlist(kd, names: Iterable[str]) -> List[Optional[Tuple[int, int]]]:
    return kd.nlist(names)


def kvm_close(kd) -> int:
    kd.close()
    return 0
