"""The C fast path (pykvm._fast) against the C path (the cffi binding's pykvm_read
called directly): the same bytes and the same exceptions (class, errno, message,
address) for every format, for unmapped, excluded and truncated pages, closed
handles, negative and oversized addresses; threads get the serial results; the
mapping's resident size stays within map_budget.  Behaviour only (bench/ times)."""

from __future__ import annotations

import array
import errno
import json
import os
import random
import subprocess
import sys
import threading

import pytest

import pykvm
from pykvm._kvm import ffi, lib
from pykvm.errors import error_for

from native_support import assert_unsupported

FORMATS = ["vmcore.elf", "vmcore-paging.elf", "vmcore.kdump-zlib", "vmcore.mdf-lzo",
           "vmcore.mdf-zlib"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def c_read(kd, addr, size, physical=False):
    """The C path: bytes, or (class, errno, message, address) of the error it reports."""
    buf = ffi.new("char[]", max(size, 1))
    fn = lib.pykvm_pread if physical else lib.pykvm_read
    if fn(kd._kd, addr, buf, size) == size:
        return ffi.unpack(buf, size)
    err = lib.pykvm_errno(kd._kd) or errno.EFAULT
    msg = ffi.string(lib.pykvm_geterr(kd._kd)).decode("utf-8", "replace")
    where = lib.pykvm_erraddr(kd._kd) if err in (errno.EFAULT, errno.ENODATA) else None
    e = error_for(err, msg, kd.corefile, kd.prefix, where)
    return (type(e), e.errno, str(e), e.address)


def fast(call, *args, **kw):
    """The fast path: the value, or (class, errno, message, address) of what it raised."""
    try:
        return call(*args, **kw)
    except pykvm.KvmError as e:
        return (type(e), e.errno, str(e), e.address)


def probes(d, kd, n=150, seed=5):
    """Kernel symbol addresses, page-crossing ones, direct-map pages (some excluded
    in filtered dumps) and unmapped addresses."""
    rng = random.Random(seed)
    pool = [a for (name, mod), (a, t, _) in d.syms.items() if mod is None and t in "TtDdBbRr"
            and a >= 0xffffffff80000000]
    addrs = [rng.choice(pool) for _ in range(n)]
    addrs += [(a | 4095) - 3 for a in addrs[:20]]  # 8 bytes across a page boundary
    pob = int.from_bytes(open_ref(d).read(d.addr("page_offset_base"), 8), "little")
    addrs += [pob + rng.randrange(0, 90 << 20) // 4096 * 4096 for _ in range(60)]
    addrs += [0, 0x10, 0xdead000000000000, 0xfffffffffff00000]  # (wrapping: below)
    return addrs


_refs: dict = {}


def open_ref(d):
    if d.variant not in _refs:
        _refs[d.variant] = pykvm.open(d.kallsyms, d.path("vmcore.elf"))
    return _refs[d.variant]


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_bytes_and_errors_as_the_c_path(dumps, fmt):
    d = dumps["kaslr-96M"]
    with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
        kinds = set()
        for a in probes(d, kd):
            for size in (1, 8, 64, 4096, 9000):
                want = c_read(kd, a, size)
                got = fast(kd.read, a, size)
                assert got == want, (hex(a), size)
                buf = bytearray(size)
                into = fast(kd.readinto, a, buf)
                assert (bytes(buf) if into == size else into) == want, (hex(a), size)
                kinds.add(type(want) if isinstance(want, bytes) else want[0])
            want8 = c_read(kd, a, 8)
            u64 = fast(kd.read_u64, a)
            assert (u64 == int.from_bytes(want8, "little")) if isinstance(want8, bytes) \
                else u64 == want8
            member = fast(kd.read_member, a, 4, 4)
            want4 = c_read(kd, a + 4, 4)
            assert (member == int.from_bytes(want4, "little")) if isinstance(want4, bytes) \
                else member == want4
        assert bytes in kinds and pykvm.FaultError in kinds
        if "mdf" in fmt:
            assert pykvm.PageExcludedError in kinds  # makedumpfile -d 31 left pages out


def test_physical_reads_match(dumps):
    d = dumps["nokaslr-96M"]
    rng = random.Random(9)
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        if not pykvm.has("pread"):
            assert_unsupported(kd.read, 0, 8, physical=True)
            return
        for pa in [rng.randrange(0, 100 << 20) for _ in range(300)] + [1 << 40]:
            assert fast(kd.read, pa, 16, physical=True) == c_read(kd, pa, 16, physical=True)
            assert fast(kd.read_u32, pa, physical=True) == (
                int.from_bytes(c_read(kd, pa, 4, True), "little")
                if isinstance(c_read(kd, pa, 4, True), bytes) else c_read(kd, pa, 4, True))


def test_truncated_dump_pages(dumps, tmp_path):
    """A makedumpfile dump cut short: pages past the cut fail alike on both paths."""
    d = dumps["kaslr-96M"]
    data = open(d.path("vmcore.mdf-lzo"), "rb").read()
    cut = tmp_path / "cut.mdf"
    cut.write_bytes(data[:len(data) * 6 // 10])
    with pykvm.open(d.kallsyms, str(cut)) as kd:
        pob = int.from_bytes(open_ref(d).read(d.addr("page_offset_base"), 8), "little")
        errs = set()
        for pfn in range(0, 24000, 13):
            a = pob + pfn * 4096
            want = c_read(kd, a, 64)
            assert fast(kd.read, a, 64) == want
            if not isinstance(want, bytes):
                errs.add((want[0], want[1]))
        assert (pykvm.FaultError, errno.EFAULT) in errs  # the pages past the cut: "truncated"


def test_closed_handle_is_a_value_error(dumps):
    d = dumps["kaslr-96M"]
    kd = pykvm.open(d.kallsyms, d.path("vmcore.elf"))
    banner = kd.symbol("linux_banner")
    kd.close()
    calls = [lambda: kd.read(banner, 8), lambda: kd.readinto(banner, bytearray(8)),
             lambda: kd.read_u8(banner), lambda: kd.read_u64(banner),
             lambda: kd.read_pointer(banner), lambda: kd.read_member(banner, 0, 4),
             lambda: kd.read_cstring(banner), lambda: kd.read_many([banner], 8),
             lambda: kd.read_scatter([banner], [8]), lambda: kd.try_read_many([banner], 8),
             lambda: kd.physaddr(banner), lambda: kd.read(banner, 0)]
    for call in calls:
        with pytest.raises(pykvm.ClosedError) as ei:
            call()
        assert isinstance(ei.value, ValueError) and isinstance(ei.value, pykvm.KvmError)
        assert ei.value.errno == errno.EBADF
        assert "closed" in str(ei.value)


@pytest.mark.parametrize("addr,size", [(-1, 8), (-(1 << 70), 8), (1 << 64, 8),
                                       ((1 << 64) + 5, 1), ((1 << 64) - 4, 8)])
def test_negative_and_oversized_addresses(dumps, addr, size):
    d = dumps["kaslr-96M"]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf"), errstr="t") as kd:
        calls = [lambda: kd.read(addr, size), lambda: kd.readinto(addr, bytearray(size)),
                 lambda: kd.read_many([kd.symbol("_stext"), addr], size),
                 lambda: kd.read_scatter([addr], [size])]
        if size == 8:
            calls += [lambda: kd.read_u64(addr), lambda: kd.read_member(addr, 0, 8)]
        if addr < 0 or addr >= 1 << 64:
            calls += [lambda: kd.physaddr(addr), lambda: kd.read_cstring(addr, 8)]
        for call in calls:
            with pytest.raises(pykvm.BadAddressError) as ei:
                call()
            e = ei.value
            assert isinstance(e, ValueError) and isinstance(e, pykvm.FaultError)
            assert e.errno == errno.EFAULT and e.address is not None
            assert str(e).startswith("t: ")


def test_argument_errors(dumps):
    d = dumps["kaslr-96M"]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        b = kd.symbol("linux_banner")
        with pytest.raises(ValueError):
            kd.read(b, -1)
        with pytest.raises(TypeError):
            kd.read("x", 8)
        with pytest.raises(TypeError):
            kd.read(b)
        with pytest.raises(TypeError):
            kd.read(b, 8, nosuch=1)
        with pytest.raises(BufferError):
            kd.readinto(b, b"read-only")
        with pytest.raises(ValueError):
            kd.read_member(b, 0, 9)
        with pytest.raises(ValueError):
            kd.read_many([b, b], 8, out=bytearray(8))
        with pytest.raises(ValueError):
            kd.read_scatter([b], [8, 8])
        # Keywords and __index__ objects work as in the Python signatures.
        assert kd.read(addr=b, size=8) == kd.read(b, 8) == kd.read(b, 8, physical=False)
        assert kd.read(Index(b), 8) == kd.read(b, 8)
        assert kd.read_cstring(b, maxlen=5, encoding=None) == b"Linux"
        assert kd.read_cstring(b, 13) == "Linux version"
        assert kd.read(b, 0) == b""


class Index:
    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


def test_huge_read_fails_before_allocating(dumps):
    """A size far beyond the dump fails at the first unreadable page, without
    allocating the size first."""
    d = dumps["kaslr-96M"]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        pob = int.from_bytes(kd.read(d.addr("page_offset_base"), 8), "little")
        for size in (1 << 40, 1 << 46):
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(pob, size)
            assert ei.value.address > pob
            with pytest.raises(pykvm.FaultError):
                kd.read_many([pob], size)


def test_integers_against_drgn(dumps):
    """read_u8..read_s64, read_pointer and read_member against drgn's own readers."""
    import drgn
    d = dumps["kaslr-96M"]
    prog = drgn.Program()
    prog.set_core_dump(d.path("vmcore.elf"))
    rng = random.Random(3)
    pool = [a for (name, mod), (a, t, _) in d.syms.items() if mod is None and t in "DdBbRr"]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        for a in [rng.choice(pool) for _ in range(300)]:
            assert kd.read_u8(a) == prog.read_u8(a)
            assert kd.read_u16(a) == prog.read_u16(a)
            assert kd.read_u32(a) == prog.read_u32(a)
            assert kd.read_u64(a) == prog.read_u64(a)
            assert kd.read_pointer(a) == prog.read_word(a)
            assert kd.read_s32(a) == int.from_bytes(prog.read(a, 4), "little", signed=True)
            assert kd.read_s8(a) == int.from_bytes(prog.read(a, 1), "little", signed=True)
            assert kd.read_member(a - 16, 16, 8) == prog.read_u64(a)
            assert kd.read_member(a + 4, -4, 2, signed=True) == \
                int.from_bytes(prog.read(a, 2), "little", signed=True)
            raw = prog.read_u32(a)
            assert kd.read_member(a, 0, 4, bit_offset=3, bit_size=5) == (raw >> 3) & 31
            v = (raw >> 7) & 0x1ff
            assert kd.read_member(a, 0, 4, signed=True, bit_offset=7, bit_size=9) == \
                (v - 512 if v & 256 else v)


def test_big_endian_core(reencoded):
    """The big-endian re-encoding of the LZO dump: integers in the core's order."""
    d = reencoded["kaslr-96M"]
    try:
        kd = pykvm.open(d.kallsyms, d.path("vmcore.mdf-be64"), foreign=True)
    except pykvm.UnsupportedError:
        assert not pykvm.has("options")
        return
    with kd:
        assert kd.byteorder == "big"
        rng = random.Random(4)
        pfns = [rng.randrange(0, 24000) for _ in range(400)]
        checked = 0
        for pfn in pfns:
            pa = pfn * 4096 + 8 * rng.randrange(512)
            try:
                raw = kd.read(pa, 8, physical=True)
            except pykvm.FaultError:
                continue
            checked += 1
            assert kd.read_u64(pa, physical=True) == int.from_bytes(raw, "big")
            assert kd.read_u16(pa, physical=True) == int.from_bytes(raw[:2], "big")
            assert kd.read_s32(pa, physical=True) == int.from_bytes(raw[:4], "big", signed=True)
        assert checked > 100


@pytest.mark.parametrize("fmt", ["vmcore.elf", "vmcore.mdf-lzo"])
def test_threads_get_the_serial_results(dumps, fmt):
    d = dumps["kaslr-96M"]
    with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
        addrs = probes(d, kd, n=400, seed=8)
        serial = [(fast(kd.read, a, 24), fast(kd.read_u64, a), fast(kd.read_member, a, 2, 2))
                  for a in addrs]
        packed = array.array("Q", [a for a, s in zip(addrs, serial) if isinstance(s[0], bytes)])
        batch = bytes(kd.read_many(packed, 24))
        bad = []

        def worker(seed):
            order = list(range(len(addrs)))
            random.Random(seed).shuffle(order)
            for _ in range(3):
                for i in order:
                    a = addrs[i]
                    got = (fast(kd.read, a, 24), fast(kd.read_u64, a), fast(kd.read_member, a, 2, 2))
                    if got != serial[i]:
                        bad.append((hex(a), got, serial[i]))
                if bytes(kd.read_many(packed, 24)) != batch:
                    bad.append("batch")

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not bad[:5]


MEMCHILD = r"""
import json, sys
from array import array
import pykvm
core, namelist, pages, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

def mapped(path):
    rss, cur = 0, None
    for line in open("/proc/self/smaps"):
        f = line.split()
        if f and not f[0].endswith(":"):
            cur = f[5] if len(f) > 5 else None
        elif f[0] == "Rss:" and cur == path:
            rss += int(f[1])
    return rss * 1024

addrs = array("Q", [int(x) for x in open(pages).read().split()])
h = __import__("hashlib").sha256()
peak = 0
with pykvm.open(namelist, core, **opts) as kd:
    for i, a in enumerate(addrs):
        h.update(kd.read(a, 4096))
        if i % 500 == 0:
            peak = max(peak, mapped(core))
    peak = max(peak, mapped(core))
    info = kd.info
print(json.dumps({"peak": peak, "digest": h.hexdigest(), "mapped": info["mapped"],
                  "map_budget": info.get("map_budget")}))
"""


def test_mapping_stays_within_map_budget(dumps, tmp_path):
    """10,000 random pages of the 256 MiB ELF dump: the core's mapping never holds
    more than map_budget in RSS (the default too), pread=True maps nothing, and all
    read the same bytes."""
    d = dumps["kaslr-256M"]
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, d.kallsyms, d.path("vmcore.elf"), pread=True)
        return
    core = os.path.realpath(d.path("vmcore.elf"))
    with pykvm.open(d.kallsyms, core) as kd:
        pob = kd.read_u64(kd.symbol("page_offset_base"))
        pages = []
        rng = random.Random(12)
        while len(pages) < 10000:
            a = pob + rng.randrange(0, 250 << 20) // 4096 * 4096
            try:
                kd.read(a, 1)
                pages.append(a)
            except pykvm.FaultError:
                pass
    listing = tmp_path / "pages.txt"
    listing.write_text("\n".join(map(str, pages)))
    results = {}
    mib = 1 << 20
    for name, opts in [("default", {}), ("8 MiB", {"map_budget": 8 * mib}),
                       ("pread", {"pread": True}), ("unbounded", {"map_budget": 1 << 62})]:
        p = subprocess.run([sys.executable, "-c", MEMCHILD, core, d.kallsyms, str(listing),
                            json.dumps(opts)], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        assert p.returncode == 0, p.stderr[-2000:]
        results[name] = json.loads(p.stdout.strip().splitlines()[-1])
    assert len({r["digest"] for r in results.values()}) == 1
    assert results["default"]["map_budget"] == 48 * mib
    # The bound counts 2 MiB windows, the largest page-cache folio, which the
    # kernel may map whole on a read of one page of it (Linux 6.18).
    assert results["default"]["peak"] <= 48 * mib
    assert results["8 MiB"]["peak"] <= 2 * 8 * mib
    assert results["8 MiB"]["peak"] < results["default"]["peak"]
    assert results["pread"]["mapped"] == 0 and results["pread"]["peak"] == 0
    assert results["unbounded"]["peak"] > 56 * mib  # what the bound is for


def test_map_budget_must_be_positive(dumps):
    d = dumps["kaslr-96M"]
    with pytest.raises(ValueError if pykvm.has("options") else pykvm.UnsupportedError):
        pykvm.open(d.kallsyms, d.path("vmcore.elf"), map_budget=0)


@pytest.mark.parametrize("fmt", ["vmcore.elf", "vmcore.kdump-zlib"])
def test_truncated_dump_pages_other_formats(dumps, tmp_path, fmt):
    """An ELF and a diskdump-zlib dump cut short: both paths return the same bytes and
    fail alike; a batch over a failing page raises what the single read raises."""
    d = dumps["kaslr-96M"]
    data = open(d.path(fmt), "rb").read()
    cut = tmp_path / ("cut-" + fmt)
    cut.write_bytes(data[:len(data) * 6 // 10])
    with pykvm.open(d.kallsyms, str(cut)) as kd:
        pob = int.from_bytes(open_ref(d).read(d.addr("page_offset_base"), 8), "little")
        kinds = set()
        for pfn in range(0, 24000, 17):
            a = pob + pfn * 4096
            want = c_read(kd, a, 64)
            assert fast(kd.read, a, 64) == want, hex(a)
            buf = bytearray(64)
            into = fast(kd.readinto, a, buf)
            assert (bytes(buf) if into == 64 else into) == want, hex(a)
            if isinstance(want, bytes):
                kinds.add(bytes)
                assert fast(kd.read_u64, a) == int.from_bytes(want[:8], "little")
            else:
                kinds.add(want[0])
                assert fast(kd.read_u64, a) == c_read(kd, a, 8)
                batch = fast(kd.read_many, array.array("Q", [a]), 64)
                assert batch[0] is want[0] and batch[1] == want[1] and batch[3] == want[3]
        # Past the cut every read fails as a FaultError naming the address (a cut
        # ELF segment may be refused whole, so there need be no bytes at all).
        failed = kinds - {bytes}
        assert failed and all(issubclass(k, pykvm.FaultError) for k in failed)
