"""Packaging: `make wheel` in a fresh copy gives an sdist holding what its tests
need and a repaired manylinux cp311-abi3 wheel (built here with 3.11) carrying the codec libraries;
that wheel installed into a fresh virtual environment reads the real
compressed dumps (LZO, zlib, snappy, zstd) as the guest printed them."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import DEBIAN_PYTHON, run_make

# makedumpfile's and the re-encoded dumps: one per codec the wheel carries.
CODEC_DUMPS = {"lzo": "vmcore.mdf-lzo", "zlib": "vmcore.mdf-zlib", "snappy": "vmcore.mdf-snappy",
               "zstd": "vmcore.mdf-zstd", "qemu-zlib": "vmcore.kdump-zlib"}
# What auditwheel must copy in (zlib and libstdc++ are part of every manylinux
# system, so a manylinux wheel links them from the system by design).
BUNDLED = ("liblzo2", "libsnappy", "libzstd")


@pytest.fixture(scope="module")
def wheel(debian_clone):
    """(tree, sdist, wheel, seconds) after `make wheel` in the fresh copy."""
    tree, demo, _ = debian_clone
    assert demo.returncode == 0, demo.stderr[-2000:]
    t0 = time.monotonic()
    res = run_make(tree, "wheel", f"PYTHON={DEBIAN_PYTHON}")
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    dist = tree / "dist"
    sdists = list(dist.glob("*.tar.gz"))
    wheels = list(dist.glob("*manylinux*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, os.listdir(dist)
    return tree, sdists[0], wheels[0], took


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A fresh virtual environment with only the repaired wheel (and cffi) installed."""
    _, _, whl, _ = wheel
    env_dir = tmp_path_factory.mktemp("wheelenv") / "env"
    t0 = time.monotonic()
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(env_dir)], check=True)
    res = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", str(whl)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return env_dir, time.monotonic() - t0


def test_wheel_tags_and_contents(wheel):
    _, _, whl, took = wheel
    print(f"make wheel (sdist, wheel from it, auditwheel repair): {took:.1f} s")
    name = whl.name
    assert "-cp311-abi3-manylinux" in name and name.endswith("_x86_64.whl"), name
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith("/METADATA"))))
        wheel_info = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    assert "pykvm/_build.py" not in names
    assert "pykvm/_kvm.abi3.so" in names and "pykvm/_fast.abi3.so" in names and "pykvm/py.typed" in names
    assert "pykvm/_kvm.pyi" in names and "pykvm/_fast.pyi" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    libs = [n for n in names if n.startswith("pylibkvm.libs/")]
    for lib in BUNDLED:
        assert any(Path(n).name.startswith(lib) for n in libs), (lib, libs)
    assert "Tag: cp311-abi3-manylinux" in wheel_info
    assert meta["License-Expression"] == "BSD-2-Clause"
    assert meta["Requires-Python"] == ">=3.8"
    urls = meta.get_all("Project-URL")
    assert urls and any(u.startswith("Source") for u in urls)
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.8" in classifiers
    assert "Programming Language :: Python :: 3.13" in classifiers


def test_sdist_holds_what_its_tests_need(wheel):
    tree, sdist, _, _ = wheel
    with tarfile.open(sdist) as t:
        top = t.getnames()[0].split("/")[0]
        names = {n[len(top) + 1:] for n in t.getnames()}
    needed = ["LICENSE", "README.md", "Makefile", "pykvm/_build.py", "csrc/libkvm.map",
              "csrc/libkvm.pc.in", "csrc/pykvm_api.h", "tests/conftest.py", "tests/native_support.py",
              "tests/kdump_pages.py", "tests/c/portable_tool.c", "fixtures/demo/vmcore-demo.elf",
              "fixtures/demo/kallsyms-demo.txt", "fixtures/demo/truth.json",
              "fixtures/proc/make_cores.py", "fixtures/proc/target.c",
              "fixtures/kernel/make_dumps.py", "fixtures/kernel/guest.py", "examples/demo.py",
              "examples/kvmcat.c", "man/kvm_open.3", "man/pykvm.1", "docs/conf.py", "docs/api.rst"]
    missing = [n for n in needed if n not in names]
    assert not missing, missing
    # every test and fixture file in the tree is there
    src = Path(tree)
    for d in ("tests", "fixtures", "examples", "csrc", "man", "docs"):
        for f in src.joinpath(d).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                assert str(f.relative_to(src)) in names, f
    assert not any(n.endswith((".so", ".pyc", ".o")) for n in names)


def test_installed_wheel_reads_compressed_dumps(installed, dumps, tmp_path):
    """From another directory, with no source tree on the path: the wheel's own
    module and bundled codec libraries read each codec's dump as the guest printed."""
    env_dir, took = installed
    print(f"fresh venv + pip install of the wheel: {took:.1f} s")
    d = dumps["kaslr-96M"]
    script = (
        "import json, sys, pykvm\n"
        "out = {'file': pykvm.__file__, 'features': pykvm.features(), 'read': {}}\n"
        "for codec, path in json.loads(sys.argv[1]).items():\n"
        "    with pykvm.open(sys.argv[2], path) as kd:\n"
        "        out['read'][codec] = [kd.read_cstring(kd.symbol('linux_banner')),\n"
        "                              kd.read_cstring(kd.symbol('init_uts_ns') + 130)]\n"
        "print(json.dumps(out))\n")
    paths = {codec: d.path(f) for codec, f in CODEC_DUMPS.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    res = subprocess.run([str(env_dir / "bin" / "python"), "-c", script, json.dumps(paths),
                          d.kallsyms], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["file"].startswith(str(env_dir)), out["file"]
    assert all(out["features"][c] for c in ("zlib", "lzo", "snappy", "zstd")), out["features"]
    for codec, (banner, release) in out["read"].items():
        assert banner == d.truth["banner"], codec
        assert release == d.truth["release"], codec
    # the codec libraries come from the wheel, not from the system
    so = next((env_dir / "lib").glob("python3*/site-packages/pykvm/_kvm.abi3.so"))
    ldd = subprocess.run(["ldd", str(so)], capture_output=True, text=True, check=True).stdout
    for lib in BUNDLED:
        line = next(l for l in ldd.splitlines() if lib in l)
        assert "pylibkvm.libs" in line, line
    ver = subprocess.run([str(env_dir / "bin" / "pykvm"), "--version"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert ver.returncode == 0 and ver.stdout.startswith("pykvm 0.1.0"), ver.stdout + ver.stderr
