"""Types: the kernel's BTF as Python objects, built lazily one type at a time."""

from __future__ import annotations

import errno as _errno
import re
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from .._fast import MemberTable
from .._kvm import ffi, lib
from ..errors import KvmError, KvmFormatError, UnsupportedError

if TYPE_CHECKING:
    from .helpers import TypesMixin

# BTF_KIND_* (linux/btf.h).
KINDS = {
    0: "void", 1: "int", 2: "ptr", 3: "array", 4: "struct", 5: "union", 6: "enum",
    7: "fwd", 8: "typedef", 9: "volatile", 10: "const", 11: "restrict", 12: "func",
    13: "func_proto", 14: "var", 15: "datasec", 16: "float", 17: "decl_tag",
    18: "type_tag", 19: "enum64",
}
KIND_IDS = {v: k for k, v in KINDS.items()}
_QUALIFIERS = ("typedef", "volatile", "const", "restrict", "type_tag")
_CV = ("volatile", "const", "restrict", "type_tag")

# C spellings of the integer types -> the names BTF (from DWARF) uses.
_INT_ALIASES = {
    "unsigned": "unsigned int", "signed": "int", "signed int": "int",
    "long": "long int", "signed long": "long int", "long signed int": "long int",
    "unsigned long": "long unsigned int", "unsigned long int": "long unsigned int",
    "long unsigned": "long unsigned int",
    "long long": "long long int", "signed long long": "long long int",
    "unsigned long long": "long long unsigned int",
    "unsigned long long int": "long long unsigned int",
    "short": "short int", "signed short": "short int", "short signed int": "short int",
    "unsigned short": "short unsigned int", "unsigned short int": "short unsigned int",
    "bool": "_Bool",
}


class Member:
    """One member of a struct or union (or one parameter of a function type).

    ``offset`` is in bytes (of the storage unit, for a bitfield),
    ``bit_offset`` in bits from the start of the enclosing type, ``bit_size``
    the bitfield's width (0 when not a bitfield); ``name`` is None for an
    anonymous struct/union member.
    """

    __slots__ = ("name", "type", "bit_offset", "bit_size")

    def __init__(self, name: Optional[str], type: "Type", bit_offset: int, bit_size: int):
        self.name = name
        self.type = type
        self.bit_offset = bit_offset
        self.bit_size = bit_size

    @property
    def offset(self) -> int:
        return self.bit_offset // 8

    def __repr__(self) -> str:
        bits = f", bit_size={self.bit_size}" if self.bit_size else ""
        return f"Member({self.name!r}, {self.type.name_str()!r}, offset={self.offset}{bits})"


class Type:
    """A kernel type: ``kind`` is BTF's kind name ("struct", "int", "ptr",
    "array", "typedef", ...), ``name`` its name or None, ``size`` its size in
    bytes (None for void, functions and forward declarations)."""

    __slots__ = ("table", "id", "kind", "name", "_size", "_target_id", "_target", "vlen",
                 "kflag", "nelems", "encoding", "bits", "int_offset", "_members", "_index",
                 "_enumerators", "_resolved", "_ptr", "_cmembers", "__weakref__")

    def __init__(self, table: "TypeTable", id: Optional[int], kind: str, name: Optional[str],
                 size: Optional[int], target: Optional["Type"] = None, target_id: int = 0,
                 vlen: int = 0, kflag: int = 0, nelems: int = 0, encoding: int = 0,
                 bits: int = 0, int_offset: int = 0):
        self.table = table
        self.id = id
        self.kind = kind
        self.name = name
        self._size = size
        self._target = target
        self._target_id = target_id
        self.vlen = vlen
        self.kflag = kflag
        self.nelems = nelems
        self.encoding = encoding
        self.bits = bits
        self.int_offset = int_offset
        self._members: Optional[List[Member]] = None
        self._index: Optional[Dict[str, Tuple[int, int, "Type"]]] = None
        self._enumerators: Optional[List[Tuple[str, int]]] = None
        self._resolved: Optional[Type] = None
        self._ptr: Optional[Type] = None
        # Object's member table (pykvm._fast.Value reads it), once built.
        self._cmembers: Optional[MemberTable] = None

    # ---- what it refers to ----

    @property
    def target(self) -> Optional["Type"]:
        """What a pointer points to, an array holds, a typedef or qualifier
        names, a function returns, a variable is."""
        if self._target is None and self._target_id is not None and self.kind in (
                "ptr", "array", "typedef", "volatile", "const", "restrict", "type_tag",
                "func", "func_proto", "var", "decl_tag"):
            self._target = self.table.by_id(self._target_id)
        return self._target

    @property
    def size(self) -> Optional[int]:
        if self._size is None:
            k = self.kind
            if k in _QUALIFIERS or k == "var":
                self._size = self.target.size  # type: ignore[union-attr]
            elif k == "array":
                es = self.target.size  # type: ignore[union-attr]
                self._size = None if es is None else es * self.nelems
            elif k == "ptr":
                self._size = self.table.word
        return self._size

    @property
    def module(self) -> Optional[str]:
        """The module whose BTF defines this type; None for vmlinux's own
        (and for types made here, such as pointers to a type)."""
        if self.id is None or self.id == 0:
            return None
        return self.table.module_of(self.id)

    def resolve(self) -> "Type":
        """This type without typedefs and qualifiers (const, volatile, ...)."""
        r = self._resolved
        if r is None:
            t: Type = self
            hops = 0
            while t.kind in _QUALIFIERS:
                t = t.target  # type: ignore[assignment]  # a qualifier's target is a type
                hops += 1
                if hops > 64:
                    raise KvmFormatError(_errno.EINVAL, f"BTF: typedef/qualifier loop at type {self.id}")
            self._resolved = r = t
        return r

    def unqualified(self) -> "Type":
        """Without const/volatile/restrict, typedefs kept."""
        t = self
        while t.kind in _CV:
            t = t.target  # type: ignore[assignment]
        return t

    def pointer(self) -> "Type":
        """The type 'pointer to this'."""
        if self._ptr is None:
            self._ptr = self.table.pointer_to(self)
        return self._ptr

    # ---- members and enumerators ----

    @property
    def members(self) -> List[Member]:
        """Members of a struct or union (of the resolved type), as BTF has them:
        an anonymous struct/union member is one member with name None."""
        t = self.resolve()
        if t is not self:
            return t.members
        if self._members is None:
            if self.kind not in ("struct", "union", "func_proto"):
                raise TypeError(f"{self.name_str()} has no members")
            self._members = self.table.members_of(self)
        return self._members

    @property
    def enumerators(self) -> List[Tuple[str, int]]:
        t = self.resolve()
        if t is not self:
            return t.enumerators
        if self._enumerators is None:
            if self.kind not in ("enum", "enum64"):
                raise TypeError(f"{self.name_str()} is not an enum")
            self._enumerators = self.table.enumerators_of(self)
        return self._enumerators

    def member_index(self) -> Dict[str, Tuple[int, int, "Type"]]:
        """name -> (bit offset, bit size, type), anonymous members flattened."""
        t = self.resolve()
        if t is not self:
            return t.member_index()
        if self._index is None:
            idx: Dict[str, Tuple[int, int, Type]] = {}

            def walk(tp: Type, base: int, depth: int) -> None:
                if depth > 32:
                    raise KvmFormatError(_errno.EINVAL, f"BTF: anonymous members nest too deep in {self.name_str()}")
                for m in tp.members:
                    if m.name is None:
                        walk(m.type.resolve(), base + m.bit_offset, depth + 1)
                    elif m.name not in idx:
                        idx[m.name] = (base + m.bit_offset, m.bit_size, m.type)
            walk(self, 0, 0)
            self._index = idx
        return self._index

    def member(self, name: str) -> Tuple[int, int, "Type"]:
        """(bit offset, bit size, type) of one member, anonymous members searched."""
        try:
            return self.member_index()[name]
        except KeyError:
            raise LookupError(f"{self.name_str()} has no member {name!r}") from None

    def has_member(self, name: str) -> bool:
        try:
            return name in self.member_index()
        except TypeError:
            return False

    # ---- predicates ----

    @property
    def is_signed(self) -> bool:
        t = self.resolve()
        return t.kind == "int" and bool(t.encoding & 1) or (
            t.kind in ("enum", "enum64") and bool(t.kflag))

    @property
    def is_char(self) -> bool:
        t = self.resolve()
        return t.kind == "int" and t.size == 1 and (bool(t.encoding & 2) or t.name in (
            "char", "unsigned char", "signed char"))

    @property
    def is_bool(self) -> bool:
        t = self.resolve()
        return t.kind == "int" and bool(t.encoding & 4)

    # ---- names ----

    def name_str(self, inner: str = "") -> str:
        """The C spelling: 'struct task_struct *', 'char [16]', ...; inner is
        the declarator (a variable name, '*', ...) to spell it around."""
        k = self.kind
        if k == "ptr":
            t = self.target
            if t is not None and t.resolve_shallow_kind() in ("array", "func_proto"):
                return t.name_str(f"(*{inner})")
            return t.name_str("*" + inner) if t is not None else "void *" + inner
        if k == "array":
            t = self.target
            return t.name_str(f"{inner}[{self.nelems}]")  # type: ignore[union-attr]
        if k == "func_proto":
            params = ", ".join(m.type.name_str() for m in self.members)
            if self.members and self.members[-1].type.kind == "void":
                params = params.rsplit(", ", 1)[0] + ", ..." if len(self.members) > 1 else "..."
            return self.target.name_str(f"{inner}({params or 'void'})")  # type: ignore[union-attr]
        if k in _CV:
            t = self.target
            word = "" if k == "type_tag" else k
            if t is not None and t.kind == "ptr":
                return t.name_str(f"{word} {inner}".strip() if word else inner)
            base = (f"{word} " if word else "") + (t.name_str() if t is not None else "void")
        elif k in ("struct", "union", "enum"):
            base = f"{k} {self.name}" if self.name else f"{k} {{...}}"
        elif k == "enum64":
            base = f"enum {self.name}" if self.name else "enum {...}"
        elif k == "fwd":
            base = f"{'union' if self.kflag else 'struct'} {self.name}"
        elif k == "void":
            base = "void"
        elif k == "func":
            return f"{self.name}"
        elif k == "var":
            return self.target.name_str(self.name or "")  # type: ignore[union-attr]
        else:
            base = self.name or k
        if not inner:
            return base
        return f"{base} {inner}"

    def resolve_shallow_kind(self) -> str:
        """The kind under const/volatile (typedefs kept)."""
        return self.unqualified().kind

    def __str__(self) -> str:
        return self.name_str()

    def __repr__(self) -> str:
        return f"Type({self.name_str()!r}, kind={self.kind!r}, size={self.size})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Type):
            return NotImplemented
        if self.id is not None and other.id is not None:
            return self.id == other.id and self.table is other.table
        return (self.kind == other.kind and self.name == other.name and self.nelems == other.nelems
                and self.target == other.target if self.kind in ("ptr", "array") else
                self is other)

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.id))


class TypeTable:
    """The types of one open kernel, loaded from its BTF on the first question."""

    def __init__(self, kvm: TypesMixin) -> None:
        self._kvm = kvm
        self._lock = threading.Lock()
        self._types: Dict[int, Type] = {}
        self._by_name: Dict[Tuple[str, int], int] = {}
        self._parsed: Dict[str, Type] = {}
        self._count: Optional[int] = None
        self.word = 8 if kvm._fact("word_size", 64) == 64 else 4
        self._ct = ffi.new("struct pykvm_btf_type *")
        self._cm = ffi.new("struct pykvm_btf_member *")

    # ---- the C calls ----

    def _kd(self) -> Any:
        return self._kvm._handle()

    def _fail(self) -> KvmError:
        return self._kvm._btf_error()

    def ensure(self) -> int:
        """Load the BTF (once); the number of types, id 0 (void) included."""
        if self._count is None:
            n = ffi.new("unsigned *")
            with self._lock:
                if lib.pykvm_btf_count(self._kd(), n) != 0:
                    raise self._fail()
                self._count = n[0]
        return self._count

    def __len__(self) -> int:
        return self.ensure()

    def by_id(self, id: int) -> Type:
        t = self._types.get(id)
        if t is not None:
            return t
        if id == 0:
            t = Type(self, 0, "void", None, None)
            self._types[0] = t
            return t
        self.ensure()
        with self._lock:
            ct = self._ct
            if lib.pykvm_btf_type(self._kd(), id, ct) != 0:
                raise self._fail()
            kind = KINDS.get(ct.kind)
            if kind is None:
                raise KvmFormatError(_errno.EINVAL, f"BTF type {id} has unknown kind {ct.kind}")
            name = ffi.string(ct.name).decode("utf-8", "replace") or None
            size: Optional[int] = None
            if kind in ("int", "struct", "union", "enum", "enum64", "float", "datasec"):
                size = ct.size
            elif kind == "ptr":
                size = self.word
            t = Type(self, id, kind, name, size, target_id=ct.type, vlen=ct.vlen,
                     kflag=ct.kflag, nelems=ct.nelems, encoding=ct.encoding, bits=ct.bits,
                     int_offset=ct.bit_offset)
        self._types[id] = t
        return t

    def module_of(self, id: int) -> Optional[str]:
        with self._lock:
            name = lib.pykvm_btf_module(self._kd(), id)
            if name == ffi.NULL:
                raise self._fail()
            return ffi.string(name).decode("utf-8", "replace") or None

    @property
    def skipped_modules(self) -> Dict[str, str]:
        """Modules whose BTF was left out (it did not read or parse), with
        why: their types are unknown.  Raises KvmError as the other type
        questions do (no BTF at all, say)."""
        with self._lock:
            text = lib.pykvm_btf_skipped(self._kd())
            if text == ffi.NULL:
                raise self._fail()
            out: Dict[str, str] = {}
            for line in ffi.string(text).decode("utf-8", "replace").splitlines():
                name, _, why = line.partition(": ")
                out.setdefault(name, why)
            return out

    def _missing(self, what: str) -> LookupError:
        """No such type: said so, with the modules whose types are unknown."""
        skipped = self.skipped_modules
        note = ""
        if skipped:
            note = ("; the BTF of " + ", ".join(f"module {n} ({why})" for n, why in skipped.items())
                    + " was left out, so its types are unknown")
        return LookupError(f"no type {what!r} in the kernel's BTF{note}")

    def members_of(self, t: Type) -> List[Member]:
        out: List[Member] = []
        raw = []
        with self._lock:
            cm = self._cm
            kd = self._kd()
            for i in range(t.vlen):
                if lib.pykvm_btf_member(kd, t.id, i, cm) != 0:  # type: ignore[arg-type]  # a BTF type: an id
                    raise self._fail()
                raw.append((ffi.string(cm.name).decode("utf-8", "replace") or None, cm.type,
                            cm.bit_offset, cm.bit_size))
        for name, tid, bo, bs in raw:
            out.append(Member(name, self.by_id(tid), bo, bs))
        return out

    def enumerators_of(self, t: Type) -> List[Tuple[str, int]]:
        out: List[Tuple[str, int]] = []
        with self._lock:
            cm = self._cm
            kd = self._kd()
            for i in range(t.vlen):
                if lib.pykvm_btf_member(kd, t.id, i, cm) != 0:  # type: ignore[arg-type]  # a BTF type: an id
                    raise self._fail()
                v = cm.value
                if t.kind == "enum64" and not t.kflag and v < 0:
                    v += 1 << 64
                out.append((ffi.string(cm.name).decode("utf-8", "replace"), v))
        return out

    def find(self, name: str, kind: Optional[str] = None) -> Optional[Type]:
        """The type named name of that kind (None: any), or None."""
        k = -1 if kind is None else KIND_IDS[kind]
        key = (name, k)
        tid = self._by_name.get(key)
        if tid is None:
            self.ensure()
            with self._lock:
                tid = lib.pykvm_btf_find(self._kd(), name.encode(), k)
            if tid < 0:
                raise self._fail()
            self._by_name[key] = tid
        return self.by_id(tid) if tid else None

    def find_var(self, name: str) -> Optional[Type]:
        """The declared type of a variable BTF describes (per-CPU ones)."""
        v = self.find(name, "var")
        return v.target if v is not None else None

    # ---- synthetic types ----

    def pointer_to(self, t: Type) -> Type:
        return Type(self, None, "ptr", None, self.word, target=t)

    def array_of(self, t: Type, n: int) -> Type:
        es = t.size
        return Type(self, None, "array", None, None if es is None else es * n, target=t, nelems=n)

    # ---- names ----

    def lookup(self, spec: Union[str, Type]) -> Type:
        """A Type from a Type or a C type name: 'struct task_struct',
        'unsigned long', 'u64', 'struct list_head *', 'char [16]'."""
        if isinstance(spec, Type):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"a type is a Type or a name, not {type(spec).__name__}")
        t = self._parsed.get(spec)
        if t is None:
            t = self._parse(spec)
            self._parsed[spec] = t
        return t

    _TOKEN = re.compile(r"\s*(\*|\[\s*\d*\s*\]|[A-Za-z_][A-Za-z0-9_]*)")

    def _parse(self, spec: str) -> Type:
        s = spec.strip()
        words: List[str] = []
        suffix: List[str] = []
        pos = 0
        while pos < len(s):
            m = self._TOKEN.match(s, pos)
            if m is None:
                if s[pos:].strip() == "":
                    break
                raise LookupError(f"cannot parse the type {spec!r} at {s[pos:]!r}")
            tok = m.group(1)
            if tok == "*" or tok.startswith("["):
                suffix.append(tok)
            elif suffix:
                raise LookupError(f"cannot parse the type {spec!r}: {tok!r} after a declarator")
            else:
                words.append(tok)
            pos = m.end()
        words = [w for w in words if w not in ("const", "volatile", "restrict")]
        if not words:
            raise LookupError(f"no type name in {spec!r}")
        base: Optional[Type]
        if words[0] in ("struct", "union", "enum") and len(words) == 2:
            kind = words[0]
            base = self.find(words[1], kind)
            if base is None and kind == "enum":
                base = self.find(words[1], "enum64")
            if base is None:
                base = self.find(words[1], "fwd")
        elif words == ["void"]:
            base = self.by_id(0)
        else:
            name = " ".join(words)
            name = _INT_ALIASES.get(name, name)
            base = self.find(name, "int") or self.find(name, "typedef") or self.find(name, "float")
        if base is None:
            raise self._missing(" ".join(words))
        t = base
        # Declarators: '*' binds before arrays in 'T *[4]'; 'T [2][3]' is an
        # array of 2 arrays of 3.
        arrays = [x for x in suffix if x.startswith("[")]
        stars = [x for x in suffix if x == "*"]
        for _ in stars:
            t = t.pointer()
        for a in reversed(arrays):
            inner = a.strip("[] \t")
            t = self.array_of(t, int(inner) if inner else 0)
        return t

    def unsupported(self, why: str) -> UnsupportedError:
        return UnsupportedError(_errno.ENOTSUP, why, None, self._kvm.prefix)
