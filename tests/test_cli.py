"""The command line (`pykvm` / `python -m pykvm`), run as a user would."""

from __future__ import annotations

import subprocess
import sys

import pykvm
from conftest import globals_of


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pykvm", *args], capture_output=True, text=True)


def test_nlist_prints_like_nm(proc):
    truth = proc.truth("target64")
    res = run("nlist", "-N", proc.exe("target64"), "-M", proc.core("target64"), "kvm_t_int", "nope")
    assert res.returncode == 1  # one name missing
    lines = res.stdout.splitlines()
    assert lines[0] == f"{truth['nm']['kvm_t_int']['value']:016x} D kvm_t_int"
    assert lines[1].split() == ["U", "nope"]


def test_read_string_u64_and_hexdump(proc):
    g = globals_of(proc.truth("target64"))
    files = ["-N", proc.exe("target64"), "-M", proc.core("target64")]
    assert run("read", "--string", *files, "kvm_t_str").stdout == g["kvm_t_str"]["value"] + "\n"
    out = run("read", "--u64", *files, "kvm_t_u64").stdout.split()
    assert out[1] == "0x1122334455667788"
    dump = run("read", "-n", "8", *files, "kvm_t_u64").stdout
    assert "88 77 66 55 44 33 22 11" in dump
    at = run("read", "-n", "4", *files, f"0x{g['kvm_t_int']['addr']:x}").stdout
    assert " ".join(g["kvm_t_int"]["hex"][i:i + 2] for i in range(0, 8, 2)) in at


def test_info_lists_format_and_segments(proc):
    res = run("info", "-N", proc.exe("target64"), "-M", proc.core("target64"))
    if not pykvm.has("info"):
        # a native libkvm has no kvm_info: one line saying so, status 2
        assert res.returncode == 2 and res.stdout == ""
        assert res.stderr == ("pykvm: kvm_info (Kvm.info) is not available with the native "
                              f"libkvm of {pykvm.platform}\n")
        return
    assert res.returncode == 0
    lines = {l.split(":", 1)[0]: l.split(":", 1)[1].strip() for l in res.stdout.splitlines()
             if ":" in l and not l.startswith(" ")}
    assert lines["format"].startswith("elf-process")
    assert lines["word size"] == "64-bit"
    assert lines["byte order"] == "little"
    assert lines["machine"] == "x86-64 (ELF machine 62)"
    assert lines["kernel image"] == "no"
    assert "\n  virtual  0x" in res.stdout


def test_errors_are_one_line_with_the_prefix(proc):
    res = run("read", "-N", proc.exe("target64"), "-M", "/nonexistent", "x")
    assert res.returncode == 2
    assert res.stderr == "pykvm: /nonexistent: No such file or directory\n"
    res = run("read", "-N", proc.exe("target64"), "-M", proc.core("target64"), "no_such_sym")
    assert res.returncode == 2 and "no symbol 'no_such_sym'" in res.stderr
