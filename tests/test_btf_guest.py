"""Typed objects against what the panic guests printed: walking
init_task.tasks finds the guest's processes, and every module it loaded
has its BTF types (split on vmlinux) named by module."""

from __future__ import annotations

import pytest

import pykvm
from panic_fixtures import guest_modules, guest_tasks, panic  # noqa: F401


@pytest.fixture(scope="module")
def kd_and_dump(panic):  # noqa: F811
    d = panic["kdump"]
    with pykvm.open(None, d.path("vmcore.elf")) as k:
        yield k, d


def test_task_walk_is_the_guests_processes(kd_and_dump):
    kd, d = kd_and_dump
    walked = {int(t.pid): t.comm.string() for t in
              kd.list_for_each_entry("struct task_struct", kd.object("init_task").tasks, "tasks")}
    guest = {pid: comm for pid, (comm, *_rest) in guest_tasks(d).items()}
    # tasks.txt lists thread-group leaders as the guest's /proc saw them just before
    # the dump; the reader that printed it (its highest pid) has exited since.
    # /proc shows a kernel thread's full name ("rcu_tasks_kthread") and a kworker's
    # workqueue ("kworker/0:1H-kblockd"); comm holds the first 15 bytes.
    last = max(guest)
    assert set(guest) - {last} <= set(walked)
    for pid, comm in guest.items():
        if pid != last:
            w = walked[pid]
            assert comm == w or (comm.startswith(w) and (len(w) == 15 or comm[len(w)] == "-")), pid
    assert len(walked) == len(guest) - 1 or set(walked) - set(guest) == set()


def test_every_module_has_its_types(kd_and_dump):
    kd, d = kd_and_dump
    names = {m[0] for m in guest_modules(d)}
    seen = set()
    n = len(kd.types)
    for tid in range(n - 1, 0, -1):
        mod = kd.types.by_id(tid).module
        if mod is None:
            break
        seen.add(mod)
    # modules with no types of their own beyond vmlinux's carry no split BTF
    assert seen and seen <= names, (seen, names)
    assert "virtio_blk" in seen and kd.type("struct virtio_blk").module == "virtio_blk"
    assert kd.type("struct fw_cfg_sysfs_entry").module == "qemu_fw_cfg"
