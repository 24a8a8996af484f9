"""Soak: many open/read/close cycles over every format leave the process's
file descriptors and resident memory where they were; threads sharing one
handle of each format read what a single reader reads.

SOAK_CYCLES cycles in all, spread over the 8 formats: by default the full
soak, 10,000 (about 140 s of CPU; measured with fds 8 -> 8 and RSS
unchanged).  SOAK_CYCLES=2000 gives a quick run."""

from __future__ import annotations

import os
import threading

import pytest

import pykvm
from test_memory_images import images  # noqa: F401  (the fixture)

CYCLES = int(os.environ.get("SOAK_CYCLES", "10000"))
RSS_SLACK_KB = 16 * 1024  # allocator noise; a leak of a few hundred bytes a cycle shows
THREADS = 4


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def namelist_of(kallsyms: str, tmp_path, name: str) -> tuple[str, int]:
    """A small namelist: _stext and linux_banner lines of the guest's own kallsyms."""
    lines = {}
    for line in open(kallsyms):
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("_stext", "linux_banner"):
            lines.setdefault(parts[2], line)
    p = tmp_path / f"{name}.map"
    p.write_text(lines["_stext"] + lines["linux_banner"])
    return str(p), int(lines["linux_banner"].split()[0], 16)


@pytest.fixture(scope="module")
def cases(dumps, proc, images, tmp_path_factory):  # noqa: F811
    """(name, namelist, core, options, [(address, size, physical)]) for every format."""
    tmp = tmp_path_factory.mktemp("soak")
    d = dumps["nokaslr-96M"]
    nl, banner = namelist_of(d.kallsyms, tmp, "dump")
    inl, ibanner = namelist_of(images.kallsyms, tmp, "images")
    reads = [(banner, 64, False), (0x100000, 64, True), (0x1000000 + 4096 - 8, 16, True)]
    ireads = [(ibanner, 64, False), (0x100000, 64, True)]
    g = {x["name"]: x for x in proc.truth("target64")["globals"]}
    out = [(f, nl, d.path(f), {}, reads)
           for f in ("vmcore.elf", "vmcore.kdump-zlib", "vmcore.mdf-lzo", "vmcore.mdf-lzo.flat")]
    out += [("memory.lime", inl, images.path("memory.lime"), {}, ireads),
            ("memory.avml", inl, images.path("memory.avml"), {}, ireads),
            ("memory.padded", inl, images.path("memory.padded"), {"format": "raw"}, ireads),
            ("target64.core", proc.exe("target64"), proc.core("target64"), {},
             [(g["kvm_t_int"]["addr"], 4, False)] if "addr" in g["kvm_t_int"] else [])]
    return out


def read_all(kd, reads) -> list[bytes]:
    return [bytes(kd.read(a, n, physical=phys)) for a, n, phys in reads]


def test_open_read_close_cycles_keep_fds_and_rss(cases):
    expect = {}
    for name, nl, core, opts, reads in cases:  # warm up: libraries loaded, caches made
        with pykvm.open(nl, core, **opts) as kd:
            expect[name] = read_all(kd, reads)
    fd0, rss0 = fds(), rss_kb()
    per = max(1, CYCLES // len(cases))
    for name, nl, core, opts, reads in cases:
        for _ in range(per):
            kd = pykvm.open(nl, core, **opts)
            got = read_all(kd, reads)
            kd.close()
            assert got == expect[name], name
    fd1, rss1 = fds(), rss_kb()
    print(f"soak: {per * len(cases)} cycles over {len(cases)} formats; "
          f"fds {fd0} -> {fd1}, RSS {rss0} -> {rss1} kB")
    assert fd1 == fd0
    assert rss1 - rss0 < RSS_SLACK_KB


def test_threads_sharing_a_handle_read_the_serial_results(cases):
    for name, nl, core, opts, reads in cases:
        with pykvm.open(nl, core, **opts) as kd:
            serial = read_all(kd, reads) * 50
            results: list = [None] * THREADS

            def work(i):
                results[i] = [b for _ in range(50) for b in read_all(kd, reads)]

            ts = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            assert all(r == serial for r in results), name
