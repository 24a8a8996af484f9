"""A fully static program linked with `pkg-config --static --libs libkvm`
(snappy is C++: the flags must bring -lstdc++ and -lm) reads each codec's real
dump as the guest printed it."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT

CODEC_DUMPS = ("vmcore.mdf-lzo", "vmcore.mdf-zlib", "vmcore.mdf-snappy", "vmcore.mdf-zstd")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def static_kvmcat(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    res = run(["make", "-C", str(ROOT), "--no-print-directory", "install-lib", f"PREFIX={prefix}"])
    assert res.returncode == 0, res.stdout + res.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--static", "--libs", "libkvm"], env=env,
                check=True).stdout.split()
    assert "-lstdc++" in flags and "-lm" in flags, flags
    prog = prefix / "kvmcat-static"
    res = run(["cc", "-static", "-Wall", "-Wextra", "-Werror", "-o", str(prog),
               str(ROOT / "examples" / "kvmcat.c"), *flags], env=env)
    assert res.returncode == 0, res.stderr
    assert "statically linked" in run(["file", str(prog)], check=True).stdout
    return str(prog)


def hexdump_bytes(text: str) -> bytes:
    """The bytes of kvmcat's "address  hex bytes  |ascii|" lines."""
    return bytes.fromhex("".join(line.split("|")[0].split(None, 1)[1] for line in text.splitlines()))


@pytest.mark.parametrize("fmt", CODEC_DUMPS)
def test_static_program_reads_compressed_dumps(static_kvmcat, dumps, fmt):
    d = dumps["kaslr-96M"]
    banner = d.truth["banner"].encode()
    res = run([static_kvmcat, "-N", d.kallsyms, "-M", d.path(fmt), "-n", str(len(banner)),
               "linux_banner"])
    assert res.returncode == 0, res.stderr
    assert hexdump_bytes(res.stdout) == banner
