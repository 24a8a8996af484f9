"""Bad input: each malformed file gives a clear error naming the file and the
problem (a KvmFormatError, which is a ValueError) -- never a crash, a hang or
a giant allocation.  Cases are built from real cores by changing one field."""

from __future__ import annotations

import os
import random
import struct

import pytest

import pykvm


def patched(src: str, dst, edits) -> str:
    data = bytearray(open(src, "rb").read())
    for off, raw in edits(data):
        data[off:off + len(raw)] = raw
    open(dst, "wb").write(data)
    return str(dst)


def phdr_offset(data: bytes, i: int) -> int:
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, = struct.unpack_from("<H", data, 54)
    return phoff + i * phentsize


def first_load(data: bytes) -> int:
    phnum, = struct.unpack_from("<H", data, 56)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phdr_offset(data, i))[0] == 1:
            return i
    raise AssertionError("no PT_LOAD")


def note_index(data: bytes) -> int:
    phnum, = struct.unpack_from("<H", data, 56)
    return next(i for i in range(phnum) if struct.unpack_from("<I", data, phdr_offset(data, i))[0] == 4)


# (case id, how to make the core, expected words in the message)
CORE_CASES = [
    ("empty", lambda d: [], "empty file"),
    ("text", lambda d: [], "is not a kernel core file"),
    ("truncated-header", lambda d: [], "truncated ELF header"),
    ("truncated-data", lambda d: [], "past the end of the file"),
    ("bad-class", lambda d: [(4, b"\x07")], "bad ELF class 7"),
    ("bad-encoding", lambda d: [(5, b"\x09")], "unsupported ELF data encoding 9"),
    ("phoff-past-eof", lambda d: [(32, struct.pack("<Q", 1 << 40))], "program header table"),
    ("phnum-huge", lambda d: [(56, struct.pack("<H", 0xfffe))], "segment"),
    ("pn-xnum-no-sections", lambda d: [(56, struct.pack("<H", 0xffff)), (40, struct.pack("<Q", 0))],
     "PN_XNUM"),
    ("phentsize-small", lambda d: [(54, struct.pack("<H", 8))], "bad program header size 8"),
    ("not-core", lambda d: [(16, struct.pack("<H", 2))], "is not a core file (ELF type 2"),
    ("segment-offset-past-eof",
     lambda d: [(phdr_offset(d, first_load(d)) + 8, struct.pack("<Q", 1 << 50))], "past the end of the file"),
    ("filesz-gt-memsz",
     lambda d: [(phdr_offset(d, first_load(d)) + 40, struct.pack("<Q", 1))], "p_filesz"),
    ("overlapping-segments",
     lambda d: [(phdr_offset(d, first_load(d) + 1) + 16, d[phdr_offset(d, first_load(d)) + 16:
                                                          phdr_offset(d, first_load(d)) + 24])],
     "overlapping virtual segments"),
    ("note-size-huge",
     lambda d: [(struct.unpack_from("<Q", d, phdr_offset(d, note_index(d)) + 8)[0], struct.pack("<I", 0x7fffffff))],
     "runs past its note area"),
    ("note-segment-huge",
     lambda d: [(phdr_offset(d, note_index(d)) + 32, struct.pack("<Q", 1 << 40))], "past the end of the file"),
]


@pytest.mark.parametrize("case,edits,words", CORE_CASES, ids=[c[0] for c in CORE_CASES])
def test_malformed_core(proc, tmp_path, case, edits, words):
    src = proc.core("target64")
    dst = tmp_path / f"{case}.core"
    if case == "empty":
        dst.write_bytes(b"")
    elif case == "text":
        dst.write_text("this is a text file, not a core\n" * 10)
    elif case == "truncated-header":
        dst.write_bytes(open(src, "rb").read()[:40])
    elif case == "truncated-data":
        dst.write_bytes(open(src, "rb").read()[:os.path.getsize(src) // 2])
    else:
        patched(src, dst, edits)
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(proc.exe("target64"), dst)
    assert str(dst) in str(ei.value) and words in str(ei.value)


def test_directory_as_core(proc, tmp_path):
    with pytest.raises(pykvm.KvmIsADirectoryError) as ei:
        pykvm.open(proc.exe("target64"), tmp_path)
    assert str(ei.value) == f"{tmp_path}: is a directory"


def sections(data: bytes):
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    return [(shoff + i * shentsize, struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize))
            for i in range(shnum)]


def symtab_header(data: bytes) -> int:
    return next(off for off, sh in sections(data) if sh[1] == 2)


NAMELIST_CASES = [
    ("text", None, "not a namelist: line 1"),
    ("empty", None, "empty file"),
    ("symtab-past-eof", lambda d: [(symtab_header(d) + 24, struct.pack("<Q", 1 << 40))],
     "symbol table is past the end of the file"),
    ("bad-strtab-link", lambda d: [(symtab_header(d) + 40, struct.pack("<I", 9999))],
     "string table"),
    ("bad-entsize", lambda d: [(symtab_header(d) + 56, struct.pack("<Q", 3))], "bad symbol entry size 3"),
    ("bad-name-offset", lambda d: [(struct.unpack_from("<Q", d, symtab_header(d) + 24)[0] + 24 * 5,
                                    struct.pack("<I", 0x7fffffff))], "outside the string table"),
    ("shoff-past-eof", lambda d: [(40, struct.pack("<Q", 1 << 40))], "section header table"),
    ("no-sections", lambda d: [(60, struct.pack("<H", 0)), (40, struct.pack("<Q", 0))], "no section headers"),
]


@pytest.mark.parametrize("case,edits,words", NAMELIST_CASES, ids=[c[0] for c in NAMELIST_CASES])
def test_malformed_namelist(proc, tmp_path, case, edits, words):
    dst = tmp_path / f"{case}.nl"
    if case == "text":
        dst.write_text("hello world\nthis is not a symbol table\n")
    elif case == "empty":
        dst.write_bytes(b"")
    else:
        patched(proc.exe("target64"), dst, edits)
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(dst, proc.core("target64"))
    assert str(dst) in str(ei.value) and words in str(ei.value)


def test_random_header_corruption_never_crashes(proc, tmp_path):
    """500 random byte changes in the headers and notes: each opens or raises KvmError."""
    src = open(proc.core("target64"), "rb").read()
    phnum, = struct.unpack_from("<H", src, 56)
    span = phdr_offset(src, phnum) + 4096
    rng = random.Random(1234)
    outcomes = {"opened": 0, "refused": 0}
    path = tmp_path / "fuzz.core"
    for _ in range(500):
        data = bytearray(src)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(span)] = rng.randrange(256)
        path.write_bytes(data)
        try:
            with pykvm.open(proc.exe("target64"), path) as kd:
                kd.read(kd.symbol("kvm_t_int"), 4)
            outcomes["opened"] += 1
        except pykvm.KvmError:
            outcomes["refused"] += 1
    assert outcomes["opened"] + outcomes["refused"] == 500


def test_core_file_given_as_namelist_and_vice_versa(proc):
    with pytest.raises(pykvm.KvmFormatError, match="is not a core file.*give it as the namelist"):
        pykvm.open(proc.core("target64"), proc.exe("target64"))
