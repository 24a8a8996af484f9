"""The Python hot loop, for callgrind (run by bench/profile/profile.py).

    pyloop.py CORE NAMELIST ADDRFILE SIZE PASSES [read|readinto|read_u64|read_u32|read_member|
                                                  read_many|read_scatter|slice|
                                                  drgn_read|drgn_read_u64]

PYKVM_TREE=DIR takes pykvm from another checkout (to profile an older tree).

("slice" is the floor: mm[o:o + SIZE] at the same bytes, offsets precomputed;
drgn_* are drgn's Program.read and read_u64 of the same addresses.)

Opens with pykvm, reads every address once (warm-up), then runs PASSES
passes between two marker calls: os.getppid() just before (callgrind
--zero-before=getppid) and os.getpgrp() just after (--dump-before=getpgrp),
so the dump written at getpgrp holds the loop and nothing else.
"""

from __future__ import annotations

import os
import sys
from array import array
from pathlib import Path

sys.path.insert(0, os.environ.get("PYKVM_TREE") or str(Path(__file__).resolve().parents[2]))  # pykvm
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/readers.py

import pykvm  # noqa: E402


def main(core: str, namelist: str, addrfile: str, size: str, passes: str, api: str = "read") -> None:
    addrs = array("Q")
    addrs.frombytes(Path(addrfile).read_bytes())
    addrs = list(addrs)
    n, passes_n = int(size), int(passes)
    kd = pykvm.open(namelist, core)
    read, readinto, buf = kd.read, kd.readinto, bytearray(n)
    for a in addrs:
        read(a, n)
    if api.startswith("drgn_"):  # the reference: drgn's own reads of the same addresses
        import drgn
        prog = drgn.Program()
        prog.set_core_dump(core)
        dr = prog.read if api == "drgn_read" else prog.read_u64
        for a in addrs:
            dr(a, n) if api == "drgn_read" else dr(a)
    if api == "slice":
        from readers import CoreMap
        cm = CoreMap(core)
        mm = cm.mm
        offs = [cm.offset(kd.physaddr(a), n) for a in addrs]
        for o in offs:
            mm[o:o + n]
    os.getppid()  # callgrind: zero the counters here
    if api == "read":
        for _ in range(passes_n):
            for a in addrs:
                read(a, n)
    elif api in ("read_u64", "read_u32"):
        rd = getattr(kd, api)
        for _ in range(passes_n):
            for a in addrs:
                rd(a)
    elif api == "read_member":
        rm = kd.read_member
        for _ in range(passes_n):
            for a in addrs:
                rm(a, 0, 4)
    elif api == "readinto":
        for _ in range(passes_n):
            for a in addrs:
                readinto(a, buf)
    elif api == "read_scatter":
        packed, sizes = array("Q", addrs), array("Q", [n] * len(addrs))
        for _ in range(passes_n):
            kd.read_scatter(packed, sizes)
    elif api == "drgn_read":
        for _ in range(passes_n):
            for a in addrs:
                dr(a, n)
    elif api == "drgn_read_u64":
        for _ in range(passes_n):
            for a in addrs:
                dr(a)
    elif api == "slice":
        for _ in range(passes_n):
            for o in offs:
                mm[o:o + n]
    else:
        for _ in range(passes_n):
            kd.read_many(addrs, n)
    os.getpgrp()  # callgrind: dump here
    kd.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
