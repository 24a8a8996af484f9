"""The kernel log from the lockless printk ring buffer (Linux >= 5.10), no debuginfo needed.

Layout comes from VMCOREINFO (the same offsets makedumpfile uses), so this works on any
dump that carries VMCOREINFO.  ``prb`` points to a ``printk_ringbuffer``: a descriptor ring
(``descs[]`` + ``infos[]``, ``1 << count_bits`` of each, ids from ``tail_id`` to
``head_id``) and a text data ring whose blocks start with the id of their descriptor.
"""

from __future__ import annotations

import bisect
import errno
import operator
import re
import struct
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from ..errors import KvmError, KvmFormatError, UnsupportedError
from .vmcoreinfo import vmcoreinfo

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = ["Record", "dmesg", "format_makedumpfile", "iter_records"]

# Descriptor state: the top two bits of state_var (unsigned long), the id below them.
_SV_BITS = 64
_STATE_SHIFT = _SV_BITS - 2
_ID_MASK = (1 << _STATE_SHIFT) - 1
DESC_RESERVED, DESC_COMMITTED, DESC_FINALIZED, DESC_REUSABLE = 0, 1, 2, 3
_MAX_COUNT_BITS = 26     # the largest log_buf_len (2 GiB) >> PRB_AVGBITS (5)
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


class _Array:
    """count entries of size bytes at base, read a block at a time as a walk goes (the
    arrays of a large ring are megabytes; a damaged ring may claim gigabytes): a block that
    cannot be read whole is read page by page, an entry meeting a missing page is None."""

    BLOCK = 1 << 16

    def __init__(self, kd: Kvm, base: int, size: int, count: int) -> None:
        self.kd, self.base, self.size, self.count = kd, base, size, count
        self._at = -1
        self._buf = b""
        self._holes: List[Tuple[int, int]] = []
        self._zero = False

    def _load(self, blk: int) -> None:
        start = blk * self.BLOCK
        n = min(self.BLOCK, self.count * self.size - start)
        self._at = blk
        self._holes = []
        try:
            self._buf = self.kd.read(self.base + start, n)
            self._zero = self._buf.count(0) == n  # once a block, not once an entry
            return
        except KvmError:
            pass
        out = bytearray(n)
        pos = 0
        while pos < n:
            k = min(n - pos, 4096 - ((self.base + start + pos) & 4095))
            try:
                out[pos:pos + k] = self.kd.read(self.base + start + pos, k)
            except KvmError:
                if self._holes and self._holes[-1][1] == pos:
                    self._holes[-1] = (self._holes[-1][0], pos + k)
                else:
                    self._holes.append((pos, pos + k))
            pos += k
        self._buf = bytes(out)
        self._zero = False

    def entry(self, idx: int) -> Optional[Tuple[bytes, int]]:
        """(buffer, offset of entry idx in it), or None when the dump lacks part of it."""
        off = idx * self.size
        blk = off // self.BLOCK
        if (off + self.size - 1) // self.BLOCK != blk:  # across two blocks: on its own
            try:
                return self.kd.read(self.base + off, self.size), 0
            except KvmError:
                return None
        if blk != self._at:
            self._load(blk)
        rel = off - blk * self.BLOCK
        if self._holes and _in_holes(self._holes, rel, rel + self.size):
            return None
        return self._buf, rel

    def zero_block(self, idx: int) -> int:
        """How many entries from idx on lie in a stored block of zeros (none is a record),
        so that a walk can step over them at once; 0 otherwise."""
        off = idx * self.size
        blk = off // self.BLOCK
        if blk != self._at:
            self._load(blk)
        if not self._zero:
            return 0
        end = (blk + 1) * self.BLOCK
        return max(0, (end - off) // self.size)


class _TextRing:
    """The text data ring, read a block at a time as the walk goes (the records' texts
    follow each other in it); a record whose text crosses a block, or lies in a block the
    dump lacks part of, is read on its own.  Only the header and the text are read: a
    record whose block header or text is missing has no text."""

    BLOCK = 1 << 16

    def __init__(self, kd: Kvm, base: int, size_bits: int) -> None:
        self.kd, self.base, self.size_bits = kd, base, size_bits
        self.size = 1 << size_bits
        self._at = -1
        self._buf: Optional[bytes] = None

    def text(self, begin: int, nxt: int, text_len: int) -> Tuple[bytes, Optional[str]]:
        """A record's text from its data block [begin, next) (logical positions)."""
        if begin & 1 or nxt & 1:  # data-less record (empty line or failed reservation)
            return b"", None
        size_bits, size = self.size_bits, self.size
        wb, wn = begin >> size_bits, nxt >> size_bits
        start, end = begin & (size - 1), nxt & (size - 1)
        if wb != wn:
            if wb + 1 != wn:
                return b"", "text block positions are inconsistent"
            if end or not start:  # wrapped: the data sits at the ring's start
                start = 0
            else:  # ends exactly at the ring's end
                end = size
        start += 8  # the block begins with its descriptor id (unsigned long)
        if end < start:
            return b"", "text block is shorter than its header"
        # the header and the text: a block is no longer than its text and padding
        off = start - 8
        n = 8 + min(end - start, text_len)
        blk = off // self.BLOCK
        if (off + n - 1) // self.BLOCK == blk:
            if blk != self._at:
                self._at = blk
                try:
                    self._buf = self.kd.read(self.base + blk * self.BLOCK,
                                             min(self.BLOCK, size - blk * self.BLOCK))
                except KvmError:  # a page of it is missing: its records one by one
                    self._buf = None
            if self._buf is not None:
                rel = off - blk * self.BLOCK
                return self._buf[rel + 8:rel + n], None
        try:
            block = self.kd.read(self.base + off, n)
        except KvmError:
            return b"", "text is not in the dump"
        return block[8:], None


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


def _in_holes(holes: List[Tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) meets a hole.  holes are sorted and disjoint: the last one
    starting before end is the only one that can (a search, not a scan of every hole)."""
    i = bisect.bisect_left(holes, (end,))
    return i > 0 and holes[i - 1][1] > start


def _missing(what: str, first: int, last: int) -> Record:
    if first == last:
        return Record(-1, 0, 0, b"", error=f"{what} {first} is not in the dump")
    return Record(-1, 0, 0, b"", error=f"{what}s {first} to {last} are not in the dump")


def iter_records(kd: Kvm, levels: bool = True) -> Iterator[Record]:
    """Every readable record from the oldest (tail) to the newest (head), in id order.

    A descriptor that is still being written or was recycled is skipped, as the kernel's
    own readers do; one whose memory is missing from the dump comes back with ``error``
    (one record for a run of them).  levels=False leaves level and facility None (no need
    to load the kernel's types).
    """
    L = _Layout(kd)
    # level and facility need the kernel's types (BTF); the text alone does not
    level_facility = _level_facility(kd) if levels else None
    prb = kd.read_pointer(L.prb_ptr)
    ring = prb + L.rb_desc
    count_bits = kd.read_u32(ring + L.dr_count_bits)
    text_ring = prb + L.rb_text
    size_bits = kd.read_u32(text_ring + L.data_size_bits)
    if size_bits > _MAX_SIZE_BITS:
        raise KvmFormatError(errno.EINVAL, f"{L.source}: printk text ring size_bits {size_bits} "
                             "is implausible")
    # the kernel gives each descriptor 2^PRB_AVGBITS (32) bytes of text: never more
    # descriptors than text bytes
    if count_bits > min(_MAX_COUNT_BITS, size_bits):
        raise KvmFormatError(errno.EINVAL, f"{L.source}: printk descriptor ring count_bits "
                             f"{count_bits} is implausible (text ring size_bits {size_bits})")
    count = 1 << count_bits
    descs = _Array(kd, kd.read_pointer(ring + L.dr_descs), L.desc_size, count)
    infos = _Array(kd, kd.read_pointer(ring + L.dr_infos), L.info_size, count)
    head = kd.read_u64(ring + L.dr_head + L.counter)
    tail = kd.read_u64(ring + L.dr_tail + L.counter)
    data_addr = kd.read_pointer(text_ring + L.data_data)

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
    text_of = _TextRing(kd, data_addr, size_bits).text
    live = (DESC_COMMITTED, DESC_FINALIZED)
    new = tuple.__new__
    mask = count - 1
    level: Optional[int] = None
    facility: Optional[int] = None
    n_ids = (head - tail) & _ID_MASK
    if n_ids >= count:  # the tail cannot be more than a ring behind the head
        n_ids = count - 1
        tail = (head - n_ids) & _ID_MASK
    gap = None  # (first, last) id of a run of descriptors the dump lacks
    k = 0
    while k <= n_ids:
        rid = (tail + k) & _ID_MASK
        idx = rid & mask
        de = descs.entry(idx)
        if de is None:
            gap = (gap[0] if gap else rid, rid)
            k += 1
            continue
        if gap:
            yield _missing("descriptor", *gap)
            gap = None
        skip = descs.zero_block(idx)
        if skip > 1:  # zeros: reserved descriptors of id 0, none a record to read
            k += min(skip, count - idx)
            continue
        k += 1
        sv, begin, nxt = desc(*de)
        if (sv & _ID_MASK) != rid or sv >> _STATE_SHIFT not in live:
            continue
        ie = infos.entry(idx)
        if ie is None:
            yield _missing("record info", rid, rid)
            continue
        if level_facility:
            seq, ts, text_len, caller, subsys, device, facility, lev = info(*ie)
            level = (lev >> lev_shift) & lev_mask
        else:
            seq, ts, text_len, caller, subsys, device = info(*ie)
        text, err = text_of(begin, nxt, text_len)
        yield new(Record, (seq, ts, caller, text, level, facility, _cstr(subsys),
                           _cstr(device), err))
    if gap:
        yield _missing("descriptor", *gap)
    if gap:
        yield _missing("descriptor", *gap)


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
