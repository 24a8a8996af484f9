"""The open option format=: force a core format by name (struct kvm_open_opts
in C, pykvm.open(..., format=) in Python), on the real dumps."""

from __future__ import annotations

import errno

import pytest

import pykvm
from native_support import assert_unsupported


def test_format_forced_reads_as_probed(dumps):
    """Each real dump opened with its own format forced reads the guest's banner
    as the probing open does; the other format's name is refused naming the file."""
    d = dumps["kaslr-96M"]
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, None, d.path("vmcore.elf"), format="elf")
        return
    for path, fmt, other in ((d.path("vmcore.elf"), "elf", "kdump"),
                             (d.path("vmcore.mdf-lzo"), "kdump", "elf"),
                             (d.path("vmcore.mdf-lzo.flat"), "kdump", "elf")):
        with pykvm.open(None, path, format=fmt) as kd:
            assert kd.read_cstring(kd.symbol("linux_banner")) == d.truth["banner"]
        with pytest.raises(pykvm.KvmFormatError) as ei:
            pykvm.open(None, path, format=other)
        assert path in str(ei.value) and f"format={other}" in str(ei.value)


def test_unknown_format_lists_valid_names(dumps):
    """An unknown format name fails with EINVAL and lists the names open knows."""
    d = dumps["kaslr-96M"]
    if not pykvm.has("options"):
        assert_unsupported(pykvm.open, None, d.path("vmcore.elf"), format="nonesuch")
        return
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(None, d.path("vmcore.elf"), format="nonesuch")
    assert ei.value.errno == errno.EINVAL
    msg = str(ei.value)
    assert '"nonesuch"' in msg and "elf" in msg and "kdump" in msg
