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
from panic_fixtures import panic, panic_cases  # noqa: F401


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


def test_cli_bad_usage():
    assert cli("dmesg", "--no-such-option").returncode == 2
    r = cli("dmesg", "-M", "/nonexistent/vmcore")
    assert r.returncode == 2 and b"/nonexistent/vmcore" in r.stderr
