"""Helpers for tests that run against every build: the shim, and the native
glue over a platform libkvm (FreeBSD, illumos), which lacks the shim's
extras.  A test that needs such an extra asks pykvm.has() and, where it is
missing, checks that asking for it raises UnsupportedError naming the
platform -- it never skips."""

from __future__ import annotations

import struct

import pytest

import pykvm


def assert_unsupported(fn, *args, **kwargs) -> pykvm.UnsupportedError:
    """fn(...) raises UnsupportedError saying which native libkvm lacks it."""
    with pytest.raises(pykvm.UnsupportedError) as ei:
        fn(*args, **kwargs)
    assert f"is not available with the native libkvm of {pykvm.platform}" in str(ei.value)
    return ei.value


def load_segments(core: str) -> list:
    """The PT_LOAD segments of an ELF64 little-endian core, read here without
    pykvm (for checks that kd.info["segments"] makes where there is no kvm_info)."""
    data = open(core, "rb").read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segs = []
    for i in range(phnum):
        p_type, _, off, vaddr, _, filesz, memsz = struct.unpack_from("<IIQQQQQ", data,
                                                                     phoff + i * phentsize)
        if p_type == 1 and memsz:
            segs.append({"space": "virtual", "start": vaddr, "size": memsz, "filesz": filesz,
                         "offset": off})
    return segs
