"""Corrupted kdump-compressed dumps (made from a real makedumpfile dump by
changing one thing): a clear error naming the file and the problem, at open
for broken headers, bitmaps and tables, at read time for broken pages."""

from __future__ import annotations

import errno
import struct

import pytest

import pykvm

HDR = struct.Struct("<8si")  # signature, header_version


class Layout:
    """Where things are in a 64-bit little-endian kdump file (the format's own fields)."""

    def __init__(self, data: bytes):
        assert data[:8] == b"KDUMP   "
        self.block, self.sub_blocks, self.bitmap_blocks = struct.unpack_from("<iiI", data, 428)
        bs = self.block
        self.bitmap1 = (1 + self.sub_blocks) * bs
        self.bitmap2 = self.bitmap1 + self.bitmap_blocks // 2 * bs
        self.descs = (1 + self.sub_blocks + self.bitmap_blocks) * bs
        bm2 = data[self.bitmap2:self.bitmap2 + self.bitmap_blocks // 2 * bs]
        self.first_pfn = next(i * 8 + b for i, byte in enumerate(bm2) if byte
                              for b in range(8) if byte >> b & 1)

    def desc(self, data: bytes, i: int):
        return struct.unpack_from("<qIIQ", data, self.descs + 24 * i)


@pytest.fixture(scope="module")
def source(dumps):
    d = dumps["nokaslr-96M"]
    data = open(d.path("vmcore.mdf-lzo"), "rb").read()
    return d, data, Layout(data)


def write(tmp_path, name, data) -> str:
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return str(p)


def first_compressed(data, lay):
    """Index and pfn-order position of the first compressed descriptor."""
    i = 0
    while True:
        off, size, flags, _ = lay.desc(data, i)
        if flags:
            return i, off, size
        i += 1


@pytest.mark.parametrize("where,words", [
    ("header", "truncated"),
    ("sub-header", "truncated"),
    ("bitmap", "truncated"),
])
def test_truncated_structures_refused_at_open(source, tmp_path, where, words):
    """Cut before the page descriptors, nothing says which pages exist: refused.
    (Cut later, the dump opens: tests/test_truncated_dumps.py.)"""
    d, data, lay = source
    cut = {"header": 200, "sub-header": lay.block + 100, "bitmap": lay.bitmap2 + 10}[where]
    path = write(tmp_path, f"cut-{where}", data[:cut])
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(d.kallsyms, path)
    assert path in str(ei.value) and words in str(ei.value)


@pytest.mark.parametrize("value", [3, 0, 1 << 30, -4096])
def test_absurd_block_size(source, tmp_path, value):
    d, data, lay = source
    bad = bytearray(data[:lay.descs + 4096])
    struct.pack_into("<i", bad, 428, value)
    path = write(tmp_path, "bs", bad)
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(d.kallsyms, path)
    assert path in str(ei.value) and "block_size" in str(ei.value)


def test_absurd_max_mapnr(source, tmp_path):
    d, data, lay = source
    bad = bytearray(data)
    struct.pack_into("<I", bad, 440, 0xffffffff)
    struct.pack_into("<Q", bad, lay.block + 96, 1 << 60)  # max_mapnr_64
    path = write(tmp_path, "mapnr", bad)
    with pytest.raises(pykvm.KvmFormatError, match="max_mapnr"):
        pykvm.open(d.kallsyms, path)


def page_error(d, path, pfn, words: str) -> None:
    """Reading the page fails with EIO and the reader's words; the rest still reads.

    The page is read through the direct map (a virtual address), which
    every backend can do."""
    with pykvm.open(d.kallsyms, path) as kd:
        direct_map = kd.read_u64(kd.symbol("page_offset_base"))
        with pytest.raises(pykvm.KvmError) as ei:
            kd.read(direct_map + pfn * 4096, 8)
        kd.read(kd.symbol("linux_banner"), 16)
    assert ei.value.errno == errno.EIO
    if pykvm.has("geterr"):  # illumos libkvm reports read errors with no message
        assert path in str(ei.value) and words in str(ei.value)


def pfn_of(data, lay, index):
    """The pfn of the index-th set bit of bitmap 2."""
    bm2 = data[lay.bitmap2:lay.bitmap2 + lay.bitmap_blocks // 2 * lay.block]
    seen = -1
    for i, byte in enumerate(bm2):
        for b in range(8):
            if byte >> b & 1:
                seen += 1
                if seen == index:
                    return i * 8 + b
    raise AssertionError


def test_descriptor_offset_past_eof(source, tmp_path):
    d, data, lay = source
    i, off, size = first_compressed(data, lay)
    bad = bytearray(data)
    struct.pack_into("<q", bad, lay.descs + 24 * i, len(data) + (1 << 20))
    page_error(d, write(tmp_path, "off", bad), pfn_of(data, lay, i), "past the end")


def test_descriptor_size_too_big(source, tmp_path):
    d, data, lay = source
    i, off, size = first_compressed(data, lay)
    bad = bytearray(data)
    struct.pack_into("<I", bad, lay.descs + 24 * i + 8, lay.block + 1)
    page_error(d, write(tmp_path, "size", bad), pfn_of(data, lay, i), f"size {lay.block + 1}")


def test_bad_compressed_bytes(source, tmp_path):
    d, data, lay = source
    i, off, size = first_compressed(data, lay)
    bad = bytearray(data)
    bad[off:off + size] = bytes([0xff]) * size
    page_error(d, write(tmp_path, "lzo", bad), pfn_of(data, lay, i), "LZO page")


def test_truncated_page_data(source, tmp_path):
    """A dump cut inside its page data: the pages kept read, a cut one faults."""
    d, data, lay = source
    bm2 = data[lay.bitmap2:lay.bitmap2 + lay.bitmap_blocks // 2 * lay.block]
    pfns = [i * 8 + b for i, byte in enumerate(bm2) if byte for b in range(8) if byte >> b & 1]
    offsets = [lay.desc(data, i)[0] for i in range(len(pfns))]
    kernel_end = max(o for p, o in zip(pfns, offsets) if p < 0x3000)  # the kernel image
    index = next(i for i, (p, o) in enumerate(zip(pfns, offsets))
                 if 0x4000 <= p < 0x5000 and o > kernel_end)
    path = write(tmp_path, "data", data[:offsets[index] + 1])
    # Lost with the end of the file: a fault that says the dump is truncated.
    with pykvm.open(d.kallsyms, path) as kd:
        direct_map = kd.read_u64(kd.symbol("page_offset_base"))
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(direct_map + pfns[index] * 4096, 8)
        kd.read(kd.symbol("linux_banner"), 16)
    assert ei.value.errno == errno.EFAULT
    if pykvm.has("geterr"):
        assert path in str(ei.value) and "the dump is truncated" in str(ei.value)


def test_random_corruption_never_crashes(source, tmp_path):
    """300 files with random bytes changed in header, bitmaps and descriptors."""
    import random
    d, data, lay = source
    rng = random.Random(99)
    head = lay.descs + 24 * 4096
    path = tmp_path / "fuzz"
    outcomes = [0, 0]
    for _ in range(300):
        bad = bytearray(data[:head + (1 << 20)])
        for _ in range(rng.randint(1, 6)):
            bad[rng.randrange(head)] = rng.randrange(256)
        path.write_bytes(bad)
        try:
            with pykvm.open(d.kallsyms, path) as kd:
                for pfn in range(0, 24576, 997):
                    try:
                        kd.read(0xffff888000000000 + pfn * 4096, 64)
                    except pykvm.KvmError:
                        pass
            outcomes[0] += 1
        except pykvm.KvmError:
            outcomes[1] += 1
    assert sum(outcomes) == 300
