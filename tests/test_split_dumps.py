"""makedumpfile --split dumps: a set of files, each holding one pfn range.

The parts come from fixtures/kernel/make_split.py (makedumpfile --split of the
variant's QEMU ELF dump).  Ground truth is that ELF dump -- QEMU's own copy of
the same stopped guest -- and each part's sub-header as makedumpfile wrote it
(parsed here, not by pykvm).
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pykvm
from conftest import CACHE, VARIANTS, run_fixture_script
from native_support import assert_unsupported

PAGE = 4096


@pytest.fixture(scope="session")
def split(dumps) -> dict:
    """variant -> the paths of its three parts, in order."""
    run_fixture_script("fixtures/kernel/make_split.py")
    return {v: [str(CACHE / "split" / v / f"vmcore.split-{i}") for i in (1, 2, 3)]
            for v in VARIANTS}


def sub_header(path: str) -> dict:
    """split, start_pfn_64, end_pfn_64, max_mapnr_64 of a 64-bit little-endian part."""
    with open(path, "rb") as f:
        head = f.read(8192)
    assert head[:8] == b"KDUMP   " and struct.unpack_from("<i", head, 8)[0] >= 6
    bs = struct.unpack_from("<i", head, 428)[0]
    split_flag, = struct.unpack_from("<i", head, bs + 12)
    start, end, mapnr = struct.unpack_from("<QQQ", head, bs + 80)
    return {"split": split_flag, "start": start, "end": end, "max_mapnr": mapnr}


def outcomes(kd, addrs, physical=True):
    """Per address: the page's bytes, or the errno of the failure."""
    buf, results = kd.try_read_many(addrs, PAGE, physical=physical)
    return [bytes(buf[i * PAGE:(i + 1) * PAGE]) if results[i] == PAGE else -results[i]
            for i in range(len(addrs))]


def needs_parts():
    return pykvm.has("options") and pykvm.has("pread") and pykvm.has("read_many")


@pytest.mark.parametrize("variant", VARIANTS)
def test_fixture_parts_really_split(split, variant):
    """makedumpfile wrote three parts with adjacent pfn ranges covering the dump."""
    subs = [sub_header(p) for p in split[variant]]
    assert all(s["split"] == 1 for s in subs)
    assert subs[0]["start"] == 0 and subs[-1]["end"] == subs[0]["max_mapnr"]
    for a, b in zip(subs, subs[1:]):
        assert a["end"] == b["start"] and a["start"] < a["end"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pfn_of_the_set_is_the_elf_dumps(dumps, split, variant):
    """The parts opened as one handle (in any order): every pfn reads as in the ELF
    dump of the same guest, or raises PageExcludedError (-d 31 left it out), or is
    unmapped in the ELF dump too.  Every part supplies pages."""
    d = dumps[variant]
    parts = split[variant]
    if not needs_parts():
        assert_unsupported(pykvm.open, d.kallsyms, parts)
        return
    subs = [sub_header(p) for p in parts]
    mapnr = subs[0]["max_mapnr"]
    shuffled = parts[:]
    random.Random(8).shuffle(shuffled)
    addrs = [pfn * PAGE for pfn in range(mapnr)]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as elf:
        want = outcomes(elf, addrs)
    with pykvm.open(d.kallsyms, shuffled) as kd:
        got = outcomes(kd, addrs)
        info = kd.info
        assert info["format"] == "kdump-split"
        assert [(p["path"], p["start_pfn"], p["end_pfn"]) for p in info["parts"]] == \
            [(p, s["start"], s["end"]) for p, s in zip(parts, subs)]
        # kernel virtual reads across the parts: the banner, a module (page-table walk)
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        mod = d.addr("__this_module", "qemu_fw_cfg")
        assert kd.read_cstring(mod + 24) == "qemu_fw_cfg"
    read = {s["start"]: 0 for s in subs}
    for pfn, (w, g) in enumerate(zip(want, got)):
        if isinstance(g, bytes):
            assert g == w, hex(pfn)
            read[max(s for s in read if s <= pfn)] += 1
        elif g == 61:  # ENODATA: excluded by the dump's filter, present in the ELF dump
            assert isinstance(w, bytes), hex(pfn)
        else:
            assert g == 14 and w == 14, (hex(pfn), g, w)  # EFAULT in both
    assert all(n > 1000 for n in read.values()), read


@pytest.mark.parametrize("variant", ["kaslr-96M"])
def test_one_part_alone_reads_its_range_and_names_the_others(dumps, split, variant):
    """A part opened alone reads its own pfns as the ELF dump has them; a page dumped
    in another part raises FaultError saying it is in another part of a split dump
    (never another page's bytes, never a corrupt-descriptor error)."""
    d = dumps[variant]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as elf:
        for path in split[variant]:
            s = sub_header(path)
            with pykvm.open(d.kallsyms, path) as kd:
                inside = outside = 0
                for pfn in range(0, s["max_mapnr"], 7):
                    a = pfn * PAGE
                    try:
                        data = kd.read(a, 64, physical=True) if pykvm.has("pread") else None
                    except pykvm.PageExcludedError:
                        continue
                    except pykvm.FaultError as e:
                        if s["start"] <= pfn < s["end"] or "is not mapped" in str(e):
                            with pytest.raises(pykvm.FaultError):  # no RAM there at all
                                elf.read(a, 64, physical=True)
                            continue
                        outside += 1
                        assert e.address == a
                        if pykvm.has("geterr"):  # (illumos libkvm: no messages)
                            assert "in another part of a split dump" in str(e), str(e)
                            assert path in str(e)
                        continue
                    if data is None:
                        assert_unsupported(kd.read, a, 64, physical=True)
                        return
                    assert s["start"] <= pfn < s["end"], hex(pfn)
                    assert data == elf.read(a, 64, physical=True), hex(pfn)
                    inside += 1
                assert inside > 100 and outside > 100, (path, inside, outside)


def expect_refused(kallsyms, parts, *words):
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, kallsyms, parts)
        return
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(kallsyms, parts)
    for w in words:
        assert w in str(ei.value), str(ei.value)


def test_a_set_must_be_complete_and_belong_together(dumps, split):
    """A missing part, a part twice, parts of another guest's dump, a file that is not
    a split part or not a kdump at all: refused, saying which."""
    d = dumps["nokaslr-96M"]
    p1, p2, p3 = split["nokaslr-96M"]
    expect_refused(d.kallsyms, [p1, p3], "incomplete", "missing")
    expect_refused(d.kallsyms, [p2, p3], "incomplete")
    expect_refused(d.kallsyms, [p1, p2, p2, p3], "twice")
    other = split["kaslr-96M"]
    expect_refused(d.kallsyms, [p1, other[1], p3], "not parts of the same split dump",
                   other[1])
    expect_refused(d.kallsyms, [p1, d.path("vmcore.mdf-lzo")], "not part of a split dump",
                   d.path("vmcore.mdf-lzo"))
    expect_refused(d.kallsyms, [p1, p2, d.path("vmcore.elf")], "not a kdump-compressed file")
    with pytest.raises(ValueError):
        pykvm.open(d.kallsyms, [])


def test_cli_takes_every_part(dumps, split):
    """pykvm info / read with one -M per part."""
    d = dumps["nokaslr-96M"]
    files = [a for p in split["nokaslr-96M"] for a in ("-M", p)]
    res = subprocess.run([sys.executable, "-m", "pykvm", "read", "--string", "-N", d.kallsyms,
                          *files, "linux_banner"], capture_output=True, text=True)
    if not pykvm.has("options"):
        assert res.returncode != 0 and "not available with the native libkvm" in res.stderr
        return
    assert res.returncode == 0, res.stderr
    assert res.stdout == d.truth["banner"].rstrip("\n") + "\n"
    res = subprocess.run([sys.executable, "-m", "pykvm", "info", "-N", d.kallsyms, *files],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "kdump-split" in res.stdout
    assert sum(line.startswith("part: ") for line in res.stdout.splitlines()) == 3
    assert all(Path(p).name in res.stdout for p in split["nokaslr-96M"])


def test_c_api_opens_the_parts(dumps, split, tmp_path):
    """kvm_open_opts with parts/nparts (tests/c/split_parts.c), built against csrc/."""
    from conftest import ROOT
    from test_c_api import CC, CFLAGS, codec_libs, shim_sources
    prog = tmp_path / "split_parts"
    subprocess.run([CC, *CFLAGS, f"-I{ROOT / 'csrc'}", str(ROOT / "tests/c/split_parts.c"),
                    *shim_sources(), "-o", str(prog), *codec_libs(), "-lpthread"],
                   check=True, capture_output=True, text=True)
    d = dumps["kaslr-256M"]
    res = subprocess.run([str(prog), d.kallsyms, *split["kaslr-256M"]], capture_output=True,
                         text=True)
    assert "not ok" not in res.stdout, res.stdout
    assert res.returncode == 0 and res.stdout.strip().endswith("1..16"), res.stdout + res.stderr


def test_a_truncated_part(dumps, split, tmp_path):
    """One part cut short: the set opens, its lost pages fault saying the dump is
    truncated, every other page reads as in the ELF dump, info counts the loss."""
    from test_truncated_dumps import check_kdump, kdump_pages, truncated_figure
    d = dumps["nokaslr-96M"]
    p1, p2, p3 = split["nokaslr-96M"]
    cut = tmp_path / "vmcore.split-2"
    data = open(p2, "rb").read()
    cut.write_bytes(data[:len(data) * 6 // 10])
    if not needs_parts():
        assert_unsupported(pykvm.open, d.kallsyms, [p1, str(cut), p3])
        return
    s = sub_header(p2)
    pages = {pfn: lost for pfn, lost in kdump_pages(str(cut)).items()
             if s["start"] <= pfn < s["end"]}
    with pykvm.open(d.kallsyms, [p1, str(cut), p3]) as kd, \
            pykvm.open(d.kallsyms, d.path("vmcore.elf")) as elf:
        read, lost = check_kdump(kd, elf, pages)
        assert truncated_figure(kd) == (lost, "pages") and lost > 500 and read > 500


def test_an_older_header_names_the_range_in_its_unsigned_longs(dumps, split, tmp_path):
    """Before header version 6 the range is only in start_pfn/end_pfn (unsigned longs):
    a part rewritten as version 5 (the 64-bit fields zeroed) keeps its range."""
    d = dumps["nokaslr-96M"]
    p2 = split["nokaslr-96M"][1]
    s = sub_header(p2)
    data = bytearray(open(p2, "rb").read())
    bs = struct.unpack_from("<i", data, 428)[0]
    assert struct.unpack_from("<QQ", data, bs + 16) == (s["start"], s["end"])
    struct.pack_into("<i", data, 8, 5)
    data[bs + 80:bs + 104] = bytes(24)
    old = tmp_path / "part2-v5"
    old.write_bytes(bytes(data))
    with pykvm.open(d.kallsyms, str(old)) as kd, \
            pykvm.open(d.kallsyms, d.path("vmcore.elf")) as elf:
        if not pykvm.has("pread"):
            assert_unsupported(kd.read, 0, 8, physical=True)
            return
        inside = outside = 0
        for pfn in range(0, s["max_mapnr"], 5):
            try:
                got = kd.read(pfn * PAGE, 32, physical=True)
            except pykvm.PageExcludedError:
                continue
            except pykvm.FaultError as e:
                if not s["start"] <= pfn < s["end"] and "another part" in str(e):
                    outside += 1
                continue
            assert s["start"] <= pfn < s["end"] and got == elf.read(pfn * PAGE, 32, physical=True)
            inside += 1
        assert inside > 500 and (outside > 500 or not pykvm.has("geterr"))
