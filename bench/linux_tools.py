"""Kernel tools from a dump: pykvm's dmesg, ps, lsmod, sys, bt against makedumpfile.

    python3 bench/linux_tools.py [--passes N] [--write]

Whole commands (a fresh process each, as a user runs them): `pykvm dmesg` against
`makedumpfile --dump-dmesg` on the same dump.  In-process, after open: ps of every task and
bt --panic (targets 20 ms and 10 ms).  crash and drgn are not in the table: both need a
debuginfo vmlinux for everything but crash's `log`, and these dumps come without one.
Prints a Markdown table (the median of N passes per figure); --write also writes it to
bench/LINUX_TOOLS.md (make bench runs it so).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pykvm  # noqa: E402
from pykvm import linux  # noqa: E402
from pykvm.linux import modules, stack, sysinfo, tasks  # noqa: E402

CACHE = Path(os.environ.get("PYKVM_CACHE") or Path.home() / ".cache" / "pykvm")
DUMPS = [("kdump", "vmcore.mdf-lzo"), ("kdump", "vmcore.elf"), ("qemu-panic", "vmcore.mdf-lzo"),
         ("softdog", "vmcore.mdf-lzo")]
PS_TARGET_MS, BT_TARGET_MS = 20.0, 10.0


def median_ms(fn, passes: int) -> float:
    fn()  # warm-up (page cache, imports)
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def run(argv, **kw):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=7)
    ap.add_argument("--write", action="store_true", help="also write bench/LINUX_TOOLS.md")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows = []
    for variant, fname in DUMPS:
        path = str(CACHE / "panic" / "current" / variant / fname)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "dmesg.txt"

            def mdf():
                out.unlink(missing_ok=True)
                run(["makedumpfile", "--dump-dmesg", path, str(out)])
            src = path
            if variant != "kdump" and fname.endswith(".elf"):
                continue  # makedumpfile reads QEMU's ELF only rewritten
            t_mdf = median_ms(mdf, args.passes)
        t_py = median_ms(lambda: run([sys.executable, "-m", "pykvm", "dmesg", "-M", src],
                                     env=env), args.passes)
        with pykvm.open(None, path) as kd:
            linux.dmesg(kd)
            t_dmesg_in = median_ms(lambda: linux.dmesg(kd), args.passes)

        def ps_fresh():
            with pykvm.open(None, path) as k:
                t = time.perf_counter()
                tasks.ps(k)
                return (time.perf_counter() - t) * 1e3

        def bt_fresh():
            with pykvm.open(None, path) as k:
                t = time.perf_counter()
                stack.panic_backtrace(k, tasks.task_on_cpu_function(k))
                return (time.perf_counter() - t) * 1e3

        def lsmod_fresh():
            with pykvm.open(None, path) as k:
                t = time.perf_counter()
                modules.lsmod(k)
                return (time.perf_counter() - t) * 1e3

        def sys_fresh():
            with pykvm.open(None, path) as k:
                t = time.perf_counter()
                sysinfo.sysinfo(k)
                return (time.perf_counter() - t) * 1e3
        ps_ms = statistics.median(ps_fresh() for _ in range(args.passes))
        bt_ms = statistics.median(bt_fresh() for _ in range(args.passes))
        lsmod_ms = statistics.median(lsmod_fresh() for _ in range(args.passes))
        sys_ms = statistics.median(sys_fresh() for _ in range(args.passes))
        rows.append((f"{variant}/{fname}", t_mdf, t_py, t_dmesg_in, ps_ms, bt_ms, lsmod_ms,
                     sys_ms))
    lines = [
        "# pykvm kernel tools: timings",
        "",
        "Written by `make bench` (bench/linux_tools.py); the panic dumps of "
        "fixtures/kernel/make_panic.py.",
        "",
        "| dump | makedumpfile --dump-dmesg (command) | pykvm dmesg (command) | "
        "dmesg in-process | ps after open | bt --panic after open | lsmod after open | "
        "sys after open |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | " + " | ".join(f"{x:.1f} ms" for x in r[1:]) + " |")
    met = [f"dmesg ≤ makedumpfile: {sum(r[2] <= r[1] for r in rows)} of {len(rows)}",
           f"ps ≤ {PS_TARGET_MS:.0f} ms: {sum(r[4] <= PS_TARGET_MS for r in rows)} of {len(rows)}",
           f"bt --panic ≤ {BT_TARGET_MS:.0f} ms: {sum(r[5] <= BT_TARGET_MS for r in rows)} "
           f"of {len(rows)}"]
    lines += ["", f"median of {args.passes} passes; targets met: " + "; ".join(met) + "."]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.write:
        (ROOT / "bench" / "LINUX_TOOLS.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
