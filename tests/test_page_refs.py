"""Warm small reads of compressed images go through the page-ref cache: where
the decoded copy of each virtual page lies in the page cache, checked (not
locked) on every use.  These tests make the page cache evict all the time,
from several threads at once, so remembered pages are rewritten under the
readers, and require every read to equal the bytes of an uncompressed copy
of the same memory where it has them (a filtered dump leaves pages out), and
every outcome to be what one thread reading with a large cache gets."""

from __future__ import annotations

import random
import threading

import pytest

import pykvm
from conftest import CACHE, run_fixture_script
from native_support import assert_unsupported
from test_memory_images import Images, images  # noqa: F401  (the session fixture)

THREADS = 4


def outcome(kd, addr, size):
    try:
        return kd.read(addr, size)
    except pykvm.KvmError as e:
        return type(e)


def hammer(kd, cases, want, rounds):
    """THREADS threads reading cases in their own orders; the mismatches."""
    bad = []

    def worker(seed):
        order = list(range(len(cases)))
        rng = random.Random(seed)
        for _ in range(rounds):
            rng.shuffle(order)
            for i in order:
                a, n = cases[i]
                # the same page several times running: warm reads through a ref
                for _ in range(3):
                    got = outcome(kd, a, n)
                    if got != want[i]:
                        bad.append((hex(a), n))
                        return

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return bad


def serial(namelist, path, plain, cases, **opts):
    """The outcomes one thread gets with the default cache, after checking
    that the bytes are the uncompressed copy's (plain) wherever it has them."""
    with pykvm.open(namelist, path, **opts) as kd, pykvm.open(namelist, plain) as ref:
        want = [outcome(kd, a, n) for a, n in cases]
        for (a, n), w in zip(cases, want):
            if isinstance(w, bytes):
                assert w == ref.read(a, n), hex(a)
    return want


def symbol_cases(d, n, seed):
    """Small reads within a page at kernel symbol addresses."""
    rng = random.Random(seed)
    pool = [a for (name, mod), (a, t, _) in d.syms.items() if mod is None and t in "TtDdBbRr"
            and a >= 0xffffffff80000000]
    cases = []
    for _ in range(n):
        a = rng.choice(pool) + rng.randrange(64)
        cases.append((a, rng.randint(1, min(64, 4096 - (a & 4095)))))
    return cases


@pytest.mark.parametrize("fmt", ["vmcore.mdf-lzo", "vmcore.kdump-zlib", "vmcore.mdf-zstd"])
@pytest.mark.parametrize("limit", [1, 3, 64])
def test_reads_stay_right_while_pages_are_evicted(dumps, fmt, limit):
    d = dumps["kaslr-96M"]
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, d.kallsyms, d.path(fmt), cache_pages=limit)
        return
    cases = symbol_cases(d, 600, seed=limit)
    want = serial(d.kallsyms, d.path(fmt), d.path("vmcore.elf"), cases)
    assert sum(isinstance(w, bytes) for w in want) > 400
    with pykvm.open(d.kallsyms, d.path(fmt), cache_pages=limit) as kd:
        assert not hammer(kd, cases, want, rounds=2)[:5]
        assert kd.cache_used() <= limit


def test_split_dump_parts(dumps):
    """A split dump's pages come from the part that holds them: refs into three caches."""
    d = dumps["kaslr-96M"]
    run_fixture_script("fixtures/kernel/make_split.py")
    parts = [str(CACHE / "split" / "kaslr-96M" / f"vmcore.split-{i}") for i in (1, 2, 3)]
    if not pykvm.has("options"):
        return assert_unsupported(pykvm.open, d.kallsyms, parts)
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as ref:
        base = ref.read_u64(ref.symbol("page_offset_base"))
    rng = random.Random(5)
    cases = [(base + rng.randrange(96 << 20), 0) for _ in range(800)]
    cases = [(a, rng.randint(1, min(256, 4096 - (a & 4095)))) for a, _ in cases]
    want = serial(d.kallsyms, parts, d.path("vmcore.elf"), cases)
    assert sum(isinstance(w, bytes) for w in want) > 100
    with pykvm.open(d.kallsyms, parts, cache_pages=4) as kd:
        assert kd.info["format"] == "kdump-split"
        assert not hammer(kd, cases, want, rounds=1)[:5]


def test_avml_chunks(images):  # noqa: F811
    """AVML decodes whole chunks; a ref names a page inside one: the same bytes as LiME."""
    with pykvm.open(images.kallsyms, images.path("memory.lime")) as ref:
        base = ref.read_u64(ref.symbol("page_offset_base"))
        rng = random.Random(9)
        lo, hi = images.ram[1] if len(images.ram) > 1 else images.ram[0]
        cases = []
        for _ in range(600):
            a = base + rng.randrange(lo, min(hi, lo + (64 << 20)))
            cases.append((a, rng.randint(1, min(128, 4096 - (a & 4095)))))
    want = serial(images.kallsyms, images.path("memory.avml"), images.path("memory.lime"), cases)
    assert sum(isinstance(w, bytes) for w in want) > 500
    opts = {} if not pykvm.has("options") else {"cache_pages": 64}
    with pykvm.open(images.kallsyms, images.path("memory.avml"), **opts) as kd:
        assert not hammer(kd, cases, want, rounds=1)[:5]
