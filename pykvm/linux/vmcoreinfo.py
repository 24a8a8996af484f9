"""The kernel's VMCOREINFO: ``KEY=VALUE`` lines describing its own layout.

Every kernel since 2.6.24 writes it for crash tools; the dump carries it as an ELF note
(kdump, QEMU with the vmcoreinfo device) or a kdump sub-header, and the kernel keeps it in
memory too (``vmcoreinfo_data``), which is where this falls back to when the backend has no
copy of the note.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Dict, Iterator, Mapping, Optional

from ..errors import KvmFormatError, UnsupportedError

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["VmcoreInfo", "vmcoreinfo"]

# The kernel's buffer is one page (VMCOREINFO_BYTES); never trust a bigger size.
_MAX_BYTES = 1 << 16


class VmcoreInfo(Mapping[str, str]):
    """Parsed VMCOREINFO: a read-only mapping of its keys, with typed accessors."""

    def __init__(self, text: str, source: str = "VMCOREINFO"):
        self.text = text
        self.source = source
        self._d: Dict[str, str] = {}
        for line in text.splitlines():
            key, eq, value = line.partition("=")
            if eq and key:
                self._d[key] = value.strip()

    def __getitem__(self, key: str) -> str:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def _number(self, key: str, base: int) -> int:
        try:
            value = self._d[key]
        except KeyError:
            raise KvmFormatError(errno.ENOENT, f"{self.source} has no {key}") from None
        try:
            return int(value, base)
        except ValueError:
            raise KvmFormatError(errno.EINVAL, f"{self.source}: {key}={value!r} is not a number") from None

    def symbol(self, name: str) -> int:
        return self._number(f"SYMBOL({name})", 16)

    def offset(self, struct: str, member: str) -> int:
        return self._number(f"OFFSET({struct}.{member})", 10)

    def size(self, name: str) -> int:
        return self._number(f"SIZE({name})", 10)

    def length(self, name: str) -> int:
        return self._number(f"LENGTH({name})", 10)

    def number(self, name: str) -> int:
        return self._number(f"NUMBER({name})", 10)

    def has(self, key: str) -> bool:
        return key in self._d


def _from_note(kd: Kvm) -> Optional[str]:
    from .._kvm import lib
    if not lib.pykvm_has(b"vmcoreinfo"):
        return None
    return kd.vmcoreinfo or None


def _from_memory(kd: Kvm) -> Optional[str]:
    """The kernel's own copy: char *vmcoreinfo_data, size_t vmcoreinfo_size."""
    try:
        addr = kd.read_pointer(kd.symbol("vmcoreinfo_data"))
        size = kd.read_u64(kd.symbol("vmcoreinfo_size"))
    except (KeyError, OSError):
        return None
    if addr == 0 or not 0 < size <= _MAX_BYTES:
        return None
    return kd.read(addr, size).split(b"\0", 1)[0].decode("utf-8", "replace")


def vmcoreinfo(kd: Kvm) -> VmcoreInfo:
    """The VMCOREINFO of an open dump (cached on the handle)."""
    cached: Optional[VmcoreInfo] = getattr(kd, "_linux_vmcoreinfo", None)
    if cached is not None:
        return cached
    text = _from_note(kd)
    source = "VMCOREINFO"
    if not text:
        text = _from_memory(kd)
        source = "VMCOREINFO (kernel memory)"
    if not text:
        raise UnsupportedError(errno.ENOTSUP, f"{kd.corefile or 'the kernel'}: no VMCOREINFO (neither a note "
                               "in the dump nor vmcoreinfo_data in its memory)")
    info = VmcoreInfo(text, f"{kd.corefile or 'the kernel'}: {source}")
    try:
        kd._linux_vmcoreinfo = info
    except AttributeError:
        pass
    return info
