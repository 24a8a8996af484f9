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
            if holes and holes[-1][1] == pos:  # one hole per run of missing pages
                holes[-1] = (holes[-1][0], pos + n)
            else:
                holes.append((pos, pos + n))
        pos += n
    return bytes(out), holes


def _in_holes(holes: List[Tuple[int, int]], start: int, end: int) -> bool:
    """Whether [start, end) meets a hole.  holes are sorted and disjoint: the last one
    starting before end is the only one that can (a search, not a scan of every hole for
    every record: a ring missing most of its pages has thousands)."""
    i = bisect.bisect_left(holes, (end,))
    return i > 0 and holes[i - 1][1] > start


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

    desc_buf, desc_holes = _read_mem(kd, descs, count * L.desc_size)
    info_buf, info_holes = _read_mem(kd, infos, count * L.info_size)
    data, data_holes = _read_mem(kd, data_addr, data_size)

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
    for k in range(n_ids + 1):
        rid = (tail + k) & _ID_MASK
        idx = rid & mask
        d = idx * L.desc_size
        if _in_holes(desc_holes, d, d + L.desc_size):
            yield Record(-1, 0, 0, b"", error=f"descriptor {rid} is not in the dump")
            continue
        sv = u64(desc_buf, d + L.desc_sv)[0]
        state = sv >> _STATE_SHIFT
        if (sv & _ID_MASK) != rid or state not in (DESC_COMMITTED, DESC_FINALIZED):
            continue
        i = idx * L.info_size
        if _in_holes(info_holes, i, i + L.info_size):
            yield Record(-1, 0, 0, b"", error=f"record info {rid} is not in the dump")
            continue
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
        begin = u64(desc_buf, d + L.desc_lpos + L.lpos_begin)[0]
        nxt = u64(desc_buf, d + L.desc_lpos + L.lpos_next)[0]
        text, err = _text(data, data_holes, size_bits, begin, nxt, text_len)
        yield Record(seq, ts, caller, text, level, facility,
                     subsys.split(b"\0", 1)[0].decode("utf-8", "replace"),
                     device.split(b"\0", 1)[0].decode("utf-8", "replace"), err)


def _text(data: bytes, holes: List[Tuple[int, int]], size_bits: int, begin: int, nxt: int,
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
    if _in_holes(holes, start - 8, end):
        return b"", "text is not in the dump"
    return data[start:min(end, start + text_len)], None


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
