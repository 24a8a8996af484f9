"""The offsets pykvm.linux reads with, from the kernel's own types (its BTF).

One object per handle: every offset the tools use, looked up once.  An optional member a
kernel version lacks is None; reading a needed one it lacks raises UnsupportedError (a
KvmError) naming it; a missing type system raises UnsupportedError naming the dump.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Dict, Optional, Tuple

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


class _Needed:
    """A member offset the tools read without a check.  A kernel that has the member gets
    its offset in the instance's dict, which shadows this (non-data) descriptor: reading it
    is a plain attribute read.  On a kernel without it the read comes here and raises
    UnsupportedError naming the struct, the member and the kernel, so that a Layout is
    still made there and only a tool reading the member fails."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Optional[Layout], objtype: Optional[type] = None) -> int:
        if obj is None:
            raise AttributeError(self.name)
        raise obj._missing_error(self.name)


class Layout:
    # members some kernel versions lack (a read raises UnsupportedError there)
    state = _Needed()
    mod_core_base = _Needed()
    mod_core_size = _Needed()
    mod_core_text_size = _Needed()
    mod_init_size = _Needed()
    mod_kallsyms = _Needed()
    mod_num_orcs = _Needed()
    mod_orc_ip = _Needed()
    mod_orc = _Needed()
    use_source = _Needed()
    ks_symtab = _Needed()
    ks_num = _Needed()
    ks_strtab = _Needed()

    def __init__(self, kd: Kvm) -> None:
        _types(kd)
        self._missing: Dict[str, Tuple[str, Tuple[str, ...]]] = {}
        self._release = ""
        ts = "struct task_struct"
        self.pid = offsetof(kd, ts, "pid")
        self.tgid = offsetof(kd, ts, "tgid")
        self.comm = offsetof(kd, ts, "comm")
        self._need(kd, "state", ts, "__state", "state")
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
        self._need(kd, "mod_core_base", m, "core_layout.base")
        self._need(kd, "mod_core_size", m, "core_layout.size")
        self._need(kd, "mod_core_text_size", m, "core_layout.text_size")
        self._need(kd, "mod_init_size", m, "init_layout.size")
        self._need(kd, "mod_kallsyms", m, "kallsyms")
        self._need(kd, "mod_num_orcs", m, "arch.num_orcs")
        self._need(kd, "mod_orc_ip", m, "arch.orc_unwind_ip")
        self._need(kd, "mod_orc", m, "arch.orc_unwind")
        self.mod_source_list = _opt(kd, m, "source_list")
        self.use_source_list = _opt(kd, "struct module_use", "source_list")
        self._need(kd, "use_source", "struct module_use", "source")
        self.tk_ktime_sec = _opt(kd, "struct timekeeper", "ktime_sec")
        self.tk_offs_boot = _opt(kd, "struct timekeeper", "offs_boot")
        k = "struct mod_kallsyms"
        self._need(kd, "ks_symtab", k, "symtab")
        self._need(kd, "ks_num", k, "num_symtab")
        self._need(kd, "ks_strtab", k, "strtab")
        self.ks_typetab = _opt(kd, k, "typetab")
        if self._missing:
            self._release = _release(kd)

    def _need(self, kd: Kvm, attr: str, type_name: str, *paths: str) -> None:
        off = _opt(kd, type_name, *paths)
        if off is None:
            self._missing[attr] = (type_name, paths)
        else:
            self.__dict__[attr] = off

    def need(self, *attrs: str) -> None:
        """Raise UnsupportedError when this kernel lacks one of the members attrs name."""
        for a in attrs:
            if a in self._missing:
                raise self._missing_error(a)

    def _missing_error(self, attr: str) -> UnsupportedError:
        type_name, paths = self._missing.get(attr, ("?", (attr,)))
        on = f" (Linux {self._release})" if self._release else ""
        return UnsupportedError(errno.ENOTSUP, f"{type_name} has no member "
                                f"{' or '.join(paths)} on this kernel{on}: a layout this "
                                "reader does not know")


def _release(kd: Kvm) -> str:
    """The kernel release VMCOREINFO gives (OSRELEASE), "" when it gives none."""
    try:
        from .vmcoreinfo import vmcoreinfo
        vi = vmcoreinfo(kd)
        return vi["OSRELEASE"] if vi.has("OSRELEASE") else ""
    except KvmError:
        return ""


def layout(kd: Kvm) -> Layout:
    cached: Optional[Layout] = getattr(kd, "_linux_layout", None)
    if cached is None:
        cached = Layout(kd)
        try:
            kd._linux_layout = cached
        except AttributeError:
            pass
    return cached
