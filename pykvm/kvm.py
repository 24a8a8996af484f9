"""The Kvm handle: open a kernel (or process) image and read it."""

from __future__ import annotations

import errno as _errno
import os
import struct
import sys
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Literal, Mapping, Optional, Sequence,
                    SupportsIndex, Tuple, TypedDict, Union, cast)

from ._fast import Reader as _Reader, setup as _fast_setup
from ._kvm import ffi, lib
from .errors import (BadAddressError, ClosedError, KvmError, SymbolNotFoundError, UnsupportedError,
                     error_for)
from .btf.helpers import TypesMixin

if TYPE_CHECKING:
    from .linux.cpus import CpuRegs
    from .linux.layout import Layout
    from .linux.modsyms import ModuleSymbols
    from .linux.orc import OrcTable, Unwinder
    from .linux.stack import Symbolizer
    from .linux.vmcoreinfo import VmcoreInfo

Buffer = Union[bytearray, memoryview]
#: A file name: str, bytes or a path object.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: A core file, or the files of a dump written in parts (makedumpfile --split).
CoreArg = Union[PathArg, Sequence[PathArg]]


class Segment(TypedDict):
    """One range of the core: ``space`` "virtual" or "physical", ``start`` and
    ``size`` in that space, ``filesz`` bytes of it stored at file ``offset``."""
    space: str
    start: int
    size: int
    filesz: int
    offset: int


class Part(TypedDict):
    """One file of a dump written in parts and the page frames it holds."""
    path: str
    start_pfn: int
    end_pfn: int


class KvmInfo(TypedDict, total=False):
    """:attr:`Kvm.info`: what the library knows about the open core.  Which
    keys are present depends on the format; flags (kernel, live, writable,
    mapped, translation, vmcoreinfo) are 0 or 1."""
    format: str  # "elf", "kdump", "lime", "avml", "raw", ...
    corefile: str
    namelist: str
    word_size: int  # 32 or 64
    byte_order: str  # "little" or "big"
    machine: int  # ELF e_machine (62: x86-64)
    kernel: int
    live: int
    writable: int
    mapped: int
    map_budget: int
    page_size: int
    symbols: int  # how many the namelist holds
    arch: str
    translation: int
    paging_levels: int
    kerndisp: int
    symbol_displacement: int
    phys_base: int
    header_release: str
    crash_time: int
    compression: str
    cache_pages: int
    truncated: str
    kdump_version: int
    pages_total: int
    pages_dumped: int
    dump_level: int
    orientation: str
    vmcoreinfo_scan_bytes: int
    vmcoreinfo_scan_ns: int
    vmcoreinfo: int
    osrelease: str
    build_id: str
    kerneloffset: int
    vmcoreinfo_crashtime: int
    virtual_segments: int
    physical_segments: int
    segments: List[Segment]
    parts: List[Part]

# kvm_open_ex options (csrc/kvm_ext.h).
OPT_FOREIGN = 0x1
OPT_EXCLUDED_ZERO = 0x2
OPT_PREAD = 0x4

ERRBUF_SIZE = 2048

_U64_MAX = (1 << 64) - 1

# The hot reads (Kvm.read, readinto, read_u*, read_member, batches) are
# pykvm._fast's, in C: it calls these pykvm_api.h functions of the cffi
# module, so both reach the same handle of the same library.
_fast_setup(*(int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
              for name in ("pykvm_read", "pykvm_pread", "pykvm_read_many", "pykvm_read_scatter",
                           "pykvm_errno", "pykvm_geterr", "pykvm_erraddr")))

# Over the shim, the C library prints "<errstr>: <message>" itself when given
# the errstr.  Over a native libkvm the glue never prints (illumos's open
# messages are captured from stderr and handed back), so this layer does.
_C_PRINTS = ffi.string(lib.pykvm_backend()) == b"shim"
_HAS_INFO = bool(lib.pykvm_has(b"info"))
_HAS_PREAD = bool(lib.pykvm_has(b"pread"))
_HAS_SYMBOLS = bool(lib.pykvm_has(b"symbols"))

# struct nlist n_type values.
N_UNDF, N_EXT, N_ABS, N_TEXT, N_DATA, N_BSS = 0x0, 0x1, 0x2, 0x4, 0x6, 0x8


class Symbol(int):
    """One namelist symbol.  It is an int, its runtime address, so it goes
    wherever an address does: ``kd.read(kd.symbols["linux_banner"], 64)``,
    ``sym + 8``, ``f"{sym:#x}"``; equality and hashing are the address's.

    Attributes: ``name``, ``value`` (the address as a plain int), ``type``
    (``N_*`` | ``N_EXT``, as in struct nlist), ``letter`` (nm's type letter)
    and ``module`` (the kernel module defining it, None for the kernel's own).
    """

    name: str
    type: int
    letter: str
    module: Optional[str]

    def __new__(cls, name: str, value: int, type: int, letter: str,
                module: Optional[str] = None) -> "Symbol":
        self = super().__new__(cls, value)
        self.__dict__.update(name=name, type=type, letter=letter, module=module)
        return self

    @property
    def value(self) -> int:
        """The address, as a plain int."""
        return int(self)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Symbol is read-only: cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"Symbol is read-only: cannot delete {key!r}")

    def __repr__(self) -> str:
        return (f"Symbol(name={self.name!r}, value={int(self):#x}, type={self.type:#x}, "
                f"letter={self.letter!r}, module={self.module!r})")

    __str__ = __repr__

    def __reduce__(self) -> Tuple[Callable[..., "Symbol"], Tuple[str, int, int, str, Optional[str]]]:
        return (Symbol, (self.name, int(self), self.type, self.letter, self.module))


def _u64s(values: Any) -> Any:
    """uint64_t[] for C: a buffer of 8-byte items as it is, else converted."""
    if not isinstance(values, (list, tuple, range)):
        try:
            view = memoryview(values)
        except TypeError:
            view = None
        if view is not None and view.itemsize == 8 and view.format in ("Q", "L", "<Q", "=Q"):
            return ffi.from_buffer("uint64_t[]", values)
    return ffi.new("uint64_t[]", list(values))


def _path(p: Optional[PathArg]) -> Any:
    return ffi.NULL if p is None else os.fsencode(p)


class Kvm(_Reader, TypesMixin):
    """An open libkvm handle.  Use :func:`pykvm.open` to make one (the
    constructor takes the same arguments and raises the same exceptions).

    The reads (read, readinto, read_u8 .. read_s64, read_pointer,
    read_member, read_cstring, read_many, read_scatter) are methods of the C
    base class, pykvm._fast.Reader: one call from Python into the library.
    """

    if TYPE_CHECKING:
        # What pykvm.linux keeps on the handle, set on first use (absent until then).
        _linux_cpu_regs: List[CpuRegs]
        _linux_layout: Layout
        _linux_modsyms: Optional[ModuleSymbols]
        _linux_kernel_orc: OrcTable
        _linux_unwinder: Unwinder
        _linux_symbolizer: Symbolizer
        _linux_vmcoreinfo: VmcoreInfo

    def __init__(self, namelist: Optional[PathArg] = None, corefile: Optional[CoreArg] = None,
                 swapfile: Optional[PathArg] = None, flag: int = os.O_RDONLY, errstr: Optional[str] = None,
                 print_errors: bool = False, *, foreign: bool = False,
                 excluded_zero: bool = False, cache_pages: int = 0,
                 format: Optional[str] = None, map_budget: Optional[int] = None,
                 pread: bool = False, btf: Optional[PathArg] = None) -> None:
        self._kd = ffi.NULL
        self.prefix = errstr
        self.print_errors = print_errors
        self.flag = flag
        opts = ((OPT_FOREIGN if foreign else 0) | (OPT_EXCLUDED_ZERO if excluded_zero else 0)
                | (OPT_PREAD if pread else 0))
        # A sequence of paths: the files of a dump written in parts (makedumpfile --split).
        parts = None
        if corefile is not None and not isinstance(corefile, (str, bytes, os.PathLike)):
            parts = [os.fsencode(p) for p in corefile]
            if not parts:
                raise ValueError("corefile: an empty sequence of parts")
            self._require("options", "opening a dump in parts (corefile as a sequence)")
            corefile = None
        if opts or cache_pages or format is not None or map_budget is not None or btf is not None:
            self._require("options", "open options")
        if cache_pages < 0:
            raise ValueError("cache_pages must be >= 0")
        if map_budget is not None and not 0 < map_budget:
            raise ValueError("map_budget must be > 0 bytes (None: the default; "
                             "pread=True maps nothing)")
        # struct pykvm_open_opts; keep the C strings alive through the call.
        c_opts = ffi.new("struct pykvm_open_opts *")
        c_opts.flags = opts
        c_opts.cache_pages = cache_pages
        if map_budget is not None:
            c_opts.map_budget = min(map_budget, 2 ** (8 * ffi.sizeof("size_t")) - 1)
        keep = []
        if format is not None:
            keep.append(ffi.new("char[]", os.fsencode(format)))
            c_opts.format = keep[-1]
        if btf is not None:
            keep.append(ffi.new("char[]", os.fsencode(btf)))
            c_opts.btf = keep[-1]
        if parts is not None:
            keep += [ffi.new("char[]", p) for p in parts]
            keep.append(ffi.new("const char *[]", keep[-len(parts):]))
            c_opts.parts = keep[-1]
            c_opts.nparts = len(parts)
        errbuf = ffi.new("char[]", ERRBUF_SIZE)
        c_errstr = os.fsencode(errstr) if (errstr is not None and print_errors) else ffi.NULL
        kd = lib.pykvm_open(_path(namelist), _path(corefile), _path(swapfile), flag,
                            c_errstr, errbuf, c_opts)
        del keep
        if kd == ffi.NULL:
            err = ffi.errno
            # One message, or (illumos: what kvm_open printed) one per line.
            lines = [m for m in ffi.string(errbuf).decode("utf-8", "replace").splitlines() if m]
            msg = lines[-1] if lines else os.strerror(err)
            if print_errors and errstr is not None and not _C_PRINTS:
                self._print_errors(errstr, lines or [msg])
            raise error_for(err, msg, self._guess_file(msg, namelist, corefile, swapfile,
                                                       *(parts or ())), errstr)
        self._kd = kd
        # What is known without kvm_info (a native libkvm has none).
        self._native_facts: Dict[str, object] = {
            "namelist": None if namelist is None else os.fsdecode(namelist),
            "corefile": os.fsdecode(parts[0]) if parts else
            None if corefile is None else os.fsdecode(corefile),
            "writable": flag == os.O_RDWR,
            "word_size": 8 * struct.calcsize("P"),  # both libkvms refuse another data model
            "byte_order": sys.byteorder,
        }
        self._info: Optional[KvmInfo] = None
        self._symbols: Optional[Symbols] = None
        word = self._fact("word_size")
        self._bind(int(ffi.cast("uintptr_t", kd)), self.byteorder != sys.byteorder,
                   4 if word == 32 else 8, bool(lib.pykvm_has(b"pread")))

    # ---- lifetime ----

    def close(self) -> None:
        """Close the handle; closing twice is harmless.  Raises nothing."""
        self._unbind()  # the C reads first: they hold the raw handle
        kd, self._kd = self._kd, ffi.NULL
        if kd != ffi.NULL:
            lib.pykvm_close(kd)

    def __enter__(self) -> "Kvm":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self) -> bool:
        """Whether close() was called (every read then raises ClosedError)."""
        return bool(self._kd == ffi.NULL)

    def _handle(self) -> Any:
        if self._kd == ffi.NULL:
            raise ClosedError(_errno.EBADF, "I/O operation on a closed kvm handle", None, self.prefix)
        return self._kd

    # ---- errors ----

    @staticmethod
    def _guess_file(msg: str, *paths: Optional[PathArg]) -> Optional[str]:
        for p in paths:
            if p is not None and os.fsdecode(p) in msg:
                return str(os.fsdecode(p))
        return None

    def _error(self, default_errno: int = _errno.EIO) -> KvmError:
        kd = self._kd
        return self._error_at(lib.pykvm_errno(kd), ffi.string(lib.pykvm_geterr(kd)),
                              lib.pykvm_erraddr(kd), default_errno)

    def _error_at(self, err: int, message: bytes, erraddr: int,
                  default_errno: int = _errno.EFAULT) -> KvmError:
        """The exception for a failure with this errno, C message and address
        (the fast path takes them from the handle the moment a read fails)."""
        err = err or default_errno
        msg = message.decode("utf-8", "replace") or os.strerror(err)
        addr = erraddr if err in (_errno.EFAULT, _errno.ENODATA) else None
        if self.print_errors and self.prefix is not None and not _C_PRINTS:
            self._print_errors(self.prefix, [msg])
        return error_for(err, msg, self.corefile, self.prefix, addr)

    @staticmethod
    def _print_errors(prefix: str, lines: List[str]) -> None:
        """What the C library prints with this errstr (when the glue could not)."""
        sys.stderr.write("".join(f"{prefix}: {line}\n" for line in lines))
        sys.stderr.flush()

    def _batch_error(self, err: int, addr: int, physical: bool) -> KvmError:
        """The exception of a batch read's first failure (errno err at addr)."""
        return error_for(err, f"{'physical' if physical else 'virtual'} address "
                         f"0x{addr:x}: {os.strerror(err)}", self.corefile, self.prefix, addr)

    def _bad_address(self, addr: int) -> KvmError:
        """An address that is no 64-bit address (negative, or 2**64 and above)."""
        return BadAddressError(_errno.EFAULT, f"address {addr:#x} is outside 0 .. 0x{_U64_MAX:x}",
                               self.corefile, self.prefix, int(addr))

    def _bad_range(self, addr: int, size: int) -> KvmError:
        """A range that runs past the top of the address space."""
        return BadAddressError(_errno.EFAULT, f"{size} bytes at 0x{addr:x} run past the top of "
                               f"the address space (0x{_U64_MAX:x})", self.corefile, self.prefix,
                               addr)

    def _addr(self, addr: SupportsIndex) -> int:
        """addr as a C address, or BadAddressError (for the calls not in _fast)."""
        a = addr.__index__()
        if not 0 <= a <= _U64_MAX:
            raise self._bad_address(a)
        return a

    def _fact(self, key: str, default: object = None) -> object:
        """kvm_info's fact, or over a native libkvm what the open arguments say."""
        if _HAS_INFO:
            return self.info.get(key, default)
        return self._native_facts.get(key, default)

    def _require(self, feature: str, what: str) -> None:
        if not lib.pykvm_has(feature.encode()):
            platform = ffi.string(lib.pykvm_platform()).decode()
            raise UnsupportedError(_errno.ENOTSUP,
                                   f"{what} is not available with the native libkvm of {platform}",
                                   None, self.prefix)

    # ---- reading and writing ----

    def write(self, addr: SupportsIndex, data: Any, physical: bool = False) -> int:
        """Write data (any bytes-like object) at addr; returns len(data).

        Raises ReadOnlyError (a handle opened O_RDONLY, or memory that cannot
        be written), FaultError (no memory at addr), BadAddressError (addr
        outside 0 .. 2**64 - 1, or a range past its top), UnsupportedError
        (physical=True with a native libkvm lacking kvm_pwrite), ClosedError."""
        kd = self._handle()
        addr = self._addr(addr)
        cbuf = ffi.from_buffer(data)
        n = len(cbuf)
        if n > 1 and addr + n - 1 > _U64_MAX:
            raise self._bad_range(addr, n)
        if physical:
            self._require("pwrite", "physical writes")
            r = lib.pykvm_pwrite(kd, addr, cbuf, n)
        else:
            r = lib.pykvm_write(kd, addr, cbuf, n)
        if r != n:
            raise self._error()
        return n

    def physaddr(self, addr: SupportsIndex) -> int:
        """The physical address behind a kernel virtual address.

        Raises FaultError (addr is not mapped), BadAddressError,
        UnsupportedError (a native libkvm without kvm_physaddr), ClosedError."""
        kd = self._handle()
        addr = self._addr(addr)
        self._require("physaddr", "kvm_physaddr")
        pa = lib.pykvm_physaddr(kd, addr)
        if pa == 0xFFFFFFFFFFFFFFFF:
            raise self._error(_errno.EFAULT)
        return int(pa)

    # ---- typed helpers ----

    @property
    def byteorder(self) -> str:
        """'little' or 'big': the core's byte order.  Raises ClosedError (shim, closed)."""
        return str(self._fact("byte_order", sys.byteorder))

    # ---- batches ----

    def try_read_many(self, addrs: Any, size: int, physical: bool = False,
                      out: Optional[Buffer] = None) -> Tuple[memoryview, Any]:
        """Like read_many, returning (buffer, results): results[i] is size or -errno;
        a failed address raises nothing.

        Raises ValueError (out too small), UnsupportedError (no batch reads in
        a native libkvm), ClosedError."""
        buf, results, _ = self._read_many(addrs, size, physical, out)
        return buf, results

    def _read_many(self, addrs: Any, size: int, physical: bool,
                   out: Optional[Buffer]) -> Tuple[memoryview, Any, int]:
        kd = self._handle()
        self._require("read_many", "batch reads")
        caddrs = _u64s(addrs)
        n = len(caddrs)
        if out is None:
            out = bytearray(n * size)
        cout = ffi.from_buffer(out, require_writable=True)
        if len(cout) < n * size:
            raise ValueError(f"out holds {len(cout)} bytes; {n * size} needed")
        results = ffi.new("int64_t[]", n)
        failed = lib.pykvm_read_many(kd, caddrs, n, size, cout, results, 1 if physical else 0)
        return memoryview(out)[:n * size], results, int(failed)

    def read_u64_array(self, addr: SupportsIndex, count: int, physical: bool = False) -> memoryview:
        """count 64-bit words at addr, as a memoryview of format 'Q' (native order).

        Raises what read raises (FaultError, PageExcludedError, BadAddressError, ClosedError)."""
        return self._read_array(addr, count, 8, "Q", physical)

    def read_u32_array(self, addr: SupportsIndex, count: int, physical: bool = False) -> memoryview:
        """count 32-bit words at addr, as a memoryview of format 'I' (native order).

        Raises what read raises (FaultError, PageExcludedError, BadAddressError, ClosedError)."""
        return self._read_array(addr, count, 4, "I", physical)

    def _read_array(self, addr: SupportsIndex, count: int, size: int, fmt: Literal["Q", "I"],
                    physical: bool) -> "memoryview[int]":
        buf = bytearray(count * size)
        self.readinto(addr, buf, physical)
        if self.byteorder != sys.byteorder:
            swapped = bytearray(buf)
            for i in range(0, len(buf), size):
                swapped[i:i + size] = buf[i:i + size][::-1]
            buf = swapped
        return memoryview(buf).cast(fmt)

    # ---- symbols ----

    def nlist(self, names: Iterable[str]) -> List[Optional[Tuple[int, int]]]:
        """(value, n_type) for each name, None where the namelist lacks it, as kvm_nlist.

        Raises KvmFileNotFoundError (no namelist: none given and none in the
        dump), ClosedError."""
        kd = self._handle()
        names = list(names)
        n = len(names)
        keep = [ffi.new("char[]", os.fsencode(s)) for s in names]
        cnames = ffi.new("const char *[]", keep)
        values = ffi.new("uint64_t[]", n)
        types = ffi.new("unsigned char[]", n)
        r = lib.pykvm_nlist(kd, cnames, n, values, types)
        if r < 0:
            raise self._error(_errno.EINVAL)
        out: List[Optional[Tuple[int, int]]] = []
        for i in range(n):
            if values[i] == 0 and types[i] == 0:
                out.append(None)
            else:
                out.append((int(values[i]), int(types[i])))
        return out

    def symbol(self, name: str) -> int:
        """The address of one symbol.

        Raises SymbolNotFoundError (a KeyError) when the namelist lacks it, and
        what nlist raises."""
        r = self.nlist([name])[0]
        if r is None:
            raise SymbolNotFoundError(_errno.ENOENT, f"{self.namelist or 'namelist'}: no symbol {name!r}",
                                      self.namelist, self.prefix)
        return r[0]

    @property
    def symbols(self) -> "Symbols":
        """A read-only mapping name -> :class:`Symbol` over the namelist.

        Looking up an absent name raises SymbolNotFoundError (a KeyError);
        iterating it (or len) raises UnsupportedError with a native libkvm."""
        if self._symbols is None:
            self._symbols = Symbols(self)
        return self._symbols

    def all_symbols(self) -> Iterator[Symbol]:
        """Every symbol in address order, duplicates included.

        Raises UnsupportedError (a native libkvm cannot list its symbols), ClosedError."""
        kd = self._handle()
        self._require("symbols", "symbol iteration")
        out = _SymbolOut()
        for i in range(lib.pykvm_symcount(kd)):
            if lib.pykvm_symbol(kd, i, out.name, out.value, out.type, out.letter, out.module) != 0:
                break
            yield out.symbol()

    def _symbol_at(self, i: int, name: Optional[str] = None) -> Symbol:
        """Entry i of the symbol table, in address order (a lookup by address
        bisects over these instead of loading every symbol); named name, the
        name asked for, when given."""
        out = _SymbolOut()
        if lib.pykvm_symbol(self._handle(), i, out.name, out.value, out.type, out.letter,
                            out.module) != 0:
            raise IndexError(f"no symbol table entry {i}")
        return out.symbol(name)

    def _symbol_keys(self) -> Callable[[int], Tuple[int, str]]:
        """A function i -> (value, letter) of entry i of the symbol table (address order),
        without making its Symbol: what a bisection by address compares.  Its
        out-parameters are its own, so a lock keeps two threads from sharing them."""
        import threading
        out = _SymbolOut()
        lock = threading.Lock()
        sym = lib.pykvm_symbol

        def key(i: int) -> Tuple[int, str]:
            kd = self._handle()
            with lock:
                if sym(kd, i, out.name, out.value, out.type, out.letter, out.module) != 0:
                    raise IndexError(f"no symbol table entry {i}")
                return out.value[0], out.letter[0].decode("latin-1")
        return key

    def _symbol_count(self) -> int:
        """How many symbols all_symbols() gives (index them with _symbol_at)."""
        kd = self._handle()
        self._require("symbols", "symbol iteration")
        return lib.pykvm_symcount(kd)

    @property
    def namelist(self) -> Optional[str]:
        """The namelist file given to open, or None.  Raises ClosedError (shim, closed)."""
        return cast(Optional[str], self._fact("namelist"))

    @property
    def corefile(self) -> Optional[str]:
        """The core file (the first part of a split dump), or None when not known.  Raises nothing."""
        if not _HAS_INFO:
            return cast(Optional[str], self._native_facts.get("corefile"))
        return self.info.get("corefile") if self._info is not None else None

    # ---- facts ----

    @property
    def info(self) -> KvmInfo:
        """What the library knows about the core (a :class:`KvmInfo`): format,
        word size, byte order, segments, VMCOREINFO facts...

        Raises UnsupportedError (a native libkvm has no kvm_info), ClosedError."""
        if self._info is None:
            self._require("info", "kvm_info (Kvm.info)")
            self._info = self._read_info()
        return self._info

    @property
    def vmcoreinfo(self) -> str:
        """The kernel's VMCOREINFO text ("" when the core has none).

        Raises UnsupportedError (a native libkvm), ClosedError."""
        self._require("vmcoreinfo", "the VMCOREINFO text (Kvm.vmcoreinfo)")
        kd = self._handle()
        need = lib.pykvm_vmcoreinfo(kd, ffi.NULL, 0)
        if need == 0:
            return ""
        buf = ffi.new("char[]", need)
        lib.pykvm_vmcoreinfo(kd, buf, need)
        return ffi.string(buf).decode("utf-8", "replace")

    def _read_info(self) -> KvmInfo:
        kd = self._handle()
        if not lib.pykvm_has(b"info"):
            return {}
        need = lib.pykvm_info(kd, ffi.NULL, 0)
        buf = ffi.new("char[]", need)
        lib.pykvm_info(kd, buf, need)
        info: Dict[str, Any] = {}
        segments: List[Segment] = []
        parts: List[Part] = []
        for line in ffi.string(buf).decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if key == "part":  # one file of a split dump: its pfn range
                start, end, path = value.split(" ", 2)
                parts.append({"path": path, "start_pfn": int(start, 16), "end_pfn": int(end, 16)})
                continue
            if key == "segment":
                space, start, size, filesz, off = value.split()
                segments.append({"space": space, "start": int(start, 16), "size": int(size, 16),
                                 "filesz": int(filesz, 16), "offset": int(off, 16)})
                continue
            # ASCII digits only: str.isdigit() takes '²', which int() refuses.
            digits = value[1:] if value.startswith("-") else value
            info[key] = int(value) if digits.isascii() and digits.isdigit() else value
        info["segments"] = segments
        if parts:
            info["parts"] = parts
        if "kerneloffset" in info:
            info["kerneloffset"] = int(str(info["kerneloffset"]), 16)
        return cast(KvmInfo, info)

    def cache_used(self) -> int:
        """Decompressed pages held in the page cache now (at most cache_pages).

        Raises UnsupportedError (a native libkvm), ClosedError."""
        self._require("cache", "the page cache")
        return int(lib.pykvm_cache_used(self._handle()))

    def kerndisp(self) -> int:
        """Kernel displacement (KASLR offset), as FreeBSD's kvm_kerndisp.

        Raises UnsupportedError (a native libkvm without kvm_kerndisp), ClosedError."""
        self._require("kerndisp", "kvm_kerndisp")
        return int(lib.pykvm_kerndisp(self._handle()))

    def geterr(self) -> str:
        """The last error message, as kvm_geterr.

        Raises UnsupportedError (a native libkvm without kvm_geterr), ClosedError."""
        kd = self._handle()
        self._require("geterr", "kvm_geterr")
        return ffi.string(lib.pykvm_geterr(kd)).decode("utf-8", "replace")

    def __repr__(self) -> str:
        if self.closed:
            return "<pykvm.Kvm closed>"
        fmt = self.info.get("format") if _HAS_INFO else "native"
        return f"<pykvm.Kvm {fmt} {self.corefile!r}>"


class Symbols(Mapping[str, Symbol]):
    """name -> Symbol; unknown names raise SymbolNotFoundError (a KeyError)."""

    def __init__(self, kvm: Kvm):
        self._kvm = kvm
        self._names: Optional[List[str]] = None

    def __getitem__(self, name: str) -> Symbol:
        kvm = self._kvm
        if _HAS_SYMBOLS:
            # The table entry nlist finds: its letter and module as all_symbols() gives them.
            i = lib.pykvm_symbol_index(kvm._handle(), os.fsencode(name))
            if i >= 0:
                return kvm._symbol_at(i, name)
        found = kvm.nlist([name])[0]
        if found is None:
            kvm.symbol(name)  # raises SymbolNotFoundError
        value, ntype = found  # type: ignore[misc]
        return Symbol(name, value, ntype, _letter(ntype), None)

    def _all(self) -> List[str]:
        if self._names is None:
            seen = dict.fromkeys(s.name for s in self._kvm.all_symbols())
            self._names = list(seen)
        return self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._kvm.nlist([name])[0] is not None


class _SymbolOut:
    """The out-parameters of pykvm_symbol, made once per iteration."""

    def __init__(self) -> None:
        self.name = ffi.new("const char **")
        self.value = ffi.new("uint64_t *")
        self.type = ffi.new("unsigned char *")
        self.letter = ffi.new("char *")
        self.module = ffi.new("const char **")

    def symbol(self, name: Optional[str] = None) -> Symbol:
        module = self.module[0]
        return Symbol(ffi.string(self.name[0]).decode("utf-8", "replace") if name is None else name,
                      self.value[0], self.type[0], self.letter[0].decode("latin-1"),
                      ffi.string(module).decode() if module != ffi.NULL else None)


def _letter(ntype: int) -> str:
    base = {N_TEXT: "t", N_DATA: "d", N_BSS: "b", N_ABS: "a"}.get(ntype & 0x1E, "u")
    return base.upper() if ntype & N_EXT else base
