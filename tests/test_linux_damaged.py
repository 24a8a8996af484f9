"""Damaged dumps: broken lists, pointers and stacks are reported in place, never hang."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import pykvm
from pykvm.linux.layout import layout
from pykvm.linux.modules import lsmod
from pykvm.linux.stack import task_backtrace
from pykvm.linux.tasks import tasks
from conftest import ROOT
from panic_fixtures import panic  # noqa: F401

POISON = 0xDEAD000000000100  # LIST_POISON1: never mapped
MASK64 = (1 << 64) - 1


@pytest.fixture()
def damaged(panic, tmp_path):
    """A writable copy of the QEMU panic dump (QEMU's ELF: every page stored whole)."""
    src = panic["qemu-panic"].path("vmcore.elf")
    dst = tmp_path / "vmcore.elf"
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    return str(dst)


def test_task_list_cycle_and_bad_parent(damaged):
    with pykvm.open(None, damaged, flag=os.O_RDWR) as kd:
        L = layout(kd)
        ts = {t.pid: t for t in tasks(kd)}
        # pid 3's list node points at itself: the walk would never return to init_task
        kd.write(ts[3].task + L.tasks, (ts[3].task + L.tasks).to_bytes(8, "little"))
        kd.write(ts[2].task + L.real_parent, POISON.to_bytes(8, "little"))
        kd.write(ts[2].task + L.thread_sp, POISON.to_bytes(8, "little"))
    with pykvm.open(None, damaged) as kd:
        got = tasks(kd)
        assert [t.pid for t in got[:3]] == [1, 2, 3]
        assert got[1].ppid is None and "parent" in got[1].error
        assert got[-1].error and "loops" in got[-1].error
        assert len(got) < 10
        bt = task_backtrace(kd, got[1])
        assert bt.frames == [] and "unreadable" in bt.error
    r = subprocess.run([sys.executable, "-m", "pykvm", "ps", "-M", damaged],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1 and "loops" in r.stdout
    r = subprocess.run([sys.executable, "-m", "pykvm", "ps", "--json", "-M", damaged],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1 and '"error"' in r.stdout


def test_module_list_broken(damaged):
    with pykvm.open(None, damaged, flag=os.O_RDWR) as kd:
        L = layout(kd)
        mods = lsmod(kd)
        kd.write(mods[2].module + L.mod_list, POISON.to_bytes(8, "little"))
    with pykvm.open(None, damaged) as kd:
        got = lsmod(kd)
    assert [m.name for m in got[:3]] == [m.name for m in mods[:3]]
    assert len(got) == 4 and got[3].error and "module list" in got[3].error
    r = subprocess.run([sys.executable, "-m", "pykvm", "lsmod", "-M", damaged],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1 and mods[0].name in r.stdout


def test_printk_record_and_ring_damaged(damaged):
    """A record whose text positions are garbage is one marked record among the rest; a
    ring whose tail claims more ids than it holds is walked once around, not forever."""
    from pykvm.linux.printk import _Layout, dmesg
    with pykvm.open(None, damaged) as kd:
        good = dmesg(kd)
    with pykvm.open(None, damaged, flag=os.O_RDWR) as kd:
        L = _Layout(kd)
        ring = kd.read_pointer(L.prb_ptr) + L.rb_desc
        count = 1 << kd.read_u32(ring + L.dr_count_bits)
        descs = kd.read_pointer(ring + L.dr_descs)
        head = kd.read_u64(ring + L.dr_head + L.counter)
        # the newest record's data block: "next" three rings past its begin
        d = descs + (head & (count - 1)) * L.desc_size + L.desc_lpos
        begin = kd.read_u64(d + L.lpos_begin)
        size = 1 << kd.read_u32(kd.read_pointer(L.prb_ptr) + L.rb_text + L.data_size_bits)
        kd.write(d + L.lpos_next, ((begin + 3 * size) & MASK64).to_bytes(8, "little"))
        kd.write(ring + L.dr_tail + L.counter, ((head - 50 * count) & MASK64).to_bytes(8, "little"))
    with pykvm.open(None, damaged) as kd:
        got = dmesg(kd)
    bad = [r for r in got if r.error]
    assert len(bad) == 1 and "inconsistent" in bad[0].error and bad[0].seq == good[-1].seq
    assert [r.text for r in got if not r.error] == [r.text for r in good[:-1]]
    r = subprocess.run([sys.executable, "-m", "pykvm", "dmesg", "-M", damaged],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1 and "<record unreadable: text block positions" in r.stdout
    r = subprocess.run([sys.executable, "-m", "pykvm", "dmesg", "--json", "-M", damaged],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1 and '"error"' in r.stdout


def test_struct_module_without_core_layout(panic, monkeypatch, capsys):
    """A kernel whose struct module has no core_layout (6.4+ keeps mem[] instead): lsmod
    raises UnsupportedError naming the struct, the member and the kernel, the command says
    so in one line with status 1, and what does not need the member still works."""
    from pykvm.btf.typesys import Type
    from pykvm.cli import main
    d = panic["kdump"]
    real = Type.member_index

    def member_index(self):
        idx = real(self)
        if self.kind == "struct" and self.name == "module":
            idx = {k: v for k, v in idx.items() if k != "core_layout"}
        return idx
    monkeypatch.setattr(Type, "member_index", member_index)
    with pykvm.open(None, d.path("vmcore.elf")) as kd:
        with pytest.raises(pykvm.UnsupportedError) as e:
            lsmod(kd)
        assert isinstance(e.value, pykvm.KvmError)
        for word in ("struct module", "core_layout.base", d.truth["release"]):
            assert word in str(e.value)
        assert len(tasks(kd)) > 10 and not any(t.error for t in tasks(kd))
    capsys.readouterr()
    assert main(["lsmod", "-M", d.path("vmcore.elf")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("pykvm lsmod: ") and err.count("\n") == 1
    assert "struct module has no member core_layout.base" in err
    assert main(["ps", "-M", d.path("vmcore.elf")]) == 0


@pytest.mark.parametrize("field,value", [("count_bits", 28), ("size_bits", 31)])
def test_printk_ring_claiming_gigabytes(damaged, field, value):
    """A ring header claiming 2^28 descriptors or 2 GiB of text (the walks fuzz target's
    first finding: the tool read each array whole, gigabytes) is refused or walked in
    bounded memory: under a 2 GiB address-space limit dmesg ends with a clear error."""
    from pykvm.linux.printk import _Layout
    with pykvm.open(None, damaged, flag=os.O_RDWR) as kd:
        L = _Layout(kd)
        prb = kd.read_pointer(L.prb_ptr)
        at = prb + (L.rb_desc + L.dr_count_bits if field == "count_bits"
                    else L.rb_text + L.data_size_bits)
        kd.write(at, value.to_bytes(4, "little"))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
            "from pykvm.cli import main; sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", code, "dmesg", "-M", damaged],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-2000:]
    if field == "count_bits":
        assert r.returncode != 0 and "count_bits 28 is implausible" in r.stderr


@pytest.mark.parametrize("key, bad", [(b"KERNELOFFSET=", b"&"), (b"CRASHTIME=", "\u00b2".encode())])
def test_vmcoreinfo_values_that_do_not_parse(panic, tmp_path, key, bad):
    """A VMCOREINFO number that is not one (the walks target's finding: a
    KERNELOFFSET of '&' made the open raise a bare ValueError; str.isdigit
    takes '²', which int() refuses) opens, is not shown as a number, and the
    tools still read."""
    src = panic["kdump"].path("vmcore.elf")
    with open(src, "rb") as f:
        data = bytearray(f.read())
    n = 0
    pos = data.find(key)
    while pos >= 0:
        start = pos + len(key)
        data[start:start + len(bad)] = bad  # the same length: nothing else moves
        n += 1
        pos = data.find(key, start)
    assert n >= 1
    copy = tmp_path / "vmcore.elf"
    copy.write_bytes(bytes(data))
    with pykvm.open(None, copy) as kd:
        info = kd.info
        if key == b"KERNELOFFSET=":
            assert "kerneloffset" not in info
        else:
            assert isinstance(info["vmcoreinfo_crashtime"], str)
        assert kd.read_cstring(kd.symbol("linux_banner")).startswith("Linux version")
        assert len(list(tasks(kd))) > 10
