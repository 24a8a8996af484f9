"""pykvm bt: ORC unwinding from the dump alone, checked against the guest's console and its
sysrq-t backtraces."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import pykvm
from pykvm.linux.stack import panic_backtrace
from conftest import ROOT
from native_support import assert_unsupported
from panic_fixtures import check_panic_frames, panic, panic_cases  # noqa: F401


@pytest.mark.parametrize("namelist", [False, True], ids=["no-namelist", "kallsyms"])
@pytest.mark.parametrize("variant,fname", panic_cases())
def test_panic_reproduces_console_call_trace(panic, variant, fname, namelist):
    d = panic[variant]
    with pykvm.open(d.kallsyms if namelist else None, d.path(fname)) as kd:
        if not (pykvm.has("notes") and pykvm.has("symbols")):
            assert_unsupported(panic_backtrace, kd)
            return
        bt = panic_backtrace(kd)
    assert bt.error is None
    assert (bt.cpu, bt.pid if variant == "kdump" else 1) == d.console_panic_task()[:2]
    check_panic_frames(bt.frames, d.console_panic_trace())
    # the kdump capture path starts inside __crash_kexec; QEMU's CPU sits in panic's delay
    first = bt.frames[0].function
    assert first == "__crash_kexec" if variant == "kdump" else first != "panic"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pykvm", *args], capture_output=True,
                          cwd=ROOT, text=True)


@pytest.mark.parametrize("variant,fname", [("kdump", "vmcore.mdf-lzo"),
                                           ("qemu-panic", "vmcore.elf")])
def test_cli_panic(panic, variant, fname):
    d = panic[variant]
    r = cli("bt", "--panic", "-M", d.path(fname))
    if not (pykvm.has("notes") and pykvm.has("symbols")):
        assert r.returncode == 2 and "not available with the native libkvm" in r.stderr
        return
    assert r.returncode == 0, r.stderr
    console = d.console_panic_trace()
    lines = [ln.strip() for ln in r.stdout.splitlines()]
    text = [f"{n}+{o:#x}/{s:#x}" for n, o, s, _ in console[1:]]
    assert any(ln.endswith(text[0]) for ln in lines)
    r = cli("bt", "--panic", "--json", "-M", d.path(fname))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    bt = out[0] if isinstance(out, list) else out
    assert (bt["cpu"], bt["pid"], bt["comm"]) == d.console_panic_task()
    names = [f["function"] for f in bt["frames"]]
    assert names[names.index("panic"):] == [c[0] for c in console]
    assert all(set(f) == {"address", "function", "offset", "module"} for f in bt["frames"])
