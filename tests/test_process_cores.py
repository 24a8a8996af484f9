"""Process cores (gcore and the kernel's) read by symbol through the executable's symbols.

Ground truth is what the program printed about itself before it was dumped.
"""

from __future__ import annotations

import struct

import pytest

import pykvm
from conftest import globals_of
from native_support import assert_unsupported, load_segments

CORES64 = ["target64", "target64-pie", "target64-kernel", "target64-pie-kernel"]


@pytest.mark.parametrize("name", CORES64)
def test_every_global_reads_as_the_program_printed(proc, name):
    """Each global that is in the core reads back, by symbol, as the program saw it."""
    truth = proc.truth(name)
    checked = 0
    with pykvm.open(proc.exe(name), proc.core(name)) as kd:
        for g in truth["globals"]:
            assert kd.symbol(g["name"]) == g["addr"], g["name"]
            if not g.get("in_core") or g.get("hex") is None:
                continue
            assert kd.read(g["addr"], g["size"]).hex() == g["hex"], g["name"]
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("name", CORES64)
def test_typed_reads_follow_pointers(proc, name):
    """ints, a string, a struct and pointers, read with the typed helpers."""
    g = globals_of(proc.truth(name))
    with pykvm.open(proc.exe(name), proc.core(name)) as kd:
        assert kd.read_s32(kd.symbol("kvm_t_int")) == g["kvm_t_int"]["value"]
        assert kd.read_u64(kd.symbol("kvm_t_u64")) == 0x1122334455667788
        assert kd.read_u64(kd.symbol("kvm_t_u64_rt")) == g["kvm_t_u64_rt"]["value"]
        assert kd.read_cstring(kd.symbol("kvm_t_str")) == g["kvm_t_str"]["value"]
        # struct: each field at its offset
        base = kd.symbol("kvm_t_struct")
        for f in g["kvm_t_struct"]["fields"]:
            raw = kd.read(base + f["offset"], f["size"])
            if f["kind"] == "int":
                assert struct.unpack("<i", raw)[0] == f["value"]
            elif f["kind"] == "short":
                assert struct.unpack("<h", raw)[0] == f["value"]
            elif f["kind"] == "double":
                assert struct.unpack("<d", raw)[0] == f["value"]
            elif f["kind"] == "pointer":
                assert struct.unpack("<Q", raw)[0] == f["value"] == kd.symbol(f["points_to"])
        # a pointer to heap memory, followed
        heap = g["kvm_t_heap"]
        assert kd.read_pointer(kd.symbol("kvm_t_heap")) == heap["value"]
        assert kd.read_cstring(heap["value"]) == heap["target_string"]
        # the array as typed words
        arr = kd.read_u32_array(kd.symbol("kvm_t_array"), 64)
        assert list(arr) == g["kvm_t_array"]["value"]


def test_pie_symbols_move_with_the_load_address(proc):
    """A PIE's link-time symbols are shifted by AT_ENTRY - e_entry from the core."""
    truth = proc.truth("target64-pie")
    with pykvm.open(proc.exe("target64-pie"), proc.core("target64-pie")) as kd:
        assert truth["load_base"] != 0
        assert kd.symbol("kvm_t_int") == truth["nm"]["kvm_t_int"]["value"] + truth["load_base"]


def test_unsaved_part_of_a_segment_faults(proc):
    """The kernel's core leaves file-backed text out (p_filesz 0 < p_memsz): that
    memory was not saved, so reading it raises FaultError ("not saved in the core"),
    as drgn does on the same core -- not zeros (the code is there in the program)."""
    import drgn  # in PIP_TEST; the other Pythons' runs deselect this peer check

    truth = proc.truth("target64-kernel")
    main = truth["functions"]["main"]
    prog = drgn.Program()
    prog.set_core_dump(proc.core("target64-kernel"))
    with pytest.raises(drgn.FaultError, match="not saved"):
        prog.read(main, 16)
    with pykvm.open(proc.exe("target64-kernel"), proc.core("target64-kernel")) as kd:
        segs = (kd.info["segments"] if pykvm.has("info")
                else load_segments(proc.core("target64-kernel")))
        segs = [s for s in segs if s["filesz"] < s["size"]]
        assert segs, "the kernel's core should have p_filesz < p_memsz segments"
        seg = next(s for s in segs if s["start"] <= main < s["start"] + s["size"])
        assert seg["filesz"] == 0
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(main, 16)
        assert ei.value.address == main
        if pykvm.has("geterr"):
            assert "not saved in the core" in str(ei.value)
        # what the core does hold still reads, up to the unsaved part
        g = globals_of(truth)["kvm_t_int"]
        assert kd.read(g["addr"], g["size"]).hex() == g["hex"]


def test_gcore_without_text_faults(proc):
    """gcore leaves unmodified text out entirely: that address is not mapped (FaultError)."""
    truth = proc.truth("target64")
    with pykvm.open(proc.exe("target64"), proc.core("target64")) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(truth["functions"]["main"], 4)
        assert ei.value.address == truth["functions"]["main"]


def test_32bit_core_with_opt_in(proc):
    """A 32-bit core reads correctly when the caller opts in to the foreign data model."""
    g = globals_of(proc.truth("target32"))
    if not pykvm.has("options"):
        # a native libkvm reads only its own data model: no opt-in to offer
        assert_unsupported(pykvm.open, proc.exe("target32"), proc.core("target32"), foreign=True)
        return
    with pykvm.open(proc.exe("target32"), proc.core("target32"), foreign=True) as kd:
        assert kd.info["word_size"] == 32
        assert kd.read_s32(kd.symbol("kvm_t_int")) == g["kvm_t_int"]["value"]
        assert kd.read_cstring(kd.symbol("kvm_t_str")) == g["kvm_t_str"]["value"]
        assert kd.read_pointer(kd.symbol("kvm_t_strp_data")) == kd.symbol("kvm_t_str")
