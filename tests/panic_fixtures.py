"""The panic dumps of fixtures/kernel/make_panic.py, with what the guests printed themselves.

Import the fixtures into a test module: ``from panic_fixtures import panic  # noqa: F401``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import CACHE, run_fixture_script

PANIC_VARIANTS = ["kdump", "qemu-panic", "softdog"]
# softdog panics in a module's timer callback (the others from sysrq-trigger, in init)
SOFTDOG_PANIC = "Kernel panic - not syncing: Software Watchdog Timer expired"


class PanicDump:
    """One panicked guest: its dumps and its ground truth files."""

    def __init__(self, root: Path):
        self.root = root
        self.variant = root.name
        self.truth = json.loads((root / "truth.json").read_text())
        self.files = self.truth["files"]
        self.kallsyms = str(root / "kallsyms.txt")

    def path(self, fname: str) -> str:
        return str(self.root / fname)

    def text(self, name: str) -> str:
        return (self.root / name).read_bytes().decode("utf-8", "replace")

    def makedumpfile_dmesg(self, fname: str) -> str:
        """makedumpfile --dump-dmesg of fname (QEMU's kdump-zlib: of the ELF dumped with it)."""
        ref = fname if (self.root / f"dmesg-{fname}.makedumpfile.txt").exists() else "vmcore.elf"
        return (self.root / f"dmesg-{ref}.makedumpfile.txt").read_bytes().decode(
            "utf-8", "surrogateescape")

    def console_panic_trace(self) -> list:
        """The non-'?' frames of the Call Trace the console printed with the panic, as
        (function, offset, size, module) from `panic` down.  The trace runs to the panic's
        "Kernel Offset:" line (or the capture kernel's first line), across <IRQ>/<TASK>
        markers and an interrupted context's register lines; a line without the kernel's
        timestamp (a user process writing to the console) is not part of it."""
        console = self.text("console.log").replace("\r", "")
        start = console.index("Call Trace:", console.index("Kernel panic - not syncing"))
        frames = []
        for line in console[start:].splitlines()[1:]:
            if not re.match(r"\[\s*\d+\.\d+\]", line):
                continue
            body = re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line).strip()
            if body.startswith(("Kernel Offset:", "---[ end", "Linux version ")):
                break
            # an interrupted kernel context's pc is its "RIP: 0010:" line
            body = re.sub(r"^RIP: 0010:", "", body)
            m = re.fullmatch(r"(\? )?([\w.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\w+)\])?", body)
            if m and not m.group(1):
                frames.append((m.group(2), int(m.group(3), 16), int(m.group(4), 16),
                               m.group(5)))
        names = [f[0] for f in frames]
        return frames[names.index("panic"):]

    def console_panic_task(self) -> tuple:
        """(cpu, pid, comm) of the console's "CPU: N PID: P Comm: C" line after the panic."""
        console = self.text("console.log").replace("\r", "")
        tail = console[console.index("Kernel panic - not syncing"):]
        m = re.search(r"CPU: (\d+) PID: (\d+) Comm: (\S+)", tail)
        return int(m.group(1)), int(m.group(2)), m.group(3)

    def __repr__(self) -> str:
        return self.variant


@pytest.fixture(scope="session")
def panic() -> dict:
    """variant -> PanicDump, made (or taken from the cache) by fixtures/kernel/make_panic.py."""
    run_fixture_script("fixtures/kernel/make_panic.py")
    base = CACHE / "panic" / "current"
    return {v: PanicDump((base / v).resolve()) for v in PANIC_VARIANTS}


QEMU_FILES = ["vmcore.elf", "vmcore.kdump-zlib", "vmcore.mdf-lzo"]


def panic_cases():
    """(variant, file) for every dump of the sysrq-triggered panics, known without
    building them."""
    files = {"kdump": ["vmcore.elf", "vmcore.mdf-lzo"], "qemu-panic": QEMU_FILES}
    return [(v, f) for v in ("kdump", "qemu-panic") for f in files[v]]


def module_panic_cases():
    """(variant, file) for every dump of the panic in module code (softdog)."""
    return [("softdog", f) for f in QEMU_FILES]


def check_panic_frames(frames, console):
    """Our frames from `panic` down are the console's (non-'?' ones, see
    console_panic_trace): the same functions in order and, below panic() (whose own
    offset differs: the console printed from inside it), the same return addresses to
    the byte, as function+offset/size [module]."""
    names = [f.function for f in frames]
    assert "panic" in names, names
    ours = frames[names.index("panic"):]
    assert [f.function for f in ours] == [c[0] for c in console]
    for f, (name, off, size, module) in zip(ours[1:], console[1:]):
        assert (f.function, f.offset, f.size, f.module) == (name, off, size, module)
    assert ours[0].size == console[0][2]


def guest_tasks(d: PanicDump) -> dict:
    """pid -> (comm, state letter, ppid, cpu) from the guest's /proc/PID/task/TID/stat."""
    out = {}
    for line in d.text("tasks.txt").splitlines():
        if not line.strip():
            continue
        close = line.rindex(")")
        pid = int(line[:line.index(" ")])
        fields = line[close + 2:].split()
        out[pid] = (line[line.index("(") + 1:close], fields[0], int(fields[1]), int(fields[36]))
    return out


def guest_modules(d: PanicDump, fname: str = "modules.txt") -> list:
    """(name, size, refcount, used_by, state, address) from the guest's /proc/modules
    (softdog: modules-armed.txt is /proc/modules once /dev/watchdog was open)."""
    out = []
    for line in d.text(fname).splitlines():
        name, size, ref, used, state, addr = line.split()
        users = [u for u in used.split(",") if u and u != "-"]
        out.append((name, int(size), None if ref == "-" else int(ref), users, state,
                    int(addr, 16)))
    return out


def sysrq_t_tasks(d: PanicDump) -> dict:
    """pid -> (state letter, timestamp in s, non-'?' frames [(function, offset, size,
    module)]) as the guest logged them on `echo t > /proc/sysrq-trigger` (the console's
    first listing of that pid; the timestamp is that of its "task:" line)."""
    console = d.text("console.log").replace("\r", "")
    out: dict = {}
    pid = None
    frames: list = []
    for line in console.splitlines():
        stamp = re.match(r"^\[\s*(\d+\.\d+)\]", line)
        body = re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line).strip()
        m = re.match(r"task:.*\bstate:(\w)\b.*\bpid:(\d+)\b", body)
        if m:
            state, pid, frames = m.group(1), int(m.group(2)), []
            ts = float(stamp.group(1)) if stamp else None
            continue
        if pid is None:
            continue
        if body == "</TASK>":
            out.setdefault(pid, (state, ts, frames))
            pid = None
            continue
        f = re.fullmatch(r"(\? )?([\w.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\w+)\])?", body)
        if f and not f.group(1):
            frames.append((f.group(2), int(f.group(3), 16), int(f.group(4), 16), f.group(5)))
    return out


def sysrq_t_traces(d: PanicDump) -> dict:
    """pid -> the non-'?' frames the guest logged for it on sysrq-t (see sysrq_t_tasks)."""
    return {pid: frames for pid, (_, _, frames) in sysrq_t_tasks(d).items()}
