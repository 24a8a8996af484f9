"""The platform's own libkvm on a real FreeBSD or illumos kernel.

Collected only on FreeBSD and illumos (tests/conftest.py), where the VM CI
(.github/workflows/vm.yml) runs it as root with PYKVM_BACKEND=native.
"""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

import pykvm
from conftest import ROOT
from native_support import assert_unsupported
from test_native_and_lib import EXPECTED, FEATURES, HOST, parse_portable

if os.geteuid() != 0:
    raise RuntimeError("the platform tests read the live kernel: run them as root")
if not (pykvm.backend == "native" and pykvm.platform == HOST):
    raise RuntimeError(f"build with PYKVM_BACKEND=native on {HOST} to run these tests")

def live_symbol():
    """(symbol, size, expected bytes) that the live kernel must hold."""
    if HOST == "freebsd":  # as FreeBSD's own lib/libkvm/tests/kvm_read_test.c
        out = subprocess.run(["sysctl", "-n", "kern.smp.maxcpus"], capture_output=True,
                             text=True, check=True).stdout
        return "_mp_maxcpus", 4, struct.pack("<i", int(out))
    return "utsname", 5, os.uname().sysname.encode()  # struct utsname starts with sysname


def test_live_kernel_through_the_platform_libkvm():
    name, size, expected = live_symbol()
    with pykvm.open() as kd:
        (value, _), missing = kd.nlist([name, "pykvm_no_such_symbol"])
        assert missing is None
        assert kd.read(value, size) == expected


@pytest.mark.parametrize("feature", FEATURES)
def test_live_feature_works_or_says_which_libkvm_lacks_it(feature):
    name, size, expected = live_symbol()
    with pykvm.open() as kd:
        addr = kd.symbol(name)

        def use():
            if feature == "info":
                return kd.info
            if feature == "symbols":
                return next(kd.all_symbols())
            if feature == "kerndisp":
                assert isinstance(kd.kerndisp(), int)
            elif feature in ("physaddr", "pread"):
                assert kd.read(kd.physaddr(addr), size, physical=True) == expected
            elif feature == "geterr":
                with pytest.raises(pykvm.KvmError):
                    kd.read(0x10, 4)
                assert kd.geterr() != ""
            elif feature == "read_many":
                assert bytes(kd.read_many([addr, addr], size)) == expected * 2
            elif feature == "options":
                pykvm.open(cache_pages=16).close()
            elif feature == "cache":
                assert kd.cache_used() == 0

        assert pykvm.has(feature) == (feature in EXPECTED[pykvm.platform])
        if pykvm.has(feature):
            use()
        else:
            assert_unsupported(use)
        assert kd.read(addr, size) == expected


def test_portable_tool_builds_against_the_platform_kvm_h(tmp_path):
    """The tool written for both APIs compiles unchanged against the real kvm.h."""
    tool = tmp_path / "portable_tool"
    subprocess.run([os.environ.get("CC", "cc"), "-Wall", "-Werror", "-o", str(tool),
                    str(ROOT / "tests" / "c" / "portable_tool.c"), "-lkvm"], check=True)
    name, size, expected = live_symbol()
    out = subprocess.run([str(tool), name, str(size)], capture_output=True, text=True, check=True)
    assert parse_portable(out.stdout)[1] == expected


# ---- the shim as a C library ----
