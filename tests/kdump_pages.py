"""Shared checks for the re-encoded kdump files (header versions, layouts): the
pages they hold, sampled and compared with the ELF dump of the same guest."""

from __future__ import annotations

import random
import struct

import pykvm

PAGE = 4096


def outcome(kd, addr: int, size: int, physical: bool):
    """The bytes read, or the class of the error."""
    try:
        return kd.read(addr, size, physical=physical)
    except pykvm.FaultError as e:
        assert e.address == addr
        return type(e)


def differences(got: dict, want: dict) -> list:
    return [(hex(a), want[a] if isinstance(want[a], type) else "data",
             got[a] if isinstance(got[a], type) else "data")
            for a in want if got[a] != want[a]]


def sample_physical(d, seed: str):
    """(≥ 2,000 sampled physical addresses, {addr: ELF outcome}, {addr: mdf-lzo outcome})."""
    with open(d.path("vmcore.mdf-lzo"), "rb") as f:
        max_mapnr, = struct.unpack_from("<I", f.read(512), 440)
    rng = random.Random(seed)
    pfns = sorted(set(rng.sample(range(max_mapnr), 2000))
                  | {0, 1, max_mapnr - 1, max_mapnr, max_mapnr + 1, 4 * max_mapnr})
    addrs = [pfn * PAGE for pfn in pfns]
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        elf = {a: outcome(kd, a, PAGE, True) for a in addrs}
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        lzo = {a: outcome(kd, a, PAGE, True) for a in addrs}
    return addrs, elf, lzo


def check_physical_pages(kd, addrs: list, elf: dict, lzo: dict) -> None:
    """kd reads every sampled page as the makedumpfile original does, and its data
    pages equal the ELF dump's."""
    got = {a: outcome(kd, a, PAGE, True) for a in addrs}
    assert len(addrs) >= 2000
    assert not differences(got, lzo)[:10]
    data = [a for a in addrs if isinstance(lzo[a], bytes)]
    excluded = [a for a in addrs if lzo[a] is pykvm.PageExcludedError]
    assert len(data) > 500 and len(excluded) > 100
    assert lzo[addrs[-1]] is pykvm.FaultError  # far beyond max_mapnr
    assert all(got[a] == elf[a] for a in data)
    assert all(isinstance(elf[a], bytes) for a in excluded)  # present in the full dump


def kernel_addresses(d, pages: int) -> list:
    """Kernel-image symbols and some pages of the direct map (runtime addresses)."""
    with pykvm.open(d.kallsyms, d.path("vmcore.mdf-lzo")) as kd:
        base = kd.read_u64(kd.symbol("page_offset_base"))
    return ([d.addr(n) for n in ("linux_banner", "init_uts_ns", "jiffies_64", "init_task")]
            + [base + pfn * PAGE for pfn in range(0x1000, 0x1000 + pages * 97, 97)])
