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
