"""pykvm ps / lsmod / sys / bt PID from the dump alone, against what the guest printed
just before it panicked (its /proc, its console's sysrq-t backtraces)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import pykvm
from pykvm.linux.modules import lsmod
from pykvm.linux.stack import task_backtrace
from pykvm.linux.sysinfo import sysinfo
from pykvm.linux.tasks import pid_on_cpu_function, tasks
from conftest import ROOT
from native_support import assert_unsupported
from panic_fixtures import (guest_modules, guest_tasks, module_panic_cases, panic,  # noqa: F401
                            panic_cases,
                            sysrq_t_tasks, sysrq_t_traces)

# The guest's own capture commands (busybox sh -c, cat, ps) exit before the panic.
TRANSIENT = {"sh", "cat", "ps"}


def opened(d, fname, namelist):
    return pykvm.open(d.kallsyms if namelist else None, d.path(fname))


@pytest.mark.parametrize("namelist", [False, True], ids=["no-namelist", "kallsyms"])
@pytest.mark.parametrize("variant,fname", panic_cases())
def test_ps_agrees_with_the_guest(panic, variant, fname, namelist):
    d = panic[variant]
    guest = guest_tasks(d)
    with opened(d, fname, namelist) as kd:
        ours = {t.pid: t for t in tasks(kd)}
    assert not [t for t in ours.values() if t.error]
    gone = {p for p in guest if p not in ours}
    assert {guest[p][0] for p in gone} <= TRANSIENT, gone
    assert len(ours) >= len(guest) - len(gone)
    compared = same_cpu = 0
    for pid, (comm, state, ppid, cpu) in guest.items():
        if pid in gone:
            continue
        t = ours[pid]
        # /proc shows a kernel thread's full name (and a worker's workqueue); the task
        # keeps the first 15 bytes
        assert comm.startswith(t.comm) and (t.comm == comm or len(t.comm) == 15
                                            or comm.startswith(t.comm + "-")), (pid, comm)
        assert t.ppid == ppid, pid
        if "R" not in (state, t.state):  # a task that ran since may be elsewhere now
            assert t.state == state, (pid, comm)
            same_cpu += t.cpu == cpu
            compared += 1
    assert ours[1].state == "R" and ours[1].comm == "init"   # init is the one panicking
    # unbound workers may run (and move) between the capture and the panic
    assert compared > 30 and same_cpu >= compared * 0.9


@pytest.mark.parametrize("namelist", [False, True], ids=["no-namelist", "kallsyms"])
@pytest.mark.parametrize("variant,fname", panic_cases())
def test_lsmod_is_proc_modules(panic, variant, fname, namelist):
    d = panic[variant]
    with opened(d, fname, namelist) as kd:
        mods = lsmod(kd)
    got = [(m.name, m.size, m.refcount, m.used_by, m.state, m.address) for m in mods]
    want = guest_modules(d)
    assert got == want
    assert len(want) >= 8


@pytest.mark.parametrize("variant,fname", panic_cases() + module_panic_cases())
def test_bt_pid_matches_sysrq_t(panic, variant, fname):
    """Every task sysrq-t listed: one that has not run since sysrq-t printed it (its state
    was not R then, and the scheduler last switched it in before that line) sits exactly
    where sysrq-t saw it; one that ran since may wait elsewhere now (rcu_preempt, R at
    sysrq-t, went on to finish its grace period), but its stack is a whole one."""
    d = panic[variant]
    logged = sysrq_t_tasks(d)
    with opened(d, fname, False) as kd:
        ours = {t.pid: t for t in tasks(kd)}
        if not pykvm.has("symbols"):
            assert_unsupported(task_backtrace, kd, ours[2])
            return
        last_arrival = kd.offsetof("struct task_struct", "sched_info.last_arrival")
        still = moved = 0
        for pid, (state, stamp, frames) in logged.items():
            if pid == 1:  # init wrote to sysrq-trigger, then panicked: see test_linux_bt
                continue
            t = ours[pid]  # sysrq-t listed kernel threads only, all still there
            bt = task_backtrace(kd, t)
            got = [(f.function, f.offset, f.size, f.module) for f in bt.frames]
            assert bt.error is None, (pid, t.comm, bt.error)
            if state != "R" and kd.read_u64(t.task + last_arrival) < stamp * 1e9:
                assert got == frames, (pid, t.comm)
                still += 1
            else:
                assert got[0][0] == "__schedule" and got[-1][0] == "ret_from_fork", (pid, got)
                moved += 1
    assert still >= 30 and still + moved == len(logged) - 1


RCU_GP_WAIT_GPS, RCU_GP_WAIT_FQS = 1, 5  # kernel/rcu/tree.h


@pytest.mark.parametrize("variant", ["kdump", "qemu-panic"])
def test_rcu_gp_kthread_waits_where_rcu_says(panic, variant):
    """rcu_preempt's stack agrees with the RCU core's own record of what its grace-period
    kthread waits for (rcu_state.gp_state): a new grace period (in rcu_gp_kthread) or the
    force-quiescent-state timeout (in rcu_gp_fqs_loop's schedule_timeout)."""
    d = panic[variant]
    with opened(d, "vmcore.elf", False) as kd:
        if not pykvm.has("symbols"):
            return assert_unsupported(task_backtrace, kd, tasks(kd)[1])
        t = next(t for t in tasks(kd) if t.comm == "rcu_preempt")
        names = [f.function for f in task_backtrace(kd, t).frames]
        gp_state = int(kd.object("rcu_state", "struct rcu_state").gp_state)
    assert gp_state in (RCU_GP_WAIT_GPS, RCU_GP_WAIT_FQS)
    assert names[:2] == ["__schedule", "schedule"] and names[-2:] == ["kthread", "ret_from_fork"]
    if gp_state == RCU_GP_WAIT_FQS:
        assert names[2:5] == ["schedule_timeout", "rcu_gp_fqs_loop", "rcu_gp_kthread"]
    else:
        assert names[2] == "rcu_gp_kthread"


@pytest.mark.parametrize("namelist", [False, True], ids=["no-namelist", "kallsyms"])
@pytest.mark.parametrize("variant,fname", panic_cases())
def test_sys(panic, variant, fname, namelist):
    d = panic[variant]
    meminfo = dict(line.split(":", 1) for line in d.text("meminfo.txt").splitlines())
    with opened(d, fname, namelist) as kd:
        s = sysinfo(kd, tasks=pid_on_cpu_function(kd))
        fmt = kd.info["format"] if pykvm.has("info") else None
    assert s["release"] == d.truth["release"]
    assert f"Linux {s['nodename']} {s['release']} {s['version']} {s['machine']}" in d.truth["uname"]
    assert s["nodename"] == f"pykvm-{variant}"
    assert s["cpus"] == d.truth["cpus"]
    assert s["memory_bytes"] == int(meminfo["MemTotal"].split()[0]) * 1024
    assert s["panic"] == "Kernel panic - not syncing: sysrq triggered crash"
    assert (s["panic_cpu"], s["panic_pid"]) == d.console_panic_task()[:2]
    assert d.truth["uptime_before_panic_s"] <= s["uptime_s"] < d.truth["uptime_before_panic_s"] + 30
    assert s["format"] == fmt
    if variant == "kdump" and pykvm.has("info"):
        assert isinstance(s["crash_time"], int) and s["crash_time"] > 1.7e9


def test_sys_without_a_panic(dumps):
    with pykvm.open(None, dumps["kaslr-96M"].path("vmcore.elf")) as kd:
        s = sysinfo(kd)
    assert s["panic"] is None and s["panic_cpu"] is None and s["panic_pid"] is None


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pykvm", *args], capture_output=True,
                          cwd=ROOT, text=True)


@pytest.mark.parametrize("variant,fname", [("kdump", "vmcore.mdf-lzo"),
                                           ("qemu-panic", "vmcore.kdump-zlib")])
def test_cli(panic, variant, fname):
    d = panic[variant]
    path = d.path(fname)
    r = cli("ps", "--json", "-M", path)
    assert r.returncode == 0, r.stderr
    ps = json.loads(r.stdout)
    assert all(set(t) == {"pid", "ppid", "state", "cpu", "comm", "task"} for t in ps)
    guest = guest_tasks(d)
    assert {t["pid"] for t in ps} >= {p for p, g in guest.items() if g[0] not in TRANSIENT}
    r = cli("ps", "-M", path)
    assert r.returncode == 0 and "kthreadd" in r.stdout
    r = cli("lsmod", "--json", "-M", path)
    assert r.returncode == 0, r.stderr
    mods = json.loads(r.stdout)
    assert [(m["name"], m["size"], m["refcount"], m["address"]) for m in mods] == \
        [(g[0], g[1], g[2], g[5]) for g in guest_modules(d)]
    r = cli("sys", "--json", "-M", path)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert set(s) == {"release", "version", "machine", "nodename", "cpus", "memory_bytes",
                      "uptime_s", "panic", "panic_cpu", "panic_pid", "crash_time", "format"}
    assert s["panic_pid"] == 1
    r = cli("sys", "-M", path)
    assert r.returncode == 0 and "sysrq triggered crash" in r.stdout
    r = cli("bt", "2", "--json", "-M", path)
    if not pykvm.has("symbols"):
        assert r.returncode == 2 and "not available with the native libkvm" in r.stderr
        return
    assert r.returncode == 0, r.stderr
    bt = json.loads(r.stdout)
    assert bt["pid"] == 2 and bt["comm"] == "kthreadd"
    assert [f["function"] for f in bt["frames"]] == [f[0] for f in sysrq_t_traces(d)[2]]
    r = cli("bt", "--all", "-M", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("PID: ") >= len(guest) - 3
    assert cli("bt", "999999", "-M", path).returncode == 1
    assert cli("bt", "-M", path).returncode == 2


@pytest.mark.parametrize("variant,fname", [("kdump", "vmcore.elf"), ("qemu-panic", "vmcore.mdf-lzo")])
def test_module_symbols_are_the_guests_kallsyms(panic, variant, fname):
    """Module code is named from the modules' own symbol tables (struct module), as the
    guest's /proc/kallsyms lists them: in backtraces and by kd.symbolize."""
    from pykvm.linux.modules import module_symbols
    from pykvm.linux.stack import symbolizer
    d = panic[variant]
    guest = set()
    for line in d.text("kallsyms-modules.txt").splitlines():
        addr, letter, name, mod = line.split()
        guest.add((int(addr, 16), letter, name, mod.strip("[]")))
    with opened(d, fname, False) as kd:
        ours = {(a, t, n, m.name) for m in lsmod(kd) for a, n, t in module_symbols(kd, m)}
        if not pykvm.has("symbols"):
            assert_unsupported(symbolizer, kd)
            return
        assert {g for g in guest if g[1] in "tT"} <= ours
        assert len(ours & guest) >= len(guest) * 0.9
        sym = symbolizer(kd)
        aliases: dict = {}
        for addr, letter, name, mod in guest:
            if letter in "tT":
                aliases.setdefault(addr, set()).add(name)
        for addr, names in aliases.items():
            f = sym.lookup(addr + 1)
            assert f.offset == 1 and f.function in names, (hex(addr), names, f)
            assert f.module in {g[3] for g in guest if g[0] == addr}
            s = kd.symbolize(addr + 1)
            assert (s.name, s.offset, s.size, s.module) == (f.function, 1, f.size, f.module)
