#!/usr/bin/env python3
"""A coverage-guided fuzz target (atheris) for the kernel tools' walks in pykvm.linux.

    python3 fuzz/walks.py [libFuzzer flags] [CORPUS_DIR | INPUT ...]   # fuzz (atheris)
    python3 fuzz/walks.py --replay INPUT|DIR ...                      # each input once

An input is an ELF vmcore (fuzz/seeds/walks/ holds one cut from a real dump by
make_seeds.py: the notes, the page-table entries and the bytes the tools read).  Each one
is opened with the fixed namelist fuzz/walks.kallsyms and the kernel's BTF cut from the
same dump (build/fuzz/walks.btf, made by `make fuzz-walks-build`; PYKVM_WALKS_BTF= names
another), then run() gives it to ps (with the idle tasks), lsmod, dmesg, sys, bt --panic
and bt of the first tasks, and every result is formatted as the command line would.

A finding is anything but what the tools promise on bad input: a KvmError (each step's is
caught, the next step runs) or an error reported in place of an item.  Any other
exception, a hang (-timeout), or memory past -rss_limit_mb is a crash.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
NAMELIST = ROOT / "fuzz" / "walks.kallsyms"
BTF = Path(os.environ.get("PYKVM_WALKS_BTF") or ROOT / "build" / "fuzz" / "walks.btf")
BT_TASKS = 8        # tasks whose backtraces are taken (the first ones ps lists)
REPLAY_TIMEOUT = 20  # seconds an input may take in --replay (libFuzzer's -timeout otherwise)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run(kd: Any, bt_tasks: int = BT_TASKS) -> List[Tuple[str, Any]]:
    """ps --idle, lsmod, dmesg, sys, bt --panic and bt of the first bt_tasks tasks, through
    the functions the commands call: (step, result or "ErrorClass: message") for each.
    make_seeds.py runs it on the full dump and on the cut one: the same results say the
    seed holds everything the walks read."""
    from pykvm.errors import KvmError
    from pykvm.linux import modules, printk, stack, sysinfo, tasks
    out: List[Tuple[str, Any]] = []

    def step(name: str, f: Any) -> None:
        try:
            out.append((name, f()))
        except KvmError as e:
            out.append((name, f"{type(e).__name__}: {e}"))

    ts: List[Any] = []

    def ps() -> Any:
        ts.extend(tasks.tasks(kd, idle=True))
        return [tuple(t) for t in ts]

    step("ps", ps)
    step("lsmod", lambda: [m.as_json() for m in modules.lsmod(kd)])
    step("dmesg", lambda: printk.format_makedumpfile(printk.iter_records(kd, levels=True)))
    step("sys", lambda: sysinfo.sysinfo(kd, tasks=tasks.pid_on_cpu_function(kd)))
    step("bt --panic", lambda: stack.panic_backtrace(kd, tasks.task_on_cpu_function(kd)).as_json())
    for t in ts[:bt_tasks]:
        if t.error is None:
            step(f"bt {t.task:#x}", lambda t=t: stack.task_backtrace(kd, t).as_json())
    return out


def consume(kd: Any, result: List[Tuple[str, Any]]) -> None:
    """Format what run() gave as the commands print it (text and --json)."""
    from pykvm.linux import modules, stack, tasks
    json.dumps(result)
    for t in tasks.tasks(kd)[:4]:
        f"{t.pid:>7} {t.ppid} {t.cpu} {t.task:16x} {t.state:2} {t.comm}"
        json.dumps(t.as_json())
    for m in modules.lsmod(kd):
        if m.error is None and m.address is not None:
            m.proc_line()
    for name, r in result:
        if name.startswith("bt") and isinstance(r, dict):
            for f in r["frames"]:
                stack.symbolizer(kd).lookup(f["address"]).text()


class _Input:
    """The input as a file: one memfd, rewritten for each input."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("walks-input")
        self.path = f"/proc/self/fd/{self.fd}"

    def put(self, data: bytes) -> str:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        return self.path


def one_input(inp: _Input, data: bytes) -> None:
    import pykvm
    from pykvm.errors import KvmError
    try:
        kd = pykvm.open(str(NAMELIST), inp.put(data), btf=str(BTF))
    except KvmError:
        return
    with kd:
        consume(kd, run(kd))


def _check_files() -> None:
    for what, p in (("namelist", NAMELIST), ("BTF", BTF)):
        if not p.is_file():
            sys.exit(f"fuzz/walks.py: no {what} {p} (make fuzz-walks-build makes the BTF from "
                     "the fixtures' panic dump; make fixtures first)")


def replay(paths: List[str]) -> int:
    """Each input once, in plain Python; 1 when any of them is a finding."""
    import traceback
    _check_files()
    inp = _Input()
    files = [f for p in paths for f in (sorted(Path(p).iterdir()) if Path(p).is_dir() else [Path(p)])]

    def alarm(*_: Any) -> None:
        raise TimeoutError(f"more than {REPLAY_TIMEOUT} s")

    signal.signal(signal.SIGALRM, alarm)
    bad = 0
    for f in files:
        signal.alarm(REPLAY_TIMEOUT)
        try:
            one_input(inp, f.read_bytes())
        except BaseException:
            bad += 1
            print(f"FINDING {f}:", file=sys.stderr)
            traceback.print_exc()
        finally:
            signal.alarm(0)
    print(f"walks: {len(files)} inputs, {bad} findings")
    return 1 if bad else 0


def main() -> int:
    if sys.argv[1:2] == ["--replay"]:
        return replay(sys.argv[2:])
    import atheris
    _check_files()
    with atheris.instrument_imports(include=["pykvm"]):
        import pykvm  # noqa: F401
        import pykvm.linux.modsyms  # noqa: F401
        import pykvm.linux.modules  # noqa: F401
        import pykvm.linux.printk  # noqa: F401
        import pykvm.linux.stack  # noqa: F401
        import pykvm.linux.sysinfo  # noqa: F401
        import pykvm.linux.tasks  # noqa: F401
    inp = _Input()
    atheris.Setup(sys.argv, lambda data: one_input(inp, data))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
