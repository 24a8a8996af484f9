#!/usr/bin/env python3
"""Cut the fuzz targets' seed inputs down from the real fixtures (make fixtures).

    python3 fuzz/make_seeds.py [--cache DIR]

Writes fuzz/seeds/TARGET/NAME, each a few KB (deterministic: the same fixtures give the same
bytes).  What each seed is cut from:

    elf/       process cores (target64.core, target32.core): the ELF header, program headers
               and notes verbatim, the first PT_LOADs with 512 bytes saved of each
    kdump/     kdump-compressed dumps (lzo, zlib, snappy, zstd, raw; one flattened): block 0
               and the sub-header blocks verbatim, then bitmaps for 256 pfns marking the
               few pfns below that whose stored page is smallest, their descriptors and pages
    images/    LiME (two ranges of two pages), AVML (one block of two snappy chunks), raw (8 KB),
               each after the harness's format byte
    namelist/  the guest's kallsyms.txt, first 300 lines; a small ELF executable's symbols
    kallsyms/  an ELF vmcore holding only VMCOREINFO, the page tables and the kallsyms tables
               of the first 400 symbols (kallsyms_num_syms rewritten to 400)
    pgtable/   the same vmcore (a walk to each table)
    btf/       the dump's kernel BTF, cut to the types struct list_head needs, renumbered
    walks/     the QEMU panic dump (panic/current/qemu-panic) as an ELF vmcore of only the
               bytes ps, lsmod, dmesg, sys and bt read (its notes, every page-table entry
               their walks read, the data; the printk records' pages whole), with
               fuzz/walks.kallsyms (the kallsyms lines they look up) and build/fuzz/walks.btf
               (the dump's kernel BTF: --walks-btf PATH cuts only that)

and fuzz/regressions/TARGET/NAME: the defects the fuzzer found (issue 8), rebuilt on these
seeds: kdump max_mapnr_64 near 2^64, a small flattened dump claiming 2^20 bitmap blocks,
kallsyms_num_syms past its address table and tokens longer than KSYM_NAME_LEN.  Inputs a
campaign finds later are added to fuzz/regressions/ as they are (see fuzz/README.md).

fixtures/demo/vmcore-demo.elf is an elf and pgtable seed as it is (the Makefile adds it).
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures" / "kernel"))
sys.dont_write_bytecode = True

import cutdown  # noqa: E402  (the demo's page-table walk and ELF writer)
import walks  # noqa: E402  (fuzz/walks.py: what the walks target runs on a dump)

PAGE = 4096


def write(target: str, name: str, data: bytes) -> None:
    d = ROOT / "fuzz" / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    print(f"{target}/{name}: {len(data)} bytes")


# ---- ELF process cores ----

def cut_process_core(path: Path, keep_loads: int = 6, saved: int = 512) -> bytes:
    data = path.read_bytes()
    cls = data[4]
    if cls == 2:
        phoff, = struct.unpack_from("<Q", data, 32)
        phentsize, phnum = struct.unpack_from("<HH", data, 54)
        ph = struct.Struct("<IIQQQQQQ")
    else:
        phoff, = struct.unpack_from("<I", data, 28)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
        ph = struct.Struct("<IIIIIIII")
    phdrs = [list(ph.unpack_from(data, phoff + i * phentsize)) for i in range(phnum)]
    keep, loads = [], 0
    for p in phdrs:
        if p[0] == 4:
            keep.append(p)
        elif p[0] == 1 and loads < keep_loads:
            keep.append(p)
            loads += 1
    head = bytearray(data[:phoff])
    # e_phnum, no section headers
    if cls == 2:
        struct.pack_into("<Q", head, 40, 0)
        struct.pack_into("<HHHH", head, 56, len(keep), 0, 0, 0)
    else:
        struct.pack_into("<I", head, 32, 0)
        struct.pack_into("<HHHH", head, 44, len(keep), 0, 0, 0)
    body = bytearray()
    base = phoff + phentsize * len(keep)
    out_ph = bytearray()
    for p in keep:
        if cls == 2:
            ptype, flags, off, va, pa, filesz, memsz, align = p
        else:
            ptype, off, va, pa, filesz, memsz, flags, align = p
        n = filesz if ptype == 4 else min(filesz, saved)
        chunk = data[off:off + n]
        noff = base + len(body)
        body += chunk
        while len(body) % 8:
            body += b"\0"
        if cls == 2:
            out_ph += ph.pack(ptype, flags, noff, va, pa, n, memsz, align).ljust(phentsize, b"\0")
        else:
            out_ph += ph.pack(ptype, noff, va, pa, n, memsz, flags, align).ljust(phentsize, b"\0")
    return bytes(head) + bytes(out_ph) + bytes(body)


# ---- kdump ----

def cut_kdump(data: bytes, npfn: int = 256, pages: int = 6) -> bytes:
    assert data[:8] == b"KDUMP   "
    bs, sub_blocks, bitmap_blocks = struct.unpack_from("<iiI", data, 428)
    version, = struct.unpack_from("<i", data, 8)
    bm1 = (1 + sub_blocks) * bs
    bm2 = bm1 + bitmap_blocks // 2 * bs
    descs = (1 + sub_blocks + bitmap_blocks) * bs

    def bit(off, pfn):
        return data[off + pfn // 8] >> (pfn % 8) & 1

    dumped = []
    idx = 0
    for pfn in range(npfn):
        if bit(bm2, pfn):
            dumped.append((pfn, struct.unpack_from("<qIIQ", data, descs + 24 * idx)))
            idx += 1
    chosen = sorted(sorted(dumped, key=lambda d: (d[1][1], d[0]))[:pages])
    head = bytearray(data[:(1 + sub_blocks) * bs])
    struct.pack_into("<II", head, 436, 2, npfn)  # bitmap_blocks, max_mapnr
    if version >= 6:
        struct.pack_into("<Q", head, bs + 96, npfn)
    b1 = bytearray(bs)
    b2 = bytearray(bs)
    for pfn in range(npfn):
        if bit(bm1, pfn):
            b1[pfn // 8] |= 1 << (pfn % 8)
    for pfn, _ in chosen:
        b2[pfn // 8] |= 1 << (pfn % 8)
    table = bytearray()
    payload = bytearray()
    data_off = len(head) + 2 * bs + 24 * len(chosen)
    for pfn, (off, size, flags, pfl) in chosen:
        table += struct.pack("<qIIQ", data_off + len(payload), size, flags, pfl)
        payload += data[off:off + size]
    return bytes(head + b1 + b2 + table + payload)


def flatten(data: bytes, rec: int = 4096) -> bytes:
    out = bytearray(b"makedumpfile".ljust(16, b"\0") + struct.pack(">QQ", 1, 1))
    out = out.ljust(4096, b"\0")
    for off in range(0, len(data), rec):
        chunk = data[off:off + rec]
        out += struct.pack(">QQ", off, len(chunk)) + chunk
    return bytes(out + struct.pack(">QQ", (1 << 64) - 1, 0))


# ---- memory images ----

def cut_lime(path: Path, ranges: int = 2, keep: int = 2 * PAGE) -> bytes:
    out = bytearray()
    with open(path, "rb") as f:
        for _ in range(ranges):
            h = f.read(32)
            magic, ver, start, end = struct.unpack_from("<IIQQ", h)
            n = min(end - start + 1, keep)
            out += struct.pack("<IIQQQ", magic, ver, start, start + n - 1, 0) + f.read(n)
            f.seek(end - start + 1 - n, 1)
    return bytes(out)


def cut_avml(path: Path, chunks: int = 2) -> bytes:
    with open(path, "rb") as f:
        h = f.read(32)
        magic, ver, start, end = struct.unpack_from("<IIQQ", h)
        stream = bytearray(f.read(10))  # the stream identifier chunk
        assert stream[:1] == b"\xff"
        size = 0
        for _ in range(chunks):
            ch = f.read(4)
            ln = ch[1] | ch[2] << 8 | ch[3] << 16
            body = f.read(ln)
            stream += ch + body
            size += 65536 if ch[0] in (0, 1) else 0
        return (struct.pack("<IIQQQ", magic, ver, start, start + size - 1, 0) + bytes(stream)
                + struct.pack("<Q", len(stream)))


# ---- kallsyms / page tables ----

def kallsyms_vmcore(src: Path, num: int = 400) -> bytes:
    core = cutdown.Core(src / "vmcore.elf")
    info = cutdown.vmcoreinfo(core)
    mmu = cutdown.Mmu(core, info)
    sym = {k[7:-1]: int(v, 16) for k, v in info.items() if k.startswith("SYMBOL(")}
    names = mmu.read(sym["kallsyms_names"], 64 * 1024, keep=False)
    pos = 0
    for _ in range(num):  # 6.1+: a count >= 0x80 takes two bytes
        n = names[pos]
        if n & 0x80:
            n, pos = (n & 0x7f) | names[pos + 1] << 7, pos + 2
        else:
            pos += 1
        pos += n
    ranges = [("kallsyms_num_syms", 4), ("kallsyms_names", pos),
              ("kallsyms_token_table", sym["kallsyms_token_index"] - sym["kallsyms_token_table"]),
              ("kallsyms_token_index", 512), ("kallsyms_offsets", 4 * num),
              ("kallsyms_relative_base", 8), ("_stext", 64), ("init_top_pgt", 8)]
    for name, n in ranges:
        mmu.read(sym[name], n)
    pages = sorted(mmu.table_pages | mmu.data_pages)
    elf = bytearray(cutdown.build_elf(core, pages))
    tpa = mmu.translate(sym["kallsyms_token_table"])
    ttab_off = elf.find(core.read_phys(tpa & ~(PAGE - 1), PAGE)) + (tpa & (PAGE - 1))
    # kallsyms_num_syms := num, in the page that holds it
    pa = mmu.translate(sym["kallsyms_num_syms"])
    old = core.read_phys(pa, 4)
    loads = cutdown.Core.__new__(cutdown.Core)
    at = elf.find(core.read_phys(pa & ~(PAGE - 1), PAGE)) + (pa & (PAGE - 1))
    assert elf[at:at + 4] == old
    struct.pack_into("<I", elf, at, num)
    core.close()
    del loads
    return bytes(elf), ttab_off, at


# ---- BTF ----

BTF_KIND_SIZES = {1: 4, 3: 12, 4: None, 5: None, 6: None, 12: 0, 13: None, 14: 4, 15: None,
                  16: 0, 17: 4, 19: None}


def btf_types(blob: bytes):
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", blob, 4)
    t = hdr_len + type_off
    end = t + type_len
    strs = blob[hdr_len + str_off:hdr_len + str_off + str_len]
    out = [None]
    while t < end:
        name_off, info, size_type = struct.unpack_from("<III", blob, t)
        kind, vlen = info >> 24 & 0x1f, info & 0xffff
        extra = {1: 4, 3: 12, 4: 12 * vlen, 5: 12 * vlen, 6: 8 * vlen, 13: 8 * vlen, 14: 4,
                 15: 12 * vlen, 17: 4, 19: 12 * vlen}.get(kind, 0)
        out.append((name_off, info, size_type, blob[t + 12:t + 12 + extra]))
        t += 12 + extra
    return out, strs


def btf_refs(kind: int, vlen: int, size_type: int, extra: bytes) -> list[int]:
    refs = []
    if kind in (2, 7, 8, 9, 10, 11, 12, 14, 17, 18):
        refs.append(size_type)
    if kind == 3:
        refs += list(struct.unpack_from("<II", extra))
    if kind in (4, 5):
        refs += [struct.unpack_from("<III", extra, 12 * i)[1] for i in range(vlen)]
    if kind == 13:
        refs += [struct.unpack_from("<II", extra, 8 * i)[1] for i in range(vlen)]
    if kind == 15:
        refs += [struct.unpack_from("<III", extra, 12 * i)[0] for i in range(vlen)]
    return refs


def cut_btf(blob: bytes, roots=("list_head", "hlist_node", "atomic_t", "callback_head")) -> bytes:
    types, strs = btf_types(blob)

    def name(off):
        return strs[off:strs.index(b"\0", off)].decode()

    want = [i for i, t in enumerate(types) if t and name(t[0]) in roots and t[1] >> 24 & 0x1f in (4, 8)]
    keep, stack = set(), list(want)
    while stack:
        i = stack.pop()
        if i == 0 or i in keep:
            continue
        keep.add(i)
        _, info, st, extra = types[i]
        stack += btf_refs(info >> 24 & 0x1f, info & 0xffff, st, extra)
    order = sorted(keep)
    new_id = {old: n + 1 for n, old in enumerate(order)}
    new_id[0] = 0
    pool = bytearray(b"\0")
    offs = {0: 0}

    def s(off):
        if off not in offs:
            offs[off] = len(pool)
            pool.extend(strs[off:strs.index(b"\0", off) + 1])
        return offs[off]

    out = bytearray()
    for i in order:
        name_off, info, st, extra = types[i]
        kind, vlen = info >> 24 & 0x1f, info & 0xffff
        if kind in (2, 7, 8, 9, 10, 11, 12, 14, 17, 18):
            st = new_id[st]
        e = bytearray(extra)
        if kind == 3:
            a, b, n = struct.unpack_from("<III", e)
            struct.pack_into("<III", e, 0, new_id[a], new_id[b], n)
        for k in range(vlen if kind in (4, 5, 6, 13, 15, 19) else 0):
            if kind in (4, 5, 15, 19):
                a, b, c = struct.unpack_from("<III", e, 12 * k)
                if kind in (4, 5):
                    struct.pack_into("<III", e, 12 * k, s(a), new_id[b], c)
                elif kind == 15:
                    struct.pack_into("<III", e, 12 * k, new_id[a], b, c)
                else:
                    struct.pack_into("<III", e, 12 * k, s(a), b, c)
            else:
                a, b = struct.unpack_from("<II", e, 8 * k)
                struct.pack_into("<II", e, 8 * k, s(a), new_id[b] if kind == 13 else b)
        out += struct.pack("<III", s(name_off), info, st) + e
    hdr = struct.pack("<HBBIIIII", 0xeb9f, 1, 0, 24, 0, len(out), len(out), len(pool))
    return hdr + bytes(out) + bytes(pool)


def kernel_btf(src: Path) -> bytes:
    sys.path.insert(0, str(ROOT))
    import pykvm
    with pykvm.open(str(src / "kallsyms.txt"), str(src / "vmcore.elf")) as kd:
        (start, *_), (stop, *_) = kd.nlist(["__start_BTF", "__stop_BTF"])
        return kd.read(start, stop - start)


# ---- the kernel tools' walks ----

WALKS_DUMP = ("panic", "current", "qemu-panic")  # under the cache: a QEMU dump of a panic


class _Recorder:
    """A Kvm handle that remembers every virtual range the kernel tools read and every
    symbol they look up (by name or by index), for cutting a dump down to them."""

    def __init__(self, kd):
        self._kd = kd
        self.reads = []       # (address, size)
        self.names = set()
        self.indices = set()

    def __getattr__(self, name):
        return getattr(self._kd, name)

    def _rec(self, addr, n):
        self.reads.append((int(addr), n))

    def read(self, addr, n, physical=False):
        assert not physical
        self._rec(addr, n)
        return self._kd.read(addr, n)

    def _word(n, name):
        def f(self, addr, physical=False):
            assert not physical
            self._rec(addr, n)
            return getattr(self._kd, name)(addr)
        return f

    read_pointer = _word(8, "read_pointer")
    read_u64 = _word(8, "read_u64")
    read_s64 = _word(8, "read_s64")
    read_u32 = _word(4, "read_u32")
    read_s32 = _word(4, "read_s32")
    del _word

    def read_u64_array(self, addr, count, physical=False):
        self._rec(addr, 8 * count)
        return self._kd.read_u64_array(addr, count)

    def read_many(self, addrs, size, physical=False):
        assert not physical
        addrs = [int(a) for a in addrs]
        for a in addrs:
            self._rec(a, size)
        return self._kd.read_many(addrs, size)

    def _symbol_keys(self):
        key = self._kd._symbol_keys()

        def recorded(i):
            self.indices.add(i)
            return key(i)
        return recorded

    def symbol(self, name):
        self.names.add(name)
        return self._kd.symbol(name)

    def _symbol_at(self, i, name=None):
        self.indices.add(i)
        return self._kd._symbol_at(i, name)


class _Walker:
    """The x86-64 walk pykvm makes, remembering each byte range it reads: page-table
    entries (8 bytes each) and the data itself."""

    def __init__(self, core, info):
        self.core = core
        self.mmu = cutdown.Mmu(core, info)
        self.ranges = set()   # (physical address, size)

    def entry(self, pa):
        self.ranges.add((pa, 8))
        return struct.unpack("<Q", self.core.read_phys(pa, 8))[0] & ~self.mmu.sme_mask

    def translate(self, va):
        """The physical address of va, or None where the walk finds nothing (the entries
        it read up to there are kept: the cut dump must fail at the same step)."""
        m = self.mmu
        top_bit = 56 if m.levels == 5 else 47
        if va >> top_bit not in (0, (1 << (64 - top_bit)) - 1):
            return None
        table = m.root & cutdown.PTE_ADDR
        for shift in (48, 39, 30, 21, 12)[5 - m.levels:]:
            try:
                e = self.entry(table + ((va >> shift) & 0x1FF) * 8)
            except cutdown.CutError:
                return None
            if not e & cutdown.PTE_PRESENT:
                return None
            if shift in (30, 21) and e & cutdown.PTE_PS:
                size = 1 << shift
                return (e & cutdown.PTE_ADDR & ~(size - 1)) | (va & (size - 1))
            table = e & cutdown.PTE_ADDR
        return table | (va & (PAGE - 1))

    def read(self, va, n):
        while n > 0:
            chunk = min(n, PAGE - (va & (PAGE - 1)))
            pa = self.translate(va)
            if pa is None:
                return
            try:
                self.core.read_phys(pa, chunk)
            except cutdown.CutError:
                return
            self.ranges.add((pa, chunk))
            va += chunk
            n -= chunk


def _printk_needs(kd):
    """The printk ring's three arrays (a few MB with log_buf_len=1M, read a block at a time)
    and, of them, what the records in the ring use: each descriptor and info from tail_id to
    head_id and each record's text block."""
    from pykvm.linux import printk
    L = printk._Layout(kd)
    prb = kd.read_pointer(L.prb_ptr)
    ring = prb + L.rb_desc
    count = 1 << kd.read_u32(ring + L.dr_count_bits)
    descs = kd.read_pointer(ring + L.dr_descs)
    infos = kd.read_pointer(ring + L.dr_infos)
    head = kd.read_u64(ring + L.dr_head + L.counter)
    tail = kd.read_u64(ring + L.dr_tail + L.counter)
    size_bits = kd.read_u32(prb + L.rb_text + L.data_size_bits)
    size = 1 << size_bits
    data = kd.read_pointer(prb + L.rb_text + L.data_data)
    whole = [(descs, count * L.desc_size), (infos, count * L.info_size), (data, size)]
    need = []
    n_ids = min((head - tail) & printk._ID_MASK, count - 1)
    for k in range(n_ids + 1):
        idx = (tail + k) & (count - 1)
        d = descs + idx * L.desc_size
        need += [(d, L.desc_size), (infos + idx * L.info_size, L.info_size)]
        begin = kd.read_u64(d + L.desc_lpos + L.lpos_begin)
        nxt = kd.read_u64(d + L.desc_lpos + L.lpos_next)
        if begin & 1 or nxt & 1:
            continue
        b, e = begin & (size - 1), nxt & (size - 1)
        if begin >> size_bits != nxt >> size_bits:
            need += [(data + b, size - b)] if b and e == 0 else [(data, e)]
        else:
            need.append((data + b, e - b))
    return whole, need


def walks_vmcore(src: Path, btf: Path):
    """An ELF vmcore holding only the bytes the kernel tools read in walks_run (the notes,
    the page-table entries of every walk, the data), and the lines of src's kallsyms.txt
    they look up: (vmcore bytes, namelist bytes, the full run's result)."""
    sys.path.insert(0, str(ROOT))
    import pykvm
    core = cutdown.Core(src / "vmcore.elf")
    info = cutdown.vmcoreinfo(core)
    with pykvm.open(str(src / "kallsyms.txt"), str(src / "vmcore.elf"), btf=str(btf)) as kd:
        rec = _Recorder(kd)
        result = walks.run(rec)
        whole, need = _printk_needs(kd)
        symbols = [kd._symbol_at(i) for i in sorted(rec.indices)]
    w = _Walker(core, info)
    # The tool reads each array whole, or page by page where that fails: a page the cut
    # dump holds only in part would be a hole, so the records' pages are kept whole.
    pages = {p for va, n in need for p in range(va & ~(PAGE - 1), va + n, PAGE)}
    def in_ring(va, n):
        return any(a <= va and va + n <= a + size for a, size in whole)
    reads = [r for r in rec.reads if not in_ring(*r)] + [(p, PAGE) for p in sorted(pages)]
    reads.append((int(info["SYMBOL(init_top_pgt)"], 16), 8))
    for va, n in reads:
        w.read(va, n)
    # merge: a program header costs 56 bytes, so ranges closer than that share one
    merged = []
    for pa, n in sorted(w.ranges):
        if merged and pa <= merged[-1][1] + 56:
            merged[-1][1] = max(merged[-1][1], pa + n)
        else:
            merged.append([pa, pa + n])
    elf = _byte_elf(core, [(a, b - a) for a, b in merged])
    core.close()
    wanted = {(n, None) for n in rec.names | {"_text", "_stext", "_etext", "init_top_pgt"}}
    wanted |= {(s.name, s.module) for s in symbols}
    lines = []
    for line in (src / "kallsyms.txt").read_bytes().splitlines(keepends=True):
        f = line.decode().split()
        if len(f) >= 3 and (f[2], f[3].strip("[]") if len(f) > 3 else None) in wanted:
            lines.append(line)
    return elf, b"".join(lines), result


def _byte_elf(core, ranges):
    """cutdown.build_elf with byte ranges (physical address, size) in place of pages."""
    E, P = cutdown.EHDR, cutdown.PHDR
    phnum = len(core.note_segments) + len(ranges)
    assert phnum < cutdown.PN_XNUM
    off = E.size + P.size * phnum
    phdrs, body = [], bytearray()
    for p, data in core.note_segments:
        phdrs.append(P.pack(cutdown.PT_NOTE, p[1], off + len(body), p[3], p[4], p[5], p[6], p[7]))
        body += data
    for start, length in ranges:
        seg = core.load_of(start)
        phdrs.append(P.pack(cutdown.PT_LOAD, seg[4], off + len(body), start, start,
                            length, length, 0))
        body += core.read_phys(start, length)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh = E.pack(ident, cutdown.ET_CORE, cutdown.EM_X86_64, cutdown.EV_CURRENT, 0, E.size, 0, 0,
                E.size, P.size, phnum, 0, 0, 0)
    return eh + b"".join(phdrs) + bytes(body)


def _elf_offset(elf: bytes, pa: int) -> int:
    """Where physical address pa is stored in an ELF vmcore."""
    phoff, = struct.unpack_from("<Q", elf, 32)
    phnum, = struct.unpack_from("<H", elf, 56)
    for i in range(phnum):
        t, _, off, _, p, fs, _, _ = struct.unpack_from("<IIQQQQQQ", elf, phoff + 56 * i)
        if t == 1 and p <= pa < p + fs:
            return off + pa - p
    raise KeyError(f"{pa:#x} is not in the vmcore")


def walks_regressions(seed: bytes) -> dict:
    """The walks target's findings, rebuilt on its seed: a printk ring header claiming
    2^28 descriptors (the tool read each array of the ring whole: gigabytes)."""
    sys.path.insert(0, str(ROOT))
    import pykvm
    from pykvm.linux import printk
    with pykvm.open(str(walks.NAMELIST), str(ROOT / "fuzz" / "seeds" / "walks" / "qemu-panic.elf")) as kd:
        L = printk._Layout(kd)
        prb = kd.read_pointer(L.prb_ptr)
        at = _elf_offset(seed, kd.physaddr(prb + L.rb_desc + L.dr_count_bits))
    bad = bytearray(seed)
    struct.pack_into("<I", bad, at, 28)
    return {"printk-count-bits-28": bytes(bad)}


# ---- regressions: the defects the fuzzer found, rebuilt on the seeds ----

def regressions(kdump_seed: bytes, kallsyms_seed: bytes, ttab_off: int, num_off: int) -> None:
    def put(target, name, data):
        d = ROOT / "fuzz" / "regressions" / target
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
        print(f"regressions/{target}/{name}: {len(data)} bytes")

    bs = struct.unpack_from("<i", kdump_seed, 428)[0]
    for below in (1, 7):  # max_mapnr_64 within 7 of 2^64: the bitmap size wrapped
        bad = bytearray(kdump_seed)
        struct.pack_into("<Q", bad, bs + 96, (1 << 64) - below)
        put("kdump", f"max-mapnr-2^64-{below}", bytes(bad))
    # A small flattened dump claiming 2^20 bitmap blocks, a record a TiB out.
    head = bytearray(kdump_seed[:3 * bs])
    struct.pack_into("<I", head, 436, 1 << 20)
    struct.pack_into("<Q", head, bs + 96, (1 << 19) * bs * 8)
    flat = bytearray(flatten(bytes(head))[:-16])
    flat += struct.pack(">QQ", 1 << 40, 16) + bytes(16) + struct.pack(">QQ", (1 << 64) - 1, 0)
    put("kdump", "flat-huge-bitmaps", bytes(flat))
    # kallsyms: a count past its address table; tokens longer than KSYM_NAME_LEN.
    bad = bytearray(kallsyms_seed)
    struct.pack_into("<I", bad, num_off, 4_000_000)
    put("kallsyms", "num-syms-4M", bytes(bad))
    bad = bytearray(kallsyms_seed)
    end = ttab_off + 900  # the table is 920 bytes: its index follows
    bad[ttab_off:end] = bytes(b if b else 0x41 for b in bad[ttab_off:end])
    put("kallsyms", "long-tokens", bytes(bad))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=os.environ.get("PYKVM_CACHE") or str(Path.home() / ".cache" / "pykvm"))
    ap.add_argument("--walks-btf", metavar="PATH",
                    help="only cut the walks target's BTF from the panic dump, to PATH")
    args = ap.parse_args()
    cache = Path(args.cache)
    if args.walks_btf:
        Path(args.walks_btf).parent.mkdir(parents=True, exist_ok=True)
        Path(args.walks_btf).write_bytes(kernel_btf(cache.joinpath(*WALKS_DUMP)))
        return
    proc = cache / "proc"
    dump = (cache / "dumps" / "current" / "nokaslr-96M").resolve()
    images = sorted((cache / "images").glob("*/kaslr-256M"))[0]

    write("elf", "target64.core", cut_process_core(proc / "target64.core"))
    write("elf", "target32.core", cut_process_core(proc / "target32.core"))
    for codec in ("lzo", "zlib", "snappy", "zstd", "raw"):
        data = open(dump / f"vmcore.mdf-{codec}", "rb").read(1 << 25)
        write("kdump", f"mdf-{codec}", cut_kdump(data, pages=2 if codec == "raw" else 6))
    write("kdump", "mdf-lzo.flat", flatten(cut_kdump(open(dump / "vmcore.mdf-lzo", "rb").read(1 << 25))))
    write("images", "memory.lime", b"\x01" + cut_lime(images / "memory.lime"))
    write("images", "memory.avml", b"\x02" + cut_avml(images / "memory.avml"))
    write("images", "memory.raw", b"\x03" + open(images / "memory.raw-lime", "rb").read(2 * PAGE))
    lines = open(dump / "kallsyms.txt", "rb").read().split(b"\n")
    write("namelist", "kallsyms-300.txt", b"\n".join(lines[:300]) + b"\n")
    write("namelist", "le64.elf", (proc / "le64.elf").read_bytes())
    elf, ttab_off, num_off = kallsyms_vmcore(dump)
    write("kallsyms", "vmcore-kallsyms.elf", elf)
    write("pgtable", "vmcore-kallsyms.elf", elf)
    write("btf", "list_head.btf", cut_btf(kernel_btf(dump)))
    regressions((ROOT / "fuzz" / "seeds" / "kdump" / "mdf-lzo").read_bytes(), elf, ttab_off, num_off)
    # walks: the QEMU panic dump cut to what the tools read; its BTF, the target's fixed
    # types, is not in the seed (5 MB): make fuzz-walks-build cuts it to build/fuzz/walks.btf
    src = cache.joinpath(*WALKS_DUMP)
    walks.BTF.parent.mkdir(parents=True, exist_ok=True)
    walks.BTF.write_bytes(kernel_btf(src))
    elf, namelist, _ = walks_vmcore(src, walks.BTF)
    write("walks", "qemu-panic.elf", elf)
    walks.NAMELIST.write_bytes(namelist)
    d = ROOT / "fuzz" / "regressions" / "walks"
    d.mkdir(parents=True, exist_ok=True)
    for name, data in walks_regressions(elf).items():
        (d / name).write_bytes(data)
        print(f"regressions/walks/{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
