"""Instructions per call of the hot Python-level reads, by callgrind: exact and
repeatable however busy the machine is.  Each API runs under callgrind twice
(pyloop.py with 0 and with K passes over the same 2,000 addresses); the
difference divided by the reads is one call, start-up and open taken out.

    python3 bench/profile/percall.py [--tree DIR --label NAME] [--out FILE.json]

--tree profiles the pykvm of another checkout (built in place there), so a
tree before a change and after it are counted with the same loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import cases  # noqa: E402

# profile.py's callgrind parser (loaded by path: "profile" is also a stdlib name).
_spec = __import__("importlib.util").util.spec_from_file_location("_pykvm_profile", HERE / "profile.py")
_prof = __import__("importlib.util").util.module_from_spec(_spec)
_spec.loader.exec_module(_prof)
OUT, callgrind_self = _prof.OUT, _prof.callgrind_self

RUNS = [
    ("floor: mm[o:o+8], ELF", "vmcore.elf", "slice"),
    ("read(a, 8), ELF", "vmcore.elf", "read"),
    ("read_u64(a), ELF", "vmcore.elf", "read_u64"),
    ("read_u32(a), ELF", "vmcore.elf", "read_u32"),
    ("read_member(a, 0, 4), ELF", "vmcore.elf", "read_member"),
    ("readinto(a, buf8), ELF", "vmcore.elf", "readinto"),
    ("read_many(addrs, 8) per item, ELF", "vmcore.elf", "read_many"),
    ("read_scatter per item, ELF", "vmcore.elf", "read_scatter"),
    ("read(a, 8), mdf-lzo warm", "vmcore.mdf-lzo", "read"),
    ("read_u64(a), mdf-lzo warm", "vmcore.mdf-lzo", "read_u64"),
    ("read(a, 8), mdf-zlib warm", "vmcore.mdf-zlib", "read"),
    ("read_u64(a), mdf-zlib warm", "vmcore.mdf-zlib", "read_u64"),
    ("drgn Program.read(a, 8), ELF", "vmcore.elf", "drgn_read"),
    ("drgn Program.read_u64(a), ELF", "vmcore.elf", "drgn_read_u64"),
    ("drgn Program.read(a, 8), mdf-lzo warm", "vmcore.mdf-lzo", "drgn_read"),
    ("drgn Program.read(a, 8), mdf-zlib warm", "vmcore.mdf-zlib", "drgn_read"),
]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tree", default="")
    ap.add_argument("--label", default="this tree")
    ap.add_argument("--out", default="")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--only", default="", help="run only the rows whose title contains this")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    ctx = cases.Context(quick=True)
    d = cases.dump(ctx, cases.SMALL_VARIANT)
    addrs = cases.small_addresses(ctx)[:2000]
    warm = OUT / "percall-addrs.u64"
    warm.write_bytes(array("Q", addrs).tobytes())
    env = dict(__import__("os").environ)
    if args.tree:
        env["PYKVM_TREE"] = args.tree
    res = {}
    for title, fmt, api in RUNS:
        if args.only and args.only not in title:
            continue
        base = [sys.executable, str(HERE / "pyloop.py"), d.path(fmt), d.kallsyms, str(warm), "8"]
        try:
            tot = []
            for k in (0, args.passes):
                out = OUT / f"cg.percall.{fmt}.{api}.{k}"
                for old in out.parent.glob(out.name + "*"):
                    old.unlink()
                subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                *base, str(k), api], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
                tot.append(callgrind_self(out)[0])
            res[title] = (tot[1] - tot[0]) / (args.passes * len(addrs))
        except subprocess.CalledProcessError:
            res[title] = None
        print(f"{args.label}: {title}: {res[title] if res[title] is None else round(res[title])}",
              flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"label": args.label, "per_call": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
