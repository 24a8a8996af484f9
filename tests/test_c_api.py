"""The C library directly: tests/c/test_kvm.c built against csrc/ and run on real cores."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, globals_of

# make test-sanitize builds these programs with clang under ASan + UBSan.
CC = os.environ.get("PYKVM_TEST_CC", "cc")
CFLAGS = ["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
          *os.environ.get("PYKVM_TEST_CFLAGS", "").split()]


def shim_sources() -> list[str]:
    return sorted(str(p) for p in (ROOT / "csrc").glob("*.c")
                  if p.name not in ("pykvm_glue.c", "pykvm_native.c"))


def codec_libs() -> list[str]:
    from pykvm._build import codec_flags
    macros, libs = codec_flags()
    return [f"-D{m}" for m, _ in macros] + [f"-l{lib}" for lib in libs]


@pytest.fixture(scope="session")
def c_shim_program(tmp_path_factory):
    """Build a C test program with the shim's sources, as a C user would."""
    def build(src: Path, extra: list[str] | None = None) -> str:
        out = tmp_path_factory.mktemp("c") / src.stem
        cmd = [CC, *CFLAGS, f"-I{ROOT / 'csrc'}", str(src), *shim_sources(), "-o", str(out),
               *codec_libs(), "-lpthread", *(extra or [])]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return str(out)
    return build


def test_c_api_contract(proc, c_shim_program, tmp_path):
    prog = c_shim_program(ROOT / "tests" / "c" / "test_kvm.c")
    text = tmp_path / "notes.txt"
    text.write_text("just some text\nnot a core\n")
    g = globals_of(proc.truth("target64"))
    res = subprocess.run([prog, proc.exe("target64"), proc.core("target64"), proc.core("target32"),
                          str(text), str(g["kvm_t_int"]["value"]), g["kvm_t_str"]["value"]],
                         capture_output=True, text=True)
    assert "not ok" not in res.stdout, res.stdout
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith("1..25")
    # errstr NULL printed nothing; errstr "ctest" printed exactly one line
    assert res.stderr == "ctest: /nonexistent/loud: No such file or directory\n"
