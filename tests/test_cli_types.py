"""pykvm type / print / sym / nlist globs on a real dump with no namelist (the
dump's own kallsyms), against bpftool, the guest's truth and its kallsyms."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import CACHE, run_fixture_script
from btf_truth import parse_bpftool


def pykvm(*args: str):
    return subprocess.run([sys.executable, "-m", "pykvm", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def core(dumps):
    return dumps["kaslr-256M"]


def test_type_json_matches_bpftool(core):
    run_fixture_script("fixtures/kernel/vmlinux_btf.py")
    (d,) = [p for p in (CACHE / "kernel").iterdir() if (p / "vmlinux.bpftool.txt").is_file()][:1]
    types = parse_bpftool(d / "vmlinux.bpftool.txt")
    for name in ("task_struct", "page", "list_head"):
        res = pykvm("type", "--json", "-M", core.path("vmcore.elf"), f"struct {name}")
        assert res.returncode == 0, res.stderr
        got = json.loads(res.stdout)
        (kind, _, attrs, members), = [t for t in types.values() if t[0] == "STRUCT" and t[1] == name]
        assert (got["name"], got["kind"], got["size"]) == (f"struct {name}", "struct",
                                                           int(attrs["size"]))
        assert [(m["name"], m["bit_offset"], m["bit_size"]) for m in got["members"]] == \
            [(n, bo, bs) for n, _, bo, bs in members]
        assert all(m["offset"] == m["bit_offset"] // 8 for m in got["members"])
    text = pykvm("type", "-M", core.path("vmcore.elf"), "struct list_head").stdout
    assert "struct list_head *next;" in text and "/* size: 16 */" in text


def test_print(core):
    res = pykvm("print", "--json", "-M", core.path("vmcore.elf"), "init_uts_ns.name.release")
    got = json.loads(res.stdout)
    assert got["value"] == core.truth["release"] and got["type"] == "char [65]"
    name = json.loads(pykvm("print", "--json", "-M", core.path("vmcore.elf"),
                            "init_uts_ns.name").stdout)["value"]
    assert name["release"] == core.truth["release"] and name["sysname"] == "Linux"
    pid = json.loads(pykvm("print", "--json", "-M", core.path("vmcore.elf"),
                           "init_task.tasks.next->next").stdout)
    assert pid["type"] == "struct list_head *" and isinstance(pid["value"], int)
    comm = pykvm("print", "-M", core.path("vmcore.elf"), "init_task.comm[0]")
    assert comm.returncode == 0 and "= 115" in comm.stdout  # 's'
    assert "'swapper/0'" in pykvm("print", "-M", core.path("vmcore.elf"), "init_task.comm").stdout


def test_sym_and_nlist_glob(core):
    sched = core.addr("schedule")
    res = pykvm("sym", "-M", core.path("vmcore.elf"), f"{sched + 5:x}", "schedule+0x10")
    lines = res.stdout.splitlines()
    assert lines[0].split()[1].startswith("schedule+0x5/0x") and lines[1].split()[1].startswith(
        "schedule+0x10/0x")
    res = pykvm("nlist", "-M", core.path("vmcore.elf"), "init_ut*")
    want = sorted((v, n) for (n, mod), (v, letter, _) in core.syms.items()
                  if mod is None and n.startswith("init_ut"))
    got = [(int(x.split()[0], 16), x.split()[2]) for x in res.stdout.splitlines()]
    assert got == want and res.returncode == 0
    miss = pykvm("nlist", "-M", core.path("vmcore.elf"), "no_such_*")
    assert miss.returncode == 1 and "U no_such_*" in miss.stdout


def test_btf_option_for_a_dump_without_btf(dumps, tmp_path):
    """--btf FILE (the open option btf=): a dump whose BTF is overwritten
    fails with the hint, and reads its types from the file given, before or
    after the command, as bpftool reads that file."""
    import shutil

    import pykvm as pk
    from pykvm._kvm import lib

    run_fixture_script("fixtures/kernel/vmlinux_btf.py")
    (d,) = [p for p in (CACHE / "kernel").iterdir() if (p / "vmlinux.bpftool.txt").is_file()][:1]
    types = parse_bpftool(d / "vmlinux.bpftool.txt")
    (size,) = [int(t[2]["size"]) for t in types.values() if t[0] == "STRUCT" and t[1] == "task_struct"]
    src = dumps["kaslr-96M"].path("vmcore.elf")
    with pk.open(None, src) as k:
        start = k.symbol("__start_BTF")
        off = lib.pykvm_page_offset(k._handle(), start, 0)
    copy = tmp_path / "vmcore.elf"
    shutil.copyfile(src, copy)
    with open(copy, "r+b") as f:
        f.seek(off + (start & 0xFFF))
        f.write(b"\0" * 64)
    res = pykvm("type", "--json", "-M", str(copy), "struct task_struct")
    assert res.returncode == 2 and "btf=PATH" in res.stderr and len(res.stderr.splitlines()) == 1
    for args in (["type", "--json", "--btf", str(d / "vmlinux.btf"), "-M", str(copy), "struct task_struct"],
                 ["--btf", str(d / "vmlinux.btf"), "-M", str(copy), "type", "--json", "struct task_struct"]):
        res = pykvm(*args)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["size"] == size
    res = pykvm("print", "--btf", str(d / "vmlinux.btf"), "-M", str(copy), "init_task.comm")
    assert res.returncode == 0 and "'swapper/0'" in res.stdout
