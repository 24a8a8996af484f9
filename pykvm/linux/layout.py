"""The offsets pykvm.linux reads with, from the kernel's own types (its BTF).

One object per handle; each offset is looked up on its first read and kept (ps reads the
task's, not the module's or the runqueue's).  An optional member a kernel version lacks
is None; reading a needed one it lacks raises UnsupportedError (a KvmError) naming it; a
missing type system raises UnsupportedError naming the dump when the Layout is made.
"""

from __future__ import annotations

import errno
import functools
import weakref
from typing import TYPE_CHECKING, Optional, Tuple

from ..errors import ClosedError, KvmError, UnsupportedError

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


class _Lookup:
    """A member offset of a Layout, looked up on its first read.  The value then sits in
    the instance's dict, which shadows this (non-data) descriptor: later reads are plain
    attribute reads."""

    def __init__(self, type_name: str, *paths: str) -> None:
        self.type_name = type_name
        self.paths = paths
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _find(self, obj: Layout) -> Optional[int]:
        off = _opt(obj._kvm(), self.type_name, *self.paths)
        obj.__dict__[self.name] = off
        return off


class _Needed(_Lookup):
    """An offset the tools read without a check: on a kernel without the member, reading it
    raises UnsupportedError naming the struct, the member and the kernel."""

    def __get__(self, obj: Optional[Layout], objtype: Optional[type] = None) -> int:
        if obj is None:
            raise AttributeError(self.name)
        off = self._find(obj)
        if off is None:
            del obj.__dict__[self.name]
            raise obj._missing_error(self)
        return off


class _Optional(_Lookup):
    """An offset some kernels lack: None there."""

    def __get__(self, obj: Optional[Layout], objtype: Optional[type] = None) -> Optional[int]:
        if obj is None:
            raise AttributeError(self.name)
        return self._find(obj)


_TS = "struct task_struct"
_MOD = "struct module"
_KS = "struct mod_kallsyms"


class Layout:
    pid = _Needed(_TS, "pid")
    tgid = _Needed(_TS, "tgid")
    comm = _Needed(_TS, "comm")
    state = _Needed(_TS, "__state", "state")
    exit_state = _Needed(_TS, "exit_state")
    cpu = _Optional(_TS, "thread_info.cpu", "cpu")
    real_parent = _Needed(_TS, "real_parent")
    tasks = _Needed(_TS, "tasks")
    thread_group = _Needed(_TS, "thread_group")
    thread_sp = _Needed(_TS, "thread.sp")
    stack = _Needed(_TS, "stack")
    rq_idle = _Needed("struct rq", "idle")
    mod_list = _Needed(_MOD, "list")
    mod_name = _Needed(_MOD, "name")
    mod_state = _Needed(_MOD, "state")
    mod_refcnt = _Optional(_MOD, "refcnt")
    mod_core_base = _Needed(_MOD, "core_layout.base")
    mod_core_size = _Needed(_MOD, "core_layout.size")
    mod_core_text_size = _Needed(_MOD, "core_layout.text_size")
    mod_init_size = _Needed(_MOD, "init_layout.size")
    mod_kallsyms = _Needed(_MOD, "kallsyms")
    mod_num_orcs = _Needed(_MOD, "arch.num_orcs")
    mod_orc_ip = _Needed(_MOD, "arch.orc_unwind_ip")
    mod_orc = _Needed(_MOD, "arch.orc_unwind")
    mod_source_list = _Optional(_MOD, "source_list")
    use_source_list = _Optional("struct module_use", "source_list")
    use_source = _Needed("struct module_use", "source")
    tk_ktime_sec = _Optional("struct timekeeper", "ktime_sec")
    tk_offs_boot = _Optional("struct timekeeper", "offs_boot")
    ks_symtab = _Needed(_KS, "symtab")
    ks_num = _Needed(_KS, "num_symtab")
    ks_strtab = _Needed(_KS, "strtab")
    ks_typetab = _Optional(_KS, "typetab")

    def __init__(self, kd: Kvm) -> None:
        _types(kd)
        # not the handle itself: the handle keeps its Layout, which would keep the handle
        self._ref = weakref.ref(kd)

    def _kvm(self) -> Kvm:
        kd = self._ref()
        if kd is None:
            raise ClosedError(errno.EBADF, "the handle of this layout is gone")
        return kd

    @functools.cached_property
    def current_task(self) -> int:
        """The per-CPU current_task's address (before the CPU's offset)."""
        kd = self._kvm()
        try:
            return kd.symbol("current_task")
        except KeyError:  # 6.2+: struct pcpu_hot pcpu_hot
            return kd.symbol("pcpu_hot") + offsetof(kd, "struct pcpu_hot", "current_task")

    def need(self, *attrs: str) -> None:
        """Raise UnsupportedError when this kernel lacks one of the members attrs name."""
        for a in attrs:
            getattr(self, a)

    def _missing_error(self, what: _Lookup) -> UnsupportedError:
        release = _release(self._kvm())
        on = f" (Linux {release})" if release else ""
        return UnsupportedError(errno.ENOTSUP, f"{what.type_name} has no member "
                                f"{' or '.join(what.paths)} on this kernel{on}: a layout "
                                "this reader does not know")


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
