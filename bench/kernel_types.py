"""Kernel types: first type question, a member read through an Object against
a raw read_u32, and walking every task for pid + comm against drgn with
DWARF types (Debian's linux-image-<abi>-amd64-dbg vmlinux, fetched once into
the cache by apt-get download).

    python3 bench/kernel_types.py [--no-drgn]

Ratios are in one run, on the same dump (the kaslr-256M ELF vmcore).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pykvm  # noqa: E402

CACHE = Path(os.environ.get("PYKVM_CACHE") or Path.home() / ".cache" / "pykvm")
TARGETS = {"first_type_ms": 50.0, "member_vs_read_u32": 2.0, "walk_vs_drgn": 10.0}


def dump() -> tuple:
    d = (CACHE / "dumps" / "current" / "kaslr-256M").resolve()
    import json
    return d / "vmcore.elf", json.loads((d / "truth.json").read_text())["abi"]


def debug_vmlinux(abi: str) -> Path:
    """The DWARF vmlinux of the fixture kernel, from Debian's -dbg package (cached)."""
    dest = CACHE / "debuginfo" / f"vmlinux-{abi}"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    pkg = f"linux-image-{abi}-dbg"
    debs = list(dest.parent.glob(f"{pkg}_*.deb"))
    if not debs:
        print(f"downloading {pkg} (about 850 MB, once)", flush=True)
        subprocess.run(["apt-get", "download", "-q", pkg], cwd=dest.parent, check=True)
        debs = list(dest.parent.glob(f"{pkg}_*.deb"))
    want = f"./usr/lib/debug/boot/vmlinux-{abi}"
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
        for m in tar:
            if m.name == want:
                with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as out:
                    src = tar.extractfile(m)
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                os.replace(out.name, dest)
                break
    p.stdout.close()
    p.wait()
    if not dest.is_file():
        raise RuntimeError(f"{debs[0]} has no {want}")
    return dest


def best(fn, reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def first_type(core: Path) -> float:
    def once():
        with pykvm.open(None, core) as k:
            k.read(k.symbol("init_task"), 8)  # the open and the symbols, not timed below
            t = time.perf_counter()
            k.type("struct task_struct").member("pid")
            once.dt = time.perf_counter() - t
    ts = []
    for _ in range(5):
        once()
        ts.append(once.dt)
    return min(ts) * 1000


def member_vs_raw(core: Path, n: int = 200_000, passes: int = 15) -> tuple:
    """ns per call of int(task.pid), task.member_reader('pid')() and
    read_u32 of the same address: the thread's CPU time (a busy machine that
    deschedules us does not count) of whole passes, the three taking turns
    pass by pass, GC off; the median pass of each."""
    import gc
    import statistics
    with pykvm.open(None, core) as k:
        task = k.object("init_task")
        addr = task.pid.address
        r32 = k.read_u32
        pid = task.member_reader("pid")
        assert pid() == int(task.pid) == r32(addr)
        fns = {"obj": lambda: [int(task.pid) for _ in range(n)],
               "reader": lambda: [pid() for _ in range(n)],
               "raw": lambda: [r32(addr) for _ in range(n)]}
        times: dict = {name: [] for name in fns}
        gc.disable()
        try:
            for _ in range(passes):
                for name, fn in fns.items():
                    t = time.thread_time_ns()
                    fn()
                    times[name].append(time.thread_time_ns() - t)
        finally:
            gc.enable()
        med = {name: statistics.median(ts) / n for name, ts in times.items()}
    return med["obj"], med["reader"], med["raw"]


def walk_pykvm(core: Path) -> tuple:
    with pykvm.open(None, core) as k:
        k.type("struct task_struct")  # types loaded: the walk is timed

        def walk():
            out = []
            for t in k.list_for_each_entry("struct task_struct", k.object("init_task").tasks, "tasks"):
                out.append((int(t.pid), t.comm.string()))
            walk.out = out

        # The same walk with the lookups done once: member_reader for pid,
        # the comm array's offset and size for one read.
        pid = k.member_reader("struct task_struct", "pid")
        comm_off = k.offsetof("struct task_struct", "comm")
        comm_len = k.sizeof("char [16]")
        tasks_off = k.offsetof("struct task_struct", "tasks")
        head = k.symbol("init_task") + tasks_off
        rd = k.read

        def walk_readers():
            out = []
            for node in k.list_for_each(head):
                t = node - tasks_off
                out.append((pid(t), rd(t + comm_off, comm_len).split(b"\0", 1)[0].decode()))
            walk_readers.out = out
        t_obj = best(walk)
        t_rd = best(walk_readers)
        assert walk.out == walk_readers.out
        return t_obj, t_rd, walk.out


def walk_drgn(core: Path, vmlinux: Path) -> tuple:
    import drgn
    from drgn.helpers.linux.pid import for_each_task
    prog = drgn.Program()
    prog.set_core_dump(str(core))
    prog.load_debug_info([str(vmlinux)])
    prog.type("struct task_struct")

    def walk():
        walk.out = [(t.pid.value_(), t.comm.string_().decode()) for t in for_each_task(prog)]
    return best(walk), walk.out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-drgn", action="store_true", help="skip the drgn walk (no -dbg download)")
    args = ap.parse_args(argv)
    core, abi = dump()
    rows = []
    ms = first_type(core)
    rows.append(("first type question (BTF read + parse + index)", f"{ms:.1f} ms",
                 ms <= TARGETS["first_type_ms"], f"<= {TARGETS['first_type_ms']:.0f} ms"))
    obj_ns, reader_ns, raw_ns = member_vs_raw(core)
    ratio = obj_ns / raw_ns
    rows.append(("int(task.pid) (a member through an Object) vs read_u32 of the same address",
                 f"{obj_ns:.0f} ns vs {raw_ns:.0f} ns = {ratio:.2f}x",
                 ratio <= TARGETS["member_vs_read_u32"], "<= 2x"))
    rows.append(("task.member_reader('pid')() vs read_u32",
                 f"{reader_ns:.0f} ns vs {raw_ns:.0f} ns = {reader_ns / raw_ns:.2f}x", None, "(info)"))
    pk_obj, pk_s, pk_out = walk_pykvm(core)
    if not args.no_drgn:
        dg_s, dg_out = walk_drgn(core, debug_vmlinux(abi))
        assert sorted(pk_out) == sorted(dg_out[1:] if dg_out and dg_out[0][0] == 0 else dg_out), \
            "pykvm and drgn walked different tasks"
        speed = dg_s / pk_s
        rows.append((f"walk {len(pk_out)} tasks, pid + comm: pykvm readers vs drgn (DWARF)",
                     f"{pk_s * 1e3:.2f} ms vs {dg_s * 1e3:.2f} ms = {speed:.1f}x faster",
                     speed >= TARGETS["walk_vs_drgn"], ">= 10x"))
        rows.append(("the same walk through Objects (t.pid, t.comm) vs drgn",
                     f"{pk_obj * 1e3:.2f} ms vs {dg_s * 1e3:.2f} ms = {dg_s / pk_obj:.1f}x faster",
                     None, "(info)"))
    else:
        rows.append((f"walk {len(pk_out)} tasks, pid + comm (pykvm)", f"{pk_s * 1e3:.2f} ms",
                     None, "drgn skipped"))
    for what, value, met, target in rows:
        mark = "n/a" if met is None else ("met" if met else "NOT met")
        print(f"{what:55} {value:40} {target:>10} {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
