"""What a leaner Python path could gain: the same 8-byte reads as the bench,
through kd.read and through hand-made alternatives on the same handle.
Evidence for bench/PROFILE.md; pokes at pykvm internals (kd._kd, lib),
so it is an experiment, not a benchmark of the public API.

    python3 bench/profile/lean_paths.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import cases  # noqa: E402
import pykvm  # noqa: E402
from pykvm._kvm import ffi, lib  # noqa: E402
from readers import CoreMap  # noqa: E402


def per_read(fn, addrs) -> float:
    return statistics.median(cases.timings(lambda: cases.loop_read(fn, addrs, 8), 9)) / len(addrs) / 1000


def main() -> None:
    ctx = cases.Context()
    addrs = cases.small_addresses(ctx)
    d = cases.dump(ctx, cases.SMALL_VARIANT)
    for fmt in ("vmcore.elf", "vmcore.mdf-zlib"):
        # A cache larger than the list's 3,048 pages: every pass is all hits.
        kd = pykvm.open(d.kallsyms, d.path(fmt), cache_pages=16384)
        h = kd._kd
        cbuf = ffi.new("char[]", 64)

        def lean(addr, size, _r=lib.pykvm_read, _h=h, _b=cbuf, _u=ffi.unpack):
            if _r(_h, addr, _b, size) != size:
                raise OSError(addr)
            return _u(_b, size)

        def fb_pos(addr, size, _r=lib.pykvm_read, _h=h, _fb=ffi.from_buffer):
            b = bytearray(size)
            _r(_h, addr, _fb("char[]", b, True), size)
            return bytes(b)

        def fb_kw(addr, size, _r=lib.pykvm_read, _h=h, _fb=ffi.from_buffer):
            b = bytearray(size)
            _r(_h, addr, _fb(b, require_writable=True), size)
            return bytes(b)

        paths = [("kd.read(a, 8)", kd.read),
                 ("cffi: lib.pykvm_read into a preallocated char[] + ffi.unpack", lean),
                 ("cffi: bytearray + ffi.from_buffer('char[]', b, True) + bytes", fb_pos),
                 ("cffi: bytearray + ffi.from_buffer(b, require_writable=True) + bytes", fb_kw)]
        if fmt == "vmcore.elf":
            cm = CoreMap(d.path(fmt))
            offs = {a >> 12: cm.offset(kd.physaddr(a & ~4095), 4096) for a in addrs}

            def py_min(addr, size, _get=offs.get, _mm=cm.mm):
                off = _get(addr >> 12)
                if off is not None:
                    rel = addr & 4095
                    return _mm[off + rel:off + rel + size]
            paths.append(("pure Python: dict of page offsets + mmap slice", py_min))
        expect = b"".join(kd.read(a, 8) for a in addrs)
        for name, fn in paths:
            assert b"".join(fn(a, 8) for a in addrs) == expect, name
            print(f"{fmt:16s} {per_read(fn, addrs):6.3f} µs  {name}")
        kd.close()


if __name__ == "__main__":
    main()
