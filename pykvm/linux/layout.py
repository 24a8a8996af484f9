"""The offsets pykvm.linux reads with, from the kernel's own types (its BTF).

One object per handle: every offset the tools use, looked up once.  A member a kernel
version lacks is None; a missing type system raises UnsupportedError naming the dump.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Optional

from ..errors import KvmError, UnsupportedError

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["layout", "offsetof", "sizeof"]


def _types(kd: Kvm) -> Kvm:
    from .. import has
    if not has("btf"):
        kd._require("btf", "kernel types (BTF), which the tasks, modules and stacks need,")
    kd.types.ensure()  # raises, naming the dump, when it carries no BTF
    return kd


def offsetof(kd: Kvm, type_name: str, path: str) -> int:
    """Byte offset of a member path ("thread.sp") in a type ("struct task_struct")."""
    return kd.offsetof(type_name, path)


def sizeof(kd: Kvm, type_name: str) -> int:
    return kd.sizeof(type_name)


def _opt(kd: Kvm, type_name: str, *paths: str) -> Optional[int]:
    for p in paths:
        try:
            return offsetof(kd, type_name, p)
        except (KvmError, KeyError, LookupError, AttributeError, ValueError):
            continue
    return None


def _needed(kd: Kvm, type_name: str, *paths: str) -> int:
    """_opt for a member the tools reading it use without a check: typed int for them,
    yet None (as _opt gives) on a kernel without it, so that a Layout is still made there
    and only a tool that reads the member fails."""
    return _opt(kd, type_name, *paths)  # type: ignore[return-value]


class Layout:
    def __init__(self, kd: Kvm) -> None:
        _types(kd)
        ts = "struct task_struct"
        self.pid = offsetof(kd, ts, "pid")
        self.tgid = offsetof(kd, ts, "tgid")
        self.comm = offsetof(kd, ts, "comm")
        self.state = _needed(kd, ts, "__state", "state")
        self.exit_state = offsetof(kd, ts, "exit_state")
        self.cpu = _opt(kd, ts, "thread_info.cpu", "cpu")
        self.real_parent = offsetof(kd, ts, "real_parent")
        self.tasks = offsetof(kd, ts, "tasks")
        self.thread_group = offsetof(kd, ts, "thread_group")
        self.thread_sp = offsetof(kd, ts, "thread.sp")
        self.stack = offsetof(kd, ts, "stack")
        self.rq_idle = offsetof(kd, "struct rq", "idle")
        try:
            self.current_task = kd.symbol("current_task")
        except KeyError:  # 6.2+: struct pcpu_hot pcpu_hot
            self.current_task = kd.symbol("pcpu_hot") + offsetof(kd, "struct pcpu_hot",
                                                                 "current_task")
        m = "struct module"
        self.mod_list = offsetof(kd, m, "list")
        self.mod_name = offsetof(kd, m, "name")
        self.mod_state = offsetof(kd, m, "state")
        self.mod_refcnt = _opt(kd, m, "refcnt")
        self.mod_core_base = _needed(kd, m, "core_layout.base")
        self.mod_core_size = _needed(kd, m, "core_layout.size")
        self.mod_core_text_size = _needed(kd, m, "core_layout.text_size")
        self.mod_init_size = _needed(kd, m, "init_layout.size")
        self.mod_kallsyms = _needed(kd, m, "kallsyms")
        self.mod_num_orcs = _needed(kd, m, "arch.num_orcs")
        self.mod_orc_ip = _needed(kd, m, "arch.orc_unwind_ip")
        self.mod_orc = _needed(kd, m, "arch.orc_unwind")
        self.mod_source_list = _opt(kd, m, "source_list")
        self.use_source_list = _opt(kd, "struct module_use", "source_list")
        self.use_source = _needed(kd, "struct module_use", "source")
        self.tk_ktime_sec = _opt(kd, "struct timekeeper", "ktime_sec")
        self.tk_offs_boot = _opt(kd, "struct timekeeper", "offs_boot")
        k = "struct mod_kallsyms"
        self.ks_symtab = _needed(kd, k, "symtab")
        self.ks_num = _needed(kd, k, "num_symtab")
        self.ks_strtab = _needed(kd, k, "strtab")
        self.ks_typetab = _opt(kd, k, "typetab")


def layout(kd: Kvm) -> Layout:
    cached: Optional[Layout] = getattr(kd, "_linux_layout", None)
    if cached is None:
        cached = Layout(kd)
        try:
            kd._linux_layout = cached
        except AttributeError:
            pass
    return cached
