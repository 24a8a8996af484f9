"""Documentation: the man pages (man/) pass `mandoc -Tlint` without a
warning, cover every function of the installed headers and every command of
the CLI, and `make install-lib` installs them under PREFIX/share/man;
`make docs` builds the API reference from the docstrings with Sphinx,
warnings as errors."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from conftest import ROOT, run_make

MAN = ROOT / "man"


def names_in(page):
    return set(re.findall(r"^\.Nm (\w+)", page.read_text(), re.M))


def test_man_pages_pass_mandoc_lint():
    t0 = time.monotonic()
    res = run_make(ROOT, "lint-man")
    print(f"make lint-man: {time.monotonic() - t0:.1f} s")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mandoc -Tlint -W warning" in res.stdout and "WARNING" not in res.stderr + res.stdout
    for page in sorted(MAN.glob("*.[13]")):
        out = subprocess.run(["mandoc", "-Tascii", str(page)], capture_output=True, text=True)
        text = re.sub(".\b", "", out.stdout)  # no overstrike
        assert out.returncode == 0 and "NAME" in text and "SYNOPSIS" in text, page


def test_man3_covers_every_public_function():
    declared = set()
    for header in ("kvm.h", "kvm_ext.h"):
        declared |= set(re.findall(r"^[a-z][\w ]*?\*?\s*(kvm_\w+)\(", (ROOT / "csrc" / header).read_text(), re.M))
    assert {"kvm_open", "kvm_nlist", "kvm_read", "kvm_write", "kvm_close", "kvm_info"} <= declared
    documented = set().union(*(names_in(p) for p in MAN.glob("*.3")))
    assert declared <= documented, f"without a man page: {sorted(declared - documented)}"
    for page in ("kvm_open", "kvm_nlist", "kvm_read", "kvm_ext"):
        assert (MAN / f"{page}.3").is_file()


def test_pykvm_1_covers_every_command():
    res = subprocess.run([sys.executable, "-m", "pykvm", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    commands = set(re.findall(r"^    (\w+)\s", res.stdout, re.M))
    assert {"info", "nlist", "read"} <= commands
    page = (MAN / "pykvm.1").read_text()
    listed = set(re.findall(r"^\.It Cm (\w+)", page, re.M))
    assert commands <= listed, f"not in pykvm.1: {sorted(commands - listed)}"
    options = set(re.findall(r"^  (-\w|--[\w-]+)", res.stdout, re.M)) - {"-h", "--help", "--version"}
    for opt in options:
        assert f"Fl {opt.lstrip('-')}" in page or f"Fl -{opt.lstrip('-')}" in page, opt


def test_install_lib_installs_the_man_pages(tmp_path):
    res = run_make(ROOT, "install-lib", f"PREFIX={tmp_path}")
    assert res.returncode == 0, res.stdout + res.stderr
    for page in MAN.glob("*.[13]"):
        dest = tmp_path / "share" / "man" / f"man{page.suffix[1:]}" / page.name
        assert dest.read_bytes() == page.read_bytes(), dest
    out = subprocess.run(["man", "-M", str(tmp_path / "share" / "man"), "-P", "cat", "3", "kvm_open"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "MANWIDTH": "80"})
    assert out.returncode == 0 and "kvm_openfiles" in re.sub(".\b", "", out.stdout), out.stderr


def test_make_docs_builds_the_api_reference():
    t0 = time.monotonic()
    res = run_make(ROOT, "docs")
    print(f"make docs: {time.monotonic() - t0:.1f} s")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "sphinx -W" in res.stdout
    html = (ROOT / "build" / "docs" / "api.html").read_text()
    for name in ("pykvm.open", "pykvm.Kvm.read_cstring", "pykvm.Symbol", "pykvm.KvmInfo",
                 "pykvm.FaultError", "pykvm.compat.kvm_nlist"):
        assert f'id="{name}"' in html, name
    assert "SymbolNotFoundError" in html and "Raises" in html


def test_readme_links_the_docs_and_the_sdist_holds_them():
    readme = (ROOT / "README.md").read_text()
    assert "make docs" in readme and "docs/" in readme and "man/" in readme
    manifest = (ROOT / "MANIFEST.in").read_text().split("\n")
    assert "graft docs" in manifest and "graft man" in manifest
