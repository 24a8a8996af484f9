"""pykvm benchmarks: pykvm, drgn, libkdumpfile and the floors in one run.

    python3 bench/run.py [--quick] [--only small_elf,bulk,...] [--no-write]

`make bench` builds pykvm and the fixture dumps first, then runs this.  It
prints the targets (met / not met) and every measurement, and writes both
to bench/RESULTS.md.  Workloads are in cases.py, reader adapters in
readers.py, the memory probe in memchild.py.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # pykvm, built in place by `make build`
sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import readers  # noqa: E402
from cases import Row, Target  # noqa: E402

MEMBER_TARGET = "Member reads through typed objects vs read_u32"


def typed_cases() -> dict:
    """The typed objects' cases from bench/types.py, when it exists: its CASES
    dict (name -> case(ctx) -> (rows, targets)), one of which reports the
    target named MEMBER_TARGET.  Loaded by path: "types" is a stdlib name."""
    path = HERE / "types.py"
    if not path.exists():
        return {}
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_types", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return dict(getattr(mod, "CASES", {}))


cases.CASES.update(typed_cases())


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "csrc", "pykvm"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + (" + uncommitted changes in csrc/ or pykvm/" if dirty else "")
    except OSError:
        return "?"


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


class OtherCpu:
    """CPU time the rest of the machine used while we ran: busy time from
    /proc/stat less our own (and our children's) CPU time, in cores."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.time(), self.busy(), self.own()

    @staticmethod
    def busy() -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]  # idle + iowait
        return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def cores(self) -> float:
        wall = time.time() - self.t0
        other = (self.busy() - self.busy0) - (self.own() - self.own0)
        return max(0.0, other / wall) if wall > 0 else 0.0


def wait_idle(limit: float) -> str:
    """Wait (up to limit seconds) for 3 s in which other work uses < 0.2 cores."""
    said = False
    deadline = time.time() + limit
    while True:
        probe = OtherCpu()
        time.sleep(3)
        used = probe.cores()
        if used < 0.2 or time.time() >= deadline:
            return f"{used:.2f} cores busy elsewhere in the 3 s before the run"
        if not said:
            print(f"[bench] waiting for the machine: {used:.2f} cores busy elsewhere", file=sys.stderr)
            said = True


def value_text(r: Row) -> str:
    if r.value is None:
        return "—"
    v = r.value
    return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def ratio_text(r: Row, first: Optional[Row]) -> str:
    if r.value is None or first is None or first.value in (None, 0) or r is first or r.unit == "×":
        return ""
    return f"{r.value / first.value:.2f}"


CHART = "targets.png"


def chart(targets: List[Target], path: Path, title: str) -> bool:
    """The target table as a picture: one bar per target, measured ÷ required
    (≥ 1 is met), on a log scale.  matplotlib is a bench-only dependency;
    without it there is no chart (and the table says so)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [t for t in targets if not t.earlier and t.score is not None and t.score > 0]
    if not shown:
        return False
    fig, ax = plt.subplots(figsize=(10, 0.34 * len(shown) + 1.6))
    names = [t.name for t in shown][::-1]
    scores = [t.score for t in shown][::-1]
    colors = ["#3a923a" if t.met else "#c0392b" for t in shown][::-1]
    ax.barh(names, scores, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("measured ÷ required (log scale; right of the line = met)")
    ax.set_title(title, fontsize=10)
    for y, v in enumerate(scores):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def target_table(targets: List[Target]) -> List[str]:
    out = ["| target | wanted | measured | verdict |", "|---|---|---|---|"]
    for t in targets:
        verdict = {True: "met", False: "**NOT MET**", None: "n/a (did not run)"}[t.met]
        out.append(f"| {t.name} | {t.want} | {t.got} | {verdict} |")
    return out


def clock_words(name: str) -> str:
    if name == "cpu":
        return ("the thread's CPU time (time.thread_time_ns, user + system: a busy machine "
                "that deschedules us does not count; the thread-scaling table is wall time)")
    return "time.perf_counter_ns (wall clock)"


def render(rows: List[Row], targets: List[Target], header: List[str], drawn: bool = False) -> str:
    out = list(header)
    now = [t for t in targets if not t.earlier]
    earlier = [t for t in targets if t.earlier]
    met = sum(t.met is True for t in now)
    out += ["", f"## Targets: {met} of {len(now)} met", ""]
    if drawn:
        out += [f"![measured ÷ required per target]({CHART})", "",
                "Each bar is a target's measured figure over its requirement (green: met, "
                "red: not met); the table below has the numbers.", ""]
    out += target_table(now)
    if earlier:
        out += ["", f"### Earlier targets (regression checks) and info rows: "
                f"{sum(t.met is True for t in earlier)} of {len(earlier)} met", ""]
        out += target_table(earlier)
    out += ["", "## Measurements", "",
            "In each table *ratio* is the row's value divided by the first row's (pykvm's): "
            "for times, how many times pykvm's time; for GB/s, the fraction of pykvm's throughput."]
    section = None
    first: Optional[Row] = None
    for r in rows:
        if r.section != section:
            section, first = r.section, r
            out += ["", f"### {section}", "", f"| reader | {r.unit} | ratio | note |", "|---|---:|---:|---|"]
        out.append(f"| {r.label} | {value_text(r)} | {ratio_text(r, first)} | {r.note} |")
    return "\n".join(out) + "\n"


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller lists and fewer passes (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated cases: " + ",".join(cases.CASES))
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before each case, wait up to SECONDS for other CPU users to go quiet")
    ap.add_argument("--clock", choices=sorted(cases.CLOCKS), default="cpu",
                    help="what times a single-threaded pass: this thread's CPU time (default) "
                         "or the wall clock")
    args = ap.parse_args(argv)
    if args.only == "kernel_types":  # kernel types: its own script (bench/kernel_types.py)
        import kernel_types
        return kernel_types.main([])
    cases.set_clock(args.clock)
    chosen = [c for c in args.only.split(",") if c] or list(cases.CASES)
    unknown = [c for c in chosen if c not in cases.CASES]
    if unknown:
        ap.error(f"unknown case(s): {', '.join(unknown)}")

    ctx = cases.Context(quick=args.quick, reps=3 if args.quick else 7)
    load_start = load()
    if os.getloadavg()[0] > 1.0:
        print(f"warning: load average {load_start} on {os.cpu_count()} CPUs: timings will be noisy",
              file=sys.stderr)
    started = time.time()
    rows: List[Row] = []
    targets: List[Target] = []
    others: List[str] = []
    for name in chosen:
        if args.wait_idle > 0:
            wait_idle(args.wait_idle)
        t0 = time.time()
        probe = OtherCpu()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            r, t = cases.CASES[name](ctx)
        except Exception as e:
            traceback.print_exc()
            r, t = [Row(name, name, None, "", cases.error_text(e))], []
        rows += r
        targets += t
        others.append(f"{name} {probe.cores():.2f}")
        print(f"[bench] {name}: {time.time() - t0:.1f} s ({others[-1].split()[-1]} cores busy elsewhere)",
              file=sys.stderr, flush=True)

    if not any(t.name == MEMBER_TARGET for t in targets):
        targets.append(Target(MEMBER_TARGET, "≤ 2× a raw read_u32",
                              "not measured in this run (bench/types.py's case)", None))

    header = [
        "# pykvm benchmark results",
        "",
        "Written by `make bench` (bench/run.py" + (" --quick" if args.quick else "")
        + (f" --only {','.join(chosen)}" if args.only else "") + "); profile notes in "
        "[PROFILE.md](PROFILE.md).",
        "",
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; run took "
        f"{time.time() - started:.0f} s",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.release()}; "
        f"load average (1/5/15 min) at start {load_start}, at end {load()}"
        + (f"; each case waited (up to {args.wait_idle:.0f} s) for 3 quiet seconds first"
           if args.wait_idle > 0 else ""),
        f"- other processes' CPU use during each case, in cores of {os.cpu_count()} "
        f"(/proc/stat busy time less this run's own): {', '.join(others)}",
        f"- Python {platform.python_version()}; {readers.pykvm_version()} at {git_head()}; "
        f"{readers.drgn_version()}; {readers.kdumpfile_version()}",
        f"- fixtures: {cases.DUMPS} (small reads, bulk, batch, open, threads: "
        f"{cases.SMALL_VARIANT}; memory: {cases.MEMORY_VARIANT})",
        f"- method: {clock_words(args.clock)} around whole passes over a fixed list (seeded), "
        f"after a warm-up pass, GC off; the readers of a table take turns pass by pass "
        f"(interleaved), so a slow spell of the machine hits them alike; each figure is the "
        f"**median** of the passes ({ctx.reps} unless a section says otherwise); ratios are of "
        "medians from this one run. Every reader's bytes are checked against drgn's on the same "
        "list first (a mismatch is noted in the table).",
    ]
    drawn = False
    if not args.no_write:
        drawn = chart(targets, HERE / CHART, f"pykvm targets, {datetime.date.today()} "
                      f"({sum(t.met is True for t in targets if not t.earlier)} of "
                      f"{sum(not t.earlier for t in targets)} met)")
        if not drawn:
            print("no chart: matplotlib is not installed (make bench installs it)", file=sys.stderr)
    text = render(rows, targets, header, drawn)
    print()
    print(text)
    if not args.no_write:
        (HERE / "RESULTS.md").write_text(text)
        print(f"wrote {HERE / 'RESULTS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
