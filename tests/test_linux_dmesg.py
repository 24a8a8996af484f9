"""pykvm dmesg / pykvm.linux.dmesg against makedumpfile --dump-dmesg and the guest's own log."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import pykvm
from pykvm.linux import dmesg, format_makedumpfile
from conftest import ROOT, VARIANTS
from panic_fixtures import module_panic_cases, panic, panic_cases  # noqa: F401


@pytest.mark.parametrize("namelist", [False, True], ids=["no-namelist", "kallsyms"])
@pytest.mark.parametrize("variant,fname", panic_cases())
def test_text_is_makedumpfiles(panic, variant, fname, namelist):
    d = panic[variant]
    with pykvm.open(d.kallsyms if namelist else None, d.path(fname)) as kd:
        text = format_makedumpfile(dmesg(kd))
    assert text == d.makedumpfile_dmesg(fname)


@pytest.mark.parametrize("variant,fname", panic_cases())
def test_records_hold_the_guests_log(panic, variant, fname):
    d = panic[variant]
    with pykvm.open(None, d.path(fname)) as kd:
        records = dmesg(kd)
    assert not [r for r in records if r.error]
    seqs = [r.seq for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    texts = [r.text.decode("utf-8", "replace") for r in records]
    assert f"PYKVM-LOG {d.truth['logline']}" in texts
    # Every line busybox dmesg printed in the guest (single-line records) is a record,
    # with the same timestamp to the microsecond.
    ours = {(r.ts_nsec // 1000, t) for r, t in zip(records, texts)}
    guest = []
    for line in d.text("dmesg.txt").splitlines():
        m = re.fullmatch(r"\[\s*(\d+)\.(\d{6})\] (.*)", line)
        if m:
            guest.append((int(m.group(1)) * 1000000 + int(m.group(2)), m.group(3)))
    assert len(guest) > 500
    missing = [g for g in guest if g not in ours and g[1].strip()]
    # multi-line records print as several lines in the guest: allow only those
    assert len(missing) < len(guest) // 50, missing[:5]
    assert any("sysrq: Show State" in t for t in texts)
    assert any(t.startswith("Kernel panic - not syncing: sysrq triggered crash") for t in texts)


KERN_EMERG, KERN_NOTICE, KERN_INFO, KERN_DEBUG = 0, 5, 6, 7
LOG_KERN, LOG_USER = 0, 1


def _console_lines(d):
    """{(timestamp in us, text)} of the lines the guest's console printed before the panic
    (the first kernel's only: a kdump guest's console goes on with the capture kernel)."""
    console = d.text("console.log").replace("\r", "")
    out = set()
    for line in console[:console.index("Kernel panic - not syncing")].splitlines():
        m = re.match(r"\[\s*(\d+)\.(\d{6})\] (.*)", line)
        if m:
            out.add((int(m.group(1)) * 1000000 + int(m.group(2)), m.group(3)))
    return out


@pytest.mark.parametrize("variant,fname", panic_cases() + module_panic_cases())
def test_levels_and_facilities(panic, variant, fname):
    """Each record's level and facility against what the guest shows independently.

    - The guest's init wrote the log line to /dev/kmsg without a <N> prefix: the kernel's
      devkmsg_write gives such a line facility LOG_USER (1) and the level
      default_message_loglevel (console_printk[1]); no other record is from user space.
    - Lines whose level the kernel source fixes: the banner (pr_notice in start_kernel),
      sysrq's action messages (pr_info in __handle_sysrq), the panic (pr_emerg in panic()).
    - Before the panic the console printed exactly the records below the default console
      log level (console_printk[3]; the command line sets no loglevel): a KERN_DEBUG record
      is in the log but not on the console, every other one is on both.
    """
    d = panic[variant]
    with pykvm.open(d.kallsyms, d.path(fname)) as kd:
        records = dmesg(kd)
        printk = kd.symbol("console_printk")  # int console_printk[4]
        default_level, console_default = kd.read_u32(printk + 4), kd.read_u32(printk + 12)
    assert default_level == 4 and console_default == 7  # Debian's CONFIG_*_LOGLEVEL_DEFAULT
    assert all(r.level is not None and 0 <= r.level <= 7 for r in records)
    texts = [r.text.decode("utf-8", "replace") for r in records]
    line = f"PYKVM-LOG {d.truth['logline']}"
    user = [(t, r.facility, r.level) for r, t in zip(records, texts) if r.facility != LOG_KERN]
    assert user == [(line, LOG_USER, default_level)]
    by_text = {t: r for r, t in zip(records, texts)}
    assert by_text[d.truth["banner"].rstrip("\n")].level == KERN_NOTICE
    panics = [r for r, t in zip(records, texts) if t.startswith("Kernel panic - not syncing")]
    assert [r.level for r in panics] == [KERN_EMERG]
    assert by_text["sysrq: Show State"].level == KERN_INFO
    if variant != "softdog":
        assert by_text["sysrq: Trigger a crash"].level == KERN_INFO
    console = _console_lines(d)
    shown, hidden = [], []
    for r, t in zip(records, texts):
        if r.seq >= panics[0].seq:
            break
        first = t.split("\n", 1)[0]
        if not first.strip():
            continue
        on_console = (r.ts_nsec // 1000, first) in console
        (shown if r.level < console_default else hidden).append((on_console, r.level, first))
    assert sum(1 for s in hidden if s[1] == KERN_DEBUG) >= 5  # the log has some to check
    assert not [s for s in hidden if s[0]], "a record above the console's level was printed"
    assert [s for s in shown if not s[0]] == [], "a record below the console's level was not printed"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("fname", ["vmcore.elf", "vmcore-paging.elf", "vmcore.kdump-zlib",
                                   "vmcore.mdf-zlib", "vmcore.mdf-zstd", "vmcore.mdf-lzo.flat"])
def test_idle_dumps_every_format(reencoded, variant, fname, tmp_path):
    """The idle guests' dumps: every format gives makedumpfile's text of the LZO dump."""
    d = reencoded[variant]
    out = tmp_path / "dmesg.txt"
    subprocess.run(["makedumpfile", "--dump-dmesg", d.path("vmcore.mdf-lzo"), str(out)],
                   check=True, capture_output=True)
    with pykvm.open(None, d.path(fname)) as kd:
        assert format_makedumpfile(dmesg(kd)) == out.read_bytes().decode("utf-8",
                                                                            "surrogateescape")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pykvm", *args], capture_output=True,
                          cwd=ROOT)


@pytest.mark.parametrize("variant,fname", panic_cases()[:2] + panic_cases()[-1:])
def test_cli(panic, variant, fname):
    d = panic[variant]
    r = cli("dmesg", "-M", d.path(fname))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode("utf-8", "surrogateescape") == d.makedumpfile_dmesg(fname)
    r = cli("dmesg", "--json", "-M", d.path(fname))
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert {"seq", "timestamp_ns", "caller_id", "text"} <= set(recs[0])
    assert recs[0]["text"] == d.truth["banner"].rstrip("\n")
    assert any(x["text"] == f"PYKVM-LOG {d.truth['logline']}" for x in recs)
    # the log line was written by the guest's init: PID 1
    line = next(x for x in recs if x["text"] == f"PYKVM-LOG {d.truth['logline']}")
    assert line["caller_id"] == 1
    assert (line["facility"], line["level"]) == (LOG_USER, 4)
    assert all(0 <= x["level"] <= 7 and "facility" in x for x in recs)
    assert (recs[0]["facility"], recs[0]["level"]) == (LOG_KERN, KERN_NOTICE)


def test_cli_bad_usage():
    assert cli("dmesg", "--no-such-option").returncode == 2
    r = cli("dmesg", "-M", "/nonexistent/vmcore")
    assert r.returncode == 2 and b"/nonexistent/vmcore" in r.stderr


def test_text_loads_no_type_system(panic):
    """import pykvm and the text log need no kernel types: the type system is imported on
    the first type question (--json's levels), not before."""
    path = panic["kdump"].path("vmcore.elf")
    code = ("import sys, io, contextlib\n"
            "import pykvm\n"
            "print('pykvm.btf.typesys' in sys.modules)\n"
            "from pykvm.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(sys.argv[1:])\n"
            "print('pykvm.btf.typesys' in sys.modules)\n")
    for args, loaded in [(["dmesg", "-M", path], False), (["dmesg", "--json", "-M", path], True)]:
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["False", str(loaded)], args


def test_escape_every_byte():
    """Each byte as makedumpfile prints it: printable ASCII and \\t \\v \\f \\r as themselves,
    a newline followed by the stamp's indent, anything else as \\xNN."""
    from pykvm.linux.printk import Record, _escape

    def one(c):
        if c == 0x0A:
            return "\n" + "  "
        return chr(c) if 0x20 <= c < 0x7F or c in (9, 11, 12, 13) else f"\\x{c:02x}"
    every = bytes(range(256))
    assert _escape(every, "  ") == "".join(one(c) for c in every)
    assert _escape(b"plain text", "  ") == "plain text"
    r = Record(7, 12 * 10**9 + 345678999, 0, b"a\nb\x00")
    assert format_makedumpfile([r]) == "[   12.345678] a\n               b\\x00\n"
