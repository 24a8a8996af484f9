"""Shared pieces of the benchmark: result rows, timing, the fixture dumps,
the address lists and the bare read loops.  The workloads are in cases.py.

Every timing is the median of `reps` timed runs after `warmup` untimed ones,
with the garbage collector off; a run is one pass over a fixed list (fixed
seeds), the same list for every reader.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import readers
from readers import CoreMap, Handle, Unavailable

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PYKVM_CACHE", Path.home() / ".cache" / "pykvm"))
DUMPS = CACHE / "dumps" / "current"
MiB = 1 << 20

SMALL_VARIANT = "kaslr-96M"
MEMORY_VARIANT = "kaslr-256M"
COMPRESSED = ["vmcore.mdf-zlib", "vmcore.mdf-lzo"]


# ---------------------------------------------------------------- results

@dataclass
class Row:
    section: str
    label: str
    value: Optional[float]  # None: did not run (note says why)
    unit: str
    note: str = ""


@dataclass
class Target:
    name: str
    want: str  # the threshold, in words
    got: str  # what was measured, in words
    met: Optional[bool]  # None: could not be measured
    score: Optional[float] = None  # measured ÷ required, ≥ 1 when met (for the chart)
    earlier: bool = False  # a target of an earlier round, kept as a regression check


@dataclass
class Context:
    quick: bool = False
    reps: int = 7
    cache: Dict[str, object] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], object]):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


# ---------------------------------------------------------------- timing

# The clock of every single-threaded pass: this thread's CPU time
# (CLOCK_THREAD_CPUTIME_ID, user + system), which a busy machine does not
# inflate by descheduling us, as it does wall time.  The passes read files
# that are in the OS cache, so they wait for nothing but the CPU.  The
# thread-scaling case is timed by the wall clock (it must be).
# `run.py --clock wall` times the passes by the wall clock instead.
CLOCKS = {"cpu": time.thread_time_ns, "wall": time.perf_counter_ns}
CLOCK_NAME = "cpu"


def clock() -> int:
    return CLOCKS[CLOCK_NAME]()


def set_clock(name: str) -> None:
    global CLOCK_NAME
    if name not in CLOCKS:
        raise ValueError(f"clock: one of {', '.join(CLOCKS)}")
    CLOCK_NAME = name

def timings(fn: Callable[[], object], reps: int, warmup: int = 1) -> List[int]:
    """Nanoseconds of each of reps calls of fn, after warmup calls, GC off."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(warmup):
            fn()
        out = []
        for _ in range(reps):
            t0 = clock()
            fn()
            out.append(clock() - t0)
        return out
    finally:
        gc.enable()


def interleaved(fns: Dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> Dict[str, float]:
    """Median ns of each fn over reps rounds; every round runs each fn once,
    in turn, so a slow spell of the machine hits every reader alike."""
    times: Dict[str, List[int]] = {k: [] for k in fns}
    gc.collect()
    gc.disable()
    try:
        for _ in range(warmup):
            for f in fns.values():
                f()
        for _ in range(reps):
            for k, f in fns.items():
                t0 = clock()
                f()
                times[k].append(clock() - t0)
    finally:
        gc.enable()
    return {k: statistics.median(v) for k, v in times.items()}


def error_text(e: BaseException) -> str:
    if isinstance(e, Unavailable):
        return f"n/a: {e}"
    return f"error: {type(e).__name__}: {e}"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def score(have: Optional[float], need: Optional[float]) -> Optional[float]:
    """How many times the requirement is met: have / need (≥ 1 is met)."""
    return have / need if have is not None and need else None


def fmt_ratio(r: Optional[float]) -> str:
    return "n/a" if r is None else f"{r:.2f}×"


# ---------------------------------------------------------------- the dumps

class Dump:
    """One fixture variant: dumps/current/<variant>/{vmcore.*, kallsyms.txt, truth.json}."""

    def __init__(self, variant: str):
        self.variant = variant
        self.root = (DUMPS / variant).resolve()
        if not (self.root / "truth.json").exists():
            raise SystemExit(f"no fixture dumps in {self.root}: run `make fixtures`")
        self.truth = json.loads((self.root / "truth.json").read_text())
        self.kallsyms = str(self.root / "kallsyms.txt")
        self.syms: List[Tuple[int, str, str]] = []  # (address, letter, name), no modules
        with open(self.kallsyms) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    self.syms.append((int(parts[0], 16), parts[1], parts[2]))
        self.by_name = {name: addr for addr, _, name in reversed(self.syms)}

    def path(self, fmt: str) -> str:
        return str(self.root / fmt)

    def ram_ranges(self) -> List[Tuple[int, int]]:
        """Top-level 'System RAM' ranges of the guest's /proc/iomem, [start, end)."""
        out = []
        for line in (self.root / "iomem.txt").read_text().splitlines():
            if not line.startswith(" ") and line.endswith(": System RAM"):
                lo, hi = line.split(" : ")[0].split("-")
                out.append((int(lo, 16), int(hi, 16) + 1))
        return out


def dump(ctx: Context, variant: str) -> Dump:
    return ctx.once(f"dump:{variant}", lambda: Dump(variant))  # type: ignore[return-value]


def readable(prog, addrs: Sequence[int], size: int) -> List[bool]:
    ok = []
    for a in addrs:
        try:
            prog.read(a, size)
            ok.append(True)
        except Exception:
            ok.append(False)
    return ok


def small_addresses(ctx: Context) -> List[int]:
    """N random kernel text/data symbol addresses (kallsyms types TtDdBbRr,
    kernel image only), each readable by drgn in the ELF and both
    makedumpfile dumps; with replacement, seed 1."""
    def make():
        d = dump(ctx, SMALL_VARIANT)
        pool = [a for a, t, _ in d.syms if t in "TtDdBbRr" and a >= 0xffffffff80000000]
        rng = random.Random(1)
        n = 5000 if ctx.quick else 20000
        cand = [rng.choice(pool) for _ in range(n + n // 4)]
        keep = [True] * len(cand)
        for fmt in ["vmcore.elf"] + COMPRESSED:
            h = readers.open_drgn(d.path(fmt))
            keep = [k and r for k, r in zip(keep, readable(h.obj, cand, 8))]
        out = [a for a, k in zip(cand, keep) if k][:n]
        if len(out) < n:
            raise RuntimeError(f"only {len(out)} of {n} symbol addresses are readable")
        return out
    return ctx.once("small_addrs", make)  # type: ignore[return-value]


def first_per_page(addrs: Sequence[int]) -> List[int]:
    seen, out = set(), []
    for a in addrs:
        if a >> 12 not in seen:
            seen.add(a >> 12)
            out.append(a)
    return out


def digest_reads(read: Callable, addrs: Sequence[int], size: int) -> str:
    h = hashlib.sha256()
    for a in addrs:
        h.update(bytes(read(a, size)))
    return h.hexdigest()


def check(h: Handle, addrs: Sequence[int], size: int, reference: str) -> str:
    """'' when h reads the reference bytes, else a note for the table."""
    got = digest_reads(h.read, addrs, size)
    return "" if got == reference else "BYTES DIFFER from drgn"


def drgn_u64(d: Dump, fmt: str, name: str) -> int:
    h = readers.open_drgn(d.path(fmt))
    return int.from_bytes(h.obj.read(d.by_name[name], 8), "little")


# The loops.  One call per read, the callable bound once, nothing else.

def loop_read(read: Callable, addrs: Sequence[int], size: int) -> None:
    for a in addrs:
        read(a, size)


def loop_readinto(readinto: Callable, addrs: Sequence[int], buf) -> None:
    for a in addrs:
        readinto(a, buf)


def loop_slice(mm, offs: Sequence[int], size: int) -> None:
    for o in offs:
        mm[o:o + size]


def loop_pread(fd: int, offs: Sequence[int], size: int) -> None:
    pread = os.pread
    for o in offs:
        pread(fd, size, o)


def floor_offsets(cm: CoreMap, kd, addrs: Sequence[int], size: int) -> List[int]:
    """File offsets of addrs in an ELF dump: pykvm translates, our own
    PT_LOAD table places (and the floor's bytes are checked against drgn's)."""
    return [cm.offset(kd.physaddr(a), size) for a in addrs]


