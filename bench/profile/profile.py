"""Profile the read hot path: callgrind instruction counts (and perf samples
where perf works), summarised per read.  Findings go in bench/PROFILE.md.

    python3 bench/profile/profile.py [--no-perf]

C layer: driver.c is built from csrc/*.c with the extension's flags and
run under `valgrind --tool=callgrind --toggle-collect=run_passes`, so only
the timed passes are counted.  Python layer: pyloop.py runs under callgrind
twice, with 0 and with K passes over the same list; the difference, divided
by the number of reads, is the cost of one read with interpreter start-up,
imports and open taken out.  Work files go to $PYKVM_CACHE/bench/profile.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from array import array
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(ROOT))

import cases  # noqa: E402

OUT = cases.CACHE / "bench" / "profile"
CFLAGS = ["-O3", "-g", "-fwrapv", "-DNDEBUG", "-std=c99", "-D_POSIX_C_SOURCE=200809L"]
CODECS = [("HAVE_ZLIB", "z"), ("HAVE_LZO", "lzo2"), ("HAVE_SNAPPY", "snappy"), ("HAVE_ZSTD", "zstd")]


def build_driver() -> Path:
    """driver.c + csrc/*.c (the shim, as the extension builds it: -O3 like
    the CPython build flags setuptools uses), with every codec that links."""
    sys.path.insert(0, str(ROOT / "pykvm"))
    import _build  # pykvm/_build.py: its codec probe, so the driver has the same codecs
    macros, libs = _build.codec_flags()
    srcs = sorted(str(p) for p in (ROOT / "csrc").glob("*.c")
                  if p.name not in ("pykvm_native.c", "pykvm_glue.c"))
    exe = OUT / "driver"
    cmd = ["cc", *CFLAGS, *[f"-D{m}={v}" for m, v in macros], f"-I{ROOT / 'csrc'}",
           str(HERE / "driver.c"), *srcs, "-o", str(exe), *[f"-l{l}" for l in libs], "-lpthread"]
    subprocess.run(cmd, check=True)
    return exe


# ---- callgrind output: self cost per function ----

def callgrind_self(path: Path) -> Tuple[int, Dict[str, int]]:
    """(total, {function: self instructions}) from a callgrind.out file,
    parsed directly (name compression, call lines skipped for self cost)."""
    names: Dict[str, str] = {}
    self_cost: Dict[str, int] = defaultdict(int)
    fn = "?"
    skip_next = False
    total = 0
    name_re = re.compile(r"\((\d+)\)(?: (.*))?")
    for line in path.read_text(errors="replace").splitlines():
        if not line:
            continue
        if line.startswith("fn="):
            m = name_re.match(line[3:])
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                fn = names.get(m.group(1), m.group(1))
            else:
                fn = line[3:]
            continue
        if line.startswith("cfn="):
            m = name_re.match(line[4:])
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            continue
        if line.startswith("calls="):
            skip_next = True
            continue
        c = line[0]
        if c.isdigit() or c in "+-*":
            parts = line.split()
            if len(parts) >= 2:
                cost = int(parts[-1]) if parts[-1].isdigit() else 0
                if skip_next:
                    skip_next = False
                else:
                    self_cost[fn] += cost
                    total += cost
            continue
        if line.startswith("summary:") or line.startswith("totals:"):
            continue
    return total, dict(self_cost)


def callgrind(cmd: List[str], out: Path, extra: List[str]) -> Path:
    for old in out.parent.glob(out.name + "*"):
        old.unlink()
    full = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *extra, *cmd]
    subprocess.run(full, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def top(costs: Dict[str, int], per: float, n: int = 14) -> List[str]:
    total = sum(costs.values())
    lines = [f"    {total / per:10.0f} instructions per read (100%)"]
    for name, c in sorted(costs.items(), key=lambda kv: -kv[1])[:n]:
        if c <= 0:
            break
        lines.append(f"    {c / per:10.1f}  {100 * c / total:5.1f}%  {name}")
    return lines


def perf_report(cmd: List[str], out: Path) -> List[str]:
    """Sampled time by symbol (cpu-clock: the hardware counters are not
    available in this VM)."""
    data = out.with_suffix(".perf")
    for old in (data, data.with_suffix(".perf.old")):
        if old.exists():
            old.unlink()
    r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "5000", "-o", str(data),
                        "--", *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        return [f"    perf record failed: {r.stderr.strip()[-200:]}"]
    rep = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "symbol",
                          "--percent-limit", "2"], capture_output=True, text=True)
    rows = [l for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
    return ["    " + l.strip() for l in rows[:12]]


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-perf", action="store_true")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    OUT.mkdir(parents=True, exist_ok=True)
    ctx = cases.Context(quick=True)
    d = cases.dump(ctx, cases.SMALL_VARIANT)
    addrs = cases.small_addresses(ctx)[:2000]
    warm_file = OUT / "addrs.u64"
    warm_file.write_bytes(array("Q", addrs).tobytes())
    cold_file = OUT / "addrs-cold.u64"
    cold_file.write_bytes(array("Q", cases.first_per_page(addrs)).tobytes())
    exe = build_driver()
    py = sys.executable
    report: List[str] = []
    perf_ok = not args.no_perf and shutil.which("perf") is not None

    # C layer.
    c_runs = [
        ("C kvm_read2 8 B, ELF", "vmcore.elf", warm_file, 8, 20, ""),
        ("C kvm_read2 8 B, mdf-zlib warm", "vmcore.mdf-zlib", warm_file, 8, 20, ""),
        ("C kvm_read2 8 B, mdf-lzo warm", "vmcore.mdf-lzo", warm_file, 8, 20, ""),
        ("C kvm_read2 8 B, mdf-zlib cold (first touch of each page)", "vmcore.mdf-zlib", cold_file, 8, 1, "cold"),
        ("C kvm_read2 8 B, mdf-lzo cold (first touch of each page)", "vmcore.mdf-lzo", cold_file, 8, 1, "cold"),
    ]
    for title, fmt, afile, size, passes, mode in c_runs:
        cmd = [str(exe), d.path(fmt), d.kallsyms, str(afile), str(size), str(passes)] + ([mode] if mode else [])
        native = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        n = len(array("Q", afile.read_bytes()))
        out = callgrind(cmd, OUT / f"cg.c.{fmt}.{mode or 'warm'}", ["--toggle-collect=run_passes"])
        total, costs = callgrind_self(out)
        report += [f"{title}", f"  native: {native}", "  callgrind (self instructions per read):"]
        report += top(costs, n * passes)
        if perf_ok and not mode:
            long_cmd = cmd[:-1] + ["3000"]  # enough passes that open is noise
            report += ["  perf (cpu-clock samples, 3000 passes; whole process):"] + perf_report(long_cmd, out)
        report.append("")

    # Python layer.
    k = 5
    py_runs = [
        ("Python floor mm[o:o+8], ELF (offsets precomputed)", "vmcore.elf", "slice"),
        ("Python kd.read(a, 8), ELF", "vmcore.elf", "read"),
        ("Python kd.readinto(a, buf8), ELF", "vmcore.elf", "readinto"),
        ("Python kd.read(a, 8), mdf-zlib warm", "vmcore.mdf-zlib", "read"),
        ("Python kd.read_many(addrs, 8), mdf-zlib warm", "vmcore.mdf-zlib", "read_many"),
        ("Python kd.read_many(addrs, 8), ELF", "vmcore.elf", "read_many"),
        ("Python kd.read_scatter([(a, 8), ...]), ELF", "vmcore.elf", "read_scatter"),
    ]
    for title, fmt, api in py_runs:
        base = [py, str(HERE / "pyloop.py"), d.path(fmt), d.kallsyms, str(warm_file), "8"]
        _, c0 = callgrind_self(callgrind(base + ["0", api], OUT / f"cg.py.{fmt}.{api}.0", []))
        _, ck = callgrind_self(callgrind(base + [str(k), api], OUT / f"cg.py.{fmt}.{api}.k", []))
        diff = {f: ck.get(f, 0) - c0.get(f, 0) for f in set(ck) | set(c0)}
        report += [f"{title}", f"  callgrind ({k} passes minus 0 passes; self instructions per read):"]
        report += top(diff, k * len(addrs), 16)
        if perf_ok:
            report += ["  perf (cpu-clock samples, 300 passes; whole process):"]
            report += perf_report(base + ["300", api], OUT / f"cg.py.{fmt}.{api}")
        report.append("")
    text = "\n".join(report)
    print(text)
    (OUT / "summary.txt").write_text(text)
    print(f"\nwrote {OUT / 'summary.txt'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
