"""Namelists in every form: ELF32/ELF64 of either byte order (.symtab, then
.dynsym), System.map and /proc/kallsyms text.  Expected values come from the
target architecture's own nm/readelf (fixtures/proc/namelists.json) or from
the guest's kallsyms, not from pykvm."""

from __future__ import annotations

import subprocess

import pytest

import pykvm
from native_support import assert_unsupported

ELF_FILES = ["be64.elf", "be32.elf", "le32.elf", "le64.elf", "be64-stripped.elf",
             "be32-stripped.elf", "le32-stripped.elf", "le64-stripped.elf", "libdyn.so",
             "libdyn.full.so"]


@pytest.mark.parametrize("name", ELF_FILES)
def test_elf_namelist_matches_binutils(proc, name):
    """Every defined symbol binutils lists has the same value and nm letter here."""
    meta = proc.namelists[name]
    foreign = meta["elf_class"] != 64
    if foreign and not pykvm.has("options"):
        # a native libkvm reads only its own data model; there is no opt-in
        assert_unsupported(pykvm.open, proc.path(name), proc.core("target64"), foreign=True)
        return
    with pykvm.open(proc.path(name), proc.core("target64"), foreign=foreign) as kd:
        expected = {n: e for n, e in meta["expected"].items() if e["nm_type"] not in ("U", "w")}
        assert expected
        if pykvm.has("symbols"):
            ours = {}
            for s in kd.all_symbols():
                ours.setdefault(s.name, s)
            for n, e in expected.items():
                assert n in ours, n
                assert ours[n].value == e["value"], n
                assert ours[n].letter == e["nm_type"], n
        else:
            # no symbol iteration: every name resolves through kvm_nlist instead
            assert_unsupported(lambda: next(kd.all_symbols()))
            for n, found in zip(expected, kd.nlist(list(expected))):
                assert found is not None and found[0] == expected[n]["value"], n
        undefined = [n for n, e in meta["expected"].items() if e["nm_type"] in ("U", "w")]
        assert all(v is None for v in kd.nlist(undefined))


@pytest.mark.parametrize("name", ["be64.elf", "be32.elf"])
def test_big_endian_symbols_by_name(proc, name):
    meta = proc.namelists[name]
    foreign = meta["elf_class"] != 64
    if foreign and not pykvm.has("options"):
        assert_unsupported(pykvm.open, proc.path(name), proc.core("target64"), foreign=True)
        return
    with pykvm.open(proc.path(name), proc.core("target64"), foreign=foreign) as kd:
        assert kd.symbol("kvm_test_alpha") == 0x1000
        big = 0xfedcba9876543210 if meta["elf_class"] == 64 else 0xfedcba98
        assert kd.nlist(["kvm_test_abs_big"]) == [(big, pykvm.kvm.N_ABS | pykvm.kvm.N_EXT)]


def test_stripped_file_falls_back_to_dynsym(proc):
    meta = proc.namelists["libdyn.so"]
    assert not meta["has_symtab"] and meta["has_dynsym"]
    with pykvm.open(proc.path("libdyn.so"), proc.core("target64")) as kd:
        if pykvm.has("symbols"):
            assert len(kd.symbols) >= 3
        else:
            assert_unsupported(len, kd.symbols)
        defined = {n: e["value"] for n, e in meta["expected"].items() if e["nm_type"] not in "Uw"}
        assert len(defined) >= 3
        assert [f and f[0] for f in kd.nlist(list(defined))] == list(defined.values())


def test_system_map_from_nm(proc, tmp_path):
    """A System.map-style file (nm's output of the executable) resolves like the ELF."""
    smap = tmp_path / "System.map"
    out = subprocess.run(["nm", "-n", proc.exe("target64")], capture_output=True, text=True,
                         check=True).stdout
    smap.write_text("".join(line + "\n" for line in out.splitlines() if not line.startswith(" ")))
    truth = proc.truth("target64")
    with pykvm.open(smap, proc.core("target64")) as kd:
        for g in truth["globals"]:
            assert kd.symbol(g["name"]) == g["addr"]
        assert kd.read(truth["nm"]["kvm_t_u64"]["value"], 8) == bytes.fromhex("8877665544332211")


def test_kallsyms_hidden_addresses(proc, tmp_path):
    """kallsyms read without privilege shows zero addresses: refused with the reason."""
    text = "0000000000000000 T _stext\n0000000000000000 D jiffies\n0000000000000000 t x\t[mod]\n"
    f = tmp_path / "kallsyms"
    f.write_text(text)
    with pytest.raises(pykvm.KvmPermissionError) as ei:
        pykvm.open(f, proc.core("target64"))
    assert str(ei.value) == f"{f}: kallsyms addresses hidden (kptr_restrict); run as root"


def test_kallsyms_module_column(proc, tmp_path):
    f = tmp_path / "kallsyms"
    f.write_text("ffffffffc0000000 t fw_cfg_read\t[qemu_fw_cfg]\n"
                 "ffffffff81000000 T _stext\n")
    with pykvm.open(f, proc.core("target64")) as kd:
        assert kd.symbol("fw_cfg_read") == 0xffffffffc0000000
        assert kd.symbol("_stext") == 0xffffffff81000000
        if not pykvm.has("symbols"):
            assert_unsupported(lambda: next(kd.all_symbols()))
            return
        mods = {s.name: s.module for s in kd.all_symbols()}
        assert mods == {"fw_cfg_read": "qemu_fw_cfg", "_stext": None}


def test_duplicate_names_prefer_global(proc, tmp_path):
    f = tmp_path / "System.map"
    f.write_text("0000000000001000 t dup\n0000000000002000 T dup\n0000000000000500 t dup\n")
    with pykvm.open(f, proc.core("target64")) as kd:
        assert kd.symbol("dup") == 0x2000
        if not pykvm.has("symbols"):
            assert_unsupported(lambda: next(kd.all_symbols()))
            return
        assert len([s for s in kd.all_symbols() if s.name == "dup"]) == 3
