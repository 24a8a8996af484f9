"""A shim built without a codec says so: a warning at build time, has() and
features() name it missing, and its dumps raise UnsupportedError (a
NotImplementedError) naming the codec, while the other codecs still read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import pykvm
from conftest import ROOT

CHECK = r"""
import json, sys, pykvm
out = {"has": pykvm.has("snappy"), "features": pykvm.features()}
try:
    with pykvm.open(sys.argv[1], sys.argv[2]) as kd:
        kd.read(kd.symbol("linux_banner"), 16)
    out["error"] = None
except pykvm.KvmError as e:
    out["error"] = [type(e).__name__, isinstance(e, NotImplementedError), e.errno, str(e)]
with pykvm.open(sys.argv[1], sys.argv[3]) as kd:
    out["lzo"] = kd.read_cstring(kd.symbol("linux_banner"))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def without_snappy(tmp_path_factory):
    """pykvm built with PYKVM_WITHOUT=snappy in a directory of its own; the build's stderr."""
    top = tmp_path_factory.mktemp("nosnappy")
    pkg = top / "pykvm"
    shutil.copytree(ROOT / "pykvm", pkg, ignore=shutil.ignore_patterns("_kvm*", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYKVM_")}
    env.update(PYKVM_BACKEND="shim", PYKVM_WITHOUT="snappy")
    res = subprocess.run([sys.executable, str(ROOT / "pykvm" / "_build.py"), "--build-dir",
                          str(top / "ext"), "--into", str(pkg)], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    return top, res.stderr


def test_build_warns_about_the_missing_codec(without_snappy):
    _, stderr = without_snappy
    assert "pykvm build: warning: no snappy codec" in stderr
    assert "UnsupportedError" in stderr
    assert "lzo" not in stderr and "zstd" not in stderr


def test_missing_codec_raises_unsupported_and_shows_in_features(without_snappy, dumps, tmp_path):
    top, _ = without_snappy
    d = dumps["kaslr-96M"]
    env = dict(os.environ, PYTHONPATH=str(top))
    res = subprocess.run([sys.executable, "-c", CHECK, d.kallsyms, d.path("vmcore.mdf-snappy"),
                          d.path("vmcore.mdf-lzo")], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["has"] is False
    assert out["features"]["snappy"] is False
    assert out["features"]["lzo"] and out["features"]["zlib"] and out["features"]["zstd"]
    name, is_nie, errno, msg = out["error"]
    assert name == "UnsupportedError" and is_nie
    assert "snappy" in msg and "libsnappy-dev" in msg and d.path("vmcore.mdf-snappy") in msg
    assert out["lzo"] == d.truth["banner"]


def test_has_knows_its_features():
    assert set(pykvm.features()) == set(pykvm.FEATURES)
    with pytest.raises(ValueError) as ei:
        pykvm.has("snapy")
    assert "snapy" in str(ei.value) and "snappy" in str(ei.value) and "pread" in str(ei.value)
