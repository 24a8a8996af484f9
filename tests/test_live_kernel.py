"""The live kernel path (/proc/kcore + /proc/kallsyms) for real, inside a QEMU guest.

tests/c/live_probe.c is built static against csrc/ and run as root in a fresh guest by
fixtures/kernel/live_guest.py (one boot for the whole module, ~20 s).  What it prints is
checked against that same boot's /proc/version, `uname -r` and /proc/kallsyms, which the
guest captures with busybox, never with the project's code.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from btf_truth import Layouts, bpftool_truth_dir, parse_bpftool
from conftest import ROOT

CFLAGS = ["-static", "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror",
          "-O1", "-g"]
START_KERNEL_MAP_TEXT = 0xffffffff81000000  # x86-64 _text without KASLR
NO_PADDR = 0xffffffffffffffff  # kcore's p_paddr for ranges that are not RAM or text


def shim_sources() -> list[str]:
    return sorted(str(p) for p in (ROOT / "csrc").glob("*.c")
                  if p.name not in ("pykvm_glue.c", "pykvm_native.c"))


def unescape(s: str) -> str:
    """Undo live_probe.c's put_str escaping (\\\\ \\n \\r \\t \\xNN)."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "x":
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        else:
            out.append({"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}[nxt])
            i += 2
    return "".join(out)


class LiveRun:
    """One guest boot: the probe's key=value lines, its stderr lines, the boot's truth."""

    def __init__(self, out: Path, seconds: float):
        self.seconds = seconds
        self.raw = out.read_text()
        self.values: dict[str, list[str]] = {}
        self.stderr: list[str] = []
        for line in self.raw.splitlines():
            key, eq, value = line.partition("=")
            if eq and key and " " not in key and ":" not in key:
                self.values.setdefault(key, []).append(value)
            elif line:
                self.stderr.append(line)  # what kvm_open's errstr printed
        self.version = Path(f"{out}.version").read_text()
        self.release = Path(f"{out}.release").read_text().strip()
        self.kallsyms_lines = Path(f"{out}.kallsyms").read_text().splitlines()
        self.syms: dict[tuple[str, str | None], list[int]] = {}
        for line in self.kallsyms_lines:
            parts = line.split()
            module = parts[3].strip("[]") if len(parts) > 3 else None
            self.syms.setdefault((parts[2], module), []).append(int(parts[0], 16))

    def get(self, key: str) -> str:
        assert key in self.values, f"probe printed no {key}=\n{self.raw}"
        vals = self.values[key]
        assert len(vals) == 1, f"{key} printed {len(vals)} times: {vals}"
        return vals[0]

    def num(self, key: str) -> int:
        return int(self.get(key).split()[0], 0)

    def string(self, key: str) -> str:
        return unescape(self.get(key))

    def addr(self, name: str, module: str | None = None) -> int:
        (value,) = self.syms[(name, module)]
        return value

    def kcore_loads(self) -> list[tuple[int, int, int, int, int]]:
        """kcore's PT_LOADs as the probe read them raw: (vaddr, paddr, offset, filesz, memsz)."""
        out = []
        for v in self.values["kcore.phdr"]:
            typ, *rest = (int(x, 0) for x in v.split())
            if typ == 1:
                out.append(tuple(rest))
        return out

    def segments(self, prefix: str, space: str) -> list[tuple[int, int, int, int]]:
        """The shim's segments (start, memsz, filesz, offset) from kvm_info."""
        out = []
        for v in self.values.get(f"{prefix}.info.segment", []):
            sp, *nums = v.split()
            if sp == space:
                out.append(tuple(int(x, 0) for x in nums))
        return out


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveRun:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.fail("qemu-system-x86_64 is not installed: the live-kernel test boots a QEMU "
                    "guest; run `make fixtures` (it installs qemu-system-x86 and busybox-static)")
    if not Path("/bin/busybox").exists():
        pytest.fail("/bin/busybox (package busybox-static) is missing: run `make fixtures`")
    tmp = tmp_path_factory.mktemp("live")
    probe = tmp / "live_probe"
    # With libbpf (static: libbpf.a, libelf.a, libz.a from the -dev packages the
    # build already needs) the probe asks the live kernel's BTF for types too.
    cmd = ["cc", *CFLAGS, "-DHAVE_BTF", f"-I{ROOT / 'csrc'}",
           str(ROOT / "tests" / "c" / "live_probe.c"), *shim_sources(), "-o", str(probe),
           "-lpthread", "-lbpf", "-lelf", "-lz"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"building the static probe failed (needs libc.a, package libc6-dev):\n"
                    f"{' '.join(cmd)}\n{res.stderr[-4000:]}")
    out = tmp / "out.txt"
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, str(ROOT / "fixtures" / "kernel" / "live_guest.py"),
                          "--binary", str(probe), "--out", str(out),
                          # libbpf's copy of the kernel's BTF is ~20 MB per handle: at 96 MiB
                          # the guest's OOM killer took the probe now and then.
                          "--mem", "256", "--", "--kptr-restrict"],
                         capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - t0
    if res.returncode != 0 or not out.exists():
        pytest.fail(f"live_guest.py exited with {res.returncode}:\n{res.stdout[-3000:]}\n"
                    f"{res.stderr[-3000:]}\n--- probe output ---\n"
                    f"{out.read_text()[-3000:] if out.exists() else '(none)'}")
    run = LiveRun(out, seconds)
    assert run.get("probe.done") == "1", run.raw
    assert run.get("probe.uid") == "0"
    return run


HANDLES = ["default", "explicit"]  # kvm_open(NULL, NULL, ...) and the files named


@pytest.mark.parametrize("p", HANDLES)
def test_open_is_live_kcore(live, p):
    assert live.get(f"{p}.open") == "ok"
    info = {k: live.get(f"{p}.info.{k}") for k in
            ("format", "corefile", "namelist", "live", "kernel", "writable", "vmcoreinfo",
             "osrelease", "word_size", "arch", "translation", "symbol_displacement")}
    assert info == {"format": "kcore", "corefile": "/proc/kcore", "namelist": "/proc/kallsyms",
                    "live": "1", "kernel": "1", "writable": "0", "vmcoreinfo": "1",
                    "osrelease": live.release, "word_size": "64", "arch": "x86_64",
                    "translation": "1", "symbol_displacement": "0"}
    # Every /proc/kallsyms line became a symbol (read to EOF although its size is 0).
    assert live.num(f"{p}.info.symbols") == len(live.kallsyms_lines)
    assert live.num(f"{p}.symcount") == len(live.kallsyms_lines)
    assert live.get(f"{p}.close") == "0"


@pytest.mark.parametrize("p", HANDLES)
def test_symbols_are_the_boots_kallsyms(live, p):
    assert live.num(f"{p}.nlist_rc") == 0
    for name in ("linux_banner", "init_uts_ns", "jiffies_64", "_stext"):
        assert live.num(f"{p}.sym.{name}") == live.addr(name), name
    # __this_module exists once per loaded module; the one of qemu_fw_cfg by iteration.
    assert live.num(f"{p}.fw_cfg.this_module") == live.addr("__this_module", "qemu_fw_cfg")
    assert live.num(f"{p}.this_module_count") == sum(
        len(v) for (name, _), v in live.syms.items() if name == "__this_module")


@pytest.mark.parametrize("p", HANDLES)
def test_banner_release_and_module_name(live, p):
    assert live.num(f"{p}.banner_rc") == 511
    assert live.string(f"{p}.banner") == live.version  # /proc/version, "\n" included
    assert live.num(f"{p}.release_rc") == 65
    assert live.string(f"{p}.release") == live.release
    assert live.num(f"{p}.module_name_rc") == 56
    assert live.string(f"{p}.module_name") == "qemu_fw_cfg"
    assert live.get(f"{p}.module_state") == "0 rc=4"  # MODULE_STATE_LIVE


@pytest.mark.parametrize("p", HANDLES)
def test_jiffies_advance(live, p):
    assert live.num(f"{p}.jiffies_rc") == 8
    j1, j2 = live.num(f"{p}.jiffies1"), live.num(f"{p}.jiffies2")
    # 200 ms apart: HZ is 100..1000, and a TCG guest may lag but not by minutes.
    assert j1 < j2 < j1 + 60 * 1000, (j1, j2)


@pytest.mark.parametrize("p", HANDLES)
def test_kaslr_displacement_and_physical_addresses(live, p):
    text = live.addr("_text")
    assert live.num(f"{p}.kerndisp") == text - START_KERNEL_MAP_TEXT
    assert int(live.get(f"{p}.info.kerneloffset"), 16) == text - START_KERNEL_MAP_TEXT
    assert live.get(f"{p}.native") == "1"
    # The page-table walk agrees with /proc/iomem's "Kernel code" (physical _text) ...
    kernel_code = live.num("truth.kernel_code")
    assert live.num(f"{p}.physaddr._stext") == kernel_code + live.addr("_stext") - text
    assert live.num(f"{p}.physaddr.linux_banner") == kernel_code + live.addr("linux_banner") - text
    # ... and physical reads through kcore's RAM segments give the same bytes.
    assert live.num(f"{p}.banner_phys_rc") == 511
    assert live.string(f"{p}.banner_phys") == live.version


@pytest.mark.parametrize("p", HANDLES)
def test_segments_are_kcores_program_headers(live, p):
    loads = live.kcore_loads()
    assert loads, live.raw
    assert live.num("kcore.size") >= max(off + filesz for _, _, off, filesz, _ in loads)
    # kcore lists virtual ranges: every PT_LOAD is a virtual segment, as it is.
    want = sorted((v, memsz, filesz, off) for v, _, off, filesz, memsz in loads if memsz)
    assert sorted(live.segments(p, "virtual")) == want
    assert live.num(f"{p}.info.virtual_segments") == len(want)
    # Physical: RAM and text (p_paddr not all-ones); text aliases RAM, so ranges may be
    # trimmed, but every byte maps to the file offset its PT_LOAD gives.
    phys = [(pa, off, memsz) for _, pa, off, _, memsz in loads if pa != NO_PADDR and memsz]
    segs = live.segments(p, "physical")
    assert segs
    for start, memsz, filesz, off in segs:
        assert filesz == memsz
        assert any(pa <= start and start + memsz <= pa + m and off == o + (start - pa)
                   for pa, o, m in phys), (hex(start), hex(memsz))
    union, end = 0, 0
    for pa, _, m in sorted(phys):
        union += max(0, pa + m - max(pa, end))
        end = max(end, pa + m)
    assert sum(memsz for _, memsz, _, _ in segs) == union


def live_btf_questions(live, p):
    """(key, type, member or None, value) of the probe's type questions,
    each printed as "TYPE" (a size) or "TYPE|MEMBER.PATH" (an offset)."""
    out, i = [], 0
    while f"{p}.btf.{i}.question" in live.values:
        tname, _, member = live.get(f"{p}.btf.{i}.question").partition("|")
        out.append((f"{p}.btf.{i}", tname, member or None, live.num(f"{p}.btf.{i}.value")))
        i += 1
    return out


@pytest.mark.parametrize("p", HANDLES)
def test_types_from_the_live_kernels_btf(live, p):
    """kvm_type_size / kvm_member_offset on the live kernel read
    /sys/kernel/btf/vmlinux and the module's /sys/kernel/btf/qemu_fw_cfg:
    each answer equals bpftool's reading of the same kernel's BTF."""
    truth = bpftool_truth_dir()
    types = parse_bpftool(truth / "vmlinux.bpftool.txt")
    types.update(parse_bpftool(truth / "qemu_fw_cfg.bpftool.txt"))
    lay = Layouts(types)
    asked = live_btf_questions(live, p)
    assert len(asked) == 18, live.raw
    compared = 0
    for key, tname, member, value in asked:
        if "no_such" in tname + (member or ""):
            assert value == -1
            assert live.num(f"{key}.errno") == errno.ENOENT
            assert "no_such" in live.string(f"{key}.err")
            continue
        want = lay.offset(tname, member) if member else lay.size(tname)
        assert value == want, (key, value, want)
        compared += 1
    assert compared == 16
    # qemu_fw_cfg's type is only in the module's own BTF file.
    assert "fw_cfg_sysfs_entry" not in {t[1] for t in parse_bpftool(truth / "vmlinux.bpftool.txt").values()}
    assert [v for _, t, m, v in asked if t == "struct fw_cfg_sysfs_entry" and m is None] == \
        [lay.size("struct fw_cfg_sysfs_entry")]


@pytest.mark.parametrize("p", HANDLES)
def test_read_errors(live, p):
    # An address nothing maps: -1, EFAULT, a message, the address.
    assert live.num(f"{p}.unmapped.rc") == -1
    assert live.num(f"{p}.unmapped.errno") == errno.EFAULT
    assert live.string(f"{p}.unmapped.err") == "virtual address 0x1000 is not mapped in /proc/kcore"
    assert live.num(f"{p}.unmapped.erraddr") == 0x1000
    assert live.num(f"{p}.physaddr.unmapped") == 0xffffffffffffffff
    assert live.num(f"{p}.physaddr.unmapped.errno") == errno.EFAULT
    # A write on the O_RDONLY handle.
    assert live.num(f"{p}.write.rc") == -1
    assert live.num(f"{p}.write.errno") == errno.EBADF
    assert live.string(f"{p}.write.err") == "/proc/kcore: opened read-only: cannot write"


def test_open_flags(live):
    # O_WRONLY is refused before anything is opened.
    assert live.get("wronly.open") == "fail"
    assert live.num("wronly.open.errno") == errno.EINVAL
    assert live.get("wronly.openfiles") == "fail"
    assert live.num("wronly.openfiles.errno") == errno.EINVAL
    assert live.string("wronly.openfiles.errbuf") == "illegal flag 0x1 to kvm_open()"
    # O_RDWR opens (root may open kcore for writing) and reads, but kcore cannot be written.
    assert live.get("rdwr.open") == "ok"
    assert live.num("rdwr.read.rc") == 16
    assert live.num("rdwr.write.rc") == -1
    assert live.num("rdwr.write.errno") == errno.EROFS
    assert live.string("rdwr.write.err") == "/proc/kcore: the live kernel's memory cannot be written"


def test_kptr_restrict_and_non_root(live):
    # kptr_restrict=2: root's /proc/kallsyms shows zeros; the open says why.
    assert live.get("kptr2.set") == "ok"
    assert live.get("kptr2.openfiles") == "fail"
    assert live.num("kptr2.openfiles.errno") == errno.EACCES
    assert live.string("kptr2.openfiles.errbuf") == (
        "/proc/kallsyms: kallsyms addresses hidden (kptr_restrict); run as root")
    # A non-root user cannot open /proc/kcore at all (mode 0400, CAP_SYS_RAWIO).
    assert live.get("nonroot.uid") == "65534"
    for p in ("nonroot", "nonroot_syms"):
        assert live.get(f"{p}.openfiles") == "fail"
        assert live.num(f"{p}.openfiles.errno") == errno.EACCES
        assert live.string(f"{p}.openfiles.errbuf") == "/proc/kcore: Permission denied"
    assert live.get("nonroot.status") == "0"
    assert live.get("kptr2.restore") == "ok"


def test_errstr_prints_each_failure_once(live):
    """kvm_open's errstr: one line per failure, nothing for what succeeded (e.g. no
    "/proc/kallsyms: empty file" from trying to map it first)."""
    want = Counter()
    for prog in ("live", "live-explicit"):
        want[f"{prog}: virtual address 0x1000 is not mapped in /proc/kcore"] += 2
        want[f"{prog}: /proc/kcore: opened read-only: cannot write"] += 1
    want["live-wronly: illegal flag 0x1 to kvm_open()"] += 1
    want["live-rdwr: /proc/kcore: the live kernel's memory cannot be written"] += 1
    assert Counter(live.stderr) == want

