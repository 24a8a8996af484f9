"""Dumps cut short (a kdump that ran out of disk): they open, every byte that is
there reads as in the whole dump, what is missing raises FaultError saying the
dump is truncated, and info says how much is missing.

The truncated copies are the real dumps cut at a byte offset, made here in a
temporary directory.  Ground truth: the whole ELF dump of the same guest, the
file sizes, and (for makedumpfile's plain file) its page descriptors parsed here.
"""

from __future__ import annotations

import re
import struct

import pytest

import pykvm
from native_support import assert_unsupported, load_segments

PAGE = 4096
VARIANT = "kaslr-96M"


def cut(src: str, dst, size: int):
    with open(src, "rb") as f, open(dst, "wb") as out:
        out.write(f.read(size))
    return str(dst)


def scan(kd, elf, mapnr: int):
    """Every pfn: (pages read equal to the whole ELF dump, pfns lost to truncation)."""
    addrs = [pfn * PAGE for pfn in range(mapnr)]
    buf, res = kd.try_read_many(addrs, PAGE, physical=True)
    want, wres = elf.try_read_many(addrs, PAGE, physical=True)
    same, lost = 0, []
    for i in range(mapnr):
        if res[i] == PAGE:
            assert wres[i] == PAGE and buf[i * PAGE:(i + 1) * PAGE] == want[i * PAGE:(i + 1) * PAGE], \
                hex(i)
            same += 1
        elif res[i] == -14:  # EFAULT: unmapped, or lost
            try:
                kd.read(addrs[i], 8, physical=True)
            except pykvm.FaultError as e:
                if "is truncated" in str(e):  # (not the test's tmp path)
                    lost.append(i)
                    assert e.address == addrs[i]
                else:
                    assert wres[i] == -14, hex(i)  # not RAM in the whole dump either
    return same, lost


def truncated_figure(kd) -> tuple:
    m = re.fullmatch(r"(\d+) (bytes|pages) missing", str(kd.info["truncated"]))
    assert m, kd.info.get("truncated")
    return int(m.group(1)), m.group(2)


def needs_shim():
    return pykvm.has("pread") and pykvm.has("read_many") and pykvm.has("info")


@pytest.mark.parametrize("fraction", [0.6, 0.37])
def test_truncated_elf_vmcore(dumps, tmp_path, fraction):
    """QEMU's ELF dump cut mid-segment: opens; bytes before the cut read as before,
    after it FaultError "truncated"; info: the exact count of bytes missing."""
    d = dumps[VARIANT]
    src = d.path("vmcore.elf")
    segs = load_segments(src)  # parsed here: the file's PT_LOADs
    end = max(s["offset"] + s["filesz"] for s in segs)
    size = int(open(src, "rb").seek(0, 2) * fraction) | 1  # not page-aligned
    path = cut(src, tmp_path / "vmcore.elf", size)
    with pykvm.open(d.kallsyms, path) as kd, pykvm.open(d.kallsyms, src) as elf:
        banner = kd.symbol("linux_banner")
        try:
            assert kd.read_cstring(banner) == d.truth["banner"]
        except pykvm.FaultError as e:  # the kernel image itself was lost
            assert "is truncated" in str(e) or not pykvm.has("info")  # (native words)
        if not needs_shim():
            assert_unsupported(lambda: kd.info)
            return
        assert truncated_figure(kd) == (end - size, "bytes")
        same, lost = scan(kd, elf, d.truth["mem_mb"] << 8)
        assert same > 5000 and len(lost) > 5000
        # the page the cut runs through: its first bytes read, the rest faults
        seg = next(s for s in kd.info["segments"]
                   if s["space"] == "physical" and s["offset"] < size < s["offset"] + s["size"])
        pa = seg["start"] + (size - seg["offset"])
        head = pa & ~(PAGE - 1)
        assert kd.read(head, pa - head, physical=True) == elf.read(head, pa - head, physical=True)
        with pytest.raises(pykvm.FaultError, match="is truncated") as ei:
            kd.read(head, PAGE, physical=True)
        with pytest.raises(pykvm.FaultError, match="is truncated"):
            kd.read(pa, 1, physical=True)


def kdump_pages(path: str):
    """A (possibly truncated) x86-64 kdump file parsed here, plain or flattened:
    {pfn: lost} for every pfn bitmap 2 says is dumped (in a split dump's part: of
    its pfn range), lost meaning its descriptor
    or its page data is not in the file.  Zero pages share data stored first."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:12] == b"makedumpfile":  # flattened: rearrange, remembering the gaps
        pos, recs = 4096, []
        while pos + 16 <= len(raw):
            off, n = struct.unpack_from(">qq", raw, pos)
            pos += 16
            if off == -1:
                break
            n = min(n, len(raw) - pos)
            recs.append((off, n, pos))
            pos += n
        data = bytearray(max(o + n for o, n, _ in recs))
        have = bytearray(len(data))
        for o, n, p in recs:
            data[o:o + n] = raw[p:p + n]
            have[o:o + n] = b"\1" * n
    else:
        data, have = raw, None

    def there(off, n):
        return off + n <= len(data) and (have is None or all(have[off:off + n]))

    bs, sub, bmb, mapnr = struct.unpack_from("<iiII", data, 428)
    if struct.unpack_from("<i", data, 8)[0] >= 6:
        mapnr = struct.unpack_from("<Q", data, bs + 96)[0] or mapnr
    # a part of a split dump: its table holds its own pfns only
    start, end = 0, mapnr
    if struct.unpack_from("<i", data, bs + 12)[0]:
        start, end = struct.unpack_from("<QQ", data, bs + 80)
    b2 = (1 + sub) * bs + bmb // 2 * bs
    desc = (1 + sub + bmb) * bs
    pages, i = {}, 0
    for byte_at in range((mapnr + 7) // 8):
        byte = data[b2 + byte_at]
        for bit in range(8):
            if byte >> bit & 1 and start <= byte_at * 8 + bit < end:
                pos = desc + 24 * i
                lost = not there(pos, 24)
                if not lost:
                    off, size = struct.unpack_from("<qI", data, pos)
                    lost = not there(off, size)
                pages[byte_at * 8 + bit] = lost
                i += 1
    return pages


def check_kdump(kd, elf, pages: dict) -> tuple:
    """Each dumped pfn: lost ones raise FaultError "is truncated", the others read
    as the whole ELF dump has them.  Returns (read, lost)."""
    pfns = sorted(pages)
    addrs = [p * PAGE for p in pfns]
    buf, res = kd.try_read_many(addrs, PAGE, physical=True)
    want, wres = elf.try_read_many(addrs, PAGE, physical=True)
    read = lost = 0
    for i, pfn in enumerate(pfns):
        if pages[pfn]:
            with pytest.raises(pykvm.FaultError, match="the dump is truncated") as ei:
                kd.read(addrs[i], 8, physical=True)
            assert ei.value.address == addrs[i]
            lost += 1
        else:
            assert res[i] == PAGE, hex(pfn)
            if wres[i] == PAGE:  # (QEMU's kdump also has the firmware pages)
                assert buf[i * PAGE:(i + 1) * PAGE] == want[i * PAGE:(i + 1) * PAGE], hex(pfn)
            read += 1
    return read, lost


@pytest.mark.parametrize("where", ["data", "descriptors"])
def test_truncated_plain_kdump(dumps, tmp_path, where):
    """makedumpfile's LZO dump cut in its page data, or in its descriptor table: opens;
    pages there read as in the ELF dump, lost ones raise FaultError "the dump is
    truncated", and info's "N pages missing" counts the pages whose descriptor or data
    is gone (a cut in the descriptor table loses every page: the data comes after)."""
    d = dumps[VARIANT]
    src = d.path("vmcore.mdf-lzo")
    full = open(src, "rb").seek(0, 2)
    with open(src, "rb") as f:
        head = f.read(8192)
    bs, sub, bmb = struct.unpack_from("<iii", head, 428)
    size = int(full * 0.55) if where == "data" else (1 + sub + bmb) * bs + 24 * 3000 + 7
    path = cut(src, tmp_path / "vmcore.mdf-lzo", size)
    pages = kdump_pages(path)
    with pykvm.open(d.kallsyms, path) as kd, pykvm.open(d.kallsyms, d.path("vmcore.elf")) as elf:
        if not needs_shim():
            assert_unsupported(lambda: kd.info)
            return
        read, lost = check_kdump(kd, elf, pages)
        assert truncated_figure(kd) == (lost, "pages")
        if where == "data":
            assert read > 1000 and lost > 1000
        else:
            assert read == 0 and lost == len(pages)
            with pytest.raises(pykvm.FaultError, match="the dump is truncated"):
                kd.read(kd.symbol("linux_banner"), 8)


def test_truncated_flattened_kdump(dumps, tmp_path):
    """QEMU's kdump-zlib (flattened) cut in the middle of a record: opens; what is
    there reads as in the ELF dump, the rest raises FaultError "the dump is truncated"
    (pieces of the descriptor table come late in the stream: lost with the end)."""
    d = dumps[VARIANT]
    src = d.path("vmcore.kdump-zlib")
    full = open(src, "rb").seek(0, 2)
    path = cut(src, tmp_path / "vmcore.kdump-zlib", int(full * 0.7) + 3)
    pages = kdump_pages(path)
    with pykvm.open(d.kallsyms, path) as kd, pykvm.open(d.kallsyms, d.path("vmcore.elf")) as elf:
        if not needs_shim():
            assert_unsupported(lambda: kd.info)
            return
        read, lost = check_kdump(kd, elf, pages)
        assert truncated_figure(kd) == (lost, "pages")
        assert read > 5000 and lost > 2000


def test_info_cli_says_truncated(dumps, tmp_path):
    """`pykvm info` prints the truncation."""
    import subprocess
    import sys
    d = dumps[VARIANT]
    path = cut(d.path("vmcore.mdf-lzo"), tmp_path / "cut", 9_000_000)
    res = subprocess.run([sys.executable, "-m", "pykvm", "info", "-N", d.kallsyms, "-M", path],
                         capture_output=True, text=True)
    if not pykvm.has("info"):
        assert res.returncode != 0
        return
    assert res.returncode == 0, res.stderr
    assert re.search(r"^truncated:\s+\d+ pages missing$", res.stdout, re.M), res.stdout
