"""x86-64 kernel stack unwinding with the ORC tables the kernel keeps in memory.

The core kernel's tables are ``__start_orc_unwind_ip`` .. ``__stop_orc_unwind_ip`` (s32
offsets, each relative to its own address, sorted) and ``__start_orc_unwind`` (6-byte
``struct orc_entry``); a module's are in its ``struct module`` (``arch.orc_unwind_ip``,
``arch.orc_unwind``, ``arch.num_orcs``).  No debuginfo is needed: an unwind is a walk of
(ip, sp, bp) states, each step reading one ORC entry and a few stack words.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import KvmError

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["OrcTable", "OrcEntry", "Frame", "Unwinder", "kernel_orc"]

# sp_reg / bp_reg values
REG_UNDEFINED, REG_PREV_SP, REG_DX, REG_DI, REG_BP, REG_SP, REG_R10, REG_R13 = range(8)
REG_BP_INDIRECT, REG_SP_INDIRECT = 8, 9
TYPE_CALL, TYPE_REGS, TYPE_REGS_PARTIAL = "call", "regs", "regs_partial"
# struct pt_regs (x86-64), in order
PT_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
           "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss")
PT_REGS_SIZE = 8 * len(PT_REGS)
IRET_FRAME_OFFSET = 8 * PT_REGS.index("rip")
_REG_FOR = {REG_DX: "rdx", REG_DI: "rdi", REG_R10: "r10", REG_R13: "r13"}
MAX_FRAMES = 128
_MAX_ORCS = 1 << 24


class OrcEntry(NamedTuple):
    sp_offset: int
    bp_offset: int
    sp_reg: int
    bp_reg: int
    type: str
    end: bool


class Frame(NamedTuple):
    address: int        # the frame's pc: regs' ip for the first frame, else a return address
    sp: int
    regs: bool          # this frame's address came from saved registers (pt_regs / notes)


class OrcTable:
    """One text range's ORC: ``count`` entries; ip_table is relative (s32 per entry)."""

    def __init__(self, kd: Kvm, ip_table: int, entries: int, count: int, name: str = "vmlinux") -> None:
        if not 0 < count <= _MAX_ORCS:
            raise KvmError(22, f"{name}: implausible ORC table size {count}")
        # Entries are read as a lookup needs them (a bisection reads ~20), not the whole
        # table (megabytes of a compressed dump's pages for one backtrace).
        self.kd = kd
        self.name = name
        self.ip_table = ip_table
        self.entries = entries
        self.count = count
        # 512 entries to tell the format by, in 32 runs of 16 spread over the table: a
        # read is a page's translation (and, in a compressed dump, decompression), so
        # neighbours come almost free where 512 scattered entries cost 512 pages.
        run = min(count, 16)
        step = max(run, count // 32)
        sample = bytes(kd.read_many(range(entries, entries + 6 * (count - run + 1), 6 * step),
                                    6 * run))
        self.version = _orc_version(sample, len(sample) // 6)
        self.lo = self.ip(0)
        self.hi = self.ip(count - 1)

    def ip(self, i: int) -> int:
        return (self.ip_table + 4 * i + self.kd.read_s32(self.ip_table + 4 * i)) \
            & 0xFFFFFFFFFFFFFFFF

    def find(self, ip: int) -> Optional[OrcEntry]:
        """The entry covering ip: the last one whose address is <= ip."""
        if ip < self.lo:
            return None
        lo, hi = 0, self.count - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.ip(mid) <= ip:
                lo = mid
            else:
                hi = mid - 1
        return self.entry(lo)

    def entry(self, i: int) -> OrcEntry:
        sp_off, bp_off, flags = struct.unpack("<hhH", self.kd.read(self.entries + 6 * i, 6))
        sp_reg, bp_reg = flags & 0xF, (flags >> 4) & 0xF
        if self.version >= 3:  # type:3 (0 undefined, 1 end of stack, 2 call, 3 regs, 4 partial)
            t = (flags >> 8) & 7
            kind = {2: TYPE_CALL, 3: TYPE_REGS, 4: TYPE_REGS_PARTIAL}.get(t, TYPE_CALL)
            end = t == 1
            if t == 0:
                sp_reg = REG_UNDEFINED
        else:
            t = (flags >> 8) & 3
            kind = (TYPE_CALL, TYPE_REGS, TYPE_REGS_PARTIAL, TYPE_CALL)[t]
            end = bool(flags >> (11 if self.version == 2 else 10) & 1)
        return OrcEntry(sp_off, bp_off, sp_reg, bp_reg, kind, end)


def _orc_version(raw: bytes, count: int) -> int:
    """1: type:2 end:1 (to 6.2); 2: type:2 signal:1 end:1 (6.3); 3: type:3 signal:1 (6.4+).

    Most entries are plain calls: type 0 before 6.4, 2 from 6.4 on."""
    zero = seen = 0
    bit11 = False
    step = max(1, count // 20000)
    for i in range(0, count, step):
        f = raw[6 * i + 5]
        seen += 1
        zero += (f & 7) == 0
        bit11 |= bool(f & 8)
    if zero * 2 < seen:
        return 3
    return 2 if bit11 else 1


def kernel_orc(kd: Kvm) -> OrcTable:
    cached: Optional[OrcTable] = getattr(kd, "_linux_kernel_orc", None)
    if cached is not None:
        return cached
    start = kd.symbol("__start_orc_unwind_ip")
    stop = kd.symbol("__stop_orc_unwind_ip")
    entries = kd.symbol("__start_orc_unwind")
    if stop <= start or (stop - start) % 4:
        raise KvmError(22, "the kernel's ORC ip table bounds are inconsistent")
    t = OrcTable(kd, start, entries, (stop - start) // 4)
    try:
        kd._linux_kernel_orc = t
    except AttributeError:
        pass
    return t


class Unwinder:
    """Walks one stack.  tables: ORC tables to search (kernel first, then modules)."""

    def __init__(self, kd: Kvm, tables: Sequence[OrcTable],
                 module_tables: Optional[Callable[[int], Optional[OrcTable]]] = None) -> None:
        self.kd = kd
        self.tables = list(tables)
        self.module_tables = module_tables

    def find(self, ip: int) -> Optional[OrcEntry]:
        k = self.tables[0]
        t: Optional[OrcTable]
        if k.lo <= ip <= k.hi + 0x1000:
            return k.find(ip)
        for t in self.tables[1:]:
            if t.lo <= ip <= t.hi + 0x1000:
                return t.find(ip)
        if self.module_tables:
            t = self.module_tables(ip)
            if t is not None:
                return t.find(ip)
        return None

    def _scan_return(self, ip: int, sp: int, limit: int = 1024) -> Optional[Tuple[int, int]]:
        """The first stack word above sp that returns just after a direct call to the
        function holding ip: (return address, the stack pointer after returning)."""
        # A shallow stack ends within `limit` bytes (the page after a stack's top is
        # unmapped): read page by page and scan what could be read.
        data = b""
        pos = sp
        while len(data) < limit:
            n = min(limit - len(data), 0x1000 - (pos & 0xFFF))
            try:
                data += self.kd.read(pos, n)
            except KvmError:
                break
            pos += n
        words = struct.unpack(f"<{len(data) // 8}Q", data[:len(data) & ~7])
        for k, ret in enumerate(words):
            if ret < (1 << 63) or self.find(ret - 1) is None:
                continue
            try:
                insn = self.kd.read(ret - 5, 5)
            except KvmError:
                continue
            if insn[0] != 0xE8:
                continue
            target = (ret + struct.unpack_from("<i", insn, 1)[0]) & 0xFFFFFFFFFFFFFFFF
            if target <= ip < target + 0x10000:
                return ret, sp + 8 * k + 8
        return None

    def _u64(self, addr: int) -> int:
        return self.kd.read_u64(addr)

    def unwind(self, ip: int, sp: int, bp: int, regs: Optional[Dict[str, int]] = None,
               signal: bool = True, max_frames: int = MAX_FRAMES) -> Tuple[List[Frame], Optional[str]]:
        """(frames, error): frames from (ip, sp, bp); error is None or why the walk stopped
        early (a clean end of stack, or user-mode registers, is no error)."""
        frames: List[Frame] = [Frame(ip, sp, regs is not None)]
        full = regs is not None
        try:
            first = True
            for _ in range(max_frames):
                orc = self.find(ip if signal else ip - 1)
                if first and regs is not None and (orc is None or (
                        orc.sp_reg == REG_UNDEFINED and not orc.end)):
                    # Code objtool leaves without ORC (__crash_kexec, whose inline asm
                    # saved these very registers): find its return address on the stack.
                    found = self._scan_return(ip, sp)
                    if found is None:
                        return frames, f"no unwind information at {ip:#x}"
                    ip, sp = found
                    regs, full, signal = None, False, False
                    frames.append(Frame(ip, sp, False))
                    continue
                first = False
                if orc is None:
                    return frames, f"no ORC entry for {ip:#x}"
                if orc.end:
                    return frames, None
                if orc.sp_reg == REG_UNDEFINED:
                    return frames, f"no unwind information at {ip:#x}"
                if orc.sp_reg == REG_SP:
                    cfa = sp + orc.sp_offset
                elif orc.sp_reg == REG_BP:
                    cfa = bp + orc.sp_offset
                elif orc.sp_reg == REG_SP_INDIRECT:
                    cfa = self._u64(sp) + orc.sp_offset
                elif orc.sp_reg == REG_BP_INDIRECT:
                    cfa = self._u64(bp + orc.sp_offset)
                elif orc.sp_reg in _REG_FOR and full and regs is not None:
                    cfa = regs[_REG_FOR[orc.sp_reg]]
                else:
                    return frames, f"unwinding at {ip:#x} needs a register not saved"
                cfa &= 0xFFFFFFFFFFFFFFFF
                old_bp = bp
                if orc.type == TYPE_CALL:
                    new_ip = self._u64(cfa - 8)
                    new_sp = cfa
                    regs, full, signal = None, False, False
                elif orc.type == TYPE_REGS:
                    vals = struct.unpack("<21Q", self.kd.read(cfa, PT_REGS_SIZE))
                    regs = dict(zip(PT_REGS, vals))
                    new_ip, new_sp = regs["rip"], regs["rsp"]
                    full, signal = True, True
                else:
                    ipv, cs, _fl, spv = struct.unpack("<4Q", self.kd.read(cfa, 32))
                    new_ip, new_sp = ipv, spv
                    regs = {"rip": ipv, "cs": cs, "rsp": spv}
                    full, signal = False, True
                if orc.bp_reg == REG_UNDEFINED:
                    if full and regs is not None and "rbp" in regs:
                        bp = regs["rbp"]
                elif orc.bp_reg == REG_PREV_SP:
                    bp = self._u64(cfa + orc.bp_offset)
                elif orc.bp_reg == REG_BP:
                    bp = self._u64(old_bp + orc.bp_offset)
                if orc.type != TYPE_CALL and regs is not None and regs.get("cs", 0) & 3:
                    return frames, None  # registers saved on entry from user mode: done
                if orc.type == TYPE_CALL and new_sp <= sp:
                    return frames, f"stack pointer went backwards at {ip:#x}"
                ip, sp = new_ip, new_sp
                if ip < (1 << 63):
                    return frames, None if orc.type != TYPE_CALL else f"user address {ip:#x}"
                frames.append(Frame(ip, sp, orc.type != TYPE_CALL))
            return frames, f"stopped after {max_frames} frames"
        except KvmError as e:
            return frames, f"stack unreadable: {e}"
