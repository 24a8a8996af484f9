"""Objects: a typed value at a kernel address."""

from __future__ import annotations

import errno as _errno
import functools
import struct
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, SupportsIndex, Tuple, Union, overload

from .._fast import MemberTable as _MemberTable, Value as _Value
from ..errors import KvmFormatError
from .helpers import _split_path
from .typesys import Type

if TYPE_CHECKING:
    from .helpers import TypesMixin

_MAX_VALUE_BYTES = 1 << 24  # .value() of a bigger object is refused
_MAX_STRING = 1 << 16


def _int_of(data: bytes, little: bool, signed: bool) -> int:
    return int.from_bytes(data, "little" if little else "big", signed=signed)


class Object(_Value):
    """A value of a kernel type at an address: ``Object(kvm, address, type,
    bits=None)``, bits being (bit offset from address, bit size) for a
    bitfield.

    Members read as attributes (``task.comm``, ``task.tasks.next``; through a
    pointer too, as C's ``->``) or items (``task["type"]`` for a member whose
    name is also a method here); array and pointer elements as ``obj[i]``.
    ``int(obj)`` and ``.value()`` read it, ``.string()`` reads a char array or
    ``char *``, ``.deref()`` follows a pointer.

    The C base (pykvm._fast.Value) holds the fields and does the common
    cases, a struct member by attribute and an integer's value, from the
    type's member table (_member_table); what it does not know it asks
    _getattr_slow and _int_slow here.
    """

    __slots__ = ()

    # ---- members and elements ----

    def member(self, path: str) -> "Object":
        """A member by name or path ('se.vruntime', 'pids[0].pid')."""
        obj = self
        for part in _split_path(path):
            if isinstance(part, int):
                obj = obj[part]
            else:
                obj = obj._member(part)
        return obj

    def member_reader(self, path: str) -> Callable[[], int]:
        """A function of no arguments reading the integer member path of
        this object (looked up once; each call is one read in C)."""
        off, size, signed, bo, bs = self._kvm._member_int_layout(self.type, path)
        args = (off, size, signed, bo, bs) if bs else (off, size, signed)  # fewer to parse
        return functools.partial(self._kvm.read_member, self.address, *args)

    def _member(self, name: str) -> "Object":
        t = self.type
        if t._cmembers is None:
            _member_table(t)
        idx = t._index  # the resolved struct's own index, the common case
        if idx is not None and t._resolved is t:
            hit = idx.get(name)
            if hit is not None and not hit[1]:
                return Object(self._kvm, self.address + hit[0] // 8, hit[2])
        t = t.resolve()
        addr = self.address
        if t.kind == "ptr":
            tt = t.target.resolve()  # type: ignore[union-attr]
            if tt.kind in ("struct", "union"):
                addr = self._kvm.read_pointer(addr)
                if addr == 0:
                    from ..errors import FaultError
                    raise FaultError(_errno.EFAULT, f"NULL pointer {t.name_str()} dereferenced for .{name}",
                                     None, None, 0)
                t = tt
        if t.kind not in ("struct", "union"):
            raise TypeError(f"{self.type.name_str()} has no members (asked for {name!r})")
        try:
            bit, size, mt = t.member_index()[name]
        except KeyError:
            raise AttributeError(f"{t.name_str()} has no member {name!r}") from None
        if size:
            return Object(self._kvm, addr + bit // 8, mt, (bit % 8, size))
        return Object(self._kvm, addr + bit // 8, mt)

    def _getattr_slow(self, name: str) -> "Object":
        """obj.name when the C base's member table has no answer.  Python's
        own protocol names (__len__, __array__ ...) are never members; a
        kernel member such as task_struct's __state is."""
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._member(name)

    def __getitem__(self, key: Union[str, SupportsIndex]) -> "Object":
        if isinstance(key, str):
            return self.member(key)
        i = key.__index__()
        t = self.type.resolve()
        if t.kind == "array":
            et = t.target
            if t.nelems and not -t.nelems <= i < t.nelems and t.nelems > 1:
                raise IndexError(f"index {i} out of range for {t.name_str()}")
            if i < 0 and t.nelems:
                i += t.nelems
            return Object(self._kvm, self.address + i * (et.size or 0), et)  # type: ignore[union-attr,arg-type]
        if t.kind == "ptr":
            et = t.target
            base = self._kvm.read_pointer(self.address)
            return Object(self._kvm, base + i * (et.size or 1), et)  # type: ignore[union-attr,arg-type]
        raise TypeError(f"{self.type.name_str()} is not an array or pointer")

    def __len__(self) -> int:
        t = self.type.resolve()
        if t.kind != "array":
            raise TypeError(f"{self.type.name_str()} has no length")
        return t.nelems

    def __iter__(self) -> Iterator["Object"]:
        t = self.type.resolve()
        if t.kind != "array":
            raise TypeError(f"{self.type.name_str()} is not an array")
        for i in range(t.nelems):
            yield self[i]

    def __dir__(self) -> List[str]:
        names = list(object.__dir__(self))
        try:
            names += list(self.type.resolve().member_index())
        except (TypeError, LookupError):
            pass
        return names

    # ---- reading ----

    def _raw(self, size: int) -> bytes:
        return self._kvm.read(self.address, size)

    def _reader_code(self) -> int:
        """The C base's read code for int(self) (see _read_code)."""
        return _read_code(self.type.resolve())

    def _int_slow(self) -> int:
        """int(self) where the C base does not read it itself: bitfields,
        odd sizes, addresses outside 0 .. 2**64 - 1, errors."""
        if self._bits is None:
            rd = _reader_name(self.type.resolve())
            if rd:
                return getattr(self._kvm, rd)(self.address)  # type: ignore[no-any-return]
        t = self.type.resolve()
        k = t.kind
        kvm = self._kvm
        if k == "ptr":
            return kvm.read_pointer(self.address)
        if k in ("int", "enum", "enum64"):
            bits = self._bits
            size = t.size
            signed = t.is_signed if k == "int" else bool(t.kflag)
            little = kvm.byteorder == "little"
            if bits is None:
                # an int's size is known
                return _int_of(kvm.read(self.address, size), little, signed)  # type: ignore[arg-type]
            boff, bsize = bits
            nbytes = (boff + bsize + 7) // 8
            raw = _int_of(kvm.read(self.address, nbytes), little, False)
            if little:
                v = (raw >> boff) & ((1 << bsize) - 1)
            else:
                v = (raw >> (nbytes * 8 - boff - bsize)) & ((1 << bsize) - 1)
            if signed and v >> (bsize - 1):
                v -= 1 << bsize
            return v
        if k == "array" or k in ("struct", "union"):
            raise TypeError(f"{self.type.name_str()} is not an integer (use .value())")
        raise TypeError(f"{self.type.name_str()} has no integer value")

    def __bool__(self) -> bool:
        k = self.type.resolve().kind
        if k in ("int", "enum", "enum64", "ptr"):
            return int(self) != 0
        return True

    def __float__(self) -> float:
        t = self.type.resolve()
        if t.kind == "float":
            fmt = {4: "f", 8: "d"}.get(t.size)  # type: ignore[arg-type]
            if fmt is None:
                raise TypeError(f"{t.name_str()}: no Python float of {t.size} bytes")
            f: float = struct.unpack(("<" if self._kvm.byteorder == "little" else ">") + fmt,
                                     self._raw(t.size))[0]  # type: ignore[arg-type]
            return f
        return float(int(self))

    def value(self) -> Any:
        """The value as Python: int, bool, enumerator name (int when none
        matches), float, bytes for char arrays, a list for other arrays, a
        dict for structs and unions."""
        return self._value(0)

    def _value(self, depth: int) -> Any:
        t = self.type.resolve()
        k = t.kind
        if k == "int":
            v = int(self)
            return bool(v) if t.is_bool else v
        if k in ("enum", "enum64"):
            v = int(self)
            for name, val in t.enumerators:
                if val == v:
                    return name
            return v
        if k == "ptr":
            return int(self)
        if k == "float":
            return float(self)
        if depth > 64:
            raise KvmFormatError(_errno.EINVAL, f"{t.name_str()}: types nest too deep")
        if k == "array":
            et = t.target.resolve()  # type: ignore[union-attr]
            if (t.size or 0) > _MAX_VALUE_BYTES:
                raise ValueError(f"{t.name_str()} is {t.size} bytes: read it element by element")
            if et.is_char:
                return self._raw(t.size)  # type: ignore[arg-type]
            return [self[i]._value(depth + 1) for i in range(t.nelems)]
        if k in ("struct", "union"):
            if (t.size or 0) > _MAX_VALUE_BYTES:
                raise ValueError(f"{t.name_str()} is {t.size} bytes: read its members")
            out: Dict[str, Any] = {}
            for name in t.member_index():
                out[name] = self._member(name)._value(depth + 1)
            return out
        raise TypeError(f"{self.type.name_str()} has no value")

    @overload
    def string(self, maxlen: int = ..., encoding: str = ...) -> str: ...
    @overload
    def string(self, maxlen: int, encoding: None) -> bytes: ...
    @overload
    def string(self, maxlen: int = ..., *, encoding: None) -> bytes: ...

    def string(self, maxlen: int = _MAX_STRING, encoding: Optional[str] = "utf-8") -> Union[str, bytes]:
        """A char array up to its first NUL, or the string a char * points to."""
        t = self.type.resolve()
        if t.kind == "array" and t.target.resolve().is_char:  # type: ignore[union-attr]
            data = self._raw(min(t.size or 0, maxlen))
            nul = data.find(b"\0")
            if nul >= 0:
                data = data[:nul]
            return data.decode(encoding, "replace") if encoding else data
        if t.kind == "ptr" and t.target.resolve().is_char:  # type: ignore[union-attr]
            p = int(self)
            if p == 0:
                from ..errors import FaultError
                raise FaultError(_errno.EFAULT, f"NULL {t.name_str()} read as a string", None, None, 0)
            return self._kvm.read_cstring(p, maxlen, encoding=encoding)
        raise TypeError(f"{self.type.name_str()} is not a char array or char *")

    def deref(self) -> "Object":
        """What a pointer points to."""
        t = self.type.resolve()
        if t.kind != "ptr":
            raise TypeError(f"{self.type.name_str()} is not a pointer")
        return Object(self._kvm, int(self), t.target)  # type: ignore[arg-type]

    def address_of(self) -> int:
        return self.address

    def cast(self, type: Union[str, Type]) -> "Object":
        """The same address seen as another type."""
        return Object(self._kvm, self.address, self._kvm.type(type))

    def read(self) -> bytes:
        """The object's bytes."""
        size = self.type.size
        if size is None:
            raise TypeError(f"{self.type.name_str()} has no size")
        return self._raw(size)

    # ---- display ----

    def format(self) -> str:
        """A short rendering: scalars as values, pointers in hex with the
        symbol they point to (function pointers especially)."""
        t = self.type.resolve()
        if t.kind == "ptr":
            v = int(self)
            sym = self._kvm._symbolize_str(v) if v else None
            return f"0x{v:x}" + (f" <{sym}>" if sym else "")
        if t.kind in ("int", "enum", "enum64", "float"):
            return repr(self.value())
        if t.kind == "array" and t.target.resolve().is_char:  # type: ignore[union-attr]
            return repr(self.string())
        return f"({self.type.name_str()})0x{self.address:x}"

    def __repr__(self) -> str:
        try:
            shown = self.format()
        except Exception as e:  # unreadable memory still shows where it is
            shown = f"<{type(e).__name__}: {e}>"
        return f"Object({self.type.name_str()!r}, 0x{self.address:x}, {shown})"


def _read_code(t: Type) -> int:
    """pykvm._fast.Value's read code for a resolved type: size | signed << 4
    for a 1, 2, 4 or 8-byte integer or enum, 0x20 for a pointer, else 0."""
    if t.kind == "ptr":
        return 0x20
    if t.kind in ("int", "enum", "enum64") and t.size in (1, 2, 4, 8):
        signed = t.is_signed if t.kind == "int" else bool(t.kflag)
        return t.size | (0x10 if signed else 0)
    return 0


# Names of Object's own attributes: never members in the table, so that
# obj.type, obj.address, obj.value ... keep their meaning (task["type"]
# reads such a member).
_OWN_NAMES = frozenset(dir(Object))


def _member_table(t: Type) -> None:
    """Type._cmembers for t, if it is (a typedef of) a struct or union: its
    byte-aligned, non-bitfield members (anonymous members flattened) as
    name -> (byte offset, type, read code), in the C base's MemberTable."""
    r = t.resolve()
    if r.kind not in ("struct", "union"):
        return
    table = r._cmembers
    if table is None:
        table = _MemberTable({name: (bit // 8, mt, _read_code(mt.resolve()))
                              for name, (bit, size, mt) in r.member_index().items()
                              if not size and bit % 8 == 0 and name not in _OWN_NAMES})
        r._cmembers = table
    t._cmembers = table


def _reader_name(t: Type) -> str:
    """The Kvm read method for a resolved int/enum/pointer type ("" if none fits)."""
    if t.kind == "ptr":
        return "read_pointer"
    if t.kind in ("int", "enum", "enum64") and t.size in (1, 2, 4, 8):
        signed = t.is_signed if t.kind == "int" else bool(t.kflag)
        return f"read_{'s' if signed else 'u'}{t.size * 8}"
    return ""
