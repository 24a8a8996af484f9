"""Memory images with no metadata -- LiME, AVML v2, raw/padded -- read by symbol.

The images are real: fixtures/kernel/make_images.py runs the LiME module (built
from Debian's lime-forensics-dkms source) inside a QEMU guest of the fixture kernel
(format=lime, padded and raw) and takes a QEMU ELF dump of the same guest right
after; fixtures/kernel/reencode_images.py re-encodes the LiME image as AVML v2 with
python-snappy and makes a copy with the VMCOREINFO text wiped.  Ground truth is
what the guest printed (banner, release, kallsyms, iomem), the QEMU dump, drgn
reading the converted ELF, and Volatility 3's own LiME, AVML and file layers.
"""

from __future__ import annotations

import errno
import mmap
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import drgn
import pytest
import snappy

import pykvm
from conftest import CACHE, KernelDump, run_fixture_script
from native_support import assert_unsupported
from pykvm.vmcore import write_elf_vmcore

START_KERNEL_MAP = 0xffffffff80000000
DEFAULT_TEXT = 0xffffffff81000000
# file -> open options; every one holds the same guest's memory.
IMAGES = {"memory.lime": {}, "memory.avml": {}, "memory.padded": {"format": "raw"}}


class Images(KernelDump):
    """The images of one guest, with what the guest printed."""

    @property
    def kerndisp(self) -> int:
        return int(self.truth["text_virt"], 16) - DEFAULT_TEXT

    @property
    def ram(self) -> list:
        return [(int(a, 16), int(b, 16)) for a, b in self.truth["ram"]]

    def this_module(self, name: str) -> int:
        return self.addr("__this_module", name)


@pytest.fixture(scope="session")
def images() -> Images:
    run_fixture_script("fixtures/kernel/make_images.py")
    run_fixture_script("fixtures/kernel/reencode_images.py")
    return Images((CACHE / "images" / "current" / "kaslr-256M").resolve())


def open_image(im: Images, name: str, namelist=None):
    return pykvm.open(namelist, im.path(name), **IMAGES.get(name, {}))


def needs_options(name: str) -> bool:
    return bool(IMAGES.get(name)) and not pykvm.has("options")


# ---- Volatility 3, the peer ----

def volatility_layer(path: str, kind: str):
    """Volatility 3's physical layer of path: its LimeLayer, AVMLLayer or FileLayer."""
    from volatility3.framework import contexts
    from volatility3.framework.layers import avml, lime, physical
    ctx = contexts.Context()
    ctx.config["base.location"] = Path(path).as_uri()
    base = physical.FileLayer(ctx, "base", "base")
    ctx.layers.add_layer(base)
    if kind == "raw":
        return base
    cls = {"lime": lime.LimeLayer, "avml": avml.AVMLLayer}[kind]
    ctx.config[f"{kind}.base_layer"] = "base"
    layer = cls(ctx, kind, kind)
    ctx.layers.add_layer(layer)
    return layer


def volatility_read(layer, addr: int, n: int):
    from volatility3.framework import exceptions
    try:
        return layer.read(addr, n)
    except exceptions.InvalidAddressException:
        return None


def physical_sample(im: Images, n: int, seed: str) -> list:
    """Addresses in the guest's RAM (as its iomem says), at page ends too, and outside."""
    rng = random.Random(seed)
    ram = im.ram
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(rng.choice([0, 0x9fc00, 0xa0000, 0xf0000, ram[-1][1] + 1 + rng.randrange(1 << 20),
                                   1 << 40]))
            continue
        a, b = rng.choice(ram)
        out.append(a + rng.randrange(b - a + 1 - 64) if i % 7 else (a + rng.randrange(b - a)) | 0xffc)
    return out


# ---- by symbol, with no namelist ----

@pytest.mark.parametrize("name", list(IMAGES))
def test_read_by_symbol_without_namelist(images, name):
    """linux_banner, init_uts_ns's release and module names (reached through the page
    tables) read as the guest printed them, from the image alone; KASLR as the guest's
    own kallsyms and iomem say."""
    im = images
    if needs_options(name):
        assert_unsupported(open_image, im, name)
        return
    with open_image(im, name) as kd:
        assert kd.read_cstring(kd.symbol("linux_banner")) == im.truth["banner"]
        assert kd.read_cstring(kd.symbol("init_uts_ns") + 2 * 65) == im.truth["release"]
        for mod in ("virtio_blk", "qemu_fw_cfg"):
            assert kd.read_cstring(im.this_module(mod) + 24) == mod
        if name == "memory.lime":  # lime.ko was loaded, running its init, during this one
            assert kd.read_cstring(im.this_module("lime") + 24) == "lime"
        assert kd.symbol("init_top_pgt") == im.addr("init_top_pgt")
        if pykvm.has("kerndisp"):
            assert kd.kerndisp() == im.kerndisp
        if pykvm.has("info"):
            info = kd.info
            assert info["format"] == {"memory.lime": "lime", "memory.avml": "avml",
                                      "memory.padded": "raw"}[name]
            assert info["orientation"].startswith("VMCOREINFO text found in memory at physical")
            assert info["phys_base"] == im.phys_base != -im.kerndisp
            assert info["osrelease"] == im.truth["release"]


@pytest.mark.parametrize("name", list(IMAGES))
def test_static_kernel_memory_is_the_qemu_dumps(images, name):
    """Kernel text and read-only data read by virtual address from the image are
    byte-identical to the QEMU ELF dump of the same guest, read at the physical
    addresses the guest's iomem gives (parsed here, without pykvm)."""
    im = images
    if needs_options(name):
        return
    ref = elf_physical(im.path("vmcore.elf"))
    text_phys = int(im.truth["text_phys"], 16)
    text = im.addr("_text")
    with open_image(im, name) as kd:
        for a, b in (("_text", "_etext"), ("__start_rodata", "__end_rodata")):
            start, end = im.addr(a), im.addr(b)
            assert kd.read(start, end - start) == ref(text_phys + start - text, end - start), a


def elf_physical(path: str):
    """read(paddr, n) over an ELF core's PT_LOADs, parsed here."""
    f = open(path, "rb")
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    phoff, = struct.unpack_from("<Q", m, 32)
    phentsize, phnum = struct.unpack_from("<HH", m, 54)
    loads = []
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, _ = struct.unpack_from("<IIQQQQQ", m, phoff + i * phentsize)
        if p_type == 1:
            loads.append((paddr, filesz, off))

    def read(pa: int, n: int) -> bytes:
        for start, size, off in loads:
            if start <= pa and pa + n <= start + size:
                return m[off + pa - start: off + pa - start + n]
        raise AssertionError(f"{path}: {pa:#x}+{n} is not in one PT_LOAD")
    return read


# ---- the peer: Volatility 3 reading the same files ----

@pytest.mark.parametrize("name,kind", [("memory.lime", "lime"), ("memory.avml", "avml"),
                                       ("memory.padded", "raw")])
def test_physical_bytes_match_volatility(images, name, kind):
    """At 3,000 physical addresses (RAM, page ends, holes, past the end), pykvm reads
    what Volatility 3's own layer for the format reads, and fails where it fails."""
    im = images
    if needs_options(name):
        return
    if not pykvm.has("pread"):
        with open_image(im, name) as kd:
            assert_unsupported(kd.read, 0x100000, 8, physical=True)
        return
    layer = volatility_layer(im.path(name), kind)
    same = both_fail = 0
    bad = []
    with open_image(im, name) as kd:
        for a in physical_sample(im, 3000, f"vol-{name}"):
            theirs = volatility_read(layer, a, 64)
            if kind == "raw" and theirs is not None and len(theirs) < 64:
                theirs = None  # past the end of the file
            try:
                ours = kd.read(a, 64, physical=True)
            except pykvm.FaultError:
                ours = None
            if ours == theirs:
                same += ours is not None
                both_fail += ours is None
            else:
                bad.append(hex(a))
    assert not bad, f"{len(bad)} addresses differ, e.g. {bad[:5]}"
    assert same >= 2500 and both_fail > 0, (same, both_fail)


# ---- AVML: the fixture decodes back to the LiME image ----

def test_avml_fixture_decodes_to_the_lime_image(images):
    """Each AVML block, decoded by python-snappy here, is the LiME image's bytes for
    its range; its trailing length is its stream's; blocks cover the LiME ranges."""
    im = images
    lime = open(im.path("memory.lime"), "rb").read()
    ranges, off = [], 0
    while off < len(lime):
        magic, ver, s, e, _ = struct.unpack_from("<IIQQQ", lime, off)
        assert (magic, ver) == (0x4C694D45, 1)
        ranges.append((s, e, off + 32))
        off += 32 + e - s + 1
    assert [(s, e) for s, e, _ in ranges] == im.ram  # LiME wrote iomem's System RAM
    avml = open(im.path("memory.avml"), "rb").read()
    off, covered = 0, 0
    while off < len(avml):
        magic, ver, s, e, pad = struct.unpack_from("<IIQQQ", avml, off)
        assert (magic, ver, pad) == (0x4C4D5641, 2, 0) and e - s + 1 <= 16 << 20
        dec = snappy.StreamDecompressor()
        data, pos = b"", off + 32
        while len(data) < e - s + 1:  # chunk by chunk, to find where the stream ends
            clen = int.from_bytes(avml[pos + 1:pos + 4], "little")
            data += dec.decompress(avml[pos:pos + 4 + clen])
            pos += 4 + clen
        assert struct.unpack_from("<Q", avml, pos)[0] == pos - off - 32
        (rs, re_, roff), = [r for r in ranges if r[0] <= s and e <= r[1]]
        assert data == lime[roff + s - rs: roff + e - rs + 1]
        covered += e - s + 1
        off = pos + 8
    zero = sum(e - s + 1 for s, e, _ in ranges) - covered
    assert zero % 4096 == 0  # what is not covered was left out as all-zero blocks


# ---- raw images ----

def test_raw_needs_format_raw(images):
    """A padded image has no magic: opened without format= it is refused, saying
    format=raw; LiME's format=raw output (ranges back to back) holds the same static
    kernel memory at the iomem ranges' offsets."""
    im = images
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(None, im.path("memory.padded"))
    assert "format=raw" in str(ei.value) and im.path("memory.padded") in str(ei.value)
    # LiME raw: physical address p of range i is at sum(len(ranges before i)) + p - start.
    raw = open(im.path("memory.raw-lime"), "rb")
    base, off = int(im.truth["text_phys"], 16), 0
    for s, e in im.ram:
        if s <= base <= e:
            break
        off += e - s + 1
    size = im.addr("_etext") - im.addr("_text")
    raw.seek(off + base - s)
    ref = elf_physical(im.path("vmcore.elf"))
    assert raw.read(size) == ref(base, size)


# ---- no VMCOREINFO: page tables and linux_banner ----

def test_without_vmcoreinfo_page_tables_and_banner(images):
    """With the VMCOREINFO text wiped from memory, the kernel's page tables are found
    by scanning: init_top_pgt maps itself at the guest's own address, KASLR and
    phys_base come out as the guest's, and a namelist is matched by linux_banner."""
    im = images
    path = im.path("memory-novmci.lime")
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(None, path)
    assert "namelist" in str(ei.value)
    with pykvm.open(im.kallsyms, path) as kd:
        assert kd.read_cstring(kd.symbol("linux_banner")) == im.truth["banner"]
        assert kd.read_cstring(im.this_module("virtio_blk") + 24) == "virtio_blk"
        if pykvm.has("info"):
            info = kd.info
            assert info["orientation"].startswith("page tables")
            assert f"maps itself at {im.addr('init_top_pgt'):#x}" in info["orientation"]
            assert info["kerndisp"] == im.kerndisp and info["phys_base"] == im.phys_base
            assert info["header_release"] == im.truth["release"] and info["vmcoreinfo"] == 0


def test_scan_covers_every_range(images):
    """With no VMCOREINFO text in memory (the wiped copy), the scan searches every byte
    of every RAM range the guest reported, and says how long it took (bench/images.py
    times it per GiB against memmem; timings are benchmarks, not tests)."""
    im = images
    if not pykvm.has("info"):
        return
    with pykvm.open(im.kallsyms, im.path("memory-novmci.lime")) as kd:
        info = kd.info
    assert info["vmcoreinfo_scan_bytes"] == sum(e - s + 1 for s, e in im.ram)
    assert info["vmcoreinfo_scan_ns"] > 0


def test_scan_keeps_memory_bounded(images):
    """Scanning all of a 256 MiB image reads it a chunk at a time: the process's peak
    RSS grows by far less than the image (mapping it all would add 256 MiB)."""
    im = images
    size = Path(im.path("memory-novmci.lime")).stat().st_size
    code = ("import resource, sys, pykvm\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "kd = pykvm.open(sys.argv[1], sys.argv[2])\n"
            "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print((after - before) * 1024)\n")
    res = subprocess.run([sys.executable, "-c", code, im.kallsyms,
                          im.path("memory-novmci.lime")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    grown = int(res.stdout)
    assert size > 200 << 20 and grown < 64 << 20, (grown, size)


# ---- convert: an ELF vmcore drgn opens ----

def test_convert_to_elf_read_by_drgn(images, tmp_path):
    """`pykvm convert` writes the LiME and the AVML image as ELF vmcores that drgn
    opens: at 3,000 kernel addresses (text, data, direct map, vmalloc, modules, any)
    drgn reads the converted file as pykvm reads the image, failing alike."""
    im = images
    if not pykvm.has("vmcoreinfo"):
        with open_image(im, "memory.lime") as kd:
            assert_unsupported(write_elf_vmcore, kd, str(tmp_path / "x.elf"))
        return
    from pykvm.cli import main
    out = tmp_path / "lime.elf"
    assert main(["convert", im.path("memory.lime"), str(out)]) == 0
    out2 = tmp_path / "avml.elf"
    assert main(["convert", im.path("memory.avml"), str(out2)]) == 0
    prog = drgn.Program()
    prog.set_core_dump(str(out))
    prog2 = drgn.Program()
    prog2.set_core_dump(str(out2))
    rng = random.Random("convert")
    syms = list(im.syms.values())
    text = [a for a, t, m in syms if m is None and t in "Tt"]
    data = [a for a, t, m in syms if m is None and t in "DdBbRr" and a >= START_KERNEL_MAP]
    module = [a for a, t, m in syms if m is not None]
    same = both_fail = 0
    bad = []
    with open_image(im, "memory.lime") as kd:
        page_offset = kd.read_u64(kd.symbol("page_offset_base"))
        vmalloc = kd.read_u64(kd.symbol("vmalloc_base"))
        for i in range(3000):
            a = [lambda: rng.choice(text) + rng.randrange(256),
                 lambda: rng.choice(data) + rng.randrange(256),
                 lambda: page_offset + rng.randrange(im.truth["mem_mb"] << 20),
                 lambda: vmalloc + rng.randrange(64 << 20),
                 lambda: rng.choice(module) + rng.randrange(128),
                 lambda: rng.getrandbits(64)][i % 6]()
            size = min(64, 4096 - (a & 4095))
            try:
                ours = kd.read(a, size)
            except pykvm.FaultError:
                ours = None
            for p in (prog, prog2):
                try:
                    theirs = p.read(a, size)
                except drgn.FaultError:
                    theirs = None
                if ours != theirs:
                    bad.append(hex(a))
            same += ours is not None
            both_fail += ours is None
    assert not bad, f"{len(bad)} differ, e.g. {bad[:5]}"
    assert same >= 1500 and both_fail > 0


def test_avml_is_read_only(images, tmp_path):
    """Writing into a (copy of the) compressed AVML image opened O_RDWR is refused
    with EROFS, naming the file; reads still work."""
    im = images
    if not pykvm.has("pwrite"):
        return
    import os
    import shutil
    path = tmp_path / "copy.avml"
    shutil.copyfile(im.path("memory.avml"), path)
    with pykvm.open(None, str(path), flag=os.O_RDWR) as kd:
        with pytest.raises(pykvm.KvmError) as ei:
            kd.write(0x100000, b"x", physical=True)
        assert str(path) in str(ei.value) and ei.value.errno == errno.EROFS
        if pykvm.has("geterr"):  # illumos: the glue's own words, not the library's
            assert "AVML" in str(ei.value)
        assert kd.read_cstring(kd.symbol("linux_banner")) == im.truth["banner"]


# ---- bad input ----

def lime_header(start: int, end: int, magic: int = 0x4C694D45, version: int = 1) -> bytes:
    return struct.pack("<IIQQQ", magic, version, start, end, 0)


def test_bad_images_fail_naming_file_and_range(images, tmp_path):
    """Broken images fail at open with a KvmFormatError naming the file and the range:
    end before start, overlapping ranges, a range past the end of the file, stray
    bytes after the last range, an AVML block whose compressed length is wrong, and
    a raw image smaller than a page."""
    im = images
    page = bytes(4096)
    real = open(im.path("memory.lime"), "rb").read(32 + 0x9ec00)
    cases = {
        "end-before-start.lime": (lime_header(0x2000, 0x1000) + page, "range 0", "ends"),
        "overlap.lime": (lime_header(0x1000, 0x1fff) + page + lime_header(0x1800, 0x27ff) + page,
                         "range 1 (0x1800-0x27ff) overlaps range 0", ""),
        "past-end.lime": (real[:32 + 0x5000], "range 0 (0x1000-0x9fbff", "past the end"),
        "trailing.lime": (real + b"garbage" * 8, "range 1 at offset", "no LiME header"),
    }
    avml = open(im.path("memory.avml"), "rb").read(64 << 20)
    s, e = struct.unpack_from("<QQ", avml, 8)
    blen = e - s + 1
    # The first block's end: walk its chunks.
    pos = 32
    done = 0
    while done < blen:
        clen = int.from_bytes(avml[pos + 1:pos + 4], "little")
        if avml[pos] in (0, 1):
            done += len(snappy.StreamDecompressor().decompress(
                b"\xff\x06\x00\x00sNaPpY" + avml[pos:pos + 4 + clen]))
        pos += 4 + clen
    first = avml[:pos + 8]
    wrong_len = first[:pos] + struct.pack("<Q", pos - 32 + 5)
    cases["wrong-length.avml"] = (wrong_len, f"block 0 (0x{s:x}-0x{e:x})", "compressed length says")
    cases["short.raw"] = (b"\0" * 100, "smaller than a page", "")
    for fname, (data, what, why) in cases.items():
        path = tmp_path / fname
        path.write_bytes(data)
        opts = {"format": "raw"} if fname.endswith(".raw") else {}
        if opts and not pykvm.has("options"):
            continue
        with pytest.raises(pykvm.KvmFormatError) as ei:
            pykvm.open(None, str(path), **opts)
        msg = str(ei.value)
        assert str(path) in msg and what in msg and why in msg, (fname, msg)


def test_bad_avml_frame_fails_at_its_read(images, tmp_path):
    """An AVML chunk whose data is corrupt opens (the chunk index is sound) but its
    read fails with the file, the block's range and the CRC named; the rest reads."""
    im = images
    avml = bytearray(open(im.path("memory.avml"), "rb").read())
    s, e = struct.unpack_from("<QQ", avml, 8)
    # The third chunk of block 0 (after the stream identifier and two data chunks).
    pos, n = 32 + 10, 0
    while n < 2:
        pos += 4 + int.from_bytes(avml[pos + 1:pos + 4], "little")
        n += 1
    chunk_pa = s + 2 * 65536
    avml[pos + 5] ^= 0xff  # its masked CRC-32C: the data decompresses but fails the check
    path = tmp_path / "bad-frame.avml"
    path.write_bytes(avml)
    if not pykvm.has("pread"):
        return
    with pykvm.open(None, str(path)) as kd:
        assert kd.read(s, 16, physical=True) == open_image(im, "memory.avml").read(s, 16, physical=True)
        with pytest.raises(pykvm.KvmError) as ei:
            kd.read(chunk_pa + 100, 8, physical=True)
        msg = str(ei.value)
        assert str(path) in msg and ei.value.errno == errno.EIO, msg
        if pykvm.has("geterr"):  # illumos libkvm keeps no message for a failed read
            assert f"block 0 (0x{s:x}-0x{e:x})" in msg and "CRC" in msg, msg


# ---- CLI ----

def test_cli_info_says_how_the_kernel_was_found(images, capsys):
    """`pykvm info --format raw -M image` shows the orientation line."""
    im = images
    if not pykvm.has("info"):
        return
    from pykvm.cli import main
    assert main(["info", "--format", "raw", "-M", im.path("memory.padded")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^format:\s+raw\b", out, re.M) and "VMCOREINFO text found in memory" in out


def test_physical_reads_agree_with_volatility_at_4000_addresses(images):
    """8-byte physical reads of the LiME image at 4,000 random RAM addresses: the same
    bytes as Volatility 3's LimeLayer (bench/images.py times both side by side)."""
    im = images
    if not pykvm.has("pread"):
        return
    addrs = [a & ~7 for a in physical_sample(im, 4000, "timing") if
             any(s <= a <= e - 8 for s, e in im.ram)]
    assert len(addrs) > 3000
    layer = volatility_layer(im.path("memory.lime"), "lime")
    with open_image(im, "memory.lime") as kd:
        ours = [kd.read(a, 8, physical=True) for a in addrs]
    theirs = [layer.read(a, 8) for a in addrs]
    assert ours == theirs
