"""kdump-compressed files in the header reencoded of other machines, made by
fixtures/kernel/reversion.py from makedumpfile's x86-64 files of the real dumps:

    vmcore.mdf-i386  i686    little-endian, 32-bit header, packed sub-header
    vmcore.mdf-arm   armv7l  little-endian, 32-bit header, padded sub-header
    vmcore.mdf-be64  s390x   big-endian, 64-bit header and sub-header
    vmcore.mdf-be32  ppc     big-endian, 32-bit header, padded sub-header

The bitmaps and page data are the x86-64 dump's (so physical pages read as in
vmcore.elf); the VMCOREINFO text is the x86-64 kernel's.  The utsname.machine
names a machine the shim has no page tables for, so virtual addresses may not
translate: they must then fail saying so, never read other bytes.

The offsets below are written out from the C rules (ILP32: 4-byte long and
timeval fields; off_t and unsigned long long are 8 bytes, aligned to 4 on i386,
to 8 on arm and ppc), not taken from the script.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import pykvm
from conftest import VARIANTS
from kdump_pages import PAGE, check_physical_pages, kernel_addresses, sample_physical
from native_support import assert_unsupported

BLOCK = 4096  # block_size of every source dump (checked below)

# name -> (utsname.machine, ELF e_machine, word size, byte order, sub-header layout)
LAYOUTS = {
    "i386": ("i686", 3, 32, "little", "packed"),
    "arm": ("armv7l", 40, 32, "little", "padded"),
    "be64": ("s390x", 22, 64, "big", "64"),
    "be32": ("ppc", 20, 32, "big", "padded"),
}
CASES = [(v, n) for v in VARIANTS for n in LAYOUTS]
IDS = [f"{v}-{n}" for v, n in CASES]

# disk_dump_header after utsname: (tv_sec, tv_usec, their size, status) offsets.
HEADER = {32: (404, 408, 4, 412), 64: (408, 416, 8, 424)}
HDR_FIELDS = "IiiIIIIIIi"  # status .. nr_cpus
# kdump_sub_header: name -> (offset, format) for each layout; then sizeof.
SUB_LAYOUTS = {
    "64": ({"phys_base": (0, "Q"), "dump_level": (8, "i"), "split": (12, "i"),
            "start_pfn": (16, "Q"), "end_pfn": (24, "Q"),
            "offset_vmcoreinfo": (32, "q"), "size_vmcoreinfo": (40, "Q"),
            "offset_note": (48, "q"), "size_note": (56, "Q"),
            "offset_eraseinfo": (64, "q"), "size_eraseinfo": (72, "Q"),
            "start_pfn_64": (80, "Q"), "end_pfn_64": (88, "Q"), "max_mapnr_64": (96, "Q")},
           104),
    "packed": ({"phys_base": (0, "I"), "dump_level": (4, "i"), "split": (8, "i"),
                "start_pfn": (12, "I"), "end_pfn": (16, "I"),
                "offset_vmcoreinfo": (20, "q"), "size_vmcoreinfo": (28, "I"),
                "offset_note": (32, "q"), "size_note": (40, "I"),
                "offset_eraseinfo": (44, "q"), "size_eraseinfo": (52, "I"),
                "start_pfn_64": (56, "Q"), "end_pfn_64": (64, "Q"), "max_mapnr_64": (72, "Q")},
               80),
    "padded": ({"phys_base": (0, "I"), "dump_level": (4, "i"), "split": (8, "i"),
                "start_pfn": (12, "I"), "end_pfn": (16, "I"),
                "offset_vmcoreinfo": (24, "q"), "size_vmcoreinfo": (32, "I"),
                "offset_note": (40, "q"), "size_note": (48, "I"),
                "offset_eraseinfo": (56, "q"), "size_eraseinfo": (64, "I"),
                "start_pfn_64": (72, "Q"), "end_pfn_64": (80, "Q"), "max_mapnr_64": (88, "Q")},
               96),
}
DESC = 24  # page_desc: off_t offset, unsigned size, flags, unsigned long long page_flags


def lfile(d, name: str) -> str:
    return d.path(f"vmcore.mdf-{name}")


def word_of(path: str) -> int:
    return LAYOUTS[path.rsplit("vmcore.mdf-", 1)[1]][2]


def refused_here(d, path: str) -> bool:
    """Whether this build must refuse the file, asserting that it does, saying why:
    FreeBSD's glue refuses what kvm_native() says is not this machine's data model
    (word size and byte order); elsewhere a 32-bit dump is refused unless
    foreign=True is given, which only the shim's open offers.  True if refused."""
    if pykvm.platform == "freebsd":
        with pytest.raises(pykvm.KvmFormatError) as ei:
            pykvm.open(d.kallsyms, path)
        # the libkvm's own data-model refusal (32-bit), else the glue's kvm_native() check
        assert str(ei.value) in (
            f"{path} is a 32-bit core file - cannot examine with 64-bit libkvm",
            f"{path}: not a core of this machine's data model (kvm_native() is 0)")
        return True
    if word_of(path) == 32:
        with pytest.raises(pykvm.KvmFormatError) as ei:
            pykvm.open(d.kallsyms, path)
        if pykvm.has("geterr"):  # illumos libkvm reports no message to check
            assert str(ei.value) == (f"{path} is a 32-bit core file - "
                                     "cannot examine with 64-bit libkvm")
        return not pykvm.has("options")
    return False


def open_layout(namelist, path: str):
    """Open a layout file, opting in to a foreign data model where it is one."""
    if word_of(path) == 32:
        return pykvm.open(namelist, path, foreign=True)
    return pykvm.open(namelist, path)


# ---- the files themselves ----

def parse(data: bytes, order: str, word: int, sub_layout: str) -> tuple:
    """(header fields, sub-header fields) of a file in the given layout."""
    sec, usec, tsize, status = HEADER[word]
    t = "i" if tsize == 4 else "q"
    hdr = dict(zip(("status", "block_size", "sub_hdr_size", "bitmap_blocks", "max_mapnr",
                    "total_ram_blocks", "device_blocks", "written_blocks", "current_cpu",
                    "nr_cpus"), struct.unpack_from(order + HDR_FIELDS, data, status)))
    hdr["version"], = struct.unpack_from(order + "i", data, 8)
    hdr["tv"] = struct.unpack_from(order + t, data, sec)[0], \
        struct.unpack_from(order + t, data, usec)[0]
    hdr["machine"] = data[12 + 4 * 65:12 + 5 * 65].rstrip(b"\0")
    hdr["end"] = status + 4 * len(HDR_FIELDS)
    fields, _ = SUB_LAYOUTS[sub_layout]
    sub = {n: struct.unpack_from(order + f, data, BLOCK + off)[0]
           for n, (off, f) in fields.items()}
    return hdr, sub


def swap_note_headers(notes: bytes) -> bytes:
    out, pos = bytearray(notes), 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        struct.pack_into(">III", out, pos, namesz, descsz, ntype)
        pos += 12 + -(-namesz // 4) * 4 + -(-descsz // 4) * 4
    assert pos == len(notes)
    return bytes(out)


@pytest.mark.parametrize("variant", VARIANTS)
def test_files_are_faithful_to_their_layout(reencoded, variant):
    """Every header and sub-header field where that machine's compiler puts it, in its
    byte order, with the source's values; the notes (VMCOREINFO inside) right after
    the struct; bitmaps and page data byte-identical; descriptors identical, or
    field by field in big-endian order."""
    d = reencoded[variant]
    src = Path(d.path("vmcore.mdf-lzo")).read_bytes()
    h6, s6 = parse(src, "<", 64, "64")
    assert h6["version"] == 6 and h6["block_size"] == BLOCK and h6["machine"] == b"x86_64"
    body = (1 + h6["sub_hdr_size"]) * BLOCK
    desc_at = body + h6["bitmap_blocks"] * BLOCK
    dumped = src[body + h6["bitmap_blocks"] * BLOCK // 2:][:(h6["max_mapnr"] + 7) // 8]
    desc_end = desc_at + DESC * int.from_bytes(dumped, "little").bit_count()
    notes = src[s6["offset_note"]:][:s6["size_note"]]
    text = src[s6["offset_vmcoreinfo"]:][:s6["size_vmcoreinfo"]]
    assert text.startswith(b"OSRELEASE=") and text in notes
    for name, (machine, _, word, order_name, sub_layout) in LAYOUTS.items():
        order = "<" if order_name == "little" else ">"
        data = Path(lfile(d, name)).read_bytes()
        hdr, sub = parse(data, order, word, sub_layout)
        assert data[:8] == b"KDUMP   " and hdr["machine"] == machine.encode(), name
        assert data[12:12 + 4 * 65] == src[12:12 + 4 * 65], name  # utsname but machine
        for key in ("version", "tv", "status", "block_size", "sub_hdr_size", "bitmap_blocks",
                    "max_mapnr", "total_ram_blocks", "device_blocks", "written_blocks",
                    "current_cpu", "nr_cpus"):
            assert hdr[key] == h6[key], (name, key)
        assert data[12 + 5 * 65:12 + 6 * 65] == src[12 + 5 * 65:12 + 6 * 65], name  # domain
        assert not any(data[12 + 6 * 65:HEADER[word][0]]), name
        assert not any(data[hdr["end"]:BLOCK]), name
        size = SUB_LAYOUTS[sub_layout][1]
        assert sub["offset_note"] == BLOCK + size, name
        assert sub["offset_vmcoreinfo"] - sub["offset_note"] == \
            s6["offset_vmcoreinfo"] - s6["offset_note"], name
        for key, value in sub.items():
            if not key.startswith("offset_"):
                want = s6[key] & 0xffffffff if (key == "phys_base" and word == 32) else s6[key]
                assert value == want, (name, key)
        expect = bytearray(data[BLOCK:BLOCK + size]) + bytes(body - BLOCK - size)
        expect[size:size + len(notes)] = notes if order == "<" else swap_note_headers(notes)
        assert data[BLOCK:body] == bytes(expect), name
        assert data[sub["offset_vmcoreinfo"]:][:sub["size_vmcoreinfo"]] == text, name
        assert data[body:desc_at] == src[body:desc_at], name  # the bitmaps
        assert data[desc_end:] == src[desc_end:], name  # the page data
        if order == "<":
            assert data[desc_at:desc_end] == src[desc_at:desc_end], name
        else:
            swapped = b"".join(struct.pack(">qIIQ", *f) for f in
                               struct.iter_unpack("<qIIQ", src[desc_at:desc_end]))
            assert data[desc_at:desc_end] == swapped, name


# ---- what the reader makes of them ----

@pytest.mark.parametrize("variant,name", CASES, ids=IDS)
def test_word_size_byte_order_and_facts(reencoded, variant, name):
    """info: the layout's word size and byte order, the machine utsname names; the
    facts VMCOREINFO gives (found through the layout's sub-header offsets)."""
    d = reencoded[variant]
    _, em, word, order, _ = LAYOUTS[name]
    path = lfile(d, name)
    if refused_here(d, path):
        return
    with open_layout(d.kallsyms, path) as kd:
        assert kd.symbol("linux_banner") == d.addr("linux_banner")
        if not pykvm.has("info"):
            assert_unsupported(lambda: kd.info)
            return
        info = kd.info
        assert (info["word_size"], info["byte_order"]) == (word, order)
        assert kd.byteorder == order
        assert info["machine"] == em and info["format"] == "kdump"
        assert info["compression"] == "lzo" and info["page_size"] == PAGE
        assert info["header_release"] == d.truth["release"]
        assert info["vmcoreinfo"] == 1 and info["osrelease"] == d.truth["release"]
        assert info["phys_base"] == d.phys_base  # VMCOREINFO's, not the truncated field
        assert info["kerndisp"] == d.addr("_stext") - 0xffffffff81000000
        assert "crash_time" not in info  # the timestamp is 0, as makedumpfile wrote it


@pytest.fixture(scope="module")
def physical_truth(reencoded) -> dict:
    """variant -> (sampled physical addresses, {addr: ELF outcome}, {addr: mdf-lzo outcome})."""
    if not pykvm.has("pread"):
        return {}
    return {v: sample_physical(reencoded[v], f"kdump-reencoded-{v}") for v in VARIANTS}


@pytest.mark.parametrize("variant,name", CASES, ids=IDS)
def test_physical_pages_read_as_in_the_elf_dump(reencoded, physical_truth, variant, name):
    """≥ 2,000 sampled pfns: dumped pages identical to vmcore.elf's; pages the filter
    excluded raise PageExcludedError exactly where vmcore.mdf-lzo's do; pfns past
    max_mapnr raise FaultError."""
    d = reencoded[variant]
    path = lfile(d, name)
    if refused_here(d, path):
        return
    with open_layout(d.kallsyms, path) as kd:
        if not pykvm.has("pread"):
            assert_unsupported(kd.read, 0x1000000, 8, physical=True)
            return
        check_physical_pages(kd, *physical_truth[variant])


@pytest.mark.parametrize("variant,name", CASES, ids=IDS)
def test_virtual_reads_work_or_say_why(reencoded, variant, name):
    """The machine is not x86-64 but VMCOREINFO is: a reader may translate with it or
    not.  Each virtual read gives vmcore.mdf-lzo's bytes or raises; a refusal says it
    cannot translate (not that the address is unmapped); physaddr, where it answers,
    gives the address vmcore.mdf-lzo's page tables give."""
    d = reencoded[variant]
    path = lfile(d, name)
    if refused_here(d, path):
        return
    addrs = kernel_addresses(d, 32)

    def attempt(kd, fn, a):
        try:
            return fn(a)
        except pykvm.KvmError as e:
            return e

    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        want = [attempt(kd, lambda a: kd.read(a, 64), a) for a in addrs]
        want_pa = ([attempt(kd, kd.physaddr, a) for a in addrs]
                   if pykvm.has("physaddr") else None)
    assert sum(isinstance(w, bytes) for w in want) > 20
    with open_layout(d.kallsyms, path) as kd:
        got = [attempt(kd, lambda a: kd.read(a, 64), a) for a in addrs]
        got_pa = [attempt(kd, kd.physaddr, a) for a in addrs] if want_pa else None
        translates = pykvm.has("info") and kd.info["translation"] == 1
    for i, (a, w, g) in enumerate(zip(addrs, want, got)):
        if isinstance(g, pykvm.KvmError):
            if pykvm.has("geterr") and isinstance(w, bytes):
                assert "cannot translate virtual addresses" in str(g), str(g)
                assert "is not mapped" not in str(g), str(g)
        else:
            assert g == w, hex(a)
        if got_pa is not None and not isinstance(got_pa[i], pykvm.KvmError):
            assert got_pa[i] == want_pa[i], hex(a)
    if pykvm.has("info") and not translates:  # then nothing reads, and says so
        assert all(isinstance(g, pykvm.FaultError) for g in got)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_namelist_none(reencoded, name):
    """namelist=None: the kallsyms tables are found through virtual addresses.  A reader
    that cannot translate refuses to open (UnsupportedError), saying why and what to do."""
    d = reencoded["kaslr-96M"]
    path = lfile(d, name)
    if refused_here(d, path):
        return
    try:
        kd = open_layout(None, path)
    except pykvm.KvmError as e:
        assert isinstance(e, pykvm.UnsupportedError)  # not a fault: nothing was read
        assert path in str(e)
        if pykvm.has("geterr"):
            assert "symbol table in the dump cannot be read" in str(e), str(e)
            assert "pass a namelist" in str(e), str(e)
        return
    with kd:
        assert kd.symbol("linux_banner") == d.addr("linux_banner")
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_data_model(reencoded, name):
    """The data-model rule of illumos libkvm, for kdump files too: a 32-bit dump in
    this 64-bit process is refused unless foreign=True (refused_here checks the
    refusal); a big-endian 64-bit one is the same data model and opens, and
    foreign=True changes nothing.  FreeBSD's glue refuses both (kvm_native() is 0)."""
    d = reencoded["nokaslr-96M"]
    path = lfile(d, name)
    _, _, word, order, _ = LAYOUTS[name]
    if refused_here(d, path):
        assert_unsupported(pykvm.open, d.kallsyms, path, foreign=True)
        return
    if not pykvm.has("options"):  # a 64-bit big-endian dump: the same data model
        with pykvm.open(d.kallsyms, path) as kd:
            if pykvm.has("pread"):
                assert len(kd.read(0x1000000, PAGE, physical=True)) == PAGE
        assert_unsupported(pykvm.open, d.kallsyms, path, foreign=True)
        return
    with pykvm.open(d.kallsyms, path, foreign=True) as kd:
        if pykvm.has("info"):
            assert (kd.info["word_size"], kd.info["byte_order"]) == (word, order)
        if pykvm.has("pread"):
            first = kd.read(0x1000000, PAGE, physical=True)
    if word == 64:
        with pykvm.open(d.kallsyms, path) as kd:
            if pykvm.has("pread"):
                assert kd.read(0x1000000, PAGE, physical=True) == first
