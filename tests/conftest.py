"""Shared fixtures: the real artifacts that fixtures/ scripts produce.

Process cores come from fixtures/proc/make_cores.py and kernel crash dumps
from fixtures/kernel/make_dumps.py; both cache under $PYKVM_CACHE
(~/.cache/pykvm) and are run here once per session (seconds when cached),
so `pytest` alone works after `make build`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# tests/platform reads a real FreeBSD or illumos kernel through its own
# libkvm: collected there (the VM CI), not on Linux.
if not sys.platform.startswith(("freebsd", "sunos")):
    collect_ignore = ["platform"]
CACHE = Path(os.environ.get("PYKVM_CACHE", Path.home() / ".cache" / "pykvm"))


def run_fixture_script(script: str, *args: str) -> None:
    res = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")


class ProcCores:
    """The gcore'd and kernel-dumped process cores, with the program's own ground truth."""

    def __init__(self, root: Path):
        self.root = root
        self.namelists = json.loads((root / "namelists.json").read_text())["files"]

    def path(self, name: str) -> str:
        return str(self.root / name)

    def truth(self, name: str) -> dict:
        return json.loads((self.root / f"{name}.json").read_text())

    def exe(self, core_name: str) -> str:
        return self.truth(core_name)["exe"]

    def core(self, core_name: str) -> str:
        return self.truth(core_name)["core"]


@pytest.fixture(scope="session")
def proc() -> ProcCores:
    run_fixture_script("fixtures/proc/make_cores.py", str(CACHE / "proc"))
    return ProcCores(CACHE / "proc")


def globals_of(truth: dict) -> dict:
    return {g["name"]: g for g in truth["globals"]}


class KernelDump:
    """One boot of the real Debian kernel under QEMU and its dumps, with the guest's own truth."""

    def __init__(self, root: Path):
        self.root = root
        self.variant = root.name
        self.truth = json.loads((root / "truth.json").read_text())
        self.kallsyms = str(root / "kallsyms.txt")
        self._syms: dict | None = None

    def path(self, fmt: str) -> str:
        return str(self.root / fmt)

    @property
    def syms(self) -> dict:
        """name -> (address, type letter, module) from the guest's /proc/kallsyms."""
        if self._syms is None:
            table: dict = {}
            for line in open(self.kallsyms):
                parts = line.split()
                module = parts[3].strip("[]") if len(parts) > 3 else None
                table.setdefault((parts[2], module), (int(parts[0], 16), parts[1], module))
            self._syms = table
        return self._syms

    @property
    def phys_base(self) -> int:
        """The guest's phys_base, from its own /proc/iomem and kallsyms."""
        return int(self.truth["text_phys"], 16) - (int(self.truth["text_virt"], 16)
                                                   - 0xffffffff80000000)

    def addr(self, name: str, module: str | None = None) -> int:
        return self.syms[(name, module)][0]

    def __repr__(self) -> str:
        return self.variant


VARIANTS = ["nokaslr-96M", "kaslr-96M", "kaslr-256M"]
FORMATS = ["vmcore.elf", "vmcore-paging.elf", "vmcore.kdump-zlib", "vmcore.mdf-lzo", "vmcore.mdf-zlib"]


@pytest.fixture(scope="session")
def dumps() -> dict:
    """variant -> KernelDump; generated (or taken from the cache) by fixtures/kernel/make_dumps.py."""
    run_fixture_script("fixtures/kernel/make_dumps.py")
    base = CACHE / "dumps" / "current"
    return {v: KernelDump((base / v).resolve()) for v in VARIANTS}


@pytest.fixture(scope="session")
def reencoded(dumps) -> dict:
    """The dumps, with fixtures/kernel/reversion.py's re-encodings of vmcore.mdf-lzo
    (vmcore.mdf-v1..v5, -i386, -arm, -be64, -be32) beside it."""
    run_fixture_script("fixtures/kernel/reversion.py")
    return dumps


# ---- set-up and packaging: a fresh copy of the repository, as a clone has it ----

DEBIAN_PYTHON = "/usr/bin/python3"


def fresh_copy(dest: Path) -> Path:
    """The files a clone of this tree has (git's tracked files, as they are now)."""
    import shutil

    res = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True)
    if res.returncode == 0 and res.stdout:
        names = [n for n in res.stdout.decode().split("\0") if n]
    else:  # an unpacked sdist: everything but build products
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not {"build", "dist", ".venv", "__pycache__"} & set(p.parts)
                 and not p.name.startswith("_kvm.")]
    for name in names:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def run_make(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """make in tree, with none of this run's build or environment settings; in
    this repository itself, with the environment running these tests."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYKVM_BACKEND", "PYKVM_NATIVE", "PYKVM_WITHOUT", "PYTHON",
                                    "VIRTUAL_ENV", "MAKE"))}
    environ.update(env)
    extra = []
    if Path(tree).resolve() == ROOT and Path(sys.prefix, "pykvm-base").is_file():
        extra = [f"VENV={sys.prefix}"]
    return subprocess.run(["make", "--no-print-directory", "-C", str(tree), *extra, *args],
                          capture_output=True, text=True, env=environ, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def debian_clone(tmp_path_factory):
    """(tree, result, seconds): a fresh copy after `make demo PYTHON=/usr/bin/python3`."""
    import time

    tree = fresh_copy(tmp_path_factory.mktemp("clone") / "pykvm")
    t0 = time.monotonic()
    res = run_make(tree, "demo", f"PYTHON={DEBIAN_PYTHON}")
    return tree, res, time.monotonic() - t0
