"""Loaded kernel modules (struct module on the ``modules`` list), from the dump alone:
what /proc/modules shows, their own symbol tables (kallsyms) and ORC tables."""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ..errors import KvmError, UnsupportedError
from .orc import OrcTable

if TYPE_CHECKING:
    from ..kvm import Kvm
    from .layout import Layout

__all__ = ["Module", "lsmod", "orc_finder", "module_symbols"]

MAX_MODULES = 1 << 14
MAX_MODULE_SYMS = 1 << 20
MODULE_NAME_LEN = 56
STATES = {0: "Live", 1: "Loading", 2: "Unloading", 3: "Unformed"}
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym


class Module(NamedTuple):
    name: str
    size: Optional[int]
    refcount: Optional[int]
    address: Optional[int]
    state: str
    used_by: List[str]
    module: int           # struct module address
    text_size: Optional[int] = None
    error: Optional[str] = None

    def as_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"name": self.name, "size": self.size, "refcount": self.refcount,
             "address": self.address, "state": self.state, "used_by": self.used_by,
             "module": self.module}
        if self.error:
            d["error"] = self.error
        return d

    def proc_line(self) -> str:
        """The module's line as /proc/modules prints it."""
        used = "".join(f"{u}," for u in self.used_by) or "-"
        ref = "-" if self.refcount is None else str(self.refcount)
        return f"{self.name} {self.size} {ref} {used} {self.state} {self.address:#x}"


def _module_addrs(kd: Kvm, L: Layout) -> Iterator[int]:
    from .tasks import _list
    try:
        head = kd.symbol("modules")
    except KeyError:
        raise UnsupportedError(errno.ENOTSUP, "the kernel's symbols lack `modules` "
                               "(a kernel without module support?)") from None
    return _list(kd, head, L.mod_list, MAX_MODULES)


def _read_module(kd: Kvm, L: Layout, m: int) -> Module:
    from .tasks import _list
    try:
        name = kd.read(m + L.mod_name, MODULE_NAME_LEN).split(b"\0", 1)[0].decode(
            "utf-8", "replace")
        state = STATES.get(kd.read_u32(m + L.mod_state), "?")
        base = kd.read_pointer(m + L.mod_core_base)
        size = kd.read_u32(m + L.mod_core_size) + kd.read_u32(m + L.mod_init_size)
        text = kd.read_u32(m + L.mod_core_text_size)
        ref = kd.read_s32(m + L.mod_refcnt) - 1 if L.mod_refcnt is not None else None
    except KvmError as e:
        return Module("?", None, None, None, "?", [], m, None, f"module {m:#x} unreadable: {e}")
    used: List[str] = []
    err = None
    if L.mod_source_list is not None and L.use_source_list is not None:
        try:
            for u in _list(kd, m + L.mod_source_list, L.use_source_list, MAX_MODULES):
                src = kd.read_pointer(u + L.use_source)
                used.append(kd.read(src + L.mod_name, MODULE_NAME_LEN).split(
                    b"\0", 1)[0].decode("utf-8", "replace"))
        except KvmError as e:
            err = f"users of {name} unreadable: {e}"
    return Module(name, size, ref, base, state, used, m, text, err)


def lsmod(kd: Kvm) -> List[Module]:
    """Every module on the list, in list order (newest first, as /proc/modules).
    UnsupportedError when the kernel's struct module is laid out in a way not known here."""
    from .layout import layout
    L = layout(kd)
    # a kernel whose struct module lacks these (core_layout is mem[] since 6.4): one error,
    # UnsupportedError, not one unreadable entry a module
    L.need("mod_list", "mod_name", "mod_state", "mod_core_base", "mod_core_size",
           "mod_core_text_size", "mod_init_size")
    if L.mod_source_list is not None and L.use_source_list is not None:
        L.need("use_source")
    out: List[Module] = []
    try:
        for m in _module_addrs(kd, L):
            out.append(_read_module(kd, L, m))
    except KvmError as e:  # the list itself broke: what was read stays, then the error
        out.append(Module("?", None, None, None, "?", [], 0, None, f"module list: {e}"))
    return out


def module_symbols(kd: Kvm, mod: Module) -> List[Tuple[int, str, str]]:
    """(address, name, type letter) from the module's own kallsyms (mod->kallsyms)."""
    from .layout import layout
    L = layout(kd)
    ks = kd.read_pointer(mod.module + L.mod_kallsyms)
    symtab = kd.read_pointer(ks + L.ks_symtab)
    n = kd.read_u32(ks + L.ks_num)
    strtab = kd.read_pointer(ks + L.ks_strtab)
    typetab = kd.read_pointer(ks + L.ks_typetab) if L.ks_typetab is not None else 0
    if n > MAX_MODULE_SYMS:
        raise KvmError(errno.EINVAL, f"module {mod.name}: implausible {n} symbols")
    raw = kd.read(symtab, n * _SYM.size)
    types = kd.read(typetab, n) if typetab else b"t" * n
    names_end = max((_SYM.unpack_from(raw, i * _SYM.size)[0] for i in range(n)), default=0)
    strings = kd.read(strtab, names_end + 256) if n else b""
    out: List[Tuple[int, str, str]] = []
    for i in range(1, n):
        st_name, _info, _other, _shndx, value, _size = _SYM.unpack_from(raw, i * _SYM.size)
        name = strings[st_name:strings.index(b"\0", st_name)].decode("utf-8", "replace") \
            if st_name < len(strings) else ""
        if name and value:
            out.append((value, name, chr(types[i])))
    return out


def orc_finder(kd: Kvm) -> Optional[Callable[[int], Optional[OrcTable]]]:
    """ip -> the ORC table of the module whose text holds ip (None: no module's); None when
    the dump's types are not available."""
    try:
        from .layout import layout
        L = layout(kd)
    except (UnsupportedError, NotImplementedError):
        return None
    cache: Dict[int, Optional[OrcTable]] = {}
    mods: List[Module] = []

    def find(ip: int) -> Optional[OrcTable]:
        if not mods:
            try:
                mods.extend(m for m in lsmod(kd) if m.address)
            except KvmError:
                return None
        for m in mods:
            if m.address <= ip < m.address + (m.text_size or m.size or 0):  # type: ignore[operator]  # mods have one
                if m.module not in cache:
                    try:
                        n = kd.read_u32(m.module + L.mod_num_orcs)
                        cache[m.module] = OrcTable(
                            kd, kd.read_pointer(m.module + L.mod_orc_ip),
                            kd.read_pointer(m.module + L.mod_orc), n, m.name) if n else None
                    except KvmError:
                        cache[m.module] = None
                return cache[m.module]
        return None
    return find
