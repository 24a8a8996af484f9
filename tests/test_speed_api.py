"""The speed-oriented API: zero-copy readinto, batch and scatter reads, typed
arrays, the mapped-page fast path, and threads sharing a handle.  These test
behaviour, not timings (bench/ measures speed)."""

from __future__ import annotations

import array
import random
import threading

import pytest

import pykvm
from native_support import assert_unsupported


@pytest.fixture(scope="module")
def elf(dumps):
    d = dumps["kaslr-96M"]
    kd = pykvm.open(d.kallsyms, d.path("vmcore.elf"))
    yield d, kd
    kd.close()


def sample(d, n, seed=7):
    rng = random.Random(seed)
    pool = [a for (name, mod), (a, t, _) in d.syms.items() if mod is None and t in "TtDdBbRr"
            and a >= 0xffffffff80000000]
    return [rng.choice(pool) for _ in range(n)]


def test_readinto_is_zero_copy_into_any_buffer(elf):
    d, kd = elf
    banner = kd.symbol("linux_banner")
    arr = array.array("B", bytes(64))
    assert kd.readinto(banner, arr) == 64
    assert arr.tobytes().startswith(b"Linux version")
    big = bytearray(3 << 20)
    view = memoryview(big)[1 << 20:]
    assert kd.readinto(kd.symbol("_stext"), view) == 2 << 20
    assert bytes(view[:4096]) == kd.read(kd.symbol("_stext"), 4096)
    with pytest.raises(BufferError):
        kd.readinto(banner, b"immutable")


def test_read_many_matches_single_reads(elf):
    d, kd = elf
    addrs = sample(d, 2000)
    buf = kd.read_many(addrs, 8)
    assert len(buf) == 8 * len(addrs)
    for i, a in enumerate(addrs):
        assert bytes(buf[i * 8:i * 8 + 8]) == kd.read(a, 8)
    out = bytearray(8 * len(addrs))
    kd.read_many(addrs, 8, out=out)
    assert out == bytes(buf)


def test_read_many_reports_each_failure(elf):
    d, kd = elf
    addrs = sample(d, 10) + [0x10, 0xdead000000000000]
    with pytest.raises(pykvm.FaultError) as ei:
        kd.read_many(addrs, 8)
    assert ei.value.address == 0x10
    _, results = kd.try_read_many(addrs, 8)
    assert [r for r in results][:10] == [8] * 10
    assert results[10] < 0 and results[11] < 0


def test_read_scatter(elf):
    d, kd = elf
    addrs = sample(d, 500)
    sizes = [1 + i % 40 for i in range(len(addrs))]
    got = kd.read_scatter(addrs, sizes)
    assert len(got) == sum(sizes)
    expected = b"".join(kd.read(a, s) for a, s in zip(addrs, sizes))
    assert bytes(got) == expected
    assert bytes(kd.read_scatter(array.array("Q", addrs), array.array("Q", sizes))) == expected
    with pytest.raises(pykvm.FaultError) as ei:
        kd.read_scatter(addrs[:3] + [0x10], [8, 8, 8, 8])
    assert ei.value.address == 0x10


def test_batch_takes_uint64_buffers_as_they_are(elf):
    d, kd = elf
    addrs = sample(d, 100)
    packed = array.array("Q", addrs)
    assert bytes(kd.read_many(packed, 8)) == bytes(kd.read_many(addrs, 8))
    assert bytes(kd.read_many(memoryview(packed), 8)) == bytes(kd.read_many(addrs, 8))


def test_typed_arrays(elf):
    d, kd = elf
    pgt = kd.symbol("init_top_pgt")
    words = kd.read_u64_array(pgt, 512)
    assert words.format == "Q" and len(words) == 512
    assert words[511] == kd.read_u64(pgt + 511 * 8)
    assert any(words)  # the kernel half of the top-level page table is populated
    halves = kd.read_u32_array(pgt, 1024)
    assert halves[1022] | halves[1023] << 32 == words[511]


def test_fast_path_agrees_with_the_c_path(elf):
    """read (the C fast path) equals readinto and a direct call of the cffi binding's
    pykvm_read, also across pages."""
    from pykvm._kvm import ffi, lib
    d, kd = elf
    for a in sample(d, 300, seed=3):
        for size in (1, 8, 100, 4096, 5000):
            fast = kd.read(a, size)
            buf = bytearray(size)
            kd.readinto(a, buf)
            assert fast == bytes(buf)
            cbuf = ffi.new("char[]", size)
            assert lib.pykvm_read(kd._kd, a, cbuf, size) == size
            assert fast == ffi.unpack(cbuf, size)


def test_threads_get_the_same_bytes(elf):
    d, kd = elf
    addrs = sample(d, 3000, seed=11)
    expected = [kd.read(a, 8) for a in addrs]
    bulk = kd.symbol("_stext")
    bulk_expected = kd.read(bulk, 1 << 16)
    failures = []

    def worker(seed):
        rng = random.Random(seed)
        order = list(range(len(addrs)))
        rng.shuffle(order)
        buf = bytearray(1 << 16)
        for i in order:
            if kd.read(addrs[i], 8) != expected[i]:
                failures.append(addrs[i])
        for _ in range(50):
            kd.readinto(bulk, buf)
            if buf != bulk_expected:
                failures.append(bulk)
        got = kd.read_many(addrs, 8)
        if bytes(got) != b"".join(expected):
            failures.append("batch")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.parametrize("fmt", ["vmcore.mdf-zlib", "vmcore.mdf-lzo", "vmcore.kdump-zlib"])
@pytest.mark.parametrize("limit", [1, 3, 64])
def test_page_cache_never_exceeds_its_bound(dumps, fmt, limit):
    """Reading thousands of distinct compressed pages (from several threads) keeps
    at most cache_pages decompressed pages, and the bytes stay right."""
    d = dumps["nokaslr-96M"]
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, d.kallsyms, d.path(fmt), cache_pages=limit)
        return
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as ref, \
            pykvm.open(d.kallsyms, d.path(fmt), cache_pages=limit) as kd:
        assert kd.info["cache_pages"] == limit
        pfns = list(range(0, 24576, 7))
        expected = {}
        for pfn in pfns[:400]:
            try:
                kd.read(pfn * 4096, 1, physical=True)
            except pykvm.PageExcludedError:
                continue
            expected[pfn] = ref.read(pfn * 4096 + 100, 64, physical=True)
        peak = [0]
        bad = []

        def worker(seed):
            rng = random.Random(seed)
            keys = list(expected)
            for _ in range(1500):
                pfn = rng.choice(keys)
                if kd.read(pfn * 4096 + 100, 64, physical=True) != expected[pfn]:
                    bad.append(pfn)
                peak[0] = max(peak[0], kd.cache_used())

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not bad
        assert 1 <= peak[0] <= limit
        assert kd.cache_used() <= limit


def test_default_cache_size_is_documented(dumps):
    d = dumps["nokaslr-96M"]
    if not pykvm.has("info"):
        assert_unsupported(lambda: pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")).info)
        return
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        assert kd.info["cache_pages"] == 4096


@pytest.mark.parametrize("fmt", ["vmcore.mdf-lzo", "vmcore.kdump-zlib"])
def test_small_reads_of_compressed_dumps(dumps, fmt):
    """Small reads of compressed dumps, read twice (the second pass from the C page
    cache): bounded by cache_pages, and every read equals the ELF dump's bytes."""
    d = dumps["kaslr-96M"]
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, d.kallsyms, d.path(fmt), cache_pages=8)
        return
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as ref, \
            pykvm.open(d.kallsyms, d.path(fmt), cache_pages=8) as kd:
        addrs = sample(d, 3000, seed=21)
        for _ in range(2):  # the second pass reads kept pages
            for a in addrs:
                try:
                    got = kd.read(a, 16)
                except pykvm.PageExcludedError:
                    continue
                assert got == ref.read(a, 16)
        assert kd.cache_used() <= 8
