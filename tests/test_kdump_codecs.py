"""Every page codec and the flattened form, on real data: the makedumpfile LZO dumps
re-encoded by fixtures/kernel/recompress.py as zstd, snappy and uncompressed files, and
flattened (records split, out of order, partly overwritten).  Debian's makedumpfile
writes neither zstd nor snappy, so these are the only real dumps that use them.

Each page present in a file must read exactly as the same page of vmcore.elf (the same
paused guest), each page the filter left out must fail as in the LZO original, and
symbols must read as the guest printed them."""

from __future__ import annotations

import errno
import hashlib
import struct
from functools import lru_cache
from pathlib import Path

import pytest

import pykvm
from conftest import VARIANTS, run_fixture_script
from native_support import assert_unsupported

# file -> (codec the pages use or None, what info["compression"] says, info["format"])
FILES = {
    "vmcore.mdf-zstd": ("zstd", "zstd", "kdump"),
    "vmcore.mdf-snappy": ("snappy", "snappy", "kdump"),
    "vmcore.mdf-raw": (None, "none", "kdump"),
    "vmcore.mdf-lzo.flat": ("lzo", "lzo", "kdump-flattened"),
}
FLAGS = {"zstd": 0x20, "snappy": 0x4, "lzo": 0x2}  # makedumpfile's DUMP_DH_COMPRESSED_*
CASES = [(v, f) for v in VARIANTS for f in FILES]
IDS = [f"{v}-{f}" for v, f in CASES]
PAGE = 4096
BATCH = 4096  # pages per read_many call


@pytest.fixture(scope="session")
def dumps_codecs(dumps):
    """The dumps, with the re-encoded files made (or taken from the cache)."""
    run_fixture_script("fixtures/kernel/recompress.py")
    return dumps


def codec_missing(fname: str) -> bool:
    """This build cannot decompress the file's pages.  A native build reads through the
    shim installed as its libkvm, built by `make deps` with every codec: it has them."""
    codec = FILES[fname][0]
    return codec is not None and pykvm.backend == "shim" and not pykvm.has(codec)


class Kdump:
    """A plain 64-bit little-endian kdump file's bitmaps and descriptors (struct only)."""

    def __init__(self, data: bytes):
        assert data[:8] == b"KDUMP   "
        self.status, self.block, sub_blocks, bitmap_blocks = struct.unpack_from("<Iiii", data, 424)
        self.max_mapnr, = struct.unpack_from("<Q", data, self.block + 96)  # max_mapnr_64
        half = bitmap_blocks // 2 * self.block
        bm1 = (1 + sub_blocks) * self.block
        self.ram = data[bm1:bm1 + half]
        self.dumped = data[bm1 + half:bm1 + 2 * half]
        self.desc_off = bm1 + 2 * half
        n = sum(bin(b).count("1") for b in self.dumped)
        self.data_off = self.desc_off + 24 * n
        self.descs = [struct.unpack_from("<qIIQ", data, self.desc_off + 24 * i) for i in range(n)]

    @staticmethod
    def bit(bitmap: bytes, pfn: int) -> int:
        return bitmap[pfn >> 3] >> (pfn & 7) & 1

    def pfns(self, bitmap: bytes) -> list:
        return [i * 8 + b for i, byte in enumerate(bitmap) if byte for b in range(8)
                if byte >> b & 1 and i * 8 + b < self.max_mapnr]


def unflatten(flat: bytes) -> tuple:
    """The plain file a flattened one stands for (later records win), and its records."""
    assert flat[:12] == b"makedumpfile"
    assert struct.unpack_from(">qq", flat, 16) == (1, 1)  # type, version
    out, records, pos = bytearray(), [], 4096
    while True:
        off, size = struct.unpack_from(">qq", flat, pos)
        pos += 16
        if off == size == -1:
            assert pos == len(flat)
            return bytes(out), records
        assert off >= 0 and size > 0
        out.extend(bytes(max(0, off + size - len(out))))
        out[off:off + size] = flat[pos:pos + size]
        records.append((off, size))
        pos += size


@lru_cache(maxsize=None)
def source(path: str) -> tuple:
    """The LZO original's bytes and layout."""
    data = Path(path).read_bytes()
    return data, Kdump(data)


def page_addresses(kd, pfns) -> tuple:
    """Physical addresses where the build reads them, else the direct map's."""
    if pykvm.has("pread"):
        return [pfn * PAGE for pfn in pfns], True
    base = kd.read_u64(kd.symbol("page_offset_base"))
    return [base + pfn * PAGE for pfn in pfns], False


def read_all(path: str, kallsyms: str, pfns: list) -> tuple:
    """(per-pfn result: PAGE or -errno, per-pfn digest of the page or None), read with
    read_many (in C: the Python layer's page cache is not involved)."""
    results, digests = [], []
    out = bytearray(BATCH * PAGE)
    with pykvm.open(kallsyms, path) as kd:
        addrs, physical = page_addresses(kd, pfns)
        for i in range(0, len(addrs), BATCH):
            buf, res = kd.try_read_many(addrs[i:i + BATCH], PAGE, physical, out=out)
            for j, r in enumerate(res):
                results.append(r)
                digests.append(hashlib.blake2b(buf[j * PAGE:(j + 1) * PAGE], digest_size=16)
                               .digest() if r == PAGE else None)
    return results, digests


@lru_cache(maxsize=None)
def reference(root: str, kallsyms: str) -> tuple:
    """For every pfn below max_mapnr: the LZO original's result, and the ELF dump's page."""
    _, lay = source(f"{root}/vmcore.mdf-lzo")
    pfns = list(range(lay.max_mapnr))
    lzo_results, _ = read_all(f"{root}/vmcore.mdf-lzo", kallsyms, pfns)
    elf_results, elf_digests = read_all(f"{root}/vmcore.elf", kallsyms, pfns)
    return lzo_results, elf_results, elf_digests


@pytest.mark.parametrize("variant,fname", CASES, ids=IDS)
def test_every_page_reads_as_in_the_elf_dump(dumps_codecs, variant, fname):
    """All max_mapnr pfns: a page in the file reads as vmcore.elf has it; a filtered-out
    page is "excluded" (ENODATA) exactly where the LZO original says so, and raises
    PageExcludedError; the rest fail as in the original."""
    d = dumps_codecs[variant]
    path = d.path(fname)
    _, lay = source(d.path("vmcore.mdf-lzo"))
    if codec_missing(fname):
        codec = FILES[fname][0]
        own = lay if fname.endswith(".flat") else Kdump(Path(path).read_bytes())
        pfn = next(p for p, desc in zip(own.pfns(own.dumped), own.descs) if desc[2])
        with pykvm.open(d.kallsyms, path) as kd:
            addr, physical = page_addresses(kd, [pfn])
            with pytest.raises(pykvm.KvmError, match=f"no {codec} support"):
                kd.read(addr[0], 8, physical=physical)
        return
    lzo_results, elf_results, elf_digests = reference(str(d.root), d.kallsyms)
    results, digests = read_all(path, d.kallsyms, list(range(lay.max_mapnr)))

    present = lay.pfns(lay.dumped)
    assert len(present) == len(lay.descs) > 10000
    for pfn in present:
        if pykvm.has("pread"):
            assert results[pfn] == elf_results[pfn] == PAGE, f"pfn 0x{pfn:x}: {results[pfn]}"
        else:  # the direct map leaves out the firmware's pages at the top of RAM
            assert results[pfn] == elf_results[pfn], f"pfn 0x{pfn:x}: {results[pfn]}"
        assert digests[pfn] == elf_digests[pfn], f"pfn 0x{pfn:x} differs from vmcore.elf"
    assert sum(results[pfn] == PAGE for pfn in present) > len(present) - 64
    assert results == lzo_results
    excluded = [p for p, r in enumerate(results) if r == -errno.ENODATA]
    assert excluded == [p for p in lay.pfns(lay.ram) if not lay.bit(lay.dumped, p)]
    assert len(excluded) > 1000
    failed = [p for p, r in enumerate(results) if r < 0 and r != -errno.ENODATA]

    # The exceptions read() raises: a sample of excluded pages, and of pages not in RAM.
    with pykvm.open(d.kallsyms, path) as kd:
        addrs, physical = page_addresses(kd, excluded[::max(1, len(excluded) // 40)])
        for addr in addrs:
            with pytest.raises(pykvm.PageExcludedError) as ei:
                kd.read(addr, 16, physical=physical)
            assert ei.value.address == addr
        addrs, physical = page_addresses(kd, failed[::max(1, len(failed) // 10)])
        for addr in addrs:
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(addr, 16, physical=physical)
            assert not isinstance(ei.value, pykvm.PageExcludedError)


@pytest.mark.parametrize("variant,fname", CASES, ids=IDS)
def test_banner_and_module_by_symbol(dumps_codecs, variant, fname):
    """linux_banner and qemu_fw_cfg's module name (a page-table walk into module space)
    read by symbol equal what the guest printed."""
    d = dumps_codecs[variant]
    with pykvm.open(d.kallsyms, d.path(fname)) as kd:
        if codec_missing(fname):
            with pytest.raises(pykvm.KvmError, match=f"no {FILES[fname][0]} support"):
                kd.read_cstring(kd.symbol("linux_banner"))
            return
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        mod = d.addr("__this_module", "qemu_fw_cfg")
        assert mod >= 0xffffffffc0000000
        assert kd.read_cstring(mod + 24, 56) == "qemu_fw_cfg"


@pytest.mark.parametrize("variant,fname", CASES, ids=IDS)
def test_info_names_codec_and_format(dumps_codecs, variant, fname):
    d = dumps_codecs[variant]
    with pykvm.open(d.kallsyms, d.path(fname)) as kd:
        if not pykvm.has("info"):
            assert_unsupported(lambda: kd.info)
            return
        _, compression, fmt = FILES[fname]
        assert kd.info["compression"] == compression
        assert kd.info["format"] == fmt
        assert kd.info["osrelease"] == d.truth["release"]
        assert kd.info["page_size"] == PAGE


@pytest.mark.parametrize("variant", VARIANTS)
def test_files_differ_from_the_original_only_in_page_storage(dumps_codecs, variant):
    """What the tests above rely on (no pykvm here): headers, VMCOREINFO, bitmaps and the
    zero page's sharing are the LZO original's; pages use the file's codec unless that
    was not smaller; the flattened file rearranges to the original byte for byte, from
    records that are out of order and overlap."""
    d = dumps_codecs[variant]
    orig, lay = source(d.path("vmcore.mdf-lzo"))
    status_bit = {"vmcore.mdf-zstd": 0x20, "vmcore.mdf-snappy": 0x4, "vmcore.mdf-raw": 0}
    for fname, bit in status_bit.items():
        data = Path(d.path(fname)).read_bytes()
        new = Kdump(data)
        assert new.status == lay.status & ~0x27 | bit
        assert data[:424] == orig[:424] and data[428:lay.desc_off] == orig[428:lay.desc_off]
        assert len(new.descs) == len(lay.descs)
        # Descriptors share data exactly where the original's do.
        assert [o for o, *_ in new.descs].count(new.descs[0][0]) == \
            [o for o, *_ in lay.descs].count(lay.descs[0][0])
        share = {}
        for (o1, _, _, pf1), (o2, s2, f2, pf2) in zip(lay.descs, new.descs):
            assert share.setdefault(o1, o2) == o2 and pf1 == pf2
            assert f2 in (0, bit) and (s2 < PAGE if f2 else s2 == PAGE)
            assert new.data_off <= o2 and o2 + s2 <= len(data)
        assert len(set(share.values())) == len(share)
        if bit:
            assert sum(f == bit for _, _, f, _ in new.descs) > 0.9 * len(new.descs)

    plain, records = unflatten(Path(d.path("vmcore.mdf-lzo.flat")).read_bytes())
    assert plain == orig
    ends = [o + s for o, s in records]
    assert any(o < max(ends[:i]) for i, (o, _) in enumerate(records) if i)  # out of order
    covered = sorted(records)
    assert any(a + s > b for (a, s), (b, _) in zip(covered, covered[1:]))  # overlapping
    assert len(records) > 100
