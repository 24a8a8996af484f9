"""The CPUs' registers a dump carries: NT_PRSTATUS notes (kdump's crash notes, QEMU), and
QEMU's per-CPU state notes.  x86-64 only.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Dict, Iterator, List, NamedTuple, Optional, Tuple

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["CpuRegs", "cpu_registers", "REG_NAMES"]

NT_PRSTATUS = 1
# struct user_regs_struct, in order (x86-64).
REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
             "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
             "gs_base", "ds", "es", "fs", "gs")
_PR_PID = 32          # offsetof(struct elf_prstatus, pr_pid)
_PR_REG = 112         # offsetof(struct elf_prstatus, pr_reg)
_PRSTATUS_SIZE = _PR_REG + 8 * len(REG_NAMES)
# QEMUCPUState: version, size, then rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags.
_QEMU_REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10",
              "r11", "r12", "r13", "r14", "r15", "rip", "eflags")


class CpuRegs(NamedTuple):
    cpu: int            # index of the note among its kind, = the CPU number
    pid: Optional[int]  # PRSTATUS pr_pid: the task on that CPU (kdump); None under QEMU
    regs: Dict[str, int]
    source: str         # "prstatus" or "qemu"


def _notes(kd: Kvm) -> bytes:
    from .._kvm import ffi, lib
    kd._require("notes", "the CPUs' saved registers (the dump's notes)")
    h = kd._handle()
    n = lib.pykvm_notes(h, ffi.NULL, 0)
    if n == 0:
        return b""
    buf = ffi.new("unsigned char[]", n)
    lib.pykvm_notes(h, buf, n)
    return bytes(ffi.buffer(buf, n))


def _parse(buf: bytes) -> Iterator[Tuple[bytes, int, bytes]]:
    pos = 0
    while len(buf) - pos >= 12:
        namesz, descsz, ntype = struct.unpack_from("<III", buf, pos)
        nlen, dlen = (namesz + 3) & ~3, (descsz + 3) & ~3
        if nlen + dlen > len(buf) - pos - 12:
            return
        name = buf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
        desc = buf[pos + 12 + nlen:pos + 12 + nlen + descsz]
        yield name, ntype, desc
        pos += 12 + nlen + dlen


def cpu_registers(kd: Kvm) -> List[CpuRegs]:
    """One entry per CPU: PRSTATUS notes when there are any (they carry the crash-time
    registers of a kdump), else QEMU's CPU state notes."""
    cached: Optional[List[CpuRegs]] = getattr(kd, "_linux_cpu_regs", None)
    if cached is not None:
        return cached
    pr: List[CpuRegs] = []
    qemu: List[CpuRegs] = []
    for name, ntype, desc in _parse(_notes(kd)):
        if name == b"CORE" and ntype == NT_PRSTATUS and len(desc) >= _PRSTATUS_SIZE:
            vals = struct.unpack_from(f"<{len(REG_NAMES)}Q", desc, _PR_REG)
            pid = struct.unpack_from("<i", desc, _PR_PID)[0]
            pr.append(CpuRegs(len(pr), pid, dict(zip(REG_NAMES, vals)), "prstatus"))
        elif name == b"QEMU" and len(desc) >= 8 + 8 * len(_QEMU_REGS):
            vals = struct.unpack_from(f"<{len(_QEMU_REGS)}Q", desc, 8)
            qemu.append(CpuRegs(len(qemu), None, dict(zip(_QEMU_REGS, vals)), "qemu"))
    if qemu and pr:  # QEMU numbers its PRSTATUS notes cpu + 1: no task's pid
        pr = [c._replace(pid=None) for c in pr]
    out = pr or qemu
    try:
        kd._linux_cpu_regs = out
    except AttributeError:
        pass
    return out
