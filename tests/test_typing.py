"""Typing: `mypy --strict` passes on examples/ and on the whole pykvm
package (every module: no override in pyproject.toml turns its errors off);
read_cstring's overloads give str or bytes by its encoding; info is a
TypedDict; a misspelt open option fails mypy and, at run time, raises
TypeError; the stubs of the compiled modules list what they really hold."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
import time

import pytest

import pykvm
import pykvm._fast

from conftest import ROOT

DEMO = ROOT / "fixtures" / "demo"


def mypy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--strict", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_mypy_strict_on_examples_and_pykvm():
    t0 = time.monotonic()
    res = mypy("examples/", "pykvm")
    print(f"mypy --strict examples/ pykvm: {time.monotonic() - t0:.1f} s")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("Success: no issues found")


def test_no_pykvm_module_is_exempt_from_mypy():
    try:
        import tomllib
    except ImportError:  # Python < 3.11: mypy's own TOML reader
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert not config.get("ignore_errors")
    for override in config.get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        ours = [m for m in modules if m.split(".")[0] == "pykvm"
                or fnmatch.fnmatchcase("pykvm", m) or fnmatch.fnmatchcase("pykvm.kvm", m)]
        assert not (ours and override.get("ignore_errors")), f"ignore_errors for {ours}"


USER_CODE = '''
import pykvm
with pykvm.open("kallsyms", "vmcore", cache_page=10) as kd:
    reveal_type(kd.read_cstring(kd.symbols["linux_banner"]))
    reveal_type(kd.read_cstring(0x1000, encoding=None))
    reveal_type(kd.read_cstring(0x1000, 64, False, None))
    reveal_type(kd.info["format"])
    reveal_type(kd.info["segments"][0]["start"])
    kd.info["formatt"]
    kd.read(kd.symbols["linux_banner"], 64).decode()
'''


def test_mypy_sees_typos_overloads_and_info(tmp_path):
    f = tmp_path / "user.py"
    f.write_text(USER_CODE)
    res = mypy(str(f))
    out = res.stdout
    assert res.returncode == 1, out
    assert re.search(r'user.py:3: error: Unexpected keyword argument "cache_page" for "open"', out), out
    revealed = [t.replace("builtins.", "") for t in re.findall(r'Revealed type is "([^"]+)"', out)]
    assert revealed == ["str", "bytes", "bytes", "str", "int"], out
    assert 'TypedDict "KvmInfo" has no key "formatt"' in out
    assert out.count("error:") == 2, out  # the typo and the unknown key: nothing else


def test_misspelt_option_is_a_type_error_at_run_time():
    with pytest.raises(TypeError, match="cache_page"):
        pykvm.open(DEMO / "kallsyms-demo.txt", DEMO / "vmcore-demo.elf", cache_page=10)  # type: ignore[call-arg]
    # the right spelling opens
    with pykvm.open(DEMO / "kallsyms-demo.txt", DEMO / "vmcore-demo.elf", cache_pages=10) as kd:
        assert kd.read_cstring(kd.symbols["linux_banner"]).startswith("Linux version ")


def stub_names(path):
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            out.setdefault("", set()).add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.setdefault("", set()).add(node.target.id)
    return out


def test_kvm_stub_lists_every_function_of_the_cdef():
    declared = set(re.findall(r"^[a-z][\w ]*?\*?\s*(pykvm_\w+)\(", (ROOT / "csrc" / "pykvm_api.h").read_text(),
                              re.M))
    assert len(declared) > 25
    stub = stub_names(ROOT / "pykvm" / "_kvm.pyi")["_Lib"]
    assert declared == stub, {"not in the stub": declared - stub, "not in the cdef": stub - declared}
    assert all(hasattr(pykvm._kvm.lib, name) for name in stub)


def test_fast_stub_lists_the_reader_methods():
    stub = stub_names(ROOT / "pykvm" / "_fast.pyi")
    classes = ("Reader", "Value", "MemberTable")
    for cls in classes:
        real = {n for n in vars(getattr(pykvm._fast, cls)) if not n.startswith("__")}
        assert stub[cls] - {"__init__", "__int__", "__index__", "__len__"} == real, cls
    assert stub[""] - {"Address", "WritableBuffer", "U64s"} == \
        {n for n in vars(pykvm._fast) if not n.startswith("_") and n not in classes}


def test_py_typed_and_stubs_ship():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'pykvm = \["py.typed", "\*\.pyi"\]', pyproject)
    for name in ("py.typed", "_kvm.pyi", "_fast.pyi"):
        assert (ROOT / "pykvm" / name).is_file()
