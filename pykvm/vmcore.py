"""Write what an open image holds as an ELF vmcore: physical memory and its VMCOREINFO.

The output is what kdump and QEMU's dump-guest-memory (paging=false) write, so crash,
drgn and makedumpfile can open a LiME, AVML or raw image once converted:

- ELF64 ET_CORE for the image's machine, program headers right after the ELF header;
- one PT_NOTE holding the kernel's VMCOREINFO text as a "VMCOREINFO" note;
- one PT_LOAD per physical range the image holds (p_paddr, with p_vaddr = p_paddr as
  QEMU writes them).  Pages the image lacks or cannot read are left out: a range is
  split around them.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from .errors import KvmError, KvmFormatError

if TYPE_CHECKING:
    from .kvm import Kvm

__all__ = ["write_elf_vmcore"]

PAGE = 4096
CHUNK = 1 << 20
PT_NULL, PT_LOAD, PT_NOTE = 0, 1, 4
ET_CORE = 4
SPARE_PHDRS = 512  # room for ranges split around unreadable pages

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")


def _note(name: bytes, ntype: int, desc: bytes) -> bytes:
    name0 = name + b"\0"
    pad: Callable[[bytes], bytes] = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name0), len(desc), ntype) + pad(name0) + pad(desc)


def _ranges(kd: Kvm) -> List[Tuple[int, int]]:
    segs = [s for s in kd.info["segments"] if s["space"] == "physical"]
    if not segs:
        raise KvmFormatError(errno.EINVAL, f"{kd.info.get('corefile')}: the image lists no physical "
                             "ranges to convert", kd.info.get("corefile"))
    return [(s["start"], s["size"]) for s in segs]


def write_elf_vmcore(kd: Kvm, out: str, progress: Optional[Callable[[int], None]] = None
                     ) -> Dict[str, int]:
    """Write kd's physical memory and VMCOREINFO to out as an ELF vmcore.

    progress(bytes_done) is called as data is copied.  Returns counts: loads, bytes,
    pages_left_out.
    """
    text = kd.vmcoreinfo
    if not text:
        raise KvmFormatError(errno.EINVAL, f"{kd.info.get('corefile')}: no VMCOREINFO text to write "
                             "(the kernel was not found in the image)", kd.info.get("corefile"))
    machine = int(kd.info.get("machine", 62))
    ranges = _ranges(kd)
    note = _note(b"VMCOREINFO", 0, text.encode())
    nphdr = 1 + len(ranges) + SPARE_PHDRS
    note_off = EHDR.size + nphdr * PHDR.size
    data_off = (note_off + len(note) + PAGE - 1) // PAGE * PAGE
    loads: List[Tuple[int, int, int]] = []  # paddr, size, offset
    left_out = done = 0
    tmp = out + ".part"
    with open(tmp, "wb") as f:
        f.seek(data_off)
        pos_file = data_off
        cur: Optional[List[int]] = None  # [paddr, size, offset] being written
        for start, size in ranges:
            pos = 0
            while pos < size:
                n = min(CHUNK - (start + pos) % CHUNK, size - pos)
                pieces = _read(kd, start + pos, n)
                for addr, data in pieces:
                    if data is None:
                        left_out += 1  # one page per unreadable piece
                        cur = None
                        continue
                    if cur is None or cur[0] + cur[1] != addr:
                        cur = [addr, 0, pos_file]
                        loads.append(cur)  # type: ignore[arg-type]
                    f.write(data)
                    cur[1] += len(data)
                    pos_file += len(data)
                pos += n
                done += n
                if progress:
                    progress(done)
        if len(loads) + 1 > nphdr:
            raise KvmFormatError(errno.EINVAL, f"{kd.info.get('corefile')}: too many unreadable ranges "
                                 f"({len(loads)}) for one ELF file", kd.info.get("corefile"))
        f.seek(0)
        ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
        f.write(EHDR.pack(ident, ET_CORE, machine, 1, 0, EHDR.size, 0, 0, EHDR.size,
                          PHDR.size, nphdr, 64, 0, 0))
        f.write(PHDR.pack(PT_NOTE, 0, note_off, 0, 0, len(note), len(note), 4))
        for paddr, sz, off in loads:
            f.write(PHDR.pack(PT_LOAD, 7, off, paddr, paddr, sz, sz, 0))
        f.write(bytes(PHDR.size * (nphdr - 1 - len(loads))))  # PT_NULL: unused
        f.write(note)
    os.replace(tmp, out)
    return {"loads": len(loads), "bytes": sum(s for _, s, _ in loads),
            "pages_left_out": left_out}


def _read(kd: Kvm, addr: int, n: int) -> List[Tuple[int, Optional[bytes]]]:
    """(address, bytes or None when unreadable) pieces covering [addr, addr + n)."""
    try:
        return [(addr, kd.read(addr, n, physical=True))]
    except KvmError:
        pass
    out: List[Tuple[int, Optional[bytes]]] = []
    a = addr
    while a < addr + n:
        m = min(PAGE - a % PAGE, addr + n - a)
        try:
            out.append((a, kd.read(a, m, physical=True)))
        except KvmError:
            out.append((a, None))
        a += m
    return out
