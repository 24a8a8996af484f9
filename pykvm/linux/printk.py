"""The kernel log from the lockless printk ring buffer (Linux >= 5.10), no debuginfo needed.

Layout comes from VMCOREINFO (the same offsets makedumpfile uses), so this works on any
dump that carries VMCOREINFO.  ``prb`` points to a ``printk_ringbuffer``: a descriptor ring
(``descs[]`` + ``infos[]``, ``1 << count_bits`` of each, ids from ``tail_id`` to
``head_id``) and a text data ring whose blocks start with the id of their descriptor.
"""

from __future__ import annotations

import errno
import operator
import re
import struct
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from ..errors import KvmError, UnsupportedError
from .vmcoreinfo import vmcoreinfo

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["Record", "dmesg", "format_makedumpfile", "iter_records"]

# Descriptor state: the top two bits of state_var (unsigned long), the id below them.
_SV_BITS = 64
_STATE_SHIFT = _SV_BITS - 2
_ID_MASK = (1 << _STATE_SHIFT) - 1
DESC_RESERVED, DESC_COMMITTED, DESC_FINALIZED, DESC_REUSABLE = 0, 1, 2, 3
_MAX_COUNT_BITS = 28     # 256 Mi descriptors: far beyond any log_buf_len the kernel allows
_MAX_SIZE_BITS = 31      # 2 GiB of text


class Record(NamedTuple):
    """One log record.  error is None, or why the record could not be read."""
    seq: int
    ts_nsec: int
    caller_id: int
    text: bytes
    level: Optional[int] = None
    facility: Optional[int] = None
    subsystem: str = ""
    device: str = ""
    error: Optional[str] = None

    def as_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"seq": self.seq, "timestamp_ns": self.ts_nsec, "caller_id": self.caller_id,
             "caller": _caller(self.caller_id),
             "text": self.text.decode("utf-8", "replace")}
        if self.level is not None:
            d["level"] = self.level
        if self.facility is not None:
            d["facility"] = self.facility
        if self.subsystem:
            d["subsystem"] = self.subsystem
        if self.device:
            d["device"] = self.device
        if self.error:
            d["error"] = self.error
        return d


def _caller(caller_id: int) -> str:
    """T<pid> for a task, C<cpu> when the top bit says a CPU context."""
    if caller_id & 0x80000000:
        return f"C{caller_id & 0x7FFFFFFF}"
    return f"T{caller_id}"


class _Layout:
    """Offsets and sizes from VMCOREINFO."""

    def __init__(self, kd: Kvm) -> None:
        vi = vmcoreinfo(kd)
        if not vi.has("SYMBOL(prb)"):
            if vi.has("SYMBOL(log_buf)"):
                raise UnsupportedError(
                    errno.ENOTSUP, f"{vi.source}: the kernel keeps its log in the pre-5.10 "
                    "log_buf format, which this reader does not support")
            raise UnsupportedError(errno.ENOTSUP,
                                   f"{vi.source}: no printk ring buffer (SYMBOL(prb))")
        self.source = vi.source
        self.prb_ptr = vi.symbol("prb")
        self.rb_desc = vi.offset("printk_ringbuffer", "desc_ring")
        self.rb_text = vi.offset("printk_ringbuffer", "text_data_ring")
        self.dr_count_bits = vi.offset("prb_desc_ring", "count_bits")
        self.dr_descs = vi.offset("prb_desc_ring", "descs")
        self.dr_infos = vi.offset("prb_desc_ring", "infos")
        self.dr_head = vi.offset("prb_desc_ring", "head_id")
        self.dr_tail = vi.offset("prb_desc_ring", "tail_id")
        self.desc_size = vi.size("prb_desc")
        self.desc_sv = vi.offset("prb_desc", "state_var")
        self.desc_lpos = vi.offset("prb_desc", "text_blk_lpos")
        self.lpos_begin = vi.offset("prb_data_blk_lpos", "begin")
        self.lpos_next = vi.offset("prb_data_blk_lpos", "next")
        self.info_size = vi.size("printk_info")
        self.info_seq = vi.offset("printk_info", "seq")
        self.info_ts = vi.offset("printk_info", "ts_nsec")
        self.info_len = vi.offset("printk_info", "text_len")
        self.info_caller = vi.offset("printk_info", "caller_id")
        self.info_dev = vi.offset("printk_info", "dev_info")
        self.dev_subsys = vi.offset("dev_printk_info", "subsystem")
        self.dev_subsys_len = vi.length("printk_info_subsystem")
        self.dev_device = vi.offset("dev_printk_info", "device")
        self.dev_device_len = vi.length("printk_info_device")
        self.data_size_bits = vi.offset("prb_data_ring", "size_bits")
        self.data_data = vi.offset("prb_data_ring", "data")
        self.counter = vi.offset("atomic_long_t", "counter") if vi.has(
            "OFFSET(atomic_long_t.counter)") else 0
        # level and facility: not in VMCOREINFO; the kernel's types say where they are.
        for name in ("desc_size", "info_size"):
            if not 0 < getattr(self, name) <= 4096:
                raise KvmError(errno.EINVAL, f"{self.source}: implausible {name} "
                               f"{getattr(self, name)}")


def _level_facility(kd: Kvm) -> Optional[Tuple[int, int, int]]:
    """(byte offset of facility, bit offset of level, bit size of level) in struct
    printk_info, from the kernel's types (BTF); None when they are not known.

    The kernel declares ``u8 facility; u8 flags : 5; u8 level : 3;``: level is a bitfield,
    read from the byte holding it (little-endian bit order, as the kernel's layout says).
    """
    get_type = getattr(kd, "type", None)
    if get_type is None:
        return None
    try:
        t = get_type("struct printk_info")
        fac_bits, fac_size, _ = t.member("facility")
        lev_bits, lev_size, lev_type = t.member("level")
    except (KvmError, LookupError):  # no BTF, or a layout without these members
        return None
    if fac_bits % 8 or fac_size not in (0, 8):  # facility is a whole byte
        return None
    if not lev_size:  # not a bitfield (a kernel declaring a whole u8 level)
        lev_size = 8 * (lev_type.resolve().size or 1)
    if lev_size > 8 or lev_bits % 8 + lev_size > 8:  # level within one byte
        return None
    return fac_bits // 8, lev_bits, lev_size


def _read_mem(kd: Kvm, addr: int, size: int) -> Tuple[bytes, List[Tuple[int, int]]]:
    """size bytes at addr; pages that cannot be read come back as zeros, listed as holes."""
    try:
        return kd.read(addr, size), []
    except KvmError:
        pass
    out = bytearray(size)
    holes: List[Tuple[int, int]] = []
    pos = 0
    while pos < size:
        n = min(size - pos, 4096 - ((addr + pos) & 4095))
        try:
            out[pos:pos + n] = kd.read(addr + pos, n)
        except KvmError:
            holes.append((pos, pos + n))
        pos += n
    return bytes(out), holes


def _in_holes(holes: List[Tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in holes)


def _read_ring(kd: Kvm, addr: int, count: int, esize: int, first: int,
               n: int) -> Tuple[bytes, List[Tuple[int, int]]]:
    """Elements first, first + 1, ... (n of them, modulo count) of a ring of count elements
    of esize bytes at addr, in that order: one read, or two where they wrap."""
    first &= count - 1
    n1 = min(n, count - first)
    buf, holes = _read_mem(kd, addr + first * esize, n1 * esize)
    if n1 < n:
        more, more_holes = _read_mem(kd, addr, (n - n1) * esize)
        holes = holes + [(a + len(buf), b + len(buf)) for a, b in more_holes]
        buf += more
    return buf, holes


def _unpacker(size: int, fields: List[Tuple[int, str]]) -> Callable[[bytes, int], Tuple[Any, ...]]:
    """(buffer, offset) -> the values of fields [(byte offset, struct format)] of a size-byte
    record, in the order given: one little-endian Struct over the record."""
    order = sorted(range(len(fields)), key=lambda j: fields[j][0])
    fmt, pos = "<", 0
    for j in order:
        off, f = fields[j]
        if off < pos:
            raise KvmError(errno.EINVAL, f"printk layout: fields overlap at offset {off}")
        fmt += (f"{off - pos}x" if off > pos else "") + f
        pos = off + struct.calcsize("<" + f)
    if pos > size:
        raise KvmError(errno.EINVAL, f"printk layout: fields run past the {size}-byte record")
    unpack = struct.Struct(fmt).unpack_from
    if order == sorted(order):
        return unpack
    where = [order.index(j) for j in range(len(fields))]
    pick = operator.itemgetter(*where)
    return lambda buf, off: pick(unpack(buf, off))


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace") if raw[:1] != b"\0" else ""


def iter_records(kd: Kvm, levels: bool = True) -> Iterator[Record]:
    """Every readable record from the oldest (tail) to the newest (head), in id order.

    A descriptor that is still being written or was recycled is skipped, as the kernel's
    own readers do; one whose memory is missing from the dump comes back with ``error``.
    levels=False leaves level and facility None (no need to load the kernel's types).
    """
    L = _Layout(kd)
    # level and facility need the kernel's types (BTF); the text alone does not
    level_facility = _level_facility(kd) if levels else None
    prb = kd.read_pointer(L.prb_ptr)
    ring = prb + L.rb_desc
    count_bits = kd.read_u32(ring + L.dr_count_bits)
    if count_bits > _MAX_COUNT_BITS:
        raise KvmError(errno.EINVAL, f"{L.source}: printk descriptor ring count_bits "
                       f"{count_bits} is implausible")
    count = 1 << count_bits
    descs = kd.read_pointer(ring + L.dr_descs)
    infos = kd.read_pointer(ring + L.dr_infos)
    head = kd.read_u64(ring + L.dr_head + L.counter)
    tail = kd.read_u64(ring + L.dr_tail + L.counter)
    text_ring = prb + L.rb_text
    size_bits = kd.read_u32(text_ring + L.data_size_bits)
    if size_bits > _MAX_SIZE_BITS:
        raise KvmError(errno.EINVAL, f"{L.source}: printk text ring size_bits {size_bits} "
                       "is implausible")
    data_size = 1 << size_bits
    data_addr = kd.read_pointer(text_ring + L.data_data)
    n_ids = (head - tail) & _ID_MASK
    if n_ids >= count:  # the tail cannot be more than a ring behind the head
        n_ids = count - 1
        tail = (head - n_ids) & _ID_MASK
    n = n_ids + 1

    # three reads: the descriptors and infos from tail to head, the text ring
    desc_buf, desc_holes = _read_ring(kd, descs, count, L.desc_size, tail, n)
    info_buf, info_holes = _read_ring(kd, infos, count, L.info_size, tail, n)
    data, data_holes = _read_mem(kd, data_addr, data_size)

    desc = _unpacker(L.desc_size, [(L.desc_sv, "Q"), (L.desc_lpos + L.lpos_begin, "Q"),
                                   (L.desc_lpos + L.lpos_next, "Q")])
    info_fields = [(L.info_seq, "Q"), (L.info_ts, "Q"), (L.info_len, "H"),
                   (L.info_caller, "I"),
                   (L.info_dev + L.dev_subsys, f"{L.dev_subsys_len}s"),
                   (L.info_dev + L.dev_device, f"{L.dev_device_len}s")]
    lev_shift = lev_mask = 0
    if level_facility:
        fo, lbit, lsize = level_facility
        info_fields += [(fo, "B"), (lbit // 8, "B")]
        lev_shift, lev_mask = lbit % 8, (1 << lsize) - 1
    info = _unpacker(L.info_size, info_fields)
    dsize, isize = L.desc_size, L.info_size
    size_mask = data_size - 1
    live = (DESC_COMMITTED, DESC_FINALIZED)
    level: Optional[int] = None
    facility: Optional[int] = None
    err: Optional[str]
    new = tuple.__new__
    for k in range(n):
        rid = (tail + k) & _ID_MASK
        d = k * dsize
        if desc_holes and _in_holes(desc_holes, d, d + dsize):
            yield Record(-1, 0, 0, b"", error=f"descriptor {rid} is not in the dump")
            continue
        sv, begin, nxt = desc(desc_buf, d)
        if (sv & _ID_MASK) != rid or sv >> _STATE_SHIFT not in live:
            continue
        i = k * isize
        if info_holes and _in_holes(info_holes, i, i + isize):
            yield Record(-1, 0, 0, b"", error=f"record info {rid} is not in the dump")
            continue
        if level_facility:
            seq, ts, text_len, caller, subsys, device, facility, lev = info(info_buf, i)
            level = (lev >> lev_shift) & lev_mask
        else:
            seq, ts, text_len, caller, subsys, device = info(info_buf, i)
        # the text: data block [begin, next) in logical positions, after the block's id
        err = None
        if begin & 1 or nxt & 1:  # data-less record (empty line or failed reservation)
            text = b""
        else:
            wb, wn = begin >> size_bits, nxt >> size_bits
            start, end = begin & size_mask, nxt & size_mask
            if wb != wn:
                if wb + 1 != wn:
                    err = "text block positions are inconsistent"
                elif end or not start:  # wrapped: the data sits at the ring's start
                    start = 0
                else:  # ends exactly at the ring's end
                    end = data_size
            start += 8  # the block begins with its descriptor id (unsigned long)
            if err:
                text = b""
            elif end < start:
                text, err = b"", "text block is shorter than its header"
            elif data_holes and _in_holes(data_holes, start - 8, end):
                text, err = b"", "text is not in the dump"
            else:
                stop = start + text_len
                text = data[start:stop if stop < end else end]
        yield new(Record, (seq, ts, caller, text, level, facility,
                           _cstr(subsys), _cstr(device), err))


def dmesg(kd: Kvm) -> List[Record]:
    """Every record, oldest first."""
    return list(iter_records(kd))


# makedumpfile prints a log byte as itself when printable ASCII or \t \v \f \r, a newline as
# a newline and the stamp's width of spaces, any other byte as \xNN.
_PLAIN = bytes(range(0x20, 0x7F)) + b"\t\v\f\r\n"
_NOT_PLAIN = re.compile(rb"[^\x20-\x7e\t\x0b\x0c\r\n]")
_HEX = [b"\\x%02x" % c for c in range(256)]


def _hex(m: "re.Match[bytes]") -> bytes:
    return _HEX[m.group()[0]]


def _escape(text: bytes, indent: str) -> str:
    if text.translate(None, _PLAIN):  # some byte is not plain: escape them
        text = _NOT_PLAIN.sub(_hex, text)
    out = text.decode("ascii")
    return out.replace("\n", "\n" + indent) if "\n" in out else out


def format_makedumpfile(records: Iterable[Record]) -> str:
    """The text ``makedumpfile --dump-dmesg`` writes: ``[sssss.uuuuuu] text`` a line."""
    lines: List[str] = []
    add = lines.append
    plain, nl = _PLAIN, 0x0A
    for r in records:
        if r.error:
            add(f"[ ?????.??????] <record unreadable: {r.error}>\n")
            continue
        ts = r.ts_nsec
        stamp = "[%5d.%06d] " % (ts // 1000000000, ts % 1000000000 // 1000)
        text = r.text
        if text.translate(None, plain) or nl in text:
            add(stamp + _escape(text, " " * len(stamp)) + "\n")
        else:
            add(stamp + text.decode("ascii") + "\n")
    return "".join(lines)
