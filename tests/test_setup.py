"""Set-up as a new user does it: a fresh copy of the repository, Debian's own
Python (PEP 668 "externally managed"), `make demo`, then the README's commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import DEBIAN_PYTHON, ROOT, run_make as make
DEMO = ["-N", "fixtures/demo/kallsyms-demo.txt", "-M", "fixtures/demo/vmcore-demo.elf"]


def test_debian_python_is_externally_managed():
    """The premise: pip refuses to install into Debian's own Python (PEP 668)."""
    stdlib = subprocess.run([DEBIAN_PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert Path(stdlib, "EXTERNALLY-MANAGED").is_file()


def test_make_demo_with_debian_python_in_a_fresh_clone(debian_clone):
    tree, res, took = debian_clone
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "externally-managed-environment" not in res.stderr
    assert "matches the guest's own output: yes" in res.stdout
    base = (tree / ".venv" / "pykvm-base").read_text().strip()
    assert os.path.realpath(base) == os.path.realpath(DEBIAN_PYTHON)
    cfg = (tree / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg
    print(f"make demo with {DEBIAN_PYTHON} in a fresh copy: {took:.1f} s")


def test_readme_commands_work_after_make_demo(debian_clone, tmp_path):
    """.venv/bin/pykvm and .venv/bin/python import pykvm from any directory."""
    tree, res, _ = debian_clone
    assert res.returncode == 0
    truth = json.loads((tree / "fixtures" / "demo" / "truth.json").read_text())
    files = [str(tree / p) if p.startswith("fixtures") else p for p in DEMO]
    out = subprocess.run([str(tree / ".venv" / "bin" / "pykvm"), "read", "--string", *files,
                          "linux_banner"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == truth["banner"]  # the banner ends in its own newline
    # the activate step the README gives: plain `pykvm` on PATH
    out = subprocess.run(["sh", "-c", f". {tree}/.venv/bin/activate && pykvm nlist {' '.join(files)} "
                          "linux_banner"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[2] == "linux_banner"
    out = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-c",
                          "import pykvm, sys; print(pykvm.__file__, sys.prefix)"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0].startswith(str(tree / "pykvm"))


def test_make_build_again_is_a_no_op(debian_clone):
    tree, res, _ = debian_clone
    assert res.returncode == 0
    again = make(tree, "build", f"PYTHON={DEBIAN_PYTHON}")
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout and "built " not in again.stdout
    # a changed source rebuilds
    src = tree / "csrc" / "errors.c"
    src.write_text(src.read_text() + "\n/* touched */\n")
    third = make(tree, "build", f"PYTHON={DEBIAN_PYTHON}")
    assert third.returncode == 0 and "built " in third.stdout, third.stderr


def test_make_help_expands_its_variables():
    res = make(ROOT, "help", "PYKVM_CACHE=/some/cache")
    assert res.returncode == 0
    assert "$(" not in res.stdout
    assert "/some/cache" in res.stdout
    targets = {line.split()[0] for line in res.stdout.splitlines()[1:] if line.startswith("  ")}
    assert {"demo", "test", "build", "venv", "fixtures", "lib", "install-lib", "clean"} <= targets
