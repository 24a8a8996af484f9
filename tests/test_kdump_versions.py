"""kdump-compressed files of header versions 1-5, made by fixtures/kernel/reversion.py
from makedumpfile's version-6 files of the real dumps: same bitmaps, descriptors and
page data, the sub-header cut down to what each version has.

What a reader of each version can know:
  v1, v2  phys_base, dump_level (v2: split, start_pfn, end_pfn): no VMCOREINFO, so
          symbols must come from a namelist, and the page-table root (init_top_pgt)
          too: the dump does not name it;
  v3      + VMCOREINFO: translation, KASLR, the kallsyms tables (namelist=None);
  v4      + the ELF notes; v5 + eraseinfo (empty here); v6 + 64-bit pfn counts.
Physical pages read the same in every version as in vmcore.elf, and pages the
filter left out are PageExcludedError wherever they are in vmcore.mdf-lzo.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

import pykvm
from conftest import VARIANTS
from kdump_pages import (PAGE, check_physical_pages, differences, kernel_addresses, outcome,
                         sample_physical)
from native_support import assert_unsupported

START_KERNEL_MAP = 0xffffffff80000000
VERSIONS = [1, 2, 3, 4, 5]
WITH_VMCOREINFO = [v for v in VERSIONS if v >= 3]
CASES = [(v, n) for v in VARIANTS for n in VERSIONS]
IDS = [f"{v}-v{n}" for v, n in CASES]
OLD = [(v, n) for v, n in CASES if n < 3]  # no VMCOREINFO
OLD_IDS = [f"{v}-v{n}" for v, n in OLD]
NEW = [(v, n) for v, n in CASES if n >= 3]
NEW_IDS = [f"{v}-v{n}" for v, n in NEW]

# kdump_sub_header, 64-bit: field -> (offset, struct format, first version having it).
SUB_FIELDS = {
    "phys_base": (0, "<Q", 1), "dump_level": (8, "<i", 1), "split": (12, "<i", 2),
    "start_pfn": (16, "<Q", 2), "end_pfn": (24, "<Q", 2),
    "offset_vmcoreinfo": (32, "<Q", 3), "size_vmcoreinfo": (40, "<Q", 3),
    "offset_note": (48, "<Q", 4), "size_note": (56, "<Q", 4),
    "offset_eraseinfo": (64, "<Q", 5), "size_eraseinfo": (72, "<Q", 5),
    "start_pfn_64": (80, "<Q", 6), "end_pfn_64": (88, "<Q", 6), "max_mapnr_64": (96, "<Q", 6),
}
SUB_SIZE = {1: 16, 2: 32, 3: 48, 4: 64, 5: 80}  # sizeof(struct kdump_sub_header), 64-bit


def vfile(d, version: int) -> str:
    return d.path(f"vmcore.mdf-v{version}")


# ---- the files themselves ----

def sub_header(data: bytes, block: int, version: int = 6) -> dict:
    return {name: struct.unpack_from(fmt, data, block + off)[0]
            for name, (off, fmt, since) in SUB_FIELDS.items() if since <= version}


@pytest.mark.parametrize("variant", VARIANTS)
def test_files_are_faithful_to_their_version(reencoded, variant):
    """As makedumpfile of each version wrote them: header_version; the sub-header's
    fields of that version; right after the (shorter) struct the VMCOREINFO text (v3)
    or the notes with the text inside (v4, v5); zeros elsewhere in the sub-header
    blocks; everything else byte-identical to the version-6 file."""
    d = reencoded[variant]
    src = Path(d.path("vmcore.mdf-lzo")).read_bytes()
    block, sub_blocks = struct.unpack_from("<ii", src, 428)
    body = (1 + sub_blocks) * block
    s6 = sub_header(src, block)
    text = src[s6["offset_vmcoreinfo"]:][:s6["size_vmcoreinfo"]]
    notes = src[s6["offset_note"]:][:s6["size_note"]]
    assert text.startswith(b"OSRELEASE=") and text in notes
    for version in VERSIONS:
        data = Path(vfile(d, version)).read_bytes()
        assert struct.unpack_from("<i", data, 8) == (version,)
        assert data[12:block] == src[12:block] and data[body:] == src[body:]
        sub = sub_header(data, block, version)
        after = block + SUB_SIZE[version]
        expect = bytearray(data[block:after])  # the struct, checked field by field below
        expect += bytes(body - after)
        if version == 3:
            assert sub["offset_vmcoreinfo"] == after
            expect[SUB_SIZE[3]:SUB_SIZE[3] + len(text)] = text
        if version >= 4:
            assert sub["offset_note"] == after
            assert sub["offset_vmcoreinfo"] - after == s6["offset_vmcoreinfo"] - s6["offset_note"]
            expect[SUB_SIZE[version]:SUB_SIZE[version] + len(notes)] = notes
        assert data[block:body] == bytes(expect), version
        for name, value in sub.items():
            if not name.startswith("offset_"):
                assert value == s6[name], (version, name)
        if version < 3:
            assert b"VMCOREINFO" not in data[:body] and b"OSRELEASE=" not in data[:body]


# ---- physical memory: every version ----

@pytest.fixture(scope="module")
def physical_truth(reencoded) -> dict:
    """variant -> (sampled physical addresses, {addr: ELF outcome}, {addr: v6 outcome})."""
    if not pykvm.has("pread"):
        return {}
    return {v: sample_physical(reencoded[v], f"kdump-versions-{v}") for v in VARIANTS}


@pytest.mark.parametrize("variant,version", CASES, ids=IDS)
def test_physical_pages_read_as_in_the_elf_dump(reencoded, physical_truth, variant, version):
    """≥ 2,000 sampled pfns: dumped pages identical to vmcore.elf's; pages the filter
    excluded raise PageExcludedError exactly where vmcore.mdf-lzo's do; pfns that
    are no RAM raise FaultError (not PageExcludedError)."""
    d = reencoded[variant]
    with pykvm.open(d.kallsyms, vfile(d, version)) as kd:
        if not pykvm.has("pread"):
            assert_unsupported(kd.read, 0x1000000, 8, physical=True)
            return
        check_physical_pages(kd, *physical_truth[variant])


# ---- versions with VMCOREINFO (3, 4, 5) ----

@pytest.mark.parametrize("variant,version", NEW, ids=NEW_IDS)
def test_banner_by_symbol(reencoded, variant, version):
    """With the guest's kallsyms: linux_banner and the release read by symbol; the
    KASLR and phys_base facts come from VMCOREINFO."""
    d = reencoded[variant]
    with pykvm.open(d.kallsyms, vfile(d, version)) as kd:
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        assert kd.read_cstring(kd.symbol("init_uts_ns") + 2 * 65) == d.truth["release"]
        banner_pa = d.addr("linux_banner") - START_KERNEL_MAP + d.phys_base
        if pykvm.has("physaddr"):
            assert kd.physaddr(d.addr("linux_banner")) == banner_pa
        else:
            assert_unsupported(kd.physaddr, d.addr("linux_banner"))
        if pykvm.has("info"):
            assert kd.info["osrelease"] == d.truth["release"]
            assert kd.info["phys_base"] == d.phys_base
            assert kd.info["kerndisp"] == d.addr("_stext") - 0xffffffff81000000
        else:
            assert_unsupported(lambda: kd.info)


@pytest.mark.parametrize("variant,version", NEW, ids=NEW_IDS)
def test_namelist_none_uses_the_dumps_kallsyms(reencoded, variant, version):
    d = reencoded[variant]
    with pykvm.open(None, vfile(d, version)) as kd:
        for name in ("linux_banner", "init_uts_ns", "_stext", "jiffies_64", "init_task"):
            assert kd.symbol(name) == d.addr(name), name
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        if pykvm.has("info"):
            assert kd.namelist.endswith(":kallsyms")


@pytest.mark.parametrize("variant", VARIANTS)
def test_direct_map_reads_as_version_6(reencoded, variant):
    """Through the page tables (every backend): 400 sampled pages of the direct map
    read as in vmcore.mdf-lzo, excluded ones PageExcludedError there too."""
    d = reencoded[variant]
    rng = random.Random(f"direct-map-{variant}")
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        base = kd.read_u64(kd.symbol("page_offset_base"))
        pfns = sorted(rng.sample(range(d.truth["mem_mb"] * 256), 400))
        addrs = [base + pfn * PAGE for pfn in pfns]
        v6 = {a: outcome(kd, a, PAGE, False) for a in addrs}
    assert sum(isinstance(o, bytes) for o in v6.values()) > 50  # a quarter of RAM is dumped
    assert sum(o is pykvm.PageExcludedError for o in v6.values()) > 20
    for version in WITH_VMCOREINFO:
        with pykvm.open(d.kallsyms, vfile(d, version)) as kd:
            got = {a: outcome(kd, a, PAGE, False) for a in addrs}
        assert not differences(got, v6)[:10], version


# ---- versions 1 and 2: no VMCOREINFO ----

@pytest.mark.parametrize("variant,version", OLD, ids=OLD_IDS)
def test_old_versions_symbols_and_phys_base(reencoded, variant, version):
    """The namelist gives the symbols (nothing to check it against: trusted); the
    sub-header's phys_base is the guest's, so a user translates kernel-image
    addresses by hand and reads them physically."""
    d = reencoded[variant]
    with pykvm.open(d.kallsyms, vfile(d, version)) as kd:
        assert kd.symbol("linux_banner") == d.addr("linux_banner")
        pa = kd.symbol("linux_banner") - START_KERNEL_MAP + d.phys_base
        if pykvm.has("pread"):
            assert kd.read_cstring(pa, physical=True) == d.truth["banner"]
        else:
            assert_unsupported(kd.read, pa, 8, physical=True)
        if pykvm.has("info"):
            info = kd.info
            assert info["phys_base"] == d.phys_base  # from the sub-header
            assert info["vmcoreinfo"] == 0 and "osrelease" not in info
            assert info["header_release"] == d.truth["release"]
        else:
            assert_unsupported(lambda: kd.info)


@pytest.mark.parametrize("variant,version", OLD, ids=OLD_IDS)
def test_old_versions_need_a_namelist(reencoded, variant, version):
    """namelist=None: no VMCOREINFO to find the kallsyms tables with: refused, saying so."""
    d = reencoded[variant]
    path = vfile(d, version)
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(None, path)
    assert isinstance(ei.value, pykvm.UnsupportedError)
    assert path in str(ei.value) and "VMCOREINFO" in str(ei.value)
    assert "pass a namelist" in str(ei.value)


def virtual_reads(d, version: int, namelist: str, addrs: list) -> list:
    """[(address, what version 6 reads there, what the version reads there)]: bytes,
    or the exception.  Version 6 translates with VMCOREINFO: the reference."""
    def attempt(kd, a, physical=False):
        try:
            return kd.read(a, 64, physical=physical)
        except pykvm.KvmError as e:
            return e
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        want = [attempt(kd, a) for a in addrs]
    with pykvm.open(namelist, vfile(d, version)) as kd:
        got = [attempt(kd, a) for a in addrs]
        if pykvm.has("physaddr") and pykvm.has("pread"):
            for a, w in zip(addrs, want):
                try:
                    pa = kd.physaddr(a)
                except pykvm.KvmError:
                    continue
                got_p = attempt(kd, pa, physical=True)
                if isinstance(w, bytes):
                    assert got_p == w, hex(a)
                else:  # e.g. an excluded page: the same failure either way
                    assert type(got_p) is type(w), hex(a)
    return list(zip(addrs, want, got))


def never_wrong(reads: list) -> None:
    readable = sum(isinstance(w, bytes) for _, w, _ in reads)
    assert readable > 30
    for addr, want, got in reads:
        assert isinstance(got, pykvm.KvmError) or got == want, hex(addr)


@pytest.mark.parametrize("variant,version", OLD, ids=OLD_IDS)
def test_old_versions_virtual_reads_are_never_wrong(reencoded, variant, version):
    """Virtual reads either give the bytes at that address or raise: never others."""
    d = reencoded[variant]
    never_wrong(virtual_reads(d, version, d.kallsyms, kernel_addresses(d, 64)))


@pytest.mark.parametrize("variant,version", [c for c in OLD if c[0] != "nokaslr-96M"],
                         ids=[i for c, i in zip(OLD, OLD_IDS) if c[0] != "nokaslr-96M"])
def test_old_versions_with_a_link_time_namelist(reencoded, variant, version, tmp_path):
    """A System.map of a KASLR kernel: with no VMCOREINFO nothing says how far the
    kernel moved, so its symbols (init_top_pgt too) are where the kernel was linked,
    not where it ran.  Whatever a reader does with them, it must not read wrong bytes."""
    smap = tmp_path / "System.map"
    lines = Path(reencoded["nokaslr-96M"].kallsyms).read_text().splitlines(keepends=True)
    smap.write_text("".join(line for line in lines if "[" not in line))
    d = reencoded[variant]
    with pykvm.open(smap, vfile(d, version)) as kd:
        linked = kd.symbol("linux_banner")
    assert linked != d.addr("linux_banner")  # not shifted: there is nothing to shift by
    never_wrong(virtual_reads(d, version, str(smap), kernel_addresses(d, 64) + [linked]))


@pytest.mark.parametrize("variant,version", OLD, ids=OLD_IDS)
def test_old_versions_virtual_reads_work_or_say_why(reencoded, variant, version):
    """The namelist names init_top_pgt and the sub-header gives phys_base: a reader
    can translate.  One that does not must say what it lacks, not call a mapped
    address unmapped."""
    d = reencoded[variant]
    for addr, want, got in virtual_reads(d, version, d.kallsyms, kernel_addresses(d, 64)):
        if not isinstance(want, bytes):
            continue
        if isinstance(got, pykvm.KvmError):
            msg = str(got)
            if pykvm.has("geterr"):
                assert "is not mapped" not in msg, msg
                assert any(w in msg for w in ("VMCOREINFO", "page table", "init_top_pgt")), msg
        else:
            assert got == want, hex(addr)
