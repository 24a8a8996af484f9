"""Kernel types against independent BTF readers: every struct and union of the
fixture kernel's vmlinux (bpftool), pahole's layouts of the well-known ones,
and the loaded module's types (bpftool with --base-btf), all read by pykvm
from the dump's own memory."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pykvm
from pykvm._kvm import lib
from btf_truth import bpftool_truth_dir, parse_bpftool
from conftest import ROOT

sys.path.insert(0, str(ROOT / "fixtures" / "kernel"))
from vmlinux_btf import PAHOLE_STRUCTS  # noqa: E402

# The structs the issue names must be among those compared.
NAMED = ["task_struct", "module", "list_head", "mm_struct", "printk_ringbuffer", "hlist_node",
         "uts_namespace", "sched_entity", "pid", "upid", "btf", "btf_module", "kobject", "rq",
         "cred", "file", "inode", "page"]

@pytest.fixture(scope="module")
def truth():
    return bpftool_truth_dir()


@pytest.fixture(scope="module")
def kd(dumps):
    with pykvm.open(None, dumps["kaslr-256M"].path("vmcore.elf")) as k:
        yield k


def compare(kd, types: dict, ids) -> tuple:
    nstructs = nmembers = 0
    for tid in ids:
        kind, name, attrs, members = types[tid]
        if kind not in ("STRUCT", "UNION"):
            continue
        t = kd.types.by_id(tid)
        assert (t.kind, t.name, t.size) == (kind.lower(), name, int(attrs["size"])), tid
        got = [(m.name, m.type.id, m.bit_offset, m.bit_size) for m in t.members]
        assert got == members, f"{kind} {name} [{tid}]"
        nstructs += 1
        nmembers += len(members)
    return nstructs, nmembers


def test_every_vmlinux_struct_matches_bpftool(kd, truth):
    types = parse_bpftool(truth / "vmlinux.bpftool.txt")
    nstructs, nmembers = compare(kd, types, sorted(types))
    named = {t[1] for t in types.values() if t[0] == "STRUCT"}
    assert set(NAMED) <= named
    print(f"bpftool: {nstructs} structs/unions, {nmembers} members compared")
    assert nstructs > 5000


_PAHOLE = re.compile(r"^\t+[^/]*?\b(\w+)(?:\[\d+\])*;\s+/\*\s+(\d+)\s+(\d+)\s+\*/")
_CLOSE = re.compile(r"^\t+}\s*(\w+)?(?:\[\d+\])*;")
_PSIZE = re.compile(r"/\* size: (\d+),")


@pytest.mark.parametrize("name", PAHOLE_STRUCTS)
def test_layout_matches_pahole(kd, truth, name):
    text = (truth / "pahole" / f"{name}.txt").read_text()
    top = text.split("\n};", 1)[0]  # the struct itself, not what pahole appends
    assert kd.sizeof(f"struct {name}") == int(_PSIZE.search(text).group(1))
    # Member paths: pahole expands the struct/union types defined inline
    # (anonymous ones, whose members pykvm finds by name, and named members
    # of an unnamed type: "lru_gen.list"), with offsets from the start.
    stack: list = [[]]
    for line in top.splitlines()[1:]:
        close = _CLOSE.match(line)
        m = _PAHOLE.match(line)
        if close and len(stack) > 1:
            inner = stack.pop()
            prefix = close.group(1) + "." if close.group(1) else ""
            stack[-1] += [(prefix + n, off) for n, off in inner]
        elif m:
            stack[-1].append((m.group(1), int(m.group(2))))
        elif line.rstrip().endswith("{"):
            stack.append([])
    assert stack[0]
    for path, off in stack[0]:  # bitfields have no "offset size" pair: not compared here
        assert kd.offsetof(f"struct {name}", path) == off, path


def test_module_types_match_bpftool(kd, truth):
    types = parse_bpftool(truth / "qemu_fw_cfg.bpftool.txt")
    nvmlinux = min(types)
    # One module loaded in the guest: its types follow vmlinux's ids.
    assert kd.types.by_id(nvmlinux - 1).module is None
    nstructs, nmembers = compare(kd, types, sorted(types))
    assert nstructs >= 4
    t = kd.type("struct fw_cfg_sysfs_entry")
    assert t.module == "qemu_fw_cfg" and t.size == 144
    assert kd.offsetof(t, "list") == 128
    print(f"module bpftool: {nstructs} structs, {nmembers} members compared")


# ---- btf=PATH, kernels without BTF, corrupt BTF ----

@pytest.mark.parametrize("which", ["vmlinux", "vmlinux.btf"])
def test_btf_option(dumps, truth, which):
    d = dumps["kaslr-96M"]
    with pykvm.open(None, d.path("vmcore.mdf-lzo"), btf=truth / which) as k:
        assert k.object("init_task").comm.string() == "swapper/0"
        assert k.object("init_uts_ns").name.release.string() == d.truth["release"]


def corrupt(src: Path, dest: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    hdr_len, type_off = struct.unpack_from("<II", data, 4)
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "magic":
        data[0:2] = b"\0\0"
    elif how == "header":
        struct.pack_into("<I", data, 12, 1 << 30)  # type_len past the end
    elif how == "id":
        first = hdr_len + type_off
        assert (struct.unpack_from("<I", data, first + 4)[0] >> 24) & 0x1F == 13  # FUNC_PROTO
        struct.pack_into("<I", data, first + 8, 0xFFFFF0)  # its return type
    dest.write_bytes(data)
    return dest


@pytest.mark.parametrize("how", ["truncated", "magic", "header", "id"])
def test_corrupt_btf_file(dumps, truth, tmp_path, how):
    bad = corrupt(truth / "vmlinux.btf", tmp_path / f"{how}.btf", how)
    with pykvm.open(None, dumps["kaslr-96M"].path("vmcore.mdf-lzo"), btf=bad) as k:
        with pytest.raises(pykvm.KvmFormatError) as e:
            k.type("struct task_struct")
        assert str(bad) in str(e.value)
        assert k.read_u64(k.symbol("jiffies_64")) > 0  # the handle still reads


def test_overwritten_btf_range(dumps, truth, tmp_path):
    d = dumps["kaslr-96M"]
    with pykvm.open(None, d.path("vmcore.elf")) as k:
        start = k.symbol("__start_BTF")
        off = lib.pykvm_page_offset(k._handle(), start, 0)
        assert off >= 0
    copy = tmp_path / "vmcore.elf"
    shutil.copyfile(d.path("vmcore.elf"), copy)
    with open(copy, "r+b") as f:
        f.seek(off + (start & 0xFFF))
        f.write(b"\0" * 64)
    with pykvm.open(None, copy) as k:
        with pytest.raises(pykvm.UnsupportedError, match="btf=PATH"):
            k.type("struct task_struct")
    with pykvm.open(None, copy, btf=truth / "vmlinux.btf") as k:
        assert k.object("init_task").comm.string() == "swapper/0"


def test_module_btf_left_out_is_reported(dumps, tmp_path):
    """A module whose BTF in the dump does not parse is left out, and said:
    kd.types.skipped_modules names it and why, and asking for one of its
    types says its BTF was left out (vmlinux's types still answer)."""
    src = dumps["kaslr-256M"].path("vmcore.elf")
    with pykvm.open(None, src) as k:
        assert k.types.skipped_modules == {}
        found = {}
        for m in k.list_for_each_entry("struct btf_module", k.object("btf_modules"), "list"):
            found[m.btf.name.string()] = int(m.btf.data)
        data = found["qemu_fw_cfg"]
        off = lib.pykvm_page_offset(k._handle(), data, 0)
        assert off >= 0
    copy = tmp_path / "vmcore.elf"
    shutil.copyfile(src, copy)
    with open(copy, "r+b") as f:
        f.seek(off + (data & 0xFFF))
        assert f.read(2) == b"\x9f\xeb"  # BTF's magic, where the module's btf->data says
        f.seek(off + (data & 0xFFF))
        f.write(b"\0\0")
    with pykvm.open(None, copy) as k:
        skipped = k.types.skipped_modules
        assert list(skipped) == ["qemu_fw_cfg"]
        assert "no BTF magic" in skipped["qemu_fw_cfg"]
        with pytest.raises(LookupError, match=r"fw_cfg_sysfs_entry.*module qemu_fw_cfg \(.*no BTF magic"):
            k.type("struct fw_cfg_sysfs_entry")
        assert k.sizeof("struct task_struct") > 0
