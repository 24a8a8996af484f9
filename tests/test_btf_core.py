"""Kernel types from the dump's own BTF: the core API against the guest's truth."""

from __future__ import annotations

import pytest

import pykvm
from conftest import FORMATS


@pytest.fixture(scope="module")
def kd(dumps):
    with pykvm.open(None, dumps["kaslr-256M"].path("vmcore.elf")) as k:
        yield k


def test_has_btf():
    assert pykvm.has("btf")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("namelist", [False, True])
def test_init_task_and_release(dumps, fmt, namelist):
    d = dumps["kaslr-96M"]
    with pykvm.open(d.kallsyms if namelist else None, d.path(fmt)) as k:
        task = k.object("init_task")
        assert task.comm.string() == "swapper/0"
        assert task.pid.value() == 0
        assert k.object("init_uts_ns").name.release.string() == d.truth["release"]


def test_tasks_walk(kd):
    tasks = list(kd.list_for_each_entry("struct task_struct", kd.object("init_task").tasks, "tasks"))
    pids = [int(t.pid) for t in tasks]
    assert pids[0] == 1 and len(set(pids)) == len(pids)
    assert tasks[0].comm.string() == "init"


def test_layout_basics(kd):
    assert kd.sizeof("struct list_head") == 16
    assert kd.offsetof("struct list_head", "prev") == 8
    assert kd.sizeof("unsigned long") == 8
    assert kd.type("char [16]").size == 16
    t = kd.type("struct task_struct")
    assert t.kind == "struct" and t.size == kd.sizeof("struct task_struct")
    assert kd.offsetof("struct task_struct", "se.vruntime") == (
        kd.offsetof("struct task_struct", "se") + kd.offsetof("struct sched_entity", "vruntime"))


def test_symbolize(kd):
    s = kd.symbolize(kd.symbol("schedule") + 5)
    assert s.name == "schedule" and s.offset == 5 and s.size > 5 and s.module is None


def test_symbolize_past_the_last_symbol_is_none(kd):
    """Beyond the highest symbol (and outside every module) no symbol is known: None,
    never the last symbol with a made-up offset."""
    last = max(s.value for s in kd.all_symbols() if s.module is None)
    assert kd.symbolize(last + 0x1000000) is None


def test_per_cpu(kd):
    rq = kd.per_cpu("runqueues", 0)
    assert rq.type.name_str() == "struct rq"
    assert rq.cpu.value() == 0
    assert int(rq.curr) != 0


def test_member_readers(kd):
    task = kd.object("init_task")
    first = next(kd.list_for_each_entry("struct task_struct", task.tasks, "tasks"))
    pid = kd.member_reader("struct task_struct", "pid")
    assert pid(first.address) == int(first.pid) == 1 and pid(task.address) == 0
    assert task.member_reader("tasks.next")() == int(task.tasks.next)
    # a bitfield: the same value the Object path decodes
    t = kd.type("struct task_struct")
    (name, bits) = next((m.name, m.bit_size) for m in t.members if m.bit_size)
    assert first.member_reader(name)() == int(first.member(name))
    with pytest.raises(TypeError):
        task.member_reader("comm")
