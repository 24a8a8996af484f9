"""The workloads.  Each case takes the shared Context and returns (rows, targets).

Readers of one table are timed in turn, pass by pass (common.interleaved), and
before a reader is timed its bytes are checked against drgn's on the same list
(a digest): a reader that returns other bytes is marked, not silently timed.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from array import array
from typing import Callable, Dict, List, Optional, Tuple

import readers
from common import (CACHE, CLOCKS, COMPRESSED, DUMPS, HERE, MEMORY_VARIANT, MiB, SMALL_VARIANT,  # noqa: F401
                    Context, Dump, Row, Target, check, digest_reads, drgn_u64, dump, score,
                    error_text, first_per_page, floor_offsets, fmt_ratio, interleaved,
                    loop_pread, loop_read, loop_readinto, loop_slice, ratio, small_addresses,
                    clock, set_clock, timings)
from readers import CoreMap, Handle


# ---------------------------------------------------------------- case: small reads, ELF

def case_small_elf(ctx: Context):
    d = dump(ctx, SMALL_VARIANT)
    core = d.path("vmcore.elf")
    addrs = small_addresses(ctx)
    sec = f"Small reads, ELF ({d.variant}/vmcore.elf): {len(addrs):,} random 8-byte reads at " \
          f"kernel symbol addresses, µs per read (median of {ctx.reps} interleaved passes)"
    ref = digest_reads(readers.open_drgn(core).read, addrs, 8)
    per = len(addrs) * 1000.0
    fns: Dict[str, Callable[[], object]] = {}
    notes: Dict[str, str] = {}
    handles: List[Handle] = []
    order: List[str] = []

    def add(label: str, make: Callable[[], Tuple[Handle, Callable[[], object]]]) -> None:
        order.append(label)
        try:
            h, fn = make()
            handles.append(h)
            notes[label] = check(h, addrs, 8, ref)
            fns[label] = fn
        except Exception as e:
            notes[label] = error_text(e)

    def reader(opener: Callable[[], Handle], how: str = "read"):
        def make():
            h = opener()
            if how == "readinto":
                buf = bytearray(8)
                return h, lambda: loop_readinto(h.readinto, addrs, buf)
            return h, lambda: loop_read(h.read, addrs, 8)
        return make

    add("pykvm read(addr, 8)", reader(lambda: readers.open_pykvm(core, d.kallsyms)))
    add("pykvm readinto(addr, buf8)", reader(lambda: readers.open_pykvm(core, d.kallsyms), "readinto"))
    add("drgn Program.read", reader(lambda: readers.open_drgn(core)))
    add("libkdumpfile read", reader(lambda: readers.open_kdumpfile(core)))

    # Integers: read_u64 (and drgn's), read_u32 and the member read typed
    # objects use, checked against drgn's values of the same addresses.
    drgn_prog = readers.open_drgn(core).obj
    want64 = [drgn_prog.read_u64(a) for a in addrs]  # type: ignore[attr-defined]
    want32 = [drgn_prog.read_u32(a) for a in addrs]  # type: ignore[attr-defined]

    def ints(label: str, opener, call: Callable, want: List[int]) -> None:
        order.append(label)
        try:
            h = opener()
            handles.append(h)
            fn = call(h)
            notes[label] = "" if fn() == want else "VALUES DIFFER from drgn"
            fns[label] = fn
        except Exception as e:
            notes[label] = error_text(e)

    pyk = lambda: readers.open_pykvm(core, d.kallsyms)  # noqa: E731
    ints("pykvm read_u64(addr)", pyk,
         lambda h: (lambda f=h.obj.read_u64: [f(a) for a in addrs]), want64)  # type: ignore
    ints("drgn Program.read_u64", lambda: readers.open_drgn(core),
         lambda h: (lambda f=h.obj.read_u64: [f(a) for a in addrs]), want64)  # type: ignore
    ints("pykvm read_u32(addr)", pyk,
         lambda h: (lambda f=h.obj.read_u32: [f(a) for a in addrs]), want32)  # type: ignore
    ints("pykvm read_member(addr, 0, 4) (typed objects' primitive)", pyk,
         lambda h: (lambda f=h.obj.read_member: [f(a, 0, 4) for a in addrs]), want32)  # type: ignore

    # The floors, at the same bytes: file offsets from pykvm's translation,
    # placed by our own PT_LOAD table, checked against drgn's bytes.
    cm = CoreMap(core)
    kd = readers.open_pykvm(core, d.kallsyms).obj
    offs = floor_offsets(cm, kd, addrs, 8)
    kd.close()  # type: ignore[attr-defined]
    # Info: the least a Python-level read(addr, size) method can do over a
    # map: one dict look-up of the page, one slice.
    pages = {a >> 12: o - (a & 4095) for a, o in zip(addrs, offs)}

    def py_read(addr, size, _get=pages.get, _mm=cm.mm):
        off = _get(addr >> 12)
        if off is not None:
            rel = addr & 4095
            return _mm[off + rel:off + rel + size]
    by_addr = dict(zip(addrs, offs))
    slice_read = Handle("floor", lambda a, n: cm.mm[by_addr[a]:by_addr[a] + n], None, lambda: None, cm)
    pread_read = Handle("floor", lambda a, n: os.pread(cm.fd, n, by_addr[a]), None, lambda: None, cm)
    add("floor: Python mmap slice mm[o:o+8]", lambda: (slice_read, lambda: loop_slice(cm.mm, offs, 8)))
    order.append("floor: [mm[o:o+8] for o in offs] (a list, as the integer rows build)")
    fns[order[-1]] = lambda: [cm.mm[o:o + 8] for o in offs]
    add("floor: os.pread(fd, 8, o)", lambda: (pread_read, lambda: loop_pread(cm.fd, offs, 8)))
    add("info: minimal pure-Python read(addr, 8): dict of pages + slice",
        lambda: (Handle("py", py_read, None, lambda: None, None), lambda: loop_read(py_read, addrs, 8)))

    med = interleaved(fns, ctx.reps)
    res: Dict[str, Optional[float]] = {k: (med[k] / per if k in med else None) for k in order}
    rows = [Row(sec, k, res[k], "µs", notes.get(k, "")) for k in order]
    for h in handles:
        h.close()
    cm.close()

    ours = res.get("pykvm read(addr, 8)")
    u64 = res.get("pykvm read_u64(addr)")
    r1 = ratio(res.get("drgn Program.read"), ours)
    r2 = ratio(ours, res.get("floor: Python mmap slice mm[o:o+8]"))
    r3 = ratio(res.get("drgn Program.read_u64"), u64)
    r4 = ratio(u64, res.get("floor: [mm[o:o+8] for o in offs] (a list, as the integer rows build)"))
    r5 = ratio(res.get("pykvm read_member(addr, 0, 4) (typed objects' primitive)"),
               res.get("pykvm read_u32(addr)"))
    # The floor stops the drgn target when the bare mmap slice itself, which
    # no reader called from Python can beat, is less than 20x drgn.
    f1 = ratio(res.get("drgn Program.read"), res.get("floor: Python mmap slice mm[o:o+8]"))
    f3 = ratio(res.get("drgn Program.read_u64"),
               res.get("floor: [mm[o:o+8] for o in offs] (a list, as the integer rows build)"))
    fl1 = "" if f1 is None else f" (the mmap-slice floor itself: {f1:.1f}× drgn)"
    fl3 = "" if f3 is None else f" (the floor itself: {f3:.1f}× drgn)"
    targets = [
        Target("read(addr, 8), ELF: vs drgn", "≥ 20× faster than drgn",
               f"{fmt_ratio(r1)} faster{fl1}", None if r1 is None else r1 >= 20, score(r1, 20)),
        Target("read(addr, 8), ELF: vs mmap-slice floor", "≤ 1.3× the mmap slice",
               f"{fmt_ratio(r2)} the floor's time", None if r2 is None else r2 <= 1.3, score(1.3, r2)),
        Target("read_u64(addr), ELF: vs drgn read_u64", "≥ 20× faster than drgn",
               f"{fmt_ratio(r3)} faster{fl3}", None if r3 is None else r3 >= 20, score(r3, 20)),
        Target("read_u64(addr), ELF: vs mmap-slice floor", "≤ 1.3× the mmap slice",
               f"{fmt_ratio(r4)} the floor's time", None if r4 is None else r4 <= 1.3, score(1.3, r4)),
        # Not the target itself (that is typed objects' member read, measured by
        # bench/types.py): the C primitive those objects call, for reference.
        Target("Member read primitive read_member(addr, 0, 4) vs read_u32", "≤ 2× a raw read_u32",
               f"{fmt_ratio(r5)} read_u32's time", None if r5 is None else r5 <= 2, score(2, r5),
               earlier=True),
    ]
    return rows, targets


# ---------------------------------------------------------------- case: small reads, compressed

def case_small_compressed(ctx: Context):
    d = dump(ctx, SMALL_VARIANT)
    addrs = small_addresses(ctx)
    cold = first_per_page(addrs)
    rows: List[Row] = []
    targets: List[Target] = []
    per = len(addrs) * 1000.0
    cold_reps = 3 if ctx.quick else 5
    ref = digest_reads(readers.open_drgn(d.path("vmcore.elf")).read, addrs, 8)

    openers = [
        ("pykvm read (cache 4096 pages, default)", lambda core: readers.open_pykvm(core, d.kallsyms)),
        ("drgn Program.read (libkdumpfile inside, 1024 pages)", readers.open_drgn),
        ("libkdumpfile read (cache 1024 pages, default)", lambda core: readers.open_kdumpfile(core)),
        ("libkdumpfile read (cache 4096 pages)", lambda core: readers.open_kdumpfile(core, 4096)),
    ]
    for fmt in COMPRESSED:
        core = d.path(fmt)
        codec = fmt.split("-")[-1]
        warm_sec = (f"Small reads, {fmt} warm: the same {len(addrs):,} reads "
                    f"({len({a >> 12 for a in addrs}):,} distinct pages) after one pass, µs per read "
                    f"(median of {ctx.reps} interleaved passes)")
        cold_sec = (f"Small reads, {fmt} cold: first touch of each of {len(cold):,} pages, "
                    f"fresh handle per pass (file in the OS cache), µs per read "
                    f"(median of {cold_reps} interleaved passes)")
        # Warm: every reader open at once, primed by the byte check, then timed in turn.
        fns: Dict[str, Callable[[], object]] = {}
        notes: Dict[str, str] = {}
        handles = []
        for label, opener in openers:
            try:
                h = opener(core)
                handles.append(h)
                notes[label] = check(h, addrs, 8, ref)
                fns[label] = (lambda rd: lambda: loop_read(rd, addrs, 8))(h.read)
            except Exception as e:
                notes[label] = error_text(e)
        med = interleaved(fns, ctx.reps, warmup=0)
        warm = {label: (med[label] / per if label in med else None) for label, _ in openers}
        rows += [Row(warm_sec, label, warm[label], "µs", notes[label]) for label, _ in openers]
        for h in handles:
            h.close()
        del handles, fns
        # Cold: a fresh handle per pass, readers in turn.
        cold_ts: Dict[str, List[int]] = {label: [] for label, _ in openers}
        cold_err: Dict[str, str] = {}
        for _ in range(cold_reps):
            for label, opener in openers:
                if label in cold_err:
                    continue
                try:
                    h = opener(core)
                    rd = h.read
                    cold_ts[label] += timings(lambda: loop_read(rd, cold, 8), 1, warmup=0)
                    h.close()
                except Exception as e:
                    cold_err[label] = error_text(e)
        coldr = {label: (statistics.median(v) / (len(cold) * 1000.0) if v and label not in cold_err else None)
                 for label, v in cold_ts.items()}
        rows += [Row(cold_sec, label, coldr[label], "µs", cold_err.get(label, "")) for label, _ in openers]
        # Warm integers: pykvm read_u64 against drgn's.
        u64: Dict[str, Optional[float]] = {}
        want64 = [readers.open_drgn(d.path("vmcore.elf")).obj.read_u64(a) for a in addrs]  # type: ignore
        u64_fns: Dict[str, Callable[[], object]] = {}
        u64_notes: Dict[str, str] = {}
        u64_labels = ["pykvm read_u64 (cache 4096 pages, default)", "drgn Program.read_u64"]
        try:
            kh = readers.open_pykvm(core, d.kallsyms)
            dh = readers.open_drgn(core)
            for label, f in zip(u64_labels, (kh.obj.read_u64, dh.obj.read_u64)):  # type: ignore
                fn = (lambda f: lambda: [f(a) for a in addrs])(f)
                u64_notes[label] = "" if fn() == want64 else "VALUES DIFFER from drgn (ELF)"
                u64_fns[label] = fn
            med = interleaved(u64_fns, ctx.reps, warmup=0)
            u64 = {k: med[k] / per for k in med}
            kh.close()
        except Exception as e:
            u64_notes = {k: error_text(e) for k in u64_labels}
        rows += [Row(warm_sec + " ", label, u64.get(label), "µs", u64_notes.get(label, ""))
                 for label in u64_labels]
        # The floor of a cold read: the codec alone decoding the same pages.
        try:
            floor, note = codec_floor(d, core, cold)
        except Exception as e:
            floor, note = None, error_text(e)
        rows.append(Row(cold_sec, f"floor: the codec alone ({codec}) decoding each page once",
                        floor, "µs", note))
        ours, theirs = openers[0][0], openers[1][0]
        rw = ratio(warm.get(theirs), warm.get(ours))
        rw64 = ratio(u64.get(u64_labels[1]), u64.get(u64_labels[0]))
        rc = ratio(coldr.get(theirs), coldr.get(ours))
        targets.append(Target(f"read(addr, 8), {codec} warm: vs drgn", "≥ 20× faster than drgn",
                              f"{fmt_ratio(rw)} faster", None if rw is None else rw >= 20,
                              score(rw, 20)))
        targets.append(Target(f"read_u64(addr), {codec} warm: vs drgn", "≥ 20× faster than drgn",
                              f"{fmt_ratio(rw64)} faster", None if rw64 is None else rw64 >= 20,
                              score(rw64, 20)))
        # The floor stops the target when the codec alone takes more than
        # drgn's time / 1.3: then no reader using this codec library can meet it.
        cf = "" if floor is None or coldr.get(ours) is None else \
            f"; pykvm {coldr[ours]:.1f} µs, codec floor {floor:.1f} µs"
        if floor and coldr.get(theirs):
            cf += f" (drgn ÷ floor: {coldr[theirs] / floor:.2f}×, the most any reader of this codec gets)"
        targets.append(Target(f"Cold read, {codec}: vs drgn", "≥ 1.3× faster than drgn",
                              f"{fmt_ratio(rc)} faster{cf}", None if rc is None else rc >= 1.3,
                              score(rc, 1.3)))
    return rows, targets


def codec_floor(d: Dump, core: str, addrs: List[int]) -> Tuple[Optional[float], str]:
    """µs per page for the codec's own library (through ctypes) to decode the
    compressed pages behind addrs, read straight from the makedumpfile file
    (its descriptor table; the pages pykvm decodes on a cold pass)."""
    import ctypes
    import ctypes.util
    import struct
    import pykvm
    data = open(core, "rb").read()
    assert data[:8] == b"KDUMP   "
    block, sub_blocks, bitmap_blocks = struct.unpack_from("<iiI", data, 428)
    bitmap2 = (1 + sub_blocks + bitmap_blocks // 2) * block
    descs = (1 + sub_blocks + bitmap_blocks) * block
    bm = data[bitmap2:bitmap2 + bitmap_blocks // 2 * block]
    rank = [0] * (len(bm) + 1)
    for i, byte in enumerate(bm):
        rank[i + 1] = rank[i] + bin(byte).count("1")
    with pykvm.open(d.kallsyms, core) as kd:
        pfns = sorted({kd.physaddr(a) >> 12 for a in addrs})
    pages = []
    for pfn in pfns:
        i, b = divmod(pfn, 8)
        if i >= len(bm) or not bm[i] >> b & 1:
            continue
        idx = rank[i] + bin(bm[i] & ((1 << b) - 1)).count("1")
        off, size, flags, _ = struct.unpack_from("<qIIQ", data, descs + 24 * idx)
        if flags:
            pages.append((flags, data[off:off + size]))
    if not pages:
        return None, "no compressed pages"
    out = ctypes.create_string_buffer(block)
    outlen = ctypes.c_size_t()
    zlib_lib = ctypes.CDLL(ctypes.util.find_library("z"))
    lzo = ctypes.CDLL(ctypes.util.find_library("lzo2") or "liblzo2.so.2")
    zl = ctypes.c_ulong()

    def decode_all():
        for flags, src in pages:
            if flags & 1:
                zl.value = block
                zlib_lib.uncompress(out, ctypes.byref(zl), src, ctypes.c_ulong(len(src)))
            elif flags & 2:
                outlen.value = block
                lzo.lzo1x_decompress_safe(src, ctypes.c_size_t(len(src)), out,
                                          ctypes.byref(outlen), None)
    ts = timings(decode_all, 5)
    return statistics.median(ts) / len(pages) / 1000.0, \
        f"{len(pages):,} compressed pages; ctypes call included (~0.3 µs)"



# ---------------------------------------------------------------- case: bulk reads

def bulk_chunks(ctx: Context) -> Dict[str, List[int]]:
    d = dump(ctx, SMALL_VARIANT)
    n = 32
    text = [d.by_name["_text"] + i * MiB for i in range(n)]
    pob = drgn_u64(d, "vmcore.elf", "page_offset_base")
    direct = [pob + 32 * MiB + i * MiB for i in range(n)]  # physical 32..64 MiB
    return {"kernel text mapping (from _text)": text, "direct map (phys 32-64 MiB)": direct}


def case_bulk(ctx: Context):
    d = dump(ctx, SMALL_VARIANT)
    core = d.path("vmcore.elf")
    rows: List[Row] = []
    targets: List[Target] = []
    drgn = readers.open_drgn(core)
    kd = readers.open_pykvm(core, d.kallsyms).obj
    cm = CoreMap(core)
    dst = bytearray(MiB)
    import ctypes
    dst_addr = ctypes.addressof((ctypes.c_char * MiB).from_buffer(dst))
    for where, chunks in bulk_chunks(ctx).items():
        sec = (f"Bulk reads, ELF ({d.variant}/vmcore.elf), {where}: {len(chunks)} × 1 MiB, "
               f"GB/s (10⁹ B/s; median of {ctx.reps} interleaved passes)")
        total = len(chunks) * MiB
        ref = digest_reads(drgn.read, chunks, MiB)
        res: Dict[str, Optional[float]] = {}
        pending: Dict[str, Callable[[], object]] = {}
        order: List[Tuple[str, str]] = []  # (label, note or error)

        def put(label: str, fn: Optional[Callable[[], None]], note: str = "", err: str = "") -> None:
            order.append((label, err or note))
            if fn is not None:
                pending[label] = fn

        def pykvm_readinto():
            ri = kd.readinto  # type: ignore[attr-defined]
            for a in chunks:
                ri(a, dst)
        # readinto's bytes: read each chunk into dst and hash it.
        h = hashlib.sha256()
        for a in chunks:
            kd.readinto(a, dst)  # type: ignore[attr-defined]
            h.update(dst)
        put("pykvm readinto(addr, 1 MiB buffer)", pykvm_readinto,
            "" if h.hexdigest() == ref else "BYTES DIFFER from drgn")
        put("pykvm read(addr, 1 MiB)", lambda: loop_read(kd.read, chunks, MiB))  # type: ignore[attr-defined]
        put("drgn Program.read", lambda: loop_read(drgn.read, chunks, MiB))
        try:
            kh = readers.open_kdumpfile(core)
            put("libkdumpfile read", lambda: loop_read(kh.read, chunks, MiB), check(kh, chunks, MiB, ref))
        except Exception as e:
            put("libkdumpfile read", None, err=error_text(e))
        # Floors: the same bytes straight from the mapped file.
        try:
            offs = [cm.offset(kd.physaddr(a), MiB) for a in chunks]  # type: ignore[attr-defined]
            for a, o in zip(chunks, offs):  # physically contiguous chunks only
                if kd.physaddr(a + MiB - 1) - kd.physaddr(a) != MiB - 1:  # type: ignore[attr-defined]
                    raise ValueError(f"chunk 0x{a:x} is not physically contiguous")
            h = hashlib.sha256()
            for o in offs:
                h.update(cm.mm[o:o + MiB])
            note = "" if h.hexdigest() == ref else "BYTES DIFFER from drgn"
            memmove, base = ctypes.memmove, cm.base

            def floor_memmove():
                for o in offs:
                    memmove(dst_addr, base + o, MiB)
            put("floor: ctypes.memmove from the mapped file", floor_memmove, note)
            put("floor: bytes copy mm[o:o+1 MiB]", lambda: loop_slice(cm.mm, offs, MiB), note)
        except Exception as e:
            put("floor: ctypes.memmove from the mapped file", None, err=error_text(e))
        src = bytearray(MiB)
        src_addr = ctypes.addressof((ctypes.c_char * MiB).from_buffer(src))
        put("info: memmove 1 MiB → 1 MiB, same buffers (cache-hot)",
            lambda: [ctypes.memmove(dst_addr, src_addr, MiB) for _ in chunks] and None,
            "not the floor: source stays in cache")
        med = interleaved(pending, ctx.reps)
        for label, note in order:
            res[label] = total / med[label] if label in med else None  # bytes per ns = GB/s
            rows.append(Row(sec, label, res[label], "GB/s", note))
        ours = res.get("pykvm readinto(addr, 1 MiB buffer)")
        r1 = ratio(ours, res.get("drgn Program.read"))
        r2 = ratio(ours, res.get("floor: ctypes.memmove from the mapped file"))
        short = where.split(" (")[0]
        targets.append(Target(f"Bulk 1 MiB, {short}: vs drgn", "≥ drgn's throughput",
                              f"{fmt_ratio(r1)} drgn's", None if r1 is None else r1 >= 1.0,
                              score(r1, 1.0), earlier=True))
        targets.append(Target(f"readinto 1 MiB, {short}: vs memcpy", "≥ 0.9× memcpy of the same bytes",
                              "n/a" if r2 is None else f"{r2:.2f}× memmove's throughput",
                              None if r2 is None else r2 >= 0.9, score(r2, 0.9)))
    kd.close()  # type: ignore[attr-defined]
    cm.close()
    return rows, targets


# ---------------------------------------------------------------- case: batch

def case_batch(ctx: Context):
    d = dump(ctx, SMALL_VARIANT)
    addrs = small_addresses(ctx)
    rows: List[Row] = []
    targets: List[Target] = []
    sizes = array("Q", [8] * len(addrs))
    packed = array("Q", addrs)
    per = len(addrs) * 1000.0
    for fmt in ("vmcore.elf", "vmcore.mdf-lzo"):
        sec = (f"Batch, {d.variant}/{fmt}{' (warm)' if 'mdf' in fmt else ''}: {len(addrs):,} "
               f"8-byte reads, µs per item (median of {ctx.reps} interleaved runs)")
        res: Dict[str, Optional[float]] = {}
        try:
            kd = readers.open_pykvm(d.path(fmt), d.kallsyms).obj
        except Exception as e:
            rows.append(Row(sec, "pykvm", None, "µs", error_text(e)))
            continue
        rd = kd.read  # type: ignore[attr-defined]
        expect = b"".join([rd(a, 8) for a in addrs])
        calls = [
            ("Python loop: [kd.read(a, 8) for a in addrs]", lambda: [rd(a, 8) for a in addrs],
             lambda out: b"".join(out)),
            ("kd.read_scatter(addrs, sizes)", lambda: kd.read_scatter(packed, sizes), bytes),  # type: ignore
            ("kd.read_many(list, 8)", lambda: kd.read_many(addrs, 8), bytes),  # type: ignore
            ("kd.read_many(array('Q'), 8)", lambda: kd.read_many(packed, 8), bytes),  # type: ignore
            ("kd.read_many(memoryview(array('Q')), 8)", lambda: kd.read_many(memoryview(packed), 8), bytes),  # type: ignore
        ]
        fns: Dict[str, Callable[[], object]] = {}
        notes: Dict[str, str] = {}
        for label, fn, join in calls:
            try:
                notes[label] = "" if join(fn()) == expect else "BYTES DIFFER from the loop"
                fns[label] = fn
            except Exception as e:
                notes[label] = error_text(e)
        med = interleaved(fns, ctx.reps)
        for label, _, _ in calls:
            res[label] = med[label] / per if label in med else None
            rows.append(Row(sec, label, res[label], "µs", notes[label]))
        kd.close()  # type: ignore[attr-defined]
        loop = res.get("Python loop: [kd.read(a, 8) for a in addrs]")
        # The batch calls take uint64 buffers as they are; a list of ints is
        # converted item by item (PyList_GetItem + PyLong_AsUnsignedLong, ~60
        # of its ~260 instructions an item): kept as an info row.
        for label in ("kd.read_scatter(addrs, sizes)", "kd.read_many(array('Q'), 8)",
                      "kd.read_many(memoryview(array('Q')), 8)", "kd.read_many(list, 8)"):
            r = ratio(loop, res.get(label))
            info = "list" in label
            targets.append(Target(f"Batch {label[3:]}, {fmt.split('.')[-1]}" + (" (info)" if info else ""),
                                  "≥ 5× faster per item than a loop of read", f"{fmt_ratio(r)} faster",
                                  None if r is None else r >= 5.0, score(r, 5.0), earlier=info))
    return rows, targets


# ---------------------------------------------------------------- case: open

def system_map(ctx: Context) -> str:
    """A System.map (link-time addresses) for the dumps' kernel: the nokaslr
    boot's /proc/kallsyms without module lines (they are equal there)."""
    def make():
        release = dump(ctx, SMALL_VARIANT).truth["release"]
        out = CACHE / "bench" / f"System.map-{release}"
        if not out.exists():
            src = DUMPS / "nokaslr-96M" / "kallsyms.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            lines = [l for l in src.read_text().splitlines() if len(l.split()) == 3]
            tmp = out.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n")
            tmp.rename(out)
        return str(out)
    return ctx.once("system_map", make)  # type: ignore[return-value]


def parse_system_map(path: str) -> Dict[str, int]:
    table: Dict[str, int] = {}
    with open(path) as f:
        for line in f:
            addr, _, name = line.split()
            table.setdefault(name, int(addr, 16))
    return table


def case_open(ctx: Context):
    d = dump(ctx, SMALL_VARIANT)
    core = d.path("vmcore.elf")
    smap = system_map(ctx)
    nsyms = sum(1 for _ in open(smap))
    link = parse_system_map(smap)
    rng = random.Random(2)
    names = rng.sample(sorted(n for n in link if n in d.by_name), 1000)
    truth = [d.by_name[n] for n in names]  # runtime (KASLR) addresses, from the guest
    sec = (f"Open, {d.variant}/vmcore.elf: open + look up 1,000 names, ms "
           f"(median; handle closed outside the timer; files in the OS cache)")
    rows: List[Row] = []
    res: Dict[str, Optional[float]] = {}
    reps = 3 if ctx.quick else 7

    def timed(label: str, body: Callable[[], Tuple[object, List[int]]], reps: int, note: str = "") -> None:
        """body() opens, looks the names up and returns (handle-to-close, values)."""
        try:
            ts = []
            for _ in range(reps + 1):  # the first is the warm-up
                gc.collect()
                t0 = clock()
                handle, values = body()
                ts.append(clock() - t0)
                if values != truth:
                    bad = sum(v != t for v, t in zip(values, truth))
                    note = f"WRONG ADDRESSES for {bad} of 1,000 names"
                if hasattr(handle, "close"):
                    handle.close()  # type: ignore[attr-defined]
                del handle
            t = statistics.median(ts[1:]) / 1e6
            res[label] = t
            rows.append(Row(sec, label, t, "ms", note))
        except Exception as e:
            res[label] = None
            rows.append(Row(sec, label, None, "ms", error_text(e)))

    def pykvm_body(namelist):
        def body():
            import pykvm
            kd = pykvm.open(namelist, core)
            got = kd.nlist(names)
            return kd, [g[0] if g else 0 for g in got]
        return body

    timed(f"pykvm open(System.map, {nsyms:,} symbols) + nlist(1,000)", pykvm_body(smap), reps)
    timed("pykvm open(namelist=None: the dump's kallsyms) + nlist(1,000)", pykvm_body(None), reps)
    timed(f"pykvm open(kallsyms.txt, {sum(1 for _ in open(d.kallsyms)):,} lines) + nlist(1,000)",
          pykvm_body(d.kallsyms), reps, "info")

    def drgn_open():
        import drgn
        prog = drgn.Program()
        prog.set_core_dump(core)
        return None, truth  # no names: this row is the open alone
    timed("drgn Program.set_core_dump (open only, no symbols)", drgn_open, reps,
          "no symbol look-ups")

    def drgn_kallsyms():
        import drgn
        from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms
        prog = drgn.Program()
        prog.set_core_dump(core)
        prog.register_symbol_finder("kallsyms", load_vmlinux_kallsyms(prog), enable_index=0)
        return None, [prog.symbol(n).address for n in names]
    timed("drgn open + load_vmlinux_kallsyms (the dump's kallsyms) + 1,000 symbol()",
          drgn_kallsyms, 2 if ctx.quick else 3)

    disp = d.by_name["_stext"] - link["_stext"]

    def python_parse():
        table = parse_system_map(smap)
        return None, [table[n] + disp if table[n] >= 0xffffffff80000000 else table[n] for n in names]
    timed("Python: parse the System.map into a dict + 1,000 look-ups", python_parse, reps,
          "no dump opened")

    def kdf_open():
        return readers.open_kdumpfile(core).obj, truth
    timed("libkdumpfile open (no symbols)", kdf_open, reps, "no symbol look-ups")

    a = res.get(f"pykvm open(System.map, {nsyms:,} symbols) + nlist(1,000)")
    b = res.get("pykvm open(namelist=None: the dump's kallsyms) + nlist(1,000)")
    targets = [
        Target("Open + System.map + 1,000 nlist", "≤ 25 ms",
               "n/a" if a is None else f"{a:.1f} ms", None if a is None else a <= 25,
               score(25, a), earlier=True),
        Target("Open with namelist=None (kallsyms in the dump)", "≤ 50 ms",
               "n/a" if b is None else f"{b:.1f} ms", None if b is None else b <= 50,
               score(50, b), earlier=True),
    ]
    return rows, targets


# ---------------------------------------------------------------- case: memory

def memory_pages(ctx: Context, d: Dump) -> List[int]:
    """10,000 random direct-map page addresses of guest RAM, each stored in
    the filtered makedumpfile dump too (seed 3; with replacement only if the
    dump holds fewer pages)."""
    import pykvm
    pob = drgn_u64(d, "vmcore.elf", "page_offset_base")
    frames = [pfn for lo, hi in d.ram_ranges() for pfn in range((lo + 4095) >> 12, hi >> 12)]
    rng = random.Random(3)
    rng.shuffle(frames)
    cand = [pob + (pfn << 12) for pfn in frames]
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-zlib"), cache_pages=1) as kd:
        _, results = kd.try_read_many(cand, 1)
        present = [a for i, a in enumerate(cand) if results[i] == 1]
    n = 2000 if ctx.quick else 10000
    return present[:n] if len(present) >= n else [rng.choice(present) for _ in range(n)]


def case_memory(ctx: Context):
    d = dump(ctx, MEMORY_VARIANT)
    pages = memory_pages(ctx, d)
    cache_pages = 4096
    tmp = CACHE / "bench" / "memory-pages.u64"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(array("Q", pages).tobytes())
    sec = (f"Memory, {d.variant}: RSS added by open + reading {len(pages):,} random pages "
           f"({len(set(pages)):,} distinct, 4 KiB each), one subprocess per reader, MiB "
           f"(VmRSS = RssAnon + RssFile + RssShmem)")
    rows: List[Row] = []
    targets: List[Target] = []
    variants = {"pykvm": {}, "pykvm, pread=True": {"pread": True},
                "pykvm, map_budget unbounded": {"map_budget": 1 << 62}}
    for fmt in ("vmcore.elf", "vmcore.mdf-zlib"):
        for reader in ("pykvm", "pykvm, pread=True", "pykvm, map_budget unbounded", "drgn",
                       "libkdumpfile"):
            if fmt != "vmcore.elf" and reader.startswith("pykvm,"):
                continue
            opts = {"pykvm": f"cache_pages={cache_pages} (16 MiB), map_budget 48 MiB (default)",
                    "pykvm, pread=True": "no mapping", "pykvm, map_budget unbounded": "info",
                    "drgn": "pread, no cache" if fmt == "vmcore.elf" else "libkdumpfile cache 1024",
                    "libkdumpfile": "cache 1024 pages (default)"}[reader]
            label = f"{fmt}: {reader} [{opts}]"
            cmd = [sys.executable, str(HERE / "memchild.py"), reader.split(",")[0], d.path(fmt),
                   d.kallsyms, str(tmp), str(cache_pages), json.dumps(variants.get(reader, {}))]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                why = (p.stdout.strip().splitlines() or p.stderr.strip().splitlines() or ["?"])[-1]
                rows.append(Row(sec, label, None, "MiB", why))
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            dv = (r["after"]["VmRSS"] - r["base"]["VmRSS"]) / 1024
            da = (r["after"]["RssAnon"] - r["base"]["RssAnon"]) / 1024
            df = (r["after"]["RssFile"] - r["base"]["RssFile"]) / 1024
            do = (r["opened"]["VmRSS"] - r["base"]["VmRSS"]) / 1024
            note = (f"anon +{da:.1f}, file-backed +{df:.1f}, after open alone +{do:.1f}; "
                    f"{r['failed']} reads failed; {r['seconds']:.2f} s")
            rows.append(Row(sec, label, dv, "MiB", note))
            if reader == "pykvm" or reader == "pykvm, pread=True":
                note += f"; C page cache holds {r['cache_used']} pages"
                if r.get("map_budget"):
                    note += f"; map_budget {r['map_budget'] / MiB:.0f} MiB"
                rows[-1].note = note
            if reader == "pykvm" and fmt == "vmcore.elf":
                # The bound: 40 MiB beyond the configured page cache.
                # An ELF dump's pages are stored whole, so the C cache holds
                # none of them; the allowance is 40 MiB plus what it holds.
                held = r["cache_used"] * 4096 / MiB
                allowance = 40 + held
                targets.append(Target("Memory, 10,000 random pages of a 256 MiB ELF dump: RSS added",
                                      "≤ 40 MiB beyond the page cache (default options)",
                                      f"{dv:.1f} MiB (anon {da:.1f}, file {df:.1f}; cache holds "
                                      f"{held:.1f} MiB of {cache_pages * 4096 / MiB:.0f} configured)",
                                      dv <= allowance, score(allowance, dv)))
            elif reader == "pykvm":
                allowance = 40 + cache_pages * 4096 / MiB
                targets.append(Target(f"Memory, {fmt}: pykvm RSS added",
                                      f"≤ {allowance:.0f} MiB (40 MiB + 16 MiB configured cache)",
                                      f"{dv:.1f} MiB (anon {da:.1f}, file {df:.1f})",
                                      dv <= allowance, score(allowance, dv), earlier=True))
    return rows, targets


# ---------------------------------------------------------------- case: threads

def run_threads(n: int, work: Callable[[int], None]) -> int:
    """Wall ns for n threads each calling work(i) once, started together."""
    start = threading.Barrier(n + 1)

    def body(i: int) -> None:
        start.wait()
        work(i)

    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter_ns()
    for t in ts:
        t.join()
    return time.perf_counter_ns() - t0


def scaling(work: Callable[[int], None], reps: int) -> Tuple[float, float]:
    """Median wall ns of 1 thread doing work(0) and of 2 threads doing
    work(0) and work(1) at once, the two alternating rep by rep."""
    work(0)
    work(1)  # warm: caches, translation, the OS page cache
    t1s, t2s = [], []
    for _ in range(reps):
        t1s.append(run_threads(1, work))
        t2s.append(run_threads(2, work))
    return statistics.median(t1s), statistics.median(t2s)


def case_threads(ctx: Context):
    """Each thread runs the same work on one shared handle; scaling is
    2 * t(1 thread) / t(2 threads).  Two 64 KiB workloads: random chunks of
    the 14 MiB of kernel text (as a user would), and chunks of one 256 KiB
    window (stays in each core's cache, so only locking and the GIL can stop
    it scaling).  The floors (ctypes.memmove of the same bytes) and a C
    workload that releases the GIL (sha256) say what the machine allows."""
    import ctypes
    import hashlib
    d = dump(ctx, SMALL_VARIANT)
    addrs = small_addresses(ctx)
    text0 = d.by_name["_stext"]
    nchunks = (d.by_name["_etext"] - text0) // 65536
    rng = random.Random(4)
    per_thread = 1000 if ctx.quick else 4000
    spread = [[text0 + rng.randrange(nchunks) * 65536 for _ in range(per_thread)] for _ in range(2)]
    window = [[text0 + (j % 4) * 65536 for j in range(per_thread)] for _ in range(2)]
    reps = 3 if ctx.quick else 9
    rows: List[Row] = []
    targets: List[Target] = []
    sec = (f"Threads, {d.variant}: one shared handle, each thread does the same work; throughput "
           f"of 2 threads ÷ 1 thread ({os.cpu_count()} CPUs; median of {reps} alternating runs)")
    chunk_bytes = per_thread * 65536
    got: Dict[str, float] = {}

    def record(label: str, t1: float, t2: float, unit_work: float, bytes_: bool) -> float:
        scale = 2 * t1 / t2
        if bytes_:
            how = f"1 thread {unit_work / t1:.2f} GB/s, 2 threads {2 * unit_work / t2:.2f} GB/s"
        else:
            how = f"1 thread {t1 / unit_work / 1000:.3f} µs/read, 2 threads {t2 / unit_work / 2000:.3f} µs/read aggregate"
        rows.append(Row(sec, label, scale, "×", how))
        got[label] = scale
        return scale

    # What the machine allows right now.
    cm = CoreMap(d.path("vmcore.elf"))
    kd = readers.open_pykvm(d.path("vmcore.elf"), d.kallsyms).obj
    dsts = [bytearray(65536) for _ in range(2)]
    dst_addrs = [ctypes.addressof((ctypes.c_char * 65536).from_buffer(b)) for b in dsts]

    def memmove_work(lists):
        offs = [[cm.base + cm.offset(kd.physaddr(a), 65536) for a in chunks] for chunks in lists]  # type: ignore

        def work(i: int) -> None:
            mv, dst = ctypes.memmove, dst_addrs[i]
            for src in offs[i]:
                mv(dst, src, 65536)
        return work
    blob = bytes(MiB)

    def sha_work(i: int) -> None:
        for _ in range(per_thread // 64):
            hashlib.sha256(blob).digest()

    for label, work, unit, is_bytes in (
            ("machine: hashlib.sha256 of 1 MiB (C, releases the GIL)", sha_work, (per_thread // 64) * MiB, True),
            ("floor: ctypes.memmove 64 KiB, text chunks", memmove_work(spread), chunk_bytes, True),
            ("floor: ctypes.memmove 64 KiB, 256 KiB window", memmove_work(window), chunk_bytes, True)):
        record(label, *scaling(work, reps), unit, is_bytes)
    kd.close()  # type: ignore[attr-defined]
    cm.close()

    def readinto_work(h: Handle, lists):
        bufs = [bytearray(65536) for _ in range(2)]
        if h.readinto is not None:
            ri = h.readinto
            return lambda i: loop_readinto(ri, lists[i], bufs[i])
        rd = h.read
        return lambda i: loop_read(rd, lists[i], 65536)

    def small_work(h: Handle):
        rd = h.read
        return lambda i: loop_read(rd, addrs, 8)

    pyk = lambda core: readers.open_pykvm(core, d.kallsyms)  # noqa: E731
    workloads = [
        ("pykvm readinto 64 KiB, ELF, text chunks", "vmcore.elf", pyk, lambda h: readinto_work(h, spread), True, "64k"),
        ("pykvm readinto 64 KiB, ELF, 256 KiB window", "vmcore.elf", pyk, lambda h: readinto_work(h, window), True, "win"),
        ("pykvm read 8 B, ELF", "vmcore.elf", pyk, small_work, False, None),
        ("pykvm readinto 64 KiB, mdf-zlib warm, 256 KiB window", "vmcore.mdf-zlib", pyk, lambda h: readinto_work(h, window), True, None),
        ("pykvm read 8 B, mdf-zlib warm", "vmcore.mdf-zlib", pyk, small_work, False, None),
        ("drgn read 64 KiB, ELF, text chunks", "vmcore.elf", readers.open_drgn, lambda h: readinto_work(h, spread), True, None),
        ("drgn read 8 B, ELF", "vmcore.elf", readers.open_drgn, small_work, False, None),
    ]
    # Info: the same text-chunk readinto at other chunk sizes (same bytes per
    # thread): where the per-call cost, paid holding the GIL, stops mattering.
    for size in (16384, 262144, MiB):
        n = chunk_bytes // size
        lists = [[text0 + random.Random(5 + i).randrange((nchunks * 65536) // size) * size
                  for _ in range(n)] for i in range(2)]
        bufs = [bytearray(size) for _ in range(2)]
        try:
            h = pyk(d.path("vmcore.elf"))
            ri = h.readinto
            label = (f"pykvm readinto {size >> 10} KiB, ELF, text chunks" if size == MiB
                     else f"info: pykvm readinto {size >> 10} KiB, ELF, text chunks")
            scale = record(label, *scaling(lambda i: loop_readinto(ri, lists[i], bufs[i]), reps),
                           chunk_bytes, True)
            if size == MiB:  # bulk reads: where threads pay off
                targets.append(Target(f"Threads: {label}", "≥ 1.6× one thread",
                                      f"{scale:.2f}×", scale >= 1.6, score(scale, 1.6),
                                      earlier=True))
            h.close()
        except Exception as e:
            rows.append(Row(sec, f"info: pykvm readinto {size >> 10} KiB", None, "×", error_text(e)))

    for label, fmt, opener, make, is_bytes, target in workloads:
        try:
            h = opener(d.path(fmt))
            scale = record(label, *scaling(make(h), reps), chunk_bytes if is_bytes else len(addrs), is_bytes)
            h.close()
        except Exception as e:
            rows.append(Row(sec, label, None, "×", error_text(e)))
            scale = None
        if target:
            floor = {"64k": "floor: ctypes.memmove 64 KiB, text chunks",
                     "win": "floor: ctypes.memmove 64 KiB, 256 KiB window"}.get(target)
            context = (f"; memmove floor {got[floor]:.2f}×" if floor in got else "") + \
                f"; sha256 {got['machine: hashlib.sha256 of 1 MiB (C, releases the GIL)']:.2f}×"
            fl = got.get(floor) if floor else None
            want = "≥ 1.6× one thread" + (", or within 10% of the memmove floor's scaling" if floor else "")
            met = None if scale is None else (scale >= 1.6 or (fl is not None and scale >= 0.9 * fl))
            best = None if scale is None else max(
                score(scale, 1.6) or 0, score(scale, 0.9 * fl) if fl else 0)
            targets.append(Target(f"Threads: {label}", want,
                                  "n/a" if scale is None else f"{scale:.2f}× (machine now{context})",
                                  met, best))
    return rows, targets


CASES = {
    "small_elf": case_small_elf,
    "small_compressed": case_small_compressed,
    "bulk": case_bulk,
    "batch": case_batch,
    "open": case_open,
    "memory": case_memory,
    "threads": case_threads,
}
