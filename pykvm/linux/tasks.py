"""Tasks: every thread on the kernel's task list, with pid, ppid, state, cpu and comm.

Offsets come from the kernel's own types (BTF in the dump) through ``layout(kd)``; reads
are plain word reads, so a walk of every task costs a few reads per task.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from ..errors import KvmError
from .layout import Layout, layout

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["Task", "tasks", "ps", "find_task", "task_on_cpu_function", "pid_on_cpu_function",
           "state_letter"]

MAX_TASKS = 1 << 20       # bounded walks: a damaged list never loops forever
MAX_THREADS = 1 << 16
TASK_REPORT = 0x7F
TASK_IDLE = 0x0402        # TASK_UNINTERRUPTIBLE | TASK_NOLOAD
_LETTERS = "RSDTtXZPI"    # fs/proc/array.c task_state_array order
PF_KTHREAD = 0x00200000


def state_letter(state: int, exit_state: int) -> str:
    """The letter /proc/PID/stat (and ps) shows for __state | exit_state."""
    s = (state | exit_state) & TASK_REPORT
    if (state | exit_state) & 0xFFFF == TASK_IDLE:
        return "I"
    return _LETTERS[s.bit_length()] if s.bit_length() < len(_LETTERS) else "?"


class Task(NamedTuple):
    task: int               # struct task_struct address
    pid: int
    tgid: int
    ppid: Optional[int]
    state: str
    cpu: Optional[int]
    comm: str
    error: Optional[str] = None

    def as_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"pid": self.pid, "ppid": self.ppid, "state": self.state, "cpu": self.cpu,
             "comm": self.comm, "task": self.task}
        if self.error:
            d["error"] = self.error
        return d


def _read_task(kd: Kvm, L: Layout, t: int) -> Task:
    try:
        pid = kd.read_s32(t + L.pid)
        tgid = kd.read_s32(t + L.tgid)
        comm = kd.read(t + L.comm, 16).split(b"\0", 1)[0].decode("utf-8", "replace")
        state = kd.read_u32(t + L.state)
        exit_state = kd.read_u32(t + L.exit_state)
        cpu = kd.read_u32(t + L.cpu) if L.cpu is not None else None
    except KvmError as e:
        return Task(t, -1, -1, None, "?", None, "?", f"task {t:#x} unreadable: {e}")
    ppid = None
    err = None
    try:
        parent = kd.read_pointer(t + L.real_parent)
        ppid = kd.read_s32(parent + L.tgid) if parent else 0
    except KvmError as e:
        err = f"parent of task {t:#x} unreadable: {e}"
    if pid == 0:
        ppid = 0
    return Task(t, pid, tgid, ppid, state_letter(state, exit_state), cpu, comm, err)


def _list(kd: Kvm, head: int, entry_off: int, limit: int) -> Iterator[int]:
    """Entries of a circular list_head list (head excluded), cycle-safe and bounded."""
    seen: Set[int] = set()
    node = kd.read_pointer(head)
    while node != head:
        if node in seen or len(seen) >= limit:
            raise KvmError(errno.ELOOP, f"list at {head:#x} loops or exceeds {limit} entries")
        seen.add(node)
        nxt = kd.read_pointer(node)  # an unreadable node ends the walk before it is used
        yield node - entry_off
        node = nxt


def task_addresses(kd: Kvm) -> Iterator[Tuple[int, Optional[str]]]:
    """(task, None) for every thread: init_task's list of group leaders, each followed by
    its thread group; (0, why) where a list breaks (the walk then goes on where it can)."""
    L = layout(kd)
    init = kd.symbol("init_task")
    try:
        for leader in _list(kd, init + L.tasks, L.tasks, MAX_TASKS):
            yield leader, None
            try:
                for t in _list(kd, leader + L.thread_group, L.thread_group, MAX_THREADS):
                    yield t, None
            except KvmError as e:
                yield 0, f"threads of task {leader:#x}: {e}"
    except KvmError as e:
        yield 0, f"task list: {e}"


def tasks(kd: Kvm, idle: bool = False) -> List[Task]:
    """Every task (init_task's list and each thread group); idle=True adds each CPU's idle
    task (pid 0) first, as crash's ps shows them.  A task or list that cannot be read is an
    entry with ``error`` set, in place."""
    L = layout(kd)
    # UnsupportedError on a task_struct without one of these, not an error a task
    L.need("pid", "tgid", "comm", "state", "exit_state", "real_parent", "tasks", "thread_group")
    out: List[Task] = []
    if idle:
        for t in idle_tasks(kd):
            out.append(_read_task(kd, L, t))
    for t, err in task_addresses(kd):
        out.append(_read_task(kd, L, t) if err is None
                   else Task(t, -1, -1, None, "?", None, "?", err))
    return out


ps = tasks


def idle_tasks(kd: Kvm) -> List[int]:
    """Each present CPU's idle task (runqueues.idle), CPU order."""
    L = layout(kd)
    out: List[int] = []
    for off in per_cpu_offsets(kd):
        try:
            out.append(kd.read_pointer(kd.symbol("runqueues") + off + L.rq_idle))
        except (KvmError, KeyError):
            break
    return out


def per_cpu_offsets(kd: Kvm) -> List[int]:
    from .sysinfo import present_cpus
    n = present_cpus(kd) or 1
    return list(kd.read_u64_array(kd.symbol("__per_cpu_offset"), n))


def current_task(kd: Kvm, cpu: int) -> Optional[int]:
    """The task running on cpu (the per-CPU current_task)."""
    offs = per_cpu_offsets(kd)
    if cpu >= len(offs):
        return None
    L = layout(kd)
    return kd.read_pointer(L.current_task + offs[cpu])


def find_task(kd: Kvm, pid: int) -> Optional[Task]:
    for t in tasks(kd, idle=pid == 0):
        if t.pid == pid:
            return t
    return None


def task_on_cpu_function(kd: Kvm) -> Callable[[int], Optional[Task]]:
    def on_cpu(cpu: int) -> Optional[Task]:
        try:
            t = current_task(kd, cpu)
        except (KvmError, KeyError):
            return None
        return _read_task(kd, layout(kd), t) if t else None
    return on_cpu


def pid_on_cpu_function(kd: Kvm) -> Callable[[int], Optional[int]]:
    f = task_on_cpu_function(kd)

    def pid(cpu: int) -> Optional[int]:
        t = f(cpu)
        return t.pid if t is not None and not t.error else None
    return pid
