"""System facts of a dump, as crash's ``sys`` gives them, from the dump alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional

from ..errors import KvmError
from .printk import Record, iter_records
from .vmcoreinfo import vmcoreinfo

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["sysinfo", "panic_message", "UTS_FIELDS"]

UTS_FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")
_UTS_LEN = 65  # __NEW_UTS_LEN + 1
_PANIC_PREFIXES = ("Kernel panic - ", "BUG:", "Oops:")


def utsname(kd: Kvm) -> Dict[str, str]:
    """init_uts_ns.name, through VMCOREINFO (SYMBOL(init_uts_ns), OFFSET(uts_namespace.name))."""
    vi = vmcoreinfo(kd)
    try:
        base = vi.symbol("init_uts_ns") + vi.offset("uts_namespace", "name")
    except KvmError:
        base = kd.symbol("init_uts_ns")  # name is the first member since 4.x
    raw = kd.read(base, _UTS_LEN * len(UTS_FIELDS))
    return {f: raw[i * _UTS_LEN:(i + 1) * _UTS_LEN].split(b"\0", 1)[0].decode("utf-8", "replace")
            for i, f in enumerate(UTS_FIELDS)}


def panic_message(records: Iterable[Record]) -> Optional[str]:
    """The panic message as crash finds it: the log's last "Kernel panic - " line, else its
    last "BUG:" or "Oops:" line; None when the log has none."""
    last: Dict[str, Optional[str]] = {p: None for p in _PANIC_PREFIXES}
    first = _PANIC_PREFIXES[0]
    marks = [p.encode() for p in _PANIC_PREFIXES]
    # newest first: a record that holds none of the prefixes is not decoded
    for r in reversed(list(records)):
        if r.error or not any(m in r.text for m in marks):
            continue
        for line in reversed(r.text.decode("utf-8", "replace").splitlines()):
            for p in _PANIC_PREFIXES:
                if last[p] is None and line.startswith(p):
                    last[p] = line
        if last[first] is not None:
            break
    for p in _PANIC_PREFIXES:
        if last[p]:
            return last[p]
    return None


def panic_cpu(kd: Kvm) -> Optional[int]:
    """panic_cpu (atomic_t): the CPU in panic(), None when no CPU panicked."""
    try:
        v = kd.read_s32(kd.symbol("panic_cpu"))
    except (KeyError, KvmError):
        return None
    return v if v >= 0 else None


def present_cpus(kd: Kvm) -> Optional[int]:
    """CPUs present (the bits of __cpu_present_mask below nr_cpu_ids).  Not the online
    count: panic() takes the other CPUs offline."""
    try:
        n = kd.read_u32(kd.symbol("nr_cpu_ids"))
        if not 0 < n <= 1 << 16:
            return None
        words = kd.read_u64_array(kd.symbol("__cpu_present_mask"), (n + 63) // 64)
    except (KeyError, KvmError):
        return None
    bits = 0
    for i, w in enumerate(words):
        if i == len(words) - 1 and n % 64:
            w &= (1 << (n % 64)) - 1
        bits += bin(w).count("1")
    return bits


def _uptime(kd: Kvm) -> Optional[float]:
    """Seconds since boot, as /proc/uptime counts them: the timekeeper's monotonic seconds
    plus its boot offset (time suspended).  shadow_timekeeper is the kernel's working copy
    of tk_core.timekeeper, equal to it after every update; None without the kernel's types."""
    from .layout import layout
    try:
        L = layout(kd)
        if L.tk_ktime_sec is None:
            return None
        tk = kd.symbol("shadow_timekeeper")
        sec = kd.read_u64(tk + L.tk_ktime_sec)
        boot = kd.read_s64(tk + L.tk_offs_boot) if L.tk_offs_boot is not None else 0
    except (KvmError, KeyError, NotImplementedError):
        return None
    return sec + boot / 1e9


def sysinfo(kd: Kvm, tasks: Optional[Callable[[int], Optional[int]]] = None) -> Dict[str, Any]:
    """release, version, machine, nodename, cpus, memory_bytes, uptime_s, panic, panic_cpu,
    panic_pid, crash_time, format.  tasks: a callable cpu -> pid of the task on that CPU,
    for dumps whose notes do not say (QEMU's)."""
    from .. import has
    from .cpus import cpu_registers
    info = kd.info if has("info") else {}
    vi = vmcoreinfo(kd)
    uts = utsname(kd)
    page = int(vi["PAGESIZE"]) if "PAGESIZE" in vi else int(info.get("page_size", 4096))
    out: Dict[str, Any] = {
        "release": uts["release"], "version": uts["version"], "machine": uts["machine"],
        "nodename": uts["nodename"],
    }
    out["cpus"] = present_cpus(kd)
    try:
        out["memory_bytes"] = kd.read_u64(kd.symbol("_totalram_pages")) * page
    except (KeyError, KvmError):
        out["memory_bytes"] = None
    out["uptime_s"] = _uptime(kd)
    records = iter_records(kd, levels=False)  # the panic message needs the text alone
    cpu = panic_cpu(kd)
    out["panic"] = panic_message(records) if cpu is not None else None
    out["panic_cpu"] = cpu
    pid = None
    if cpu is not None:
        regs = cpu_registers(kd) if has("notes") else []
        if cpu < len(regs) and regs[cpu].pid is not None:
            pid = regs[cpu].pid
        elif tasks is not None:
            pid = tasks(cpu)
    out["panic_pid"] = pid
    out["crash_time"] = info.get("vmcoreinfo_crashtime", info.get("crash_time"))
    out["format"] = info.get("format")
    return out
