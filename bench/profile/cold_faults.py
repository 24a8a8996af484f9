"""Cold compressed reads: time per read and minor page faults per pass, for
each reader (a fresh handle per pass, first touch of each page).  Evidence
for bench/PROFILE.md: the instruction counts of pykvm and libkdumpfile on a
cold zlib page are the same (callgrind), the page faults are not.

    python3 bench/profile/cold_faults.py
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import cases  # noqa: E402
import readers  # noqa: E402


def main() -> None:
    ctx = cases.Context()
    cold = cases.first_per_page(cases.small_addresses(ctx))
    d = cases.dump(ctx, cases.SMALL_VARIANT)
    openers = [
        ("pykvm (cache 4096, default)", lambda c: readers.open_pykvm(c, d.kallsyms)),
        ("pykvm cache_pages=1024", lambda c: readers.open_pykvm(c, d.kallsyms, cache_pages=1024)),
        ("drgn", readers.open_drgn),
        ("libkdumpfile (cache 1024)", readers.open_kdumpfile),
    ]
    print(f"{len(cold)} pages, first touch each, fresh handle per pass; 3 passes each")
    for fmt in cases.COMPRESSED:
        for name, opener in openers:
            out = []
            for _ in range(3):
                h = opener(d.path(fmt))
                read = h.read
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter_ns()
                for a in cold:
                    read(a, 8)
                us = (time.perf_counter_ns() - t0) / len(cold) / 1000
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
                h.close()
                del h, read
                out.append(f"{us:5.1f} µs/read {faults:5d} faults")
            print(f"{fmt:16s} {name:28s} " + "   ".join(out))


if __name__ == "__main__":
    main()
