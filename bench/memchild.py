"""One memory measurement, alone in its own process (run by cases.case_memory).

    memchild.py READER CORE NAMELIST PAGES_FILE CACHE_PAGES [PYKVM_OPTIONS_JSON]

Imports the reader, loads the page addresses (raw native u64), then reads
/proc/self/status three times: before open, after open, after reading every
page (4 KiB each, results dropped).  Prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import pathlib
import sys
import time
from array import array

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # pykvm, built in place

import readers  # noqa: E402

FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")


def status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in FIELDS:
                out[key] = int(value.split()[0])  # kB
    return out


def main(reader: str, core: str, namelist: str, pages_file: str, cache_pages: str,
         options: str = "{}") -> None:
    pages = array("Q")
    with open(pages_file, "rb") as f:
        pages.frombytes(f.read())
    if reader == "pykvm":
        import pykvm  # noqa: F401
        opener = lambda: readers.open_pykvm(core, namelist, cache_pages=int(cache_pages),  # noqa: E731
                                            **json.loads(options))
    elif reader == "drgn":
        import drgn  # noqa: F401
        opener = lambda: readers.open_drgn(core)  # noqa: E731
    else:
        readers.kdumpfile_module()
        opener = lambda: readers.open_kdumpfile(core)  # noqa: E731
    gc.collect()
    base = status()
    h = opener()
    opened = status()
    read, failed = h.read, 0
    t0 = time.perf_counter()
    for a in pages:
        try:
            read(a, 4096)
        except Exception:
            failed += 1
    seconds = time.perf_counter() - t0
    gc.collect()
    after = status()
    # pykvm: the decompressed pages its C cache holds now (what "beyond the
    # configured page cache" leaves out), and the open's mapping bound.
    cached = h.obj.cache_used() if reader == "pykvm" else None  # type: ignore[attr-defined]
    budget = h.obj.info.get("map_budget") if reader == "pykvm" else None  # type: ignore[attr-defined]
    print(json.dumps({"base": base, "opened": opened, "after": after, "failed": failed,
                      "seconds": seconds, "cache_used": cached, "map_budget": budget}))
    h.close()


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    except readers.Unavailable as e:
        print(f"n/a: {e}")
        sys.exit(1)
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}")
        sys.exit(1)
