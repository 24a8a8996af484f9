"""Hostile dumps: header fields that size the reader's work, made absurd in
copies of the real dumps.  Each must fail at open, fast, with a clear
KvmFormatError naming the file and the problem, and without a large
allocation (the open runs in a child whose peak RSS is measured), never a
crash.  These are the coverage-guided fuzzer's findings (fuzz/regressions/
holds the inputs it found; these tests rebuild the same defects from the
fixtures)."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

import pytest

import pykvm
from conftest import ROOT

# A failed open may use this much more than the interpreter itself.
RSS_SLACK_KB = 96 * 1024
OPEN_SECONDS = 10.0

CHILD = r"""
import json, resource, sys, time
import pykvm
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.monotonic()
try:
    kd = pykvm.open(sys.argv[1] or None, sys.argv[2])
    names = sys.argv[3:]
    if names:
        kd.nlist(names)
    out = {"error": None}
except pykvm.KvmError as e:
    out = {"error": type(e).__name__, "message": str(e)}
out["seconds"] = time.monotonic() - t
out["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps(out))
"""


def open_in_child(namelist: str | None, core: str, *names: str) -> dict:
    """pykvm.open (then nlist of names) in a fresh interpreter: the outcome,
    the time it took and how much the peak RSS grew."""
    res = subprocess.run([sys.executable, "-c", CHILD, namelist or "", core, *names],
                         capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert res.returncode == 0, f"the open crashed (status {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def assert_refused_fast(out: dict, path: str, *words: str) -> None:
    assert out["error"] == "KvmFormatError", out
    assert path in out["message"], out
    for w in words:
        assert w in out["message"], out
    assert out["seconds"] < OPEN_SECONDS, out
    assert out["rss_kb"] < RSS_SLACK_KB, out


@pytest.fixture(scope="module")
def mdf(dumps):
    d = dumps["nokaslr-96M"]
    return d, open(d.path("vmcore.mdf-lzo"), "rb").read()


# ---- kdump: max_mapnr_64 near 2^64 ----

@pytest.mark.parametrize("below", [1, 7, 63])
def test_max_mapnr_64_near_2_to_the_64(mdf, tmp_path, below):
    """The bitmap size (max_mapnr + 63) / 64 wrapped to a few words, the open
    succeeded and the first read ran past the bitmap (a segmentation fault)."""
    d, data = mdf
    version, = struct.unpack_from("<i", data, 8)
    bs, = struct.unpack_from("<i", data, 428)
    assert version >= 6  # the 64-bit max_mapnr of the sub-header is there
    bad = bytearray(data)
    struct.pack_into("<Q", bad, bs + 96, (1 << 64) - below)  # max_mapnr_64
    path = tmp_path / "mapnr.kdump"
    path.write_bytes(bad)
    out = open_in_child(d.kallsyms, str(path))
    assert_refused_fast(out, str(path), "max_mapnr", "bitmaps")


def test_max_mapnr_past_the_bitmaps_refused(mdf, tmp_path):
    """A max_mapnr that fits in 64 bits but not in the bitmap blocks."""
    d, data = mdf
    bs, _, bitmap_blocks = struct.unpack_from("<iiI", data, 428)
    bad = bytearray(data)
    struct.pack_into("<Q", bad, bs + 96, bitmap_blocks * bs * 8 + 1)
    path = tmp_path / "mapnr2.kdump"
    path.write_bytes(bad)
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(d.kallsyms, str(path))
    assert str(path) in str(ei.value) and "max_mapnr" in str(ei.value)


# ---- flattened kdump: bitmaps sized by the records' offsets, not the file ----

FLAT_HEADER = b"makedumpfile".ljust(16, b"\0") + struct.pack(">QQ", 1, 1)


def test_small_flattened_dump_with_huge_bitmaps(mdf, tmp_path):
    """A flattened dump of a real dump's header blocks (flattened records of
    4 KiB, as makedumpfile -F writes), with one record far out, about 30 KB
    in all, whose header claims 2^20 bitmap blocks: the reader allocated and
    zero-filled gigabytes of bitmaps (6 GiB) before failing."""
    d, data = mdf
    bs, sub_blocks = struct.unpack_from("<ii", data, 428)
    out = bytearray(FLAT_HEADER.ljust(4096, b"\0"))
    for b in range(1 + sub_blocks):
        rec = bytearray(data[b * bs:(b + 1) * bs])
        if b == 0:
            struct.pack_into("<I", rec, 436, 1 << 20)  # bitmap_blocks
        if b == 1:  # the 64-bit max_mapnr: what 2^19 bitmap blocks describe
            struct.pack_into("<Q", rec, 96, (1 << 19) * bs * 8)
        out += struct.pack(">QQ", b * bs, bs) + rec
    # One record a TiB out: the logical size the header's sizes are checked by.
    out += struct.pack(">QQ", 1 << 40, 16) + bytes(16)
    out += struct.pack(">QQ", (1 << 64) - 1, 0)
    path = tmp_path / "small.flat"
    path.write_bytes(out)
    assert len(out) < 64 * 1024
    res = open_in_child(d.kallsyms, str(path))
    assert_refused_fast(res, str(path), "bitmaps", "file")


# ---- kallsyms in the dump: tables that decode to huge symbol pools ----

def elf_loads(data: bytes):
    """(paddr, file offset, filesz) of an ELF64 vmcore's PT_LOADs."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p = phoff + i * phentsize
        ptype, _, off, _, paddr, filesz = struct.unpack_from("<IIQQQQ", data, p)
        if ptype == 1:
            yield paddr, off, filesz


def file_offset(data: bytes, pa: int) -> int:
    for paddr, off, filesz in elf_loads(data):
        if paddr <= pa < paddr + filesz:
            return off + pa - paddr
    raise AssertionError(f"pa {pa:#x} is not in the dump")


def move_symbol(data: bytearray, name: str, va: int) -> None:
    """Rewrite SYMBOL(name)=... in VMCOREINFO, same length."""
    m = re.search(rb"SYMBOL\(" + name.encode() + rb"\)=([0-9a-f]+)\n", data)
    assert m and len(m.group(1)) == 16
    data[m.start(1):m.end(1)] = b"%016x" % va


@pytest.mark.parametrize("token_len,words", [
    (4000, "token"),                 # tokens longer than KSYM_NAME_LEN
    (500, "expand"),                 # a million names of 500 bytes
])
def test_kallsyms_tables_that_expand_to_gigabytes(dumps, tmp_path, token_len, words):
    """kallsyms_num_syms, kallsyms_offsets, kallsyms_names and
    kallsyms_token_table moved (VMCOREINFO rewritten, same length) into RAM
    refilled with a million one-token names whose tokens are thousands of
    bytes long (as aliased page tables show the decoder): it grew the
    symbol pool to 4 GiB before failing.  Now the kernel's limits
    (KSYM_NAME_LEN) and a count of the bytes the names expand to, made
    before anything is allocated, refuse it."""
    d = dumps["nokaslr-96M"]
    data = bytearray(open(d.path("vmcore.elf"), "rb").read())
    direct_map = 0xffff888000000000  # no KASLR: page_offset_base
    region = 0x4800000               # free RAM: past the kernel's bss, below the top
    num = 1_000_000
    num_at = region
    offsets_at = num_at + 4096
    names_at = offsets_at + 4 * num + 4096
    tokens_at = names_at + 2 * num + 4096
    struct.pack_into("<I", data, file_offset(data, num_at), num)
    n = file_offset(data, names_at)
    data[n:n + 2 * num] = b"\x01" * (2 * num)
    # The real token_index offsets (< 2 KB) now point into a run of "A"s
    # ending token_len bytes from the table's start.
    t = file_offset(data, tokens_at)
    data[t:t + token_len + 4096] = b"A" * token_len + bytes(4096)
    for name, at in [("kallsyms_num_syms", num_at), ("kallsyms_offsets", offsets_at),
                     ("kallsyms_names", names_at), ("kallsyms_token_table", tokens_at)]:
        move_symbol(data, name, direct_map + at)
    path = tmp_path / "kallsyms.elf"
    path.write_bytes(data)
    del data
    out = open_in_child(None, str(path), "jiffies")
    assert_refused_fast(out, str(path), "kallsyms", words)


def test_kallsyms_count_larger_than_its_address_table(dumps, tmp_path):
    """kallsyms_num_syms beyond what kallsyms_offsets can hold before the
    next table VMCOREINFO places (kallsyms_relative_base): refused."""
    d = dumps["nokaslr-96M"]
    data = bytearray(open(d.path("vmcore.elf"), "rb").read())
    num_va = int(re.search(rb"SYMBOL\(kallsyms_num_syms\)=([0-9a-f]+)", data).group(1), 16)
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        pa = kd.physaddr(num_va)
        real = struct.unpack("<I", kd.read(num_va, 4))[0]
    at = file_offset(data, pa)
    assert struct.unpack_from("<I", data, at)[0] == real
    struct.pack_into("<I", data, at, real * 2)
    path = tmp_path / "count.elf"
    path.write_bytes(data)
    del data
    out = open_in_child(None, str(path), "jiffies")
    assert out["error"] == "KvmFormatError", out
    assert str(path) in out["message"] and "kallsyms_offsets" in out["message"], out
    assert out["rss_kb"] < RSS_SLACK_KB, out
