"""Objects over their C base (pykvm._fast.Value): members by attribute and
integer values read in C agree with the Python path and with bpftool's
layouts; the class's own attribute names keep their meaning; member
objects are shared and read-only; odd addresses fail as reads do; a handle
held in a cycle through its objects is collected."""

from __future__ import annotations

import gc
import weakref

import pytest

import pykvm
from pykvm.btf.objects import Object, _OWN_NAMES
from btf_truth import Layouts, bpftool_truth_dir, parse_bpftool


@pytest.fixture(scope="module")
def kd(dumps):
    with pykvm.open(None, dumps["kaslr-256M"].path("vmcore.elf")) as k:
        yield k


@pytest.fixture(scope="module")
def layouts():
    return Layouts(parse_bpftool(bpftool_truth_dir() / "vmlinux.bpftool.txt"))


def scalar_members(kd, tname):
    """Names of the byte-aligned integer and pointer members of tname."""
    out = []
    for name, (bit, size, mt) in kd.type(tname).member_index().items():
        r = mt.resolve()
        if not size and bit % 8 == 0 and name not in _OWN_NAMES and (
                r.kind == "ptr" or (r.kind in ("int", "enum") and r.size in (1, 2, 4, 8))):
            out.append(name)
    return out


@pytest.mark.parametrize("tname, sym", [("struct task_struct", "init_task"),
                                        ("struct uts_namespace", "init_uts_ns")])
def test_c_members_agree_with_bpftool_and_the_python_path(kd, layouts, tname, sym):
    obj = kd.object(sym)
    names = scalar_members(kd, tname)
    assert len(names) > (40 if "task" in tname else 1)
    for name in names:
        m = getattr(obj, name)  # the C base's member table
        assert isinstance(m, Object)
        assert m.address == kd.symbol(sym) + layouts.offset(tname, name), name
        # int() in C, the Python slow path, and a plain read of the same bytes
        r = m.type.resolve()
        if r.kind == "ptr":
            want = kd.read_pointer(m.address)
        else:
            signed = r.is_signed if r.kind == "int" else bool(r.kflag)
            want = kd.read_member(m.address, 0, r.size, signed)
        assert int(m) == m._int_slow() == want, name
        assert m.__index__() == want


def test_nested_members_and_values_match_the_guest(kd, dumps):
    task = kd.object("init_task")
    assert task.comm.string() == "swapper/0"
    assert int(task.pid) == 0
    uts = kd.object("init_uts_ns")
    assert uts.name.release.string() == dumps["kaslr-256M"].truth["release"]
    # se.vruntime: a member of a member, both through the tables
    assert task.se.vruntime.address == task.address + kd.offsetof("struct task_struct", "se.vruntime")
    assert int(task.se.vruntime) == kd.read_u64(task.se.vruntime.address)


def test_own_attribute_names_are_not_members(kd, layouts):
    # struct file_operations has a member called read, as Object has a method.
    t = kd.type("struct file_operations")
    assert "read" in t.member_index()
    base = kd.symbol("linux_banner")
    obj = Object(kd, base, t)
    assert callable(obj.read) and obj.type is t and obj.address == base
    assert obj["read"].address == base + layouts.offset("struct file_operations", "read")
    assert obj["read"].type.resolve().kind == "ptr"


def test_member_objects_are_shared_and_read_only(kd):
    task = kd.object("init_task")
    assert task.pid is task.pid and task.se is task.se
    for attr in ("address", "type", "_kvm", "_bits"):
        with pytest.raises(AttributeError):
            setattr(task.pid, attr, 1)
    with pytest.raises(AttributeError):
        task.pid.no_such_attribute_here = 1
    with pytest.raises(AttributeError, match="no member 'no_such_member'"):
        task.no_such_member


@pytest.mark.parametrize("address", [-8, 1 << 64, (1 << 64) - 2])
def test_addresses_outside_the_space_fail_as_reads_do(kd, address):
    obj = Object(kd, address, kd.type("unsigned int"))
    assert obj.address == address
    with pytest.raises(pykvm.BadAddressError):
        int(obj)
    with pytest.raises(pykvm.BadAddressError):
        kd.read_u32(address)


def test_members_past_the_top_of_the_space_fail(kd):
    task = Object(kd, (1 << 64) - 16, kd.type("struct task_struct"))
    with pytest.raises(pykvm.BadAddressError):
        int(task.pid)


def test_a_handle_in_a_cycle_with_its_objects_is_collected(dumps):
    kd = pykvm.open(None, dumps["kaslr-256M"].path("vmcore.elf"))
    task = kd.object("init_task")
    kd._kept = [task, task.pid, task.se.vruntime]  # kd -> objects -> kd
    ref = weakref.ref(kd)
    kd.close()
    del kd, task
    gc.collect()
    assert ref() is None


def test_a_closed_handle_raises_through_objects(dumps):
    kd = pykvm.open(None, dumps["kaslr-256M"].path("vmcore.elf"))
    pid = kd.object("init_task").pid
    kd.close()
    with pytest.raises(pykvm.ClosedError):
        int(pid)
