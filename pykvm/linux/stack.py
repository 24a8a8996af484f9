"""Kernel backtraces: the ORC unwinder started from the panicking CPU's registers or from a
sleeping task's saved stack pointer, frames named as the kernel prints them."""

from __future__ import annotations

import bisect
import struct
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from ..errors import KvmError
from .cpus import cpu_registers
from .modsyms import module_symbolize
from .orc import Frame, Unwinder, kernel_orc

if TYPE_CHECKING:
    from ..kvm import Kvm
    from .tasks import Task

__all__ = ["Symbolizer", "NamedFrame", "Backtrace", "unwind_registers", "panic_backtrace",
           "symbolizer"]


class NamedFrame(NamedTuple):
    address: int
    function: Optional[str]
    offset: Optional[int]
    size: Optional[int]
    module: Optional[str]

    def text(self) -> str:
        if self.function is None:
            return f"{self.address:#x}"
        mod = f" [{self.module}]" if self.module else ""
        return f"{self.function}+{self.offset:#x}/{self.size:#x}{mod}"

    def as_json(self) -> Dict[str, Any]:
        return {"address": self.address, "function": self.function, "offset": self.offset,
                "module": self.module}


class Backtrace(NamedTuple):
    pid: Optional[int]
    cpu: Optional[int]
    comm: Optional[str]
    task: Optional[int]
    frames: List[NamedFrame]
    error: Optional[str]

    def as_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"pid": self.pid, "cpu": self.cpu, "comm": self.comm,
             "frames": [f.as_json() for f in self.frames]}
        if self.task is not None:
            d["task"] = self.task
        if self.error:
            d["error"] = self.error
        return d


class Symbolizer:
    """address -> (function, offset, size, module): module code from the modules' own
    symbol tables in the dump (.modsyms), the rest from the kernel's text symbols (namelist
    or kallsyms in the dump).  A symbol's size runs to the next symbol, as the kernel's
    kallsyms computes it."""

    def __init__(self, kd: Kvm) -> None:
        self.kd = kd
        self.count = kd._symbol_count()
        self._key = kd._symbol_keys()
        self._keys: Dict[int, Tuple[int, bool]] = {}

    def _k(self, i: int) -> Tuple[int, bool]:
        """(value, is a text symbol) of entry i: the bisection reads these, not Symbols."""
        k = self._keys.get(i)
        if k is None:
            value, letter = self._key(i)
            k = self._keys[i] = (value, letter in "tTwW" and value >= (1 << 63))
        return k

    def lookup(self, addr: int) -> NamedFrame:
        m = module_symbolize(self.kd, addr)
        if m is not None:
            return NamedFrame(addr, m.name, m.offset, m.size, m.module)
        none = NamedFrame(addr, None, None, None, None)
        k = self._k
        # the symbols are in address order: bisect for the last one at or below addr
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if k(mid)[0] <= addr:
                lo = mid + 1
            else:
                hi = mid
        i = lo - 1
        while i >= 0 and not k(i)[1]:
            i -= 1
        if i < 0:
            return none
        start = k(i)[0]
        while i > 0 and k(i - 1)[0] == start:  # aliases: the first one names it
            i -= 1
        first = i
        j = first + 1
        while j < self.count and (k(j)[0] == start or not k(j)[1]):
            j += 1
        if j >= self.count or addr - start >= 1 << 20:
            return none
        name = self.kd._symbol_at(next(x for x in range(first, j) if k(x) == (start, True)))
        return NamedFrame(addr, name.name, addr - start, k(j)[0] - start, name.module)


def symbolizer(kd: Kvm) -> Symbolizer:
    s: Optional[Symbolizer] = getattr(kd, "_linux_symbolizer", None)
    if s is None:
        s = Symbolizer(kd)
        try:
            kd._linux_symbolizer = s
        except AttributeError:
            pass
    return s


def unwinder(kd: Kvm) -> Unwinder:
    u: Optional[Unwinder] = getattr(kd, "_linux_unwinder", None)
    if u is None:
        from . import modules
        u = Unwinder(kd, [kernel_orc(kd)], modules.orc_finder(kd))
        try:
            kd._linux_unwinder = u
        except AttributeError:
            pass
    return u


def name_frames(kd: Kvm, frames: List[Frame]) -> List[NamedFrame]:
    sym = symbolizer(kd)
    return [sym.lookup(f.address) for f in frames]


def unwind_registers(kd: Kvm, regs: Dict[str, int]) -> Tuple[List[NamedFrame], Optional[str]]:
    frames, err = unwinder(kd).unwind(regs["rip"], regs["rsp"], regs["rbp"], regs=regs)
    return name_frames(kd, frames), err


def panic_backtrace(kd: Kvm, task_on_cpu: Optional[Callable[[int], Optional[Task]]] = None) -> Backtrace:
    """The panicking CPU's stack, from its registers in the dump's notes."""
    from .sysinfo import panic_cpu
    cpu = panic_cpu(kd)
    if cpu is None:
        raise KvmError(2, f"{kd.corefile}: no CPU panicked (panic_cpu is unset)")
    regs = cpu_registers(kd)
    if cpu >= len(regs):
        raise KvmError(2, f"{kd.corefile}: no saved registers for CPU {cpu}")
    frames, err = unwind_registers(kd, regs[cpu].regs)
    pid, comm, task = regs[cpu].pid, None, None
    if task_on_cpu is not None:
        try:
            t = task_on_cpu(cpu)
            if t is not None:
                pid, comm, task = t.pid, t.comm, t.task
        except KvmError:
            pass
    return Backtrace(pid, cpu, comm, task, frames, err)


def task_backtrace(kd: Kvm, task: Task) -> Backtrace:
    """A task's stack: from its saved stack pointer (thread.sp, an inactive_task_frame) when
    it sleeps; from the CPU's registers when it was running on a CPU that saved them."""
    from .layout import layout
    L = layout(kd)
    regs = cpu_registers(kd)
    if task.cpu is not None and task.state == "R" and task.cpu < len(regs):
        from .tasks import current_task
        try:
            if current_task(kd, task.cpu) == task.task:
                frames, err = unwind_registers(kd, regs[task.cpu].regs)
                return Backtrace(task.pid, task.cpu, task.comm, task.task, frames, err)
        except (KvmError, KeyError):
            pass
    try:
        sp = kd.read_u64(task.task + L.thread_sp)
        # struct inactive_task_frame: r15 r14 r13 r12 bx bp ret_addr
        frame = struct.unpack("<7Q", kd.read(sp, 56))
    except KvmError as e:
        return Backtrace(task.pid, task.cpu, task.comm, task.task, [],
                         f"saved stack unreadable: {e}")
    raw, err = unwinder(kd).unwind(frame[6], sp + 56, frame[5], regs=None, signal=False)
    return Backtrace(task.pid, task.cpu, task.comm, task.task, name_frames(kd, raw), err)
