"""Real crash dumps of a real Debian kernel (QEMU guest): every dump format and
every boot variant, checked against what the guest itself printed."""

from __future__ import annotations

import os
import shutil

import pytest

import pykvm
from conftest import FORMATS, VARIANTS
from native_support import assert_unsupported

START_KERNEL_MAP = 0xffffffff80000000
CASES = [(v, f) for v in VARIANTS for f in FORMATS]
IDS = [f"{v}-{f}" for v, f in CASES]


@pytest.mark.parametrize("variant,fmt", CASES, ids=IDS)
def test_banner_release_and_module(dumps, variant, fmt):
    """linux_banner, init_uts_ns's release and a module's name (module space:
    a page-table walk) read by symbol equal the guest's own output."""
    d = dumps[variant]
    with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        # struct uts_namespace starts with struct new_utsname: 6 fields of 65 bytes
        assert kd.read_cstring(kd.symbol("init_uts_ns") + 2 * 65) == d.truth["release"]
        if pykvm.has("info"):
            assert kd.info["osrelease"] == d.truth["release"]
        else:
            assert_unsupported(lambda: kd.info)
        mod = d.addr("__this_module", "qemu_fw_cfg")
        assert mod >= 0xffffffffc0000000  # module space
        assert kd.read_cstring(mod + 24, 56) == "qemu_fw_cfg"


@pytest.mark.parametrize("variant,fmt", CASES, ids=IDS)
def test_namelist_none_uses_the_dumps_kallsyms(dumps, variant, fmt):
    """namelist=None: symbols come from the kallsyms tables inside the dump (Linux >= 6.0)."""
    d = dumps[variant]
    with pykvm.open(None, d.path(fmt)) as kd:
        for name in ("linux_banner", "init_uts_ns", "_stext", "jiffies_64", "init_task"):
            assert kd.symbol(name) == d.addr(name), name
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        if pykvm.has("info"):
            assert kd.namelist.endswith(":kallsyms")
        else:  # a native libkvm does not say where its symbols came from
            assert kd.namelist is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_kaslr_facts_match_the_guest(dumps, variant):
    """KERNELOFFSET and phys_base agree with the guest's _stext and /proc/iomem."""
    d = dumps[variant]
    text_virt, text_phys = int(d.truth["text_virt"], 16), int(d.truth["text_phys"], 16)
    kerndisp = d.addr("_stext") - 0xffffffff81000000
    phys_base = text_phys - (text_virt - START_KERNEL_MAP)
    assert (kerndisp != 0) == d.truth["kaslr"]
    for fmt in FORMATS:
        with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
            if pykvm.has("info"):
                assert kd.info["kerndisp"] == kerndisp
                assert kd.info["phys_base"] == phys_base, fmt
            else:
                assert_unsupported(lambda: kd.info)
            if pykvm.has("kerndisp"):
                assert kd.kerndisp() == kerndisp
            else:
                assert_unsupported(kd.kerndisp)
            banner = kd.symbol("linux_banner")
            pa = banner - START_KERNEL_MAP + phys_base
            if pykvm.has("physaddr"):
                assert kd.physaddr(banner) == pa
            else:
                assert_unsupported(kd.physaddr, banner)
            if pykvm.has("pread"):
                assert kd.read(pa, 64, physical=True) == kd.read(banner, 64)
            else:
                assert_unsupported(kd.read, pa, 64, physical=True)


def test_physical_randomization_is_covered(dumps):
    d = dumps["kaslr-256M"]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        if not pykvm.has("info"):
            assert_unsupported(lambda: kd.info)
            return
        assert kd.info["phys_base"] != -kd.info["kerndisp"]


@pytest.mark.parametrize("variant", ["kaslr-96M", "kaslr-256M"])
def test_link_time_namelist_is_shifted(dumps, variant, tmp_path):
    """A System.map (link-time addresses: the nokaslr boot's kallsyms, vmlinux symbols only)
    is shifted by the dump's displacement; per-CPU symbols are not."""
    smap = tmp_path / "System.map"
    lines = [line for line in open(dumps["nokaslr-96M"].kallsyms) if "[" not in line]
    smap.write_text("".join(lines))
    d = dumps[variant]
    with pykvm.open(smap, d.path("vmcore.elf")) as kd:
        if pykvm.has("info"):
            assert kd.info["symbol_displacement"] == kd.info["kerndisp"] != 0
        else:
            assert_unsupported(lambda: kd.info)
        assert kd.symbol("linux_banner") == d.addr("linux_banner")
        assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        percpu = [n for (n, m), (a, t, _) in d.syms.items() if m is None and t in "Aa" and a < 0x100000]
        assert percpu
        for name in percpu[:50]:
            assert kd.symbol(name) == d.addr(name), name


def test_foreign_namelist_is_refused(dumps):
    """Another boot's kallsyms does not belong to this dump: refused, saying why."""
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(dumps["kaslr-256M"].kallsyms, dumps["kaslr-96M"].path("vmcore.elf"))
    msg = str(ei.value)
    assert "does not match" in msg and "_stext" in msg


@pytest.mark.parametrize("fmt", ["vmcore.mdf-lzo", "vmcore.mdf-zlib"])
def test_excluded_pages_are_distinct_from_unmapped(dumps, fmt):
    """Filtered-out pages raise PageExcludedError (opt-in: zeros); unmapped ones FaultError."""
    d = dumps["nokaslr-96M"]
    if not pykvm.has("pread"):
        with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
            assert_unsupported(kd.read, 0x1000000, 8, physical=True)
        return
    with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
        excluded = None
        for pfn in range(0x1000, 0x6000):
            try:
                kd.read(pfn * 4096, 8, physical=True)
            except pykvm.PageExcludedError as e:
                excluded = pfn * 4096
                assert e.address == excluded
                break
        assert excluded is not None
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(0x7fff0000000, 8, physical=True)  # far beyond RAM
        assert not isinstance(ei.value, pykvm.PageExcludedError)
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, d.kallsyms, d.path(fmt), excluded_zero=True)
        return
    with pykvm.open(d.kallsyms, d.path(fmt), excluded_zero=True) as kd:
        assert kd.read(excluded, 4096, physical=True) == bytes(4096)


def test_marker_string_in_physical_memory(dumps):
    """The guest put a random marker string in its memory: a physical scan finds it."""
    d = dumps["nokaslr-96M"]
    marker = d.truth["marker"].encode()
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        buf = bytearray(1 << 20)
        if not pykvm.has("pread"):
            assert_unsupported(kd.readinto, 0, buf, physical=True)
            return
        found = False
        for base in range(0, 96 << 20, len(buf)):
            kd.readinto(base, buf, physical=True)
            if marker in buf:
                found = True
                break
        assert found


def test_write_into_an_elf_dump(dumps, tmp_path):
    d = dumps["kaslr-96M"]
    core = tmp_path / "vmcore"
    shutil.copy(d.path("vmcore.elf"), core)
    os.chmod(core, 0o600)
    with pykvm.open(d.kallsyms, core, flag=os.O_RDWR) as kd:
        addr = kd.symbol("init_uts_ns") + 65  # nodename
        kd.write(addr, b"written-by-pykvm\0")
    with pykvm.open(d.kallsyms, core) as kd:
        assert kd.read_cstring(kd.symbol("init_uts_ns") + 65) == "written-by-pykvm"


@pytest.mark.parametrize("fmt", ["vmcore.kdump-zlib", "vmcore.mdf-lzo"])
def test_compressed_dumps_refuse_writes(dumps, tmp_path, fmt):
    d = dumps["kaslr-96M"]
    core = tmp_path / "vmcore"
    shutil.copy(d.path(fmt), core)
    os.chmod(core, 0o600)
    with pykvm.open(d.kallsyms, core, flag=os.O_RDWR) as kd:
        with pytest.raises(pykvm.ReadOnlyError, match="compressed"):
            kd.write(kd.symbol("init_uts_ns") + 65, b"x")


def test_info_reports_dump_facts(dumps):
    d = dumps["kaslr-96M"]
    if not pykvm.has("info"):
        with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
            assert_unsupported(lambda: kd.info)
        return
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        info = kd.info
        assert info["format"] == "kdump" and info["compression"] == "lzo"
        assert info["osrelease"] == info["header_release"] == d.truth["release"]
        assert info["page_size"] == 4096 and len(str(info["build_id"])) == 40
        # crash time comes from the header's timestamp; makedumpfile copied
        # none from QEMU's dump (there was no panic), so it must not be invented
        raw = open(d.path("vmcore.mdf-lzo"), "rb").read(416)
        stamp = int.from_bytes(raw[408:416], "little")
        assert info.get("crash_time") == (stamp or None)
    with pykvm.open(d.kallsyms, d.path("vmcore.kdump-zlib")) as kd:
        assert kd.info["format"] == "kdump-flattened"


def test_namelist_with_another_build_id_is_refused(dumps, proc):
    """An ELF namelist whose GNU build-id differs from the dump's BUILD-ID (here
    the test program, built with one) is refused, naming both ids."""
    import subprocess
    d = dumps["kaslr-96M"]
    exe = proc.exe("target64")
    out = subprocess.run(["readelf", "-n", exe], capture_output=True, text=True, check=True).stdout
    build_id = out.split("Build ID:")[1].split()[0]
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(exe, d.path("vmcore.elf"))
    msg = str(ei.value)
    assert f"BUILD-ID is {build_id} in the namelist" in msg
    vmci = open(d.path("vmcore.elf"), "rb").read(1 << 16)
    dump_id = vmci.split(b"BUILD-ID=")[1].split(b"\n")[0].decode()
    assert f"but {dump_id} in the dump" in msg
