"""pykvm and drgn read the same dumps: identical bytes at >= 1,000 random mapped
kernel addresses per format and variant (text, data, direct map, vmalloc,
modules), and the same verdict on every address that fails.

drgn cannot open QEMU's kdump files (their utsname is empty), so those are
compared with drgn reading the ELF dump of the same paused guest.
"""

from __future__ import annotations

import random

import drgn
import pytest

import pykvm
from conftest import FORMATS, VARIANTS

CASES = [(v, f) for v in VARIANTS for f in FORMATS]


def drgn_program(path: str) -> drgn.Program:
    prog = drgn.Program()
    prog.set_core_dump(path)
    return prog


def drgn_read(prog: drgn.Program, addr: int, size: int):
    try:
        return prog.read(addr, size)
    except drgn.FaultError:
        return None


def sample_addresses(d, prog: drgn.Program, n: int = 2400):
    """Addresses of every kind, chosen with a fixed seed from the guest's own kallsyms
    and from the bases drgn reads (page_offset_base, vmalloc_base)."""
    rng = random.Random(f"{d.variant}-differential")
    syms = list(d.syms.values())
    text = [a for a, t, m in syms if m is None and t in "Tt"]
    data = [a for a, t, m in syms if m is None and t in "DdBbRr" and a >= 0xffffffff80000000]
    module = [a for a, t, m in syms if m is not None]
    page_offset = int.from_bytes(prog.read(d.addr("page_offset_base"), 8), "little")
    vmalloc = int.from_bytes(prog.read(d.addr("vmalloc_base"), 8), "little")
    ram = d.truth["mem_mb"] << 20
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            a = rng.choice(text) + rng.randrange(256)
        elif kind == 1:
            a = rng.choice(data) + rng.randrange(256)
        elif kind == 2:
            a = page_offset + rng.randrange(ram)
        elif kind == 3:
            a = vmalloc + rng.randrange(64 << 20)
        elif kind == 4:
            a = rng.choice(module) + rng.randrange(128)
        else:  # anything at all, including non-canonical addresses
            a = rng.getrandbits(64)
        out.append(a)
    return out


@pytest.mark.parametrize("variant,fmt", CASES, ids=[f"{v}-{f}" for v, f in CASES])
def test_same_bytes_as_drgn(dumps, variant, fmt):
    d = dumps[variant]
    reference = fmt if fmt != "vmcore.kdump-zlib" else "vmcore.elf"
    prog = drgn_program(d.path(reference))
    addrs = sample_addresses(d, prog)
    same = failed_both = 0
    mismatches = []
    with pykvm.open(d.kallsyms, d.path(fmt)) as kd:
        for a in addrs:
            size = min(64, 4096 - (a & 4095))
            theirs = drgn_read(prog, a, size)
            try:
                ours = kd.read(a, size)
            except pykvm.FaultError:
                ours = None
            if ours == theirs:
                if ours is None:
                    failed_both += 1
                else:
                    same += 1
            else:
                mismatches.append((hex(a), ours is None, theirs is None))
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:5]}"
    assert same >= 1000, (same, failed_both)
    assert failed_both > 0  # the sample includes unmapped addresses too
