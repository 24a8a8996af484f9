"""The kernel log from the lockless printk ring buffer (Linux >= 5.10), no debuginfo needed.

Layout comes from VMCOREINFO (the same offsets makedumpfile uses), so this works on any
dump that carries VMCOREINFO.  ``prb`` points to a ``printk_ringbuffer``: a descriptor ring
(``descs[]`` + ``infos[]``, ``1 << count_bits`` of each, ids from ``tail_id`` to
``head_id``) and a text data ring whose blocks start with the id of their descriptor.
"""

from __future__ import annotations

import bisect
import errno
import struct
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

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


def _level_facility(kd: Kvm) -> Optional[Tuple[int, int]]:
    """(byte offset of facility, bit offset of level) in struct printk_info, from BTF."""
    get_type = getattr(kd, "type", None)
    if get_type is None:
        return None
    try:
        t = get_type("struct printk_info")
        fac = t.member("facility")
        lev = t.member("level")
        return fac.offset, lev.bit_offset
    except Exception:  # no BTF, or a layout without these members
        return None


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

    def _load(self, blk: int) -> None:
        start = blk * self.BLOCK
        n = min(self.BLOCK, self.count * self.size - start)
        self._at = blk
        self._holes = []
        try:
            self._buf = self.kd.read(self.base + start, n)
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
        if _in_holes(self._holes, rel, rel + self.size):
            return None
        return self._buf, rel

    def zero_block(self, idx: int) -> int:
        """How many entries from idx on lie in a stored block of zeros (none is a record),
        so that a walk can step over them at once; 0 otherwise."""
        off = idx * self.size
        blk = off // self.BLOCK
        if blk != self._at:
            self._load(blk)
        if self._holes or self._buf.count(0) != len(self._buf):
            return 0
        end = (blk + 1) * self.BLOCK
        return max(0, (end - off) // self.size)


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

    u64 = struct.Struct("<Q").unpack_from
    u32 = struct.Struct("<I").unpack_from
    u16 = struct.Struct("<H").unpack_from
    mask = count - 1
    level: Optional[int]
    facility: Optional[int]
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
        dbuf, d = de
        sv = u64(dbuf, d + L.desc_sv)[0]
        state = sv >> _STATE_SHIFT
        if (sv & _ID_MASK) != rid or state not in (DESC_COMMITTED, DESC_FINALIZED):
            continue
        ie = infos.entry(idx)
        if ie is None:
            yield _missing("record info", rid, rid)
            continue
        info_buf, i = ie
        seq = u64(info_buf, i + L.info_seq)[0]
        ts = u64(info_buf, i + L.info_ts)[0]
        text_len = u16(info_buf, i + L.info_len)[0]
        caller = u32(info_buf, i + L.info_caller)[0]
        dev = i + L.info_dev
        subsys = info_buf[dev + L.dev_subsys:dev + L.dev_subsys + L.dev_subsys_len]
        device = info_buf[dev + L.dev_device:dev + L.dev_device + L.dev_device_len]
        level = facility = None
        if level_facility:
            fo, lbit = level_facility
            facility = info_buf[i + fo]
            level = (info_buf[i + lbit // 8] >> (lbit % 8)) & 7
        begin = u64(dbuf, d + L.desc_lpos + L.lpos_begin)[0]
        nxt = u64(dbuf, d + L.desc_lpos + L.lpos_next)[0]
        text, err = _text(kd, data_addr, size_bits, begin, nxt, text_len)
        yield Record(seq, ts, caller, text, level, facility,
                     subsys.split(b"\0", 1)[0].decode("utf-8", "replace"),
                     device.split(b"\0", 1)[0].decode("utf-8", "replace"), err)
    if gap:
        yield _missing("descriptor", *gap)


def _text(kd: Kvm, data_addr: int, size_bits: int, begin: int, nxt: int,
          text_len: int) -> Tuple[bytes, Optional[str]]:
    """A record's text from its data block [begin, next) (logical positions)."""
    if begin & 1 or nxt & 1:  # data-less record (empty line or failed reservation)
        return b"", None
    size = 1 << size_bits
    wb, wn = begin >> size_bits, nxt >> size_bits
    off_b, off_n = begin & (size - 1), nxt & (size - 1)
    if wb == wn:
        start, end = off_b, off_n
    elif wb + 1 == wn:  # the block wrapped: its data sits at the ring's start
        start, end = 0, off_n
        if end == 0 and off_b:  # ends exactly at the ring's end
            start, end = off_b, size
    else:
        return b"", "text block positions are inconsistent"
    start += 8  # the block begins with its descriptor id (unsigned long)
    if end < start:
        return b"", "text block is shorter than its header"
    try:  # the header and the text: a block is no longer than its text and padding
        block = kd.read(data_addr + start - 8, 8 + min(end - start, text_len))
    except KvmError:
        return b"", "text is not in the dump"
    return block[8:], None


def dmesg(kd: Kvm) -> List[Record]:
    """Every record, oldest first."""
    return list(iter_records(kd))


def _escape(text: bytes, indent: str) -> str:
    out = []
    for c in text:
        if c == 0x0A:  # a line inside a record continues under the text, not the stamp
            out.append("\n" + indent)
        elif 0x20 <= c < 0x7F or c in (0x09, 0x0B, 0x0C, 0x0D):
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    return "".join(out)


def format_makedumpfile(records: Iterable[Record]) -> str:
    """The text ``makedumpfile --dump-dmesg`` writes: ``[sssss.uuuuuu] text`` a line."""
    lines = []
    for r in records:
        if r.error:
            lines.append(f"[ ?????.??????] <record unreadable: {r.error}>\n")
            continue
        stamp = f"[{r.ts_nsec // 1000000000:5d}.{r.ts_nsec % 1000000000 // 1000:06d}] "
        lines.append(stamp + _escape(r.text, " " * len(stamp)) + "\n")
    return "".join(lines)
