"""What a dump says about itself, when it says less than usual.

- Kernels before 4.13 name the x86-64 page-table root SYMBOL(init_level4_pgt).
- An ELF vmcore without VMCOREINFO or QEMU notes is still a kernel dump: its
  p_paddr are physical addresses; format= can force either reading.
- nlist retries "_name" as "name" (FreeBSD's a.out-style names), only when the
  exact name is absent.

The odd dumps are copies of the real QEMU ELF dump with notes rewritten at the
same length (the file's layout unchanged), made in a temporary directory.
Ground truth: what the guest printed (banner, kallsyms, /proc/iomem).
"""

from __future__ import annotations

import shutil
import struct

import pytest

import pykvm
from native_support import assert_unsupported

VARIANT = "kaslr-96M"


def elf_notes(path: str):
    """(name offset, name, type, desc offset, desc size) of every note in the PT_NOTE
    segments of an ELF64 little-endian core."""
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
        out = []
        for i in range(phnum):
            p_type, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
            if p_type != 4:
                continue
            f.seek(off)
            buf = f.read(filesz)
            pos = 0
            while pos + 12 <= len(buf):
                namesz, descsz, ntype = struct.unpack_from("<III", buf, pos)
                name = buf[pos + 12:pos + 12 + namesz].rstrip(b"\0").decode()
                desc = pos + 12 + ((namesz + 3) & ~3)
                out.append((off + pos + 12, name, ntype, off + desc, descsz))
                pos = desc + ((descsz + 3) & ~3)
    return out


def rewritten(src: str, dst, vmcoreinfo=None, rename=()) -> str:
    """A copy of src whose VMCOREINFO text is vmcoreinfo(text) (NUL-padded to the same
    length) and whose notes named in rename are renamed (same length)."""
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        for name_off, name, _, desc_off, descsz in elf_notes(src):
            if name == "VMCOREINFO" and vmcoreinfo is not None:
                f.seek(desc_off)
                text = f.read(descsz).rstrip(b"\0").decode()
                new = vmcoreinfo(text).encode()
                assert len(new) <= descsz
                f.seek(desc_off)
                f.write(new.ljust(descsz, b"\0"))
            if name in dict(rename):
                f.seek(name_off)
                f.write(dict(rename)[name].encode())
    return str(dst)


def drop_lines(text: str, *keys: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(keys))


def pre_4_13(text: str) -> str:
    """VMCOREINFO as x86-64 kernels before 4.13 wrote the root: init_level4_pgt (and
    here no swapper_pg_dir alias either, so only the old name gives the root)."""
    text = drop_lines(text, "SYMBOL(swapper_pg_dir)=")
    return text.replace("SYMBOL(init_top_pgt)=", "SYMBOL(init_level4_pgt)=")


NO_QEMU = (("QEMU", "QEMX"),)  # no CPU registers: CR3 cannot stand in for the root


def test_init_level4_pgt_gives_the_page_tables(dumps, tmp_path):
    """With the root named only SYMBOL(init_level4_pgt) and no CPU registers, the dump
    still translates: namelist=None even finds the kallsyms tables through the page
    tables, and a module (module space, reachable only by the walk) reads."""
    d = dumps[VARIANT]
    path = rewritten(d.path("vmcore.elf"), tmp_path / "old.elf", pre_4_13, NO_QEMU)
    with pykvm.open(None, path) as kd:
        banner = kd.symbol("linux_banner")
        assert banner == d.addr("linux_banner")
        assert kd.read_cstring(banner) == d.truth["banner"]
        assert kd.read_cstring(d.addr("__this_module", "qemu_fw_cfg") + 24) == "qemu_fw_cfg"
        if pykvm.has("physaddr"):
            text_virt, text_phys = int(d.truth["text_virt"], 16), int(d.truth["text_phys"], 16)
            assert kd.physaddr(banner) == text_phys + (banner - text_virt)


def test_no_root_says_what_is_missing(dumps, tmp_path):
    """No root under any name and no CPU registers: reads fail saying the VMCOREINFO
    lacks the page-table root's keys -- not that the dump has no VMCOREINFO."""
    d = dumps[VARIANT]
    path = rewritten(d.path("vmcore.elf"), tmp_path / "noroot.elf",
                     lambda t: drop_lines(t, "SYMBOL(init_top_pgt)=", "SYMBOL(swapper_pg_dir)="),
                     NO_QEMU)
    nl = tmp_path / "kallsyms-without-root.txt"
    nl.write_text("".join(line for line in open(d.kallsyms)
                          if not line.rstrip().endswith((" init_top_pgt", " init_level4_pgt"))))
    with pykvm.open(str(nl), path) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(kd.symbol("linux_banner"), 8)
        if pykvm.has("geterr"):
            msg = str(ei.value)
            assert "has no VMCOREINFO" not in msg, msg
            assert "VMCOREINFO has no SYMBOL(init_top_pgt)" in msg, msg
            assert "init_level4_pgt" in msg, msg
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(None, path)
    if pykvm.has("geterr"):
        assert "has no VMCOREINFO" not in str(ei.value), str(ei.value)
        assert "init_top_pgt" in str(ei.value), str(ei.value)


NO_KERNEL_NOTES = (("VMCOREINFO", "XMCOREINFO"), ("QEMU", "QEMX"))


def banner_phys(d) -> int:
    text_virt, text_phys = int(d.truth["text_virt"], 16), int(d.truth["text_phys"], 16)
    return text_phys + d.addr("linux_banner") - text_virt


def test_vmcore_without_kernel_notes_is_a_kernel_dump(dumps, tmp_path):
    """Without VMCOREINFO and QEMU notes (only NT_PRSTATUS left), the p_paddr say it
    is a kernel dump: physical reads work, and the banner is at its physical address."""
    d = dumps[VARIANT]
    path = rewritten(d.path("vmcore.elf"), tmp_path / "bare.elf", rename=NO_KERNEL_NOTES)
    assert not any(n in ("VMCOREINFO", "QEMU") for _, n, *_ in elf_notes(path))
    with pykvm.open(d.kallsyms, path) as kd:
        if not pykvm.has("pread"):
            assert_unsupported(kd.read, 0, 8, physical=True)
            return
        assert kd.read(banner_phys(d), len(d.truth["banner"]), physical=True) \
            == d.truth["banner"].encode()
        if pykvm.has("info"):
            assert kd.info["kernel"] == 1 and kd.info["format"] == "elf-kernel"
            assert kd.info["vmcoreinfo"] == 0


def test_format_forces_kernel_or_process(dumps, proc, tmp_path):
    """format="elf-process" reads the same file as a process core (virtual segments
    only: no physical memory); format="elf-kernel" makes a process core a kernel one."""
    d = dumps[VARIANT]
    path = rewritten(d.path("vmcore.elf"), tmp_path / "bare.elf", rename=NO_KERNEL_NOTES)
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, d.kallsyms, path, format="elf-process")
        return
    with pykvm.open(d.kallsyms, path, format="elf-process") as kd:
        assert kd.info["kernel"] == 0 and kd.info["format"] == "elf-process"
        with pytest.raises(pykvm.FaultError):
            kd.read(banner_phys(d), 8, physical=True)
    with pykvm.open(proc.exe("target64"), proc.core("target64"), format="elf-kernel") as kd:
        assert kd.info["kernel"] == 1 and kd.info["format"] == "elf-kernel"
    with pykvm.open(None, proc.core("target64")) as kd:
        assert kd.info["kernel"] == 0 and kd.info["format"] == "elf-process"
    with pytest.raises(pykvm.KvmFormatError, match="elf-kernel"):
        pykvm.open(None, proc.core("target64"), format="elf-kernle")


def test_nlist_retries_without_the_underscore(dumps, proc):
    """"_nr_cpu_ids" finds nr_cpu_ids (FreeBSD spelling); "_cpu_up" is a symbol of
    its own and is not replaced by cpu_up; a name absent both ways stays missing."""
    d = dumps[VARIANT]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        got = kd.nlist(["_nr_cpu_ids", "_cpu_up", "cpu_up", "_no_such_symbol_here", "_"])
        assert got[0][0] == d.addr("nr_cpu_ids")
        assert got[1][0] == d.addr("_cpu_up") != d.addr("cpu_up") == got[2][0]
        assert got[3] is None and got[4] is None
        assert kd.symbol("_linux_banner") == d.addr("linux_banner")
    truth = proc.truth("target64")
    with pykvm.open(proc.exe("target64"), proc.core("target64")) as kd:
        assert kd.symbol("_kvm_t_int") == truth["nm"]["kvm_t_int"]["value"]


def test_conflicting_evidence_goes_to_the_namelist(dumps, proc, tmp_path):
    """p_paddr say kernel, but a note says process (QEMU's CPU notes turned into
    CORE NT_AUXV notes): the namelist decides -- the guest's kallsyms (a kernel's:
    it has linux_banner) makes it a kernel dump, a program's executable a process."""
    d = dumps[VARIANT]
    path = rewritten(d.path("vmcore.elf"), tmp_path / "mixed.elf",
                     rename=(("VMCOREINFO", "XMCOREINFO"), ("QEMU", "CORE")))
    with open(path, "r+b") as f:  # type 0 (QEMU's) -> 6 (NT_AUXV)
        for name_off, name, ntype, _, _ in elf_notes(path):
            if name == "CORE" and ntype == 0:
                f.seek(name_off - 4)
                f.write(struct.pack("<I", 6))
    assert any(n == "CORE" and t == 6 for _, n, t, *_ in elf_notes(path))
    if not pykvm.has("info"):
        with pykvm.open(d.kallsyms, path) as kd:
            assert_unsupported(lambda: kd.info)
        return
    with pykvm.open(d.kallsyms, path) as kd:
        assert kd.info["kernel"] == 1
        assert kd.read(banner_phys(d), 13, physical=True) == b"Linux version"
    with pykvm.open(proc.exe("target64"), path) as kd:
        assert kd.info["kernel"] == 0 and kd.info["format"] == "elf-process"
