"""Addresses in loaded modules, named from the modules' own symbol tables in the dump.

A module keeps its ELF symbols for kallsyms (``struct module``'s ``kallsyms->symtab``,
``strtab``, ``num_symtab``), so module code is named with no namelist at all, as the
kernel names it in an oops: the closest preceding named symbol of the module, its size
running to the module's next symbol (at most to the end of the module's text).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, List, Literal, NamedTuple, Optional, Tuple, Union

from ..errors import KvmError, UnsupportedError
from .modules import Module, lsmod, module_symbols

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["ModuleSymbol", "ModuleSymbols", "module_symbols_of", "module_symbolize"]


class ModuleSymbol(NamedTuple):
    name: str
    offset: int
    size: int
    module: str


def _mapping_symbol(name: str) -> bool:
    # assembler-local names the kernel's module kallsyms skips as uninformative
    return name.startswith(("$", ".L", "L0"))


class _Loaded:
    """One module: its core range, text end and symbols sorted by address."""

    def __init__(self, kd: Kvm, m: Module) -> None:
        address: int = m.address  # type: ignore[assignment]  # ModuleSymbols keeps modules with one
        self.module = m
        self.start = address
        self.end = address + (m.size or 0)
        self.text_end = address + (m.text_size or m.size or 0)
        self._syms: Optional[List[Tuple[int, str]]] = None
        self._values: List[int] = []
        self._kd = kd

    def symbols(self) -> List[Tuple[int, str]]:
        if self._syms is None:
            named = {(a, n) for a, n, _t in module_symbols(self._kd, self.module)
                     if self.start <= a < self.end and not _mapping_symbol(n)}
            self._syms = sorted(named)
            self._values = [a for a, _ in self._syms]
        return self._syms

    def lookup(self, addr: int) -> Optional[ModuleSymbol]:
        syms = self.symbols()
        values = self._values
        i = bisect.bisect_right(values, addr) - 1
        if i < 0:
            return None
        value, name = syms[i]
        # aliases share an address: the kernel keeps the first one it meets
        first = bisect.bisect_left(values, value)
        name = syms[first][1]
        # the next symbol (first above addr), at most the end of the text (or of the
        # module, for an address in its data)
        nxt = bisect.bisect_right(values, value)
        limit = self.text_end if addr < self.text_end else self.end
        end = min(values[nxt], limit) if nxt < len(values) else limit
        return ModuleSymbol(name, addr - value, end - value, self.module.name)


class ModuleSymbols:
    """Every loaded module's range, read once; a module's symbols on its first lookup."""

    def __init__(self, kd: Kvm) -> None:
        mods = [m for m in lsmod(kd) if not m.error and m.address and m.size]
        self.loaded = sorted((_Loaded(kd, m) for m in mods), key=lambda x: x.start)
        self.starts = [x.start for x in self.loaded]

    def module_at(self, addr: int) -> Optional[Module]:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.loaded[i].end:
            return self.loaded[i].module
        return None

    def lookup(self, addr: int) -> Optional[ModuleSymbol]:
        """The symbol holding addr when addr is in a loaded module, else None."""
        i = bisect.bisect_right(self.starts, addr) - 1
        if i < 0 or addr >= self.loaded[i].end:
            return None
        try:
            return self.loaded[i].lookup(addr)
        except KvmError:  # the module's symbol table is unreadable: no name, not a guess
            return None


def module_symbols_of(kd: Kvm) -> Optional[ModuleSymbols]:
    """The handle's ModuleSymbols (made once); None when the dump's modules cannot be read
    (no kernel types, no module list: a process core, a kernel without modules)."""
    # getattr's type makes the default a bool: False is all it can be here
    cached: Union[ModuleSymbols, None, Literal[False]] = getattr(  # type: ignore[assignment]
        kd, "_linux_modsyms", False)
    if cached is not False:
        return cached
    try:
        ms: Optional[ModuleSymbols] = ModuleSymbols(kd)
    except (KvmError, UnsupportedError, NotImplementedError, LookupError):
        ms = None
    try:
        kd._linux_modsyms = ms
    except AttributeError:
        pass
    return ms


def module_symbolize(kd: Kvm, addr: int) -> Optional[ModuleSymbol]:
    """addr named from its module's own symbols; None when no loaded module holds it."""
    ms = module_symbols_of(kd)
    return ms.lookup(addr) if ms is not None else None
