"""The panic dumps of fixtures/kernel/make_panic.py, with what the guests printed themselves.

Import the fixtures into a test module: ``from panic_fixtures import panic  # noqa: F401``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import CACHE, run_fixture_script

PANIC_VARIANTS = ["kdump", "qemu-panic"]


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
        """The non-'?' frames of the console's last Call Trace, as (function, offset, size,
        module) from `panic` down."""
        console = self.text("console.log").replace("\r", "")
        start = console.rindex("Call Trace:")
        frames = []
        for line in console[start:].splitlines()[1:]:
            body = re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line).strip()
            if body in ("<TASK>", "</TASK>"):
                continue
            m = re.fullmatch(r"(\? )?([\w.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[(\w+)\])?", body)
            if not m:
                break
            if not m.group(1):
                frames.append((m.group(2), int(m.group(3), 16), int(m.group(4), 16),
                               m.group(5)))
        names = [f[0] for f in frames]
        return frames[names.index("panic"):]

    def __repr__(self) -> str:
        return self.variant


@pytest.fixture(scope="session")
def panic() -> dict:
    """variant -> PanicDump, made (or taken from the cache) by fixtures/kernel/make_panic.py."""
    run_fixture_script("fixtures/kernel/make_panic.py")
    base = CACHE / "panic" / "current"
    return {v: PanicDump((base / v).resolve()) for v in PANIC_VARIANTS}


def panic_cases():
    """(variant, file) for every dump of every panic variant, known without building them."""
    files = {"kdump": ["vmcore.elf", "vmcore.mdf-lzo"],
             "qemu-panic": ["vmcore.elf", "vmcore.kdump-zlib", "vmcore.mdf-lzo"]}
    return [(v, f) for v in PANIC_VARIANTS for f in files[v]]
