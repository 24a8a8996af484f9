"""What every kernel tool needs over typed objects: the Kvm methods for types
(a mixin of :class:`pykvm.Kvm`), container_of, list walks, per-CPU access and
address-to-symbol."""

from __future__ import annotations

import bisect
import errno as _errno
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple,
                    Union, overload)

from ..errors import FaultError, KvmError, KvmFormatError, SymbolNotFoundError

if TYPE_CHECKING:
    from .._fast import Address
    from ..kvm import Symbol
    from .objects import Object
    from .typesys import Type, TypeTable

# The type system (typesys, objects, decls) is imported on the first question about
# types, not with pykvm: a tool that reads no types (dmesg, read, nlist) never loads it.


def _split_path(path: str) -> List[Union[str, int]]:
    """'a.b[3].c' / 'a->b' -> ['a', 'b', 3, 'c']."""
    out: List[Union[str, int]] = []
    for part in path.replace("->", ".").split("."):
        part = part.strip()
        if not part:
            raise LookupError(f"bad member path {path!r}")
        while "[" in part:
            i = part.index("[")
            if i:
                out.append(part[:i])
            j = part.index("]", i)
            out.append(int(part[i + 1:j], 0))
            part = part[j + 1:]
        if part:
            out.append(part)
    return out


# A list longer than this is taken as corrupt (no kernel list comes near).
LIST_LIMIT = 10_000_000


class Symbolized(NamedTuple):
    name: str
    offset: int
    size: int  # bytes to the next symbol (0 when unknown)
    module: Optional[str]

    def __str__(self) -> str:
        s = f"{self.name}+0x{self.offset:x}/0x{self.size:x}"
        return s + (f" [{self.module}]" if self.module else "")


class TypesMixin:
    """Kernel types and objects on a Kvm (the methods live here)."""

    _btf_table: Optional[TypeTable] = None
    _btf_decls: Optional[Dict[str, Union[str, Type]]] = None
    _sym_index: Optional[Tuple[List[int], List[Symbol]]] = None

    if TYPE_CHECKING:
        # What the class this is mixed into provides (pykvm.Kvm, and its base
        # pykvm._fast.Reader), for the methods here, Object and TypeTable.
        prefix: Optional[str]

        def _handle(self) -> Any: ...
        def _error(self, default_errno: int = ...) -> KvmError: ...
        def _fact(self, key: str, default: object = ...) -> object: ...
        def symbol(self, name: str) -> int: ...
        def all_symbols(self) -> Iterator[Symbol]: ...
        @property
        def byteorder(self) -> str: ...
        def read(self, addr: Address, size: int, physical: bool = ...) -> bytes: ...
        def read_u32(self, addr: Address, physical: bool = ...) -> int: ...
        def read_pointer(self, addr: Address, physical: bool = ...) -> int: ...
        def read_member(self, addr: Address, offset: int, size: int, signed: bool = ...,
                        bit_offset: int = ..., bit_size: int = ...) -> int: ...
        @overload
        def read_cstring(self, addr: Address, maxlen: int = ..., physical: bool = ...,
                         encoding: str = ...) -> str: ...
        @overload
        def read_cstring(self, addr: Address, maxlen: int, physical: bool,
                         encoding: None) -> bytes: ...
        @overload
        def read_cstring(self, addr: Address, maxlen: int = ..., physical: bool = ..., *,
                         encoding: None) -> bytes: ...
        def read_cstring(self, addr: Address, maxlen: int = ..., physical: bool = ...,
                         encoding: Optional[str] = ...) -> Union[str, bytes]: ...

    # ---- types ----

    @property
    def types(self) -> TypeTable:
        """The kernel's type table (BTF, loaded on first use).

        Raises ClosedError (a closed handle); its lookups raise
        LookupError (no such type), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        t = self._btf_table
        if t is None:
            from .typesys import TypeTable
            self._handle()
            t = self._btf_table = TypeTable(self)
        return t

    def _btf_error(self) -> KvmError:
        return self._error(_errno.EINVAL)

    def type(self, name: Union[str, Type]) -> Type:
        """A kernel type by C name ('struct task_struct', 'u64', 'char *').

        Raises LookupError (no such type: the message names any module whose
        BTF was left out), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        return self.types.lookup(name)

    def sizeof(self, type: Union[str, Type]) -> int:
        """The size in bytes of a type.

        Raises TypeError (a type without a size: void, a function),
        LookupError (no such type), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        t = self.types.lookup(type)
        if t.size is None:
            raise TypeError(f"{t.name_str()} has no size")
        return t.size

    def offsetof(self, type: Union[str, Type], member: str) -> int:
        """Byte offset of a member path ('se.vruntime', 'pids[1].node').

        Raises LookupError (no such type or member, an index into a
        non-array), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        bits, _, _ = self._member_path(self.types.lookup(type), member)
        return bits // 8

    def _member_path(self, t: Type, path: str) -> Tuple[int, int, Type]:
        bits = 0
        size = 0
        cur = t
        for part in _split_path(path):
            r = cur.resolve()
            if isinstance(part, int):
                if r.kind != "array":
                    raise LookupError(f"{cur.name_str()} is not an array (index [{part}] in {path!r})")
                cur = r.target  # type: ignore[assignment]
                bits += part * (cur.size or 0) * 8
                size = 0
            else:
                if r.kind not in ("struct", "union"):
                    raise LookupError(f"{cur.name_str()} has no members ({part!r} in {path!r})")
                try:
                    b, size, cur = r.member_index()[part]
                except KeyError:
                    raise LookupError(f"{r.name_str()} has no member {part!r}") from None
                bits += b
        return bits, size, cur

    def member_reader(self, type: Union[str, Type], path: str) -> Callable[[int], int]:
        """A function addr -> the integer member path of the type at addr
        (ints, enums, pointers, bitfields): the lookup done once, each call
        one read in C.  For loops over many objects of one type.

        Raises TypeError (the member is not an integer or pointer),
        LookupError (no such type or member), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF); each call
        raises what Kvm.read_member does (FaultError, ...)."""
        off, size, signed, bo, bs = self._member_int_layout(self.types.lookup(type), path)
        rm = self.read_member
        return lambda addr: rm(addr, off, size, signed, bo, bs)

    def _member_int_layout(self, t: Type, path: str) -> Tuple[int, int, bool, int, int]:
        bits, bsize, mt = self._member_path(t, path)
        r = mt.resolve()
        if r.kind == "ptr":
            size, signed = self.types.word, False
        elif r.kind in ("int", "enum", "enum64") and r.size in (1, 2, 4, 8):
            size = r.size
            signed = r.is_signed if r.kind == "int" else bool(r.kflag)
        else:
            raise TypeError(f"{path} of {t.name_str()} is {mt.name_str()}, not an integer")
        if bsize:
            unit = bits // 8
            return unit, (bits % 8 + bsize + 7) // 8, signed, bits % 8, bsize
        return bits // 8, size, signed, 0, 0

    # ---- declarations and objects ----

    def declare(self, declaration: str, type: Union[str, Type, None] = None) -> None:
        """Declare a global: declare('struct foo *bar') or declare('bar', 'struct foo *').

        Raises LookupError (a declaration that does not parse)."""
        from .decls import parse_declaration
        typ: Union[str, Type]
        if type is None:
            name, typ = parse_declaration(declaration)
        else:
            name, typ = declaration, type
        if self._btf_decls is None:
            self._btf_decls = {}
        self._btf_decls[name] = typ

    def declared_type(self, symbol: str) -> Type:
        """The type of a global: declared here, in the table of well-known
        ones, or (per-CPU variables) by the kernel's BTF.

        Raises LookupError (its type is not known: declare it), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        from .decls import GLOBALS
        decl = (self._btf_decls or {}).get(symbol)
        if decl is None:
            decl = GLOBALS.get(symbol)
        if decl is not None:
            return self.types.lookup(decl)
        t = self.types.find_var(symbol)
        if t is None:
            raise LookupError(f"the type of {symbol!r} is not known: pass type= or "
                              f"declare it (kd.declare('struct foo {symbol}'))")
        return t

    def object(self, where: Union[str, int, Object], type: Union[str, Type, None] = None) -> Object:
        """A typed object: a symbol (its declared type unless type= says),
        or an address with type=.  Nothing is read until a value is asked for.

        Raises SymbolNotFoundError (no such symbol), LookupError (a type not
        known), TypeError (an address without type=), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        from .objects import Object
        if isinstance(where, Object):
            return where if type is None else where.cast(type)
        if isinstance(where, str):
            t = self.declared_type(where) if type is None else self.types.lookup(type)
            addr = self.symbol(where)
            return Object(self, addr, t)
        if type is None:
            raise TypeError("an object at an address needs type=")
        return Object(self, int(where), self.types.lookup(type))

    # ---- helpers ----

    def container_of(self, ptr: Union[int, Object], type: Union[str, Type], member: str) -> Object:
        """The object of type whose member is at ptr (a pointer Object, an
        Object of the member, or an address).

        Raises LookupError (no such type or member), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF), and what
        reading a pointer Object raises (FaultError, ...)."""
        from .objects import Object
        if isinstance(ptr, Object):
            addr = int(ptr) if ptr.type.resolve().kind == "ptr" else ptr.address
        else:
            addr = int(ptr)
        t = self.types.lookup(type)
        return Object(self, addr - self.offsetof(t, member), t)

    def _head_address(self, head: Union[int, str, Object]) -> int:
        from .objects import Object
        if isinstance(head, Object):
            return int(head) if head.type.resolve().kind == "ptr" else head.address
        if isinstance(head, str):
            return self.symbol(head)
        return int(head)

    def list_for_each(self, head: Union[int, str, Object], limit: int = LIST_LIMIT) -> Iterator[int]:
        """Addresses of the list_head nodes of a circular list (head excluded).

        Raises KvmFormatError (a NULL next pointer, a loop that misses the
        head, more than limit entries: a corrupt list never hangs), the
        read errors of its pointers (FaultError, PageExcludedError, ...),
        SymbolNotFoundError (head names no symbol)."""
        head_addr = self._head_address(head)
        next_off = self.offsetof("struct list_head", "next")
        rp = self.read_pointer
        seen: Set[int] = set()
        pos = rp(head_addr + next_off)
        n = 0
        while pos != head_addr:
            if pos == 0:
                raise KvmFormatError(_errno.EINVAL, f"list at 0x{head_addr:x}: NULL next pointer "
                                     f"after {n} entries")
            if pos in seen:
                raise KvmFormatError(_errno.EINVAL, f"list at 0x{head_addr:x} loops back to "
                                     f"0x{pos:x} after {n} entries without reaching the head")
            n += 1
            if n > limit:
                raise KvmFormatError(_errno.EINVAL, f"list at 0x{head_addr:x} has more than "
                                     f"{limit} entries: corrupt")
            seen.add(pos)
            yield pos
            pos = rp(pos + next_off)

    def list_for_each_entry(self, type: Union[str, Type], head: Union[int, str, Object], member: str,
                            limit: int = LIST_LIMIT) -> Iterator[Object]:
        """The entries of a circular list: head is a list_head Object, its
        address or a symbol; type and member say where each entry's
        list_head is.

        Raises what list_for_each does, and LookupError (no such type or
        member), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        from .objects import Object
        t = self.types.lookup(type)
        off = self.offsetof(t, member)
        for pos in self.list_for_each(head, limit):
            yield Object(self, pos - off, t)

    def hlist_for_each_entry(self, type: Union[str, Type], head: Union[int, str, Object], member: str,
                             limit: int = LIST_LIMIT) -> Iterator[Object]:
        """The entries of an hlist (NULL-terminated) from its hlist_head.

        Raises KvmFormatError (a loop, more than limit entries), the read
        errors of its pointers (FaultError, ...), LookupError (no such type
        or member), UnsupportedError (no BTF in the dump and no btf=; a build without libbpf), KvmFormatError (corrupt BTF)."""
        from .objects import Object
        t = self.types.lookup(type)
        off = self.offsetof(t, member)
        head_addr = self._head_address(head)
        first_off = self.offsetof("struct hlist_head", "first")
        next_off = self.offsetof("struct hlist_node", "next")
        rp = self.read_pointer
        seen: Set[int] = set()
        pos = rp(head_addr + first_off)
        n = 0
        while pos:
            if pos in seen:
                raise KvmFormatError(_errno.EINVAL, f"hlist at 0x{head_addr:x} loops back to "
                                     f"0x{pos:x} after {n} entries")
            n += 1
            if n > limit:
                raise KvmFormatError(_errno.EINVAL, f"hlist at 0x{head_addr:x} has more than "
                                     f"{limit} entries: corrupt")
            seen.add(pos)
            yield Object(self, pos - off, t)
            pos = rp(pos + next_off)

    def per_cpu_offset(self, cpu: int) -> int:
        """__per_cpu_offset[cpu].

        Raises IndexError (cpu outside 0 .. nr_cpu_ids - 1),
        SymbolNotFoundError (no __per_cpu_offset: a UP kernel), FaultError."""
        nr = self._nr_cpu_ids()
        if not 0 <= cpu < nr:
            raise IndexError(f"cpu {cpu} out of range (nr_cpu_ids {nr})")
        return self.read_pointer(self.symbol("__per_cpu_offset") + cpu * self.types.word)

    def _nr_cpu_ids(self) -> int:
        try:
            return self.read_u32(self.symbol("nr_cpu_ids"))
        except SymbolNotFoundError:
            return 1 << 13

    def per_cpu(self, what: Union[str, Object], cpu: int) -> Object:
        """CPU cpu's copy of a per-CPU variable (a symbol or its Object) or
        of what a __percpu pointer Object points to.

        Raises what per_cpu_offset and object raise."""
        from .objects import Object
        if isinstance(what, str):
            what = self.object(what)
        off = self.per_cpu_offset(cpu)
        t = what.type
        if t.resolve().kind == "ptr" and self._is_percpu_pointer(what):
            return Object(self, int(what) + off, t.resolve().target)  # type: ignore[arg-type]
        return Object(self, what.address + off, t)

    @staticmethod
    def _is_percpu_pointer(obj: Object) -> bool:
        # x86-64 SMP per-CPU variables sit at small offsets (their symbols
        # are not relocated); a pointer object in the kernel half of the
        # address space is a __percpu pointer to follow.
        return obj.address >= (1 << 63)

    # ---- address -> symbol ----

    def _symbol_index(self) -> Tuple[List[int], List[Symbol]]:
        idx = self._sym_index
        if idx is None:
            syms = [s for s in self.all_symbols()
                    if s.letter not in ("a", "A", "U", "w", "v")]
            syms.sort(key=lambda s: s.value)
            values = [s.value for s in syms]
            idx = self._sym_index = (values, syms)
        return idx

    def symbolize(self, addr: int) -> Optional[Symbolized]:
        """The symbol at or before addr: (name, offset, size, module); None
        when no symbol is at or below addr (or past the end of the last).

        Raises ClosedError (a closed handle); module symbols that do not
        read are skipped, never guessed."""
        # Module code first, from the modules' own symbol tables in the dump (kernel
        # knowledge, kept in pykvm.linux): the handle's tables lack modules loaded later.
        from ..linux.modsyms import module_symbolize
        m = module_symbolize(self, addr)  # type: ignore[arg-type]  # self: the Kvm this is mixed into
        if m is not None:
            return Symbolized(m.name, m.offset, m.size, m.module)
        values, syms = self._symbol_index()
        i = bisect.bisect_right(values, addr) - 1
        if i < 0:
            return None
        s = syms[i]
        # the first symbol at that value names it (aliases share it)
        j = bisect.bisect_left(values, s.value)
        s = syms[j]
        k = bisect.bisect_right(values, s.value)
        if k >= len(values):
            # Past the last symbol nothing says where it ends: an address beyond
            # it belongs to no known symbol (never a made-up offset).
            return Symbolized(s.name, 0, 0, s.module) if addr == s.value else None
        size = values[k] - s.value
        if addr - s.value >= size:
            return None
        return Symbolized(s.name, addr - s.value, size, s.module)

    def _symbolize_str(self, addr: int) -> Optional[str]:
        try:
            r = self.symbolize(addr)
        except Exception:
            return None
        if r is None:
            return None
        return f"{r.name}+0x{r.offset:x}" + (f" [{r.module}]" if r.module else "")
