"""A panic in module code (softdog's timer callback, on the IRQ stack, over the idle task):
bt --panic unwinds through the module with its own ORC tables and names its code from its
own symbol tables, with no namelist; lsmod and kd.symbolize agree with the guest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import pykvm
from pykvm.linux import dmesg, format_makedumpfile
from pykvm.linux.modules import lsmod
from pykvm.linux.stack import panic_backtrace
from pykvm.linux.sysinfo import sysinfo
from pykvm.linux.tasks import pid_on_cpu_function, task_on_cpu_function
from conftest import ROOT
from native_support import assert_unsupported
from panic_fixtures import (SOFTDOG_PANIC, check_panic_frames, guest_modules,  # noqa: F401
                            module_panic_cases, panic)

NAMELIST = pytest.mark.parametrize("namelist", [False, True], ids=["no-namelist", "kallsyms"])


def opened(d, fname, namelist):
    return pykvm.open(d.kallsyms if namelist else None, d.path(fname))


def guest_module_symbols(d) -> dict:
    """address -> {(name, module)} of the modules' text symbols in the guest's kallsyms."""
    out: dict = {}
    for line in d.text("kallsyms-modules.txt").splitlines():
        addr, letter, name, mod = line.split()
        if letter in "tT":
            out.setdefault(int(addr, 16), set()).add((name, mod.strip("[]")))
    return out


@NAMELIST
@pytest.mark.parametrize("variant,fname", module_panic_cases())
def test_bt_panic_through_the_module(panic, variant, fname, namelist):
    d = panic[variant]
    console = d.console_panic_trace()
    # the guest's trace itself goes through softdog: the test is about module frames
    assert ("softdog_fire.cold", "softdog") in {(c[0], c[3]) for c in console}
    with opened(d, fname, namelist) as kd:
        if not (pykvm.has("notes") and pykvm.has("symbols")):
            assert_unsupported(panic_backtrace, kd)
            return
        bt = panic_backtrace(kd, task_on_cpu_function(kd))
    assert bt.error is None
    assert (bt.cpu, bt.pid, bt.comm) == d.console_panic_task()
    # from panic() in the module's hrtimer callback, out of the IRQ stack, through the
    # interrupt's register frame, to the idle task's start
    check_panic_frames(bt.frames, console)
    assert [f.module for f in bt.frames if f.module] == ["softdog"]
    assert bt.frames[-1].function == "secondary_startup_64_no_verify"


@pytest.mark.parametrize("variant,fname", module_panic_cases())
def test_module_frames_are_the_guests_symbols(panic, variant, fname):
    """Every module frame's function starts at an address the guest's kallsyms gives that
    name, in that module; kd.symbolize names the same address the same way."""
    d = panic[variant]
    guest = guest_module_symbols(d)
    with opened(d, fname, False) as kd:
        if not (pykvm.has("notes") and pykvm.has("symbols")):
            return assert_unsupported(panic_backtrace, kd)
        frames = [f for f in panic_backtrace(kd).frames if f.module]
        assert frames
        for f in frames:
            assert (f.function, f.module) in guest[f.address - f.offset]
            s = kd.symbolize(f.address)
            assert (s.name, s.offset, s.size, s.module) == (f.function, f.offset, f.size,
                                                             f.module)


@NAMELIST
@pytest.mark.parametrize("variant,fname", module_panic_cases())
def test_lsmod_and_sys(panic, variant, fname, namelist):
    d = panic[variant]
    with opened(d, fname, namelist) as kd:
        mods = lsmod(kd)
        s = sysinfo(kd, tasks=pid_on_cpu_function(kd))
    # /proc/modules as it was with /dev/watchdog open and the timer armed, less the
    # timer's reference to softdog, which softdog_fire drops before it panics
    want = [g if g[0] != "softdog" else g[:2] + (g[2] - 1,) + g[3:]
            for g in guest_modules(d, "modules-armed.txt")]
    assert [(m.name, m.size, m.refcount, m.used_by, m.state, m.address) for m in mods] == want
    assert {"softdog", "watchdog"} <= {m.name for m in mods}
    assert s["panic"] == SOFTDOG_PANIC
    assert (s["panic_cpu"], s["panic_pid"]) == d.console_panic_task()[:2]


@pytest.mark.parametrize("variant,fname", module_panic_cases())
def test_dmesg_is_makedumpfiles(panic, variant, fname):
    d = panic[variant]
    with opened(d, fname, False) as kd:
        assert format_makedumpfile(dmesg(kd)) == d.makedumpfile_dmesg(fname)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pykvm", *args], capture_output=True,
                          cwd=ROOT, text=True, timeout=120)


def test_cli(panic):
    d = panic["softdog"]
    path = d.path("vmcore.mdf-lzo")
    r = cli("bt", "--panic", "--json", "-M", path)
    if not (pykvm.has("notes") and pykvm.has("symbols")):
        assert r.returncode == 2 and "not available with the native libkvm" in r.stderr
        return
    assert r.returncode == 0, r.stderr
    bt = json.loads(r.stdout)
    frame = next(f for f in bt["frames"] if f["module"])
    assert (frame["function"], frame["module"]) == ("softdog_fire.cold", "softdog")
    name, off, size, _ = next(c for c in d.console_panic_trace() if c[3])
    r = cli("bt", "--panic", "-M", path)
    assert r.returncode == 0, r.stderr
    assert f"{name}+{off:#x}/{size:#x} [softdog]" in r.stdout
    r = cli("lsmod", "--json", "-M", path)
    assert r.returncode == 0, r.stderr
    assert [(m["name"], m["address"]) for m in json.loads(r.stdout)] == \
        [(g[0], g[5]) for g in guest_modules(d)]
