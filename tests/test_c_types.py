"""kvm_type_size / kvm_member_offset from C (tests/c/type_layout.c built
against csrc/), against pahole's layouts of the fixture kernel's vmlinux."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import CACHE, ROOT, run_fixture_script
from test_c_api import c_shim_program  # noqa: F401  (the session fixture)


def pahole(name: str) -> dict:
    """member -> offset and 'size' from pahole's text for struct name."""
    (d,) = [p for p in (CACHE / "kernel").iterdir() if (p / "pahole").is_dir()][:1]
    text = (d / "pahole" / f"{name}.txt").read_text()
    out = {"size": int(re.search(r"/\* size: (\d+),", text).group(1))}
    for m in re.finditer(r"^\t+[^/\n]*?\b(\w+)(?:\[\d+\])*;\s+/\*\s+(\d+)\s+(\d+)\s+\*/", text, re.M):
        out.setdefault(m.group(1), int(m.group(2)))
    return out


@pytest.fixture(scope="module")
def layout(dumps, c_shim_program):  # noqa: F811
    run_fixture_script("fixtures/kernel/vmlinux_btf.py")
    prog = c_shim_program(ROOT / "tests" / "c" / "type_layout.c")

    def ask(*queries, core=dumps["kaslr-256M"].path("vmcore.elf"), btf="-"):
        res = subprocess.run([prog, core, btf, *queries], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stdout.splitlines()
    return ask


def test_sizes_and_offsets(layout):
    ts, se, mm, page, lh = (pahole(n) for n in ("task_struct", "sched_entity", "mm_struct",
                                                 "page", "list_head"))
    got = layout("struct task_struct", "struct list_head", "struct list_head *", "u64",
                 "unsigned long", "char [16]", "struct list_head [4]",
                 "struct task_struct:comm", "struct task_struct:se.vruntime",
                 "struct task_struct:tasks.prev", "struct task_struct:comm[3]",
                 "struct mm_struct:mmap_base",  # in an anonymous struct
                 "struct page:lru",  # in anonymous unions
                 "struct mm_struct:lru_gen.list")  # a named member of an inline type
    want = [ts["size"], lh["size"], 8, 8, 8, 16, 4 * lh["size"],
            ts["comm"], ts["se"] + se["vruntime"], ts["tasks"] + lh["prev"], ts["comm"] + 3,
            mm["mmap_base"], page["lru"], mm["list"]]
    assert [int(x) for x in got] == want


def test_errors(layout):
    got = layout("struct no_such_struct", "struct task_struct:no_such_member",
                 "struct task_struct:comm.x", "struct task_struct *:pid", "")
    assert got[0] == 'error: no type "struct no_such_struct" in the kernel\'s BTF'
    assert got[1].startswith("error: struct task_struct has no member \"no_such_member\"")
    assert got[2].startswith("error: struct task_struct: no members at")
    assert got[3].startswith("error: struct task_struct * is a pointer")
    assert got[4].startswith("error: not a type name")


def test_module_type_and_no_btf(layout, dumps, tmp_path):
    assert layout("struct fw_cfg_sysfs_entry", "struct fw_cfg_sysfs_entry:list") == ["144", "128"]
    bad = tmp_path / "bad.btf"
    bad.write_bytes(b"not btf at all, long enough for a header")
    (line,) = layout("struct task_struct", btf=str(bad))
    assert line.startswith(f"error: {bad}: no BTF magic")
