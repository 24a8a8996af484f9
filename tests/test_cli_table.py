"""The command line without rough edges, as a table: every bad input prints
exactly one line on stderr and exits 2 (no traceback, no huge allocation);
addresses as nlist prints them, symbol+/-offset, options before the command,
--u64/-n/-c/--string, --help defaults, readable info with the kdump facts,
--json on every command, a progress bar on a terminal only.

Ground truth: the guest's own kallsyms lines and banner (fixtures/demo, and
the kernel dumps' truth.json), and for kdump facts the file's own header
fields, read here with struct from the format's layout."""

from __future__ import annotations

import json
import os
import pty
import resource
import struct
import subprocess
import sys

import pytest

import pykvm
from conftest import ROOT

DEMO = ROOT / "fixtures" / "demo"
FILES = ["-N", str(DEMO / "kallsyms-demo.txt"), "-M", str(DEMO / "vmcore-demo.elf")]
TRUTH = json.loads((DEMO / "truth.json").read_text())
BANNER = TRUTH["banner"].encode()
KALLSYMS = {line.split()[2]: int(line.split()[0], 16)
            for line in (DEMO / "kallsyms-demo.txt").read_text().splitlines() if line.strip()}
BANNER_AT = KALLSYMS["linux_banner"]
MEMORY_LIMIT = 1 << 30  # no case may allocate more than this


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args: str, files=True, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pykvm", *args, *(FILES if files else [])]
    return subprocess.run(cmd, capture_output=True, preexec_fn=limit_memory, **kw)


# (arguments, words the one stderr line must hold)
BAD = [
    (["read", "linux_banner+zz"], ["offset", "'zz'"]),
    (["read", "-n", "-5", "linux_banner"], ["size", "'-5'"]),
    (["read", *FILES, "--", "-1"], ["negative"]),
    (["read", "0x10000000000000000"], ["outside"]),
    (["read", "ffffffffffffffff0"], ["outside"]),
    (["read", "-n", "0x1000000000000", "linux_banner"], ["past the end"]),
    (["read", "-n", "0x100000000", "linux_banner"], ["past the end"]),
    (["read", "-n", "0x1000000", "linux_banner"], ["not mapped"]),
    (["read", "-p", "-n", "0x100000000", "0"], ["not mapped"]),
    (["read", "-n", "abc", "linux_banner"], ["size", "'abc'", "not a number"]),
    (["read", "-n", "0", "linux_banner"], ["size", "out of range"]),
    (["read", "-n", "0x10", "0xffffffffffffffff"], ["past the end"]),
    (["read", "linux_banner-0x10000000000000000"], ["offset", "out of range"]),
    (["read", "linux_banner+"], ["bad address"]),
    (["read", "0xzz"], ["not hexadecimal"]),
    (["read", "no_such_symbol"], ["no symbol 'no_such_symbol'"]),
    (["read", "0x10"], ["0x10", "not mapped"]),
    (["read", "--u64", "-c", "0", "linux_banner"], ["count", "out of range"]),
    (["read", "--u64", "-n", "12", "linux_banner"], ["multiple"]),
    (["read", "--u64", "-n", "16", "-c", "2", "linux_banner"], ["not both"]),
    (["read", "-c", "2", "linux_banner"], ["--u64"]),
    (["read", "--raw", "--json", "linux_banner"], ["--raw", "--json"]),
    (["read", "--string", "--u64", "linux_banner"], ["not allowed"]),
    (["read"], ["required"]),
    (["nlist"], ["required"]),
    (["type", "struct task_struct"], ["no kernel BTF", "btf=PATH"]),
    (["type"], ["required"]),
    (["print", "1abc"], ["must start with a symbol"]),
    (["print", "init_task"], ["no kernel BTF", "btf=PATH"]),
    (["print"], ["required"]),
    (["sym", "0xzz"], ["not hexadecimal"]),
    (["sym"], ["required"]),
    (["frobnicate"], ["invalid choice"]),
    (["info", "-M"], ["expected one argument"]),
]


@pytest.mark.parametrize("args,words", BAD,
                         ids=[" ".join(x for x in a if x not in FILES) for a, _ in BAD])
def test_bad_input_is_one_line_and_status_2(args, words):
    res = run(*args, files=args[0] in ("read", "nlist", "info", "type", "print", "sym") and args != ["info", "-M"]
              and "--" not in args)
    err = res.stderr.decode()
    assert res.returncode == 2, (res.returncode, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert len(res.stdout) < 4096  # nothing was read before failing


def test_missing_core_is_one_line():
    res = run("info", "-N", str(DEMO / "kallsyms-demo.txt"), "-M", "/nonexistent", files=False)
    assert res.returncode == 2
    assert res.stderr.decode() == "pykvm: /nonexistent: No such file or directory\n"


def test_read_takes_what_nlist_prints():
    res = run("nlist", "linux_banner")
    assert res.returncode == 0
    value, letter, name = res.stdout.decode().split()
    assert int(value, 16) == BANNER_AT and letter == "D" and name == "linux_banner"
    for where in (value, "0x" + value, "linux_banner"):
        got = run("read", "--raw", "-n", "16", where)
        assert got.returncode == 0, got.stderr
        assert got.stdout == BANNER[:16], where


def test_symbol_plus_and_minus_offsets():
    plus = run("read", "--raw", "-n", "16", "linux_banner+8")
    assert plus.returncode == 0 and plus.stdout == BANNER[8:24]
    hexoff = run("read", "--raw", "-n", "16", "linux_banner+0x10")
    assert hexoff.stdout == BANNER[16:32]
    minus = run("read", "--raw", "-n", "24", "linux_banner-8")
    assert minus.returncode == 0 and minus.stdout[8:] == BANNER[:16]
    spaced = run("read", "--raw", "-n", "4", f"{BANNER_AT + 4:x}")
    assert spaced.stdout == BANNER[4:8]


def test_options_before_the_command():
    after = run("info")
    before = subprocess.run([sys.executable, "-m", "pykvm", *FILES, "info"], capture_output=True)
    mixed = subprocess.run([sys.executable, "-m", "pykvm", FILES[0], FILES[1], "read", "--raw",
                            "-n", "16", FILES[2], FILES[3], "linux_banner"], capture_output=True)
    assert before.returncode == 0 and before.stdout == after.stdout
    assert mixed.returncode == 0 and mixed.stdout == BANNER[:16]


def test_string_has_no_extra_blank_line():
    res = run("read", "--string", "linux_banner")
    assert res.returncode == 0
    assert res.stdout.decode() == TRUTH["banner"]  # the banner ends in its own newline


def test_words_honour_n_and_c():
    want = [int.from_bytes(BANNER[i:i + 8], "little") for i in range(0, 24, 8)]
    by_n = run("read", "--u64", "-n", "16", "linux_banner").stdout.decode().splitlines()
    by_c = run("read", "--u64", "-c", "3", "linux_banner").stdout.decode().splitlines()
    assert [int(l.split()[1], 16) for l in by_n] == want[:2]
    assert [int(l.split()[1], 16) for l in by_c] == want
    assert [int(l.split()[0], 16) for l in by_c] == [BANNER_AT, BANNER_AT + 8, BANNER_AT + 16]
    u32 = run("read", "--u32", "-n", "8", "linux_banner").stdout.decode().split()
    assert int(u32[1], 16) == int.from_bytes(BANNER[:4], "little")


def test_help_shows_defaults():
    res = run("read", "--help", files=False)
    out = res.stdout.decode()
    assert res.returncode == 0
    assert "default: 64" in out and "default 4096" in out and "running kernel" in out
    top = run("--help", files=False).stdout.decode()
    assert "before the command" in top


def test_json_on_every_command():
    info = json.loads(run("info", "--json").stdout)
    assert info["osrelease"] == TRUTH["release"] and info["format"] == "elf-kernel"
    nl = json.loads(run("nlist", "--json", "linux_banner", "nope").stdout)
    assert nl[0] == {"name": "linux_banner", "found": True, "value": BANNER_AT, "type": 7,
                     "letter": "D"}
    assert nl[1]["found"] is False
    rd = json.loads(run("read", "--json", "-n", "32", "linux_banner").stdout)
    assert bytes.fromhex(rd["hex"]) == BANNER[:32] and rd["address"] == BANNER_AT
    st = json.loads(run("read", "--json", "--string", "linux_banner").stdout)
    assert st["string"] == TRUTH["banner"] and st["terminated"] is True
    words = json.loads(run("read", "--json", "--u64", "-c", "2", "linux_banner").stdout)
    assert words["values"] == [int.from_bytes(BANNER[i:i + 8], "little") for i in (0, 8)]


def test_every_command_takes_json():
    import argparse

    import pykvm.cli

    [sub] = [a for a in pykvm.cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(sub.choices) == len(pykvm.cli.COMMANDS)
    for cmd in sub.choices:
        assert "--json" in run(cmd, "--help", files=False).stdout.decode(), cmd


def test_command_table_is_the_modules():
    """--help lists TABLE's names and help lines without importing the commands: they are
    the ones each command's module gives, and only the command run is imported."""
    import argparse

    import pykvm.cli

    [sub] = [a for a in pykvm.cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    listed = {c.dest: c.help for c in sub._choices_actions}
    assert listed == {cmd: help for cmd, help in pykvm.cli.TABLE.values()}
    assert list(pykvm.cli.TABLE) == pykvm.cli.COMMANDS
    code = ("import sys, pykvm.cli\n"
            "try:\n    pykvm.cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('pykvm.cli.')))")
    for argv, want in [(["--json", "-M", "/nonexistent", "dmesg"], ["common", "dmesg"]),
                       (["-N", "ps", "-M", "/nonexistent", "type", "x"], ["common", "typeinfo"]),
                       (["--form", "elf", "-M", "/nonexistent", "sys"], ["common", "sysinfo"]),
                       (["--help"], ["common"])]:
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                           cwd=ROOT)
        assert r.stdout.splitlines()[-1] == repr([f"pykvm.cli.{m}" for m in want]), argv


def test_version():
    res = run("--version", files=False)
    assert res.returncode == 0
    assert res.stdout.decode().split()[:2] == ["pykvm", pykvm.__version__]


def kdump_header(path: str) -> dict:
    """The file's own header fields (64-bit little-endian disk_dump_header)."""
    with open(path, "rb") as f:
        head = f.read(464)
        version, = struct.unpack_from("<i", head, 8)
        block_size, sub_blocks, bitmap_blocks, max_mapnr = struct.unpack_from("<iiII", head, 428)
        f.seek(block_size)
        sub = f.read(16)
        dump_level, = struct.unpack_from("<i", sub, 8)
        f.seek(block_size * (1 + sub_blocks) + bitmap_blocks * block_size // 2)
        bitmap2 = f.read(bitmap_blocks * block_size // 2)
    dumped = sum(bin(b).count("1") for b in bitmap2[:(max_mapnr + 7) // 8])
    return {"version": version, "max_mapnr": max_mapnr, "dump_level": dump_level,
            "dumped": dumped}


def test_info_is_readable_with_kdump_facts(dumps):
    d = dumps["kaslr-96M"]
    path = d.path("vmcore.mdf-lzo")
    if not pykvm.has("info"):  # a native libkvm has no kvm_info: one line saying so
        res = subprocess.run([sys.executable, "-m", "pykvm", "info", "-N", d.kallsyms, "-M",
                              d.path("vmcore.elf")], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.count("\n") == 1
        assert "not available with the native libkvm" in res.stderr
        return
    head = kdump_header(path)
    assert head["dump_level"] == 31  # fixtures/kernel/make_dumps.py ran makedumpfile -d 31
    res = subprocess.run([sys.executable, "-m", "pykvm", "info", "-N", d.kallsyms, "-M", path],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = {l.split(":", 1)[0]: l.split(":", 1)[1].strip() for l in res.stdout.splitlines()
             if ":" in l and not l.startswith(" ")}
    assert lines["machine"] == "x86-64 (ELF machine 62)"
    assert lines["kernel image"] == "yes" and lines["live kernel"] == "no"
    assert lines["kernel release"] == d.truth["release"]
    assert lines["dump level"].startswith("31 (left out: zero pages, cache pages, private "
                                          "cache pages, user pages, free pages)")
    assert lines["pages"].startswith(f"{head['max_mapnr']} page frames")
    assert lines["pages dumped"].startswith(f"{head['dumped']} (")
    assert lines["kdump header version"] == str(head["version"])
    assert lines["paging"] == "4-level page tables"  # the guest ran without la57
    info = json.loads(subprocess.run([sys.executable, "-m", "pykvm", "info", "--json", "-N",
                                      d.kallsyms, "-M", path], capture_output=True).stdout)
    assert info["pages_dumped"] == head["dumped"] and info["dump_level"] == 31


def test_progress_bar_on_a_terminal_only(dumps, tmp_path):
    d = dumps["kaslr-96M"]
    args = [sys.executable, "-m", "pykvm", "read", "--raw", "-p", "-n", str(64 << 20),
            "-N", d.kallsyms, "-M", d.path("vmcore.elf"), "0"]
    env = dict(os.environ, PYKVM_PROGRESS_DELAY="0")
    out = tmp_path / "mem"
    piped = subprocess.run(args, stdout=open(out, "wb"), stderr=subprocess.PIPE, env=env)
    assert piped.returncode == 0 and piped.stderr == b""
    assert out.stat().st_size == 64 << 20
    master, slave = pty.openpty()
    try:
        tty = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=slave, env=env)
        os.close(slave)
        slave = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert tty.returncode == 0
    assert b"read [" in drawn and b"100.0%" in drawn
