"""Memory images (LiME, AVML, raw): pykvm against Volatility 3 and drgn, same addresses.

    python3 bench/images.py [--reps N] [--write]

Reads the real images of fixtures/kernel/make_images.py (256 MiB KASLR guest) and
times, on one fixed list of 20,000 random 8-byte physical addresses in the guest's
RAM: pykvm on each image, Volatility 3's LimeLayer / AVMLLayer / FileLayer on the
same files, drgn on the ELF vmcore `pykvm convert` writes from the LiME image, and
os.pread on the padded image (the floor).  Also: 8-byte virtual reads of kernel data
(pykvm on the LiME image vs drgn on the converted ELF), the open time, and the
VMCOREINFO scan rate over the whole image.  Medians of --reps runs; --write also
writes bench/IMAGES.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import pykvm  # noqa: E402
from pykvm.vmcore import write_elf_vmcore  # noqa: E402

CACHE = Path(os.environ.get("PYKVM_CACHE", Path.home() / ".cache" / "pykvm"))
D = CACHE / "images" / "current" / "kaslr-256M"
N = 20000


def timed(fn, reps: int) -> float:
    """Median seconds of fn() over reps runs, after one warm-up, GC off."""
    fn()
    out = []
    gc.disable()
    try:
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    finally:
        gc.enable()
    return statistics.median(out)


def vol_layer(path: Path, kind: str):
    from test_memory_images import volatility_layer
    return volatility_layer(str(path), kind)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="also write bench/IMAGES.md")
    args = ap.parse_args()
    import json
    truth = json.loads((D / "truth.json").read_text())
    ram = [(int(a, 16), int(b, 16)) for a, b in truth["ram"]]
    rng = random.Random("images-bench")
    big = max(ram, key=lambda r: r[1] - r[0])
    addrs = [(big[0] + rng.randrange(big[1] - big[0] - 8)) & ~7 for _ in range(N)]
    rows = []

    def row(label, secs, note=""):
        rows.append((label, secs / N * 1e6, note))
        print(f"{label:58} {secs / N * 1e6:8.2f} µs {note}", flush=True)

    # pykvm on each image
    opened = {}
    for name, opts in (("memory.lime", {}), ("memory.avml", {}), ("memory.padded", {"format": "raw"})):
        t = time.perf_counter()
        kd = pykvm.open(None, str(D / name), **opts)
        opened[name] = (kd, time.perf_counter() - t)
        r = kd.read
        row(f"pykvm {name} 8-byte physical reads", timed(lambda: [r(a, 8, physical=True) for a in addrs], args.reps))
    window = [(big[0] + rng.randrange(8 << 20)) & ~7 for _ in range(N)]
    r = opened["memory.avml"][0].read
    row("pykvm memory.avml 8-byte physical reads, warm (8 MiB window)",
        timed(lambda: [r(a, 8, physical=True) for a in window], args.reps))
    kd_avml = pykvm.open(None, str(D / "memory.avml"), cache_pages=16)
    r = kd_avml.read
    cold = [(big[0] + i * 65536 + rng.randrange(65536 - 8)) & ~7 for i in range((big[1] - big[0]) // 65536)]
    t = time.perf_counter()
    for a in cold:
        r(a, 8, physical=True)
    rows.append(("pykvm memory.avml 8-byte reads, cold (each a new 64 KiB chunk)",
                 (time.perf_counter() - t) / len(cold) * 1e6, f"{len(cold)} reads"))
    print(rows[-1])

    # Volatility 3 on the same files
    for name, kind in (("memory.lime", "lime"), ("memory.avml", "avml"), ("memory.padded", "raw")):
        lay = vol_layer(D / name, kind)
        rd = lay.read
        row(f"Volatility 3 {kind} layer, {name}", timed(lambda: [rd(a, 8) for a in addrs], max(1, args.reps // 2)))
        if kind == "avml":
            row("Volatility 3 avml layer, warm (8 MiB window)",
                timed(lambda: [rd(a, 8) for a in window], max(1, args.reps // 2)))

    # drgn on the converted ELF, and pykvm on the same ELF
    import drgn
    with tempfile.TemporaryDirectory(prefix="pykvm-bench-") as tmp:
        elf = Path(tmp) / "lime.elf"
        write_elf_vmcore(opened["memory.lime"][0], str(elf))
        prog = drgn.Program()
        prog.set_core_dump(str(elf))
        pr = prog.read
        row("drgn 0.3.0, converted ELF, 8-byte physical reads",
            timed(lambda: [pr(a, 8, True) for a in addrs], args.reps))
        kd = opened["memory.lime"][0]
        syms = [a for a, t_, m in _kernel_data(D / "kallsyms.txt") if _readable(kd, a)]
        vaddrs = [rng.choice(syms) & ~7 for _ in range(N)]
        r = kd.read
        row("pykvm memory.lime 8-byte virtual reads of kernel data",
            timed(lambda: [r(a, 8) for a in vaddrs], args.reps))
        row("drgn 0.3.0, converted ELF, 8-byte virtual reads of kernel data",
            timed(lambda: [pr(a, 8) for a in vaddrs], args.reps))
        t = time.perf_counter()
        write_elf_vmcore(opened["memory.avml"][0], str(Path(tmp) / "avml.elf"))
        conv = time.perf_counter() - t

    fd = os.open(str(D / "memory.padded"), os.O_RDONLY)
    pread = os.pread
    row("floor: os.pread of the padded image", timed(lambda: [pread(fd, 8, a) for a in addrs], args.reps))
    os.close(fd)

    scan = []
    for _ in range(3):
        with pykvm.open(str(D / "kallsyms.txt"), str(D / "memory-novmci.lime")) as kd:
            i = kd.info
            scan.append(i["vmcoreinfo_scan_ns"] / 1e9 / (i["vmcoreinfo_scan_bytes"] / 2**30))
    extra = [
        ("VMCOREINFO scan over the whole image (no text in it), best of 3", f"{min(scan):.3f} s/GiB"),
        ("open memory.lime (scan, page-table check, kallsyms from memory)", f"{opened['memory.lime'][1] * 1e3:.1f} ms"),
        ("open memory.avml", f"{opened['memory.avml'][1] * 1e3:.1f} ms"),
        ("open memory.padded (format=raw)", f"{opened['memory.padded'][1] * 1e3:.1f} ms"),
        ("convert memory.avml (256 MiB) to ELF", f"{conv:.2f} s"),
    ]
    for k, v in extra:
        print(f"{k:58} {v}")
    if args.write:
        lines = ["# Memory images: pykvm, Volatility 3, drgn", "",
                 f"`python3 bench/images.py --write`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                 f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {N:,} addresses, medians "
                 f"of {args.reps} runs.", "",
                 "| workload | µs per read | note |", "|---|---:|---|"]
        lines += [f"| {a} | {b:.2f} | {c} |" for a, b, c in rows]
        lines += ["", "| fact | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in extra]
        (HERE / "IMAGES.md").write_text("\n".join(lines) + "\n")
    return 0


def _readable(kd, a: int) -> bool:
    try:
        kd.read(a & ~7, 8)
        return True
    except pykvm.FaultError:
        return False


def _kernel_data(path: Path):
    for line in open(path):
        f = line.split()
        if len(f) == 3 and f[1] in "DdBbRr" and int(f[0], 16) >= 0xffffffff80000000:
            yield int(f[0], 16), f[1], None


if __name__ == "__main__":
    sys.exit(main())
