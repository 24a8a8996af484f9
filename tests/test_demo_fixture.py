"""The committed cut-down dump (fixtures/demo): real pages of a real dump, still valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pykvm
from conftest import ROOT
from native_support import assert_unsupported

DEMO = ROOT / "fixtures" / "demo"


def test_demo_dump_reads_the_guest_truth():
    truth = json.loads((DEMO / "truth.json").read_text())
    with pykvm.open(DEMO / "kallsyms-demo.txt", DEMO / "vmcore-demo.elf") as kd:
        assert kd.read_cstring(kd.symbol("linux_banner")) == truth["banner"]
        assert kd.read_cstring(kd.symbol("init_uts_ns") + 130) == truth["release"]
        assert kd.read_cstring(kd.symbol("__this_module") + 24) == truth["module"]
        if pykvm.has("info"):
            assert kd.info["osrelease"] == truth["release"]
        else:
            assert_unsupported(lambda: kd.info)
        # pages not kept in the cut-down are not mapped, not silently zero
        with pytest.raises(pykvm.FaultError):
            kd.read(kd.symbol("_etext") & ~0xfff, 8)


def test_demo_script_runs():
    # the pykvm these tests import (make test-native runs them on other builds)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pykvm.__file__)))
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), str(DEMO)],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "matches the guest's own output: yes" in res.stdout
