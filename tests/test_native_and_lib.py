"""The native backend and the shim as a C library.

* Native glue (csrc/pykvm_native.c): which libkvm functions each platform
  branch calls, what a missing feature raises, illumos's captured stderr.
  `make test-native` builds the glue in FreeBSD mode and in illumos mode
  against the shim installed as a libkvm and runs this whole suite on each;
  the VM CI (.github/workflows/vm.yml) runs this file against the real
  libkvm of FreeBSD and OmniOS, where the live-kernel tests below apply.
* The shim as libkvm.so / libkvm.a (make lib, make install-lib): exported
  symbols, pkg-config, the kvmcat example and a tool written for the
  illumos/FreeBSD API, run on the real dump fixtures and process cores and
  compared with the Python API.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import pykvm
import pykvm._kvm
from conftest import ROOT, globals_of
from native_support import assert_unsupported
from pykvm.cli.read import hexdump

DEMO = ROOT / "fixtures" / "demo"
DEMO_NL, DEMO_CORE = str(DEMO / "kallsyms-demo.txt"), str(DEMO / "vmcore-demo.elf")
START_KERNEL_MAP = 0xffffffff80000000

LINUX = sys.platform.startswith("linux")
HOST = {"freebsd": "freebsd", "sunos": "illumos"}.get(sys.platform.rstrip("0123456789"))
# The real platform libkvm (the VM CI), not the shim standing in for it.
REAL_NATIVE = pykvm.backend == "native" and pykvm.platform == HOST

# The only libkvm functions each branch of the glue may call.
PLATFORM_API = {
    "freebsd": {"kvm_openfiles", "kvm_geterr", "kvm_nlist2", "kvm_read2", "kvm_write",
                "kvm_close", "kvm_kerndisp", "kvm_native"},
    "illumos": {"kvm_open", "kvm_nlist", "kvm_kread", "kvm_read", "kvm_kwrite", "kvm_close",
                "kvm_pread", "kvm_pwrite", "kvm_physaddr"},
}


# ---- a little ELF reading, so these checks need no binutils ----

def elf_dynamic_symbols(path) -> dict:
    """name -> defined? for every .dynsym entry of an ELF file."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF"
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3a)
        shfmt, symfmt, symsize = "IIQQQQIIQQ", "IBBHQQ", 24
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2e)
        shfmt, symfmt, symsize = "IIIIIIIIII", "IIIBBH", 16
    sections = [struct.unpack_from(end + shfmt, data, shoff + i * shentsize) for i in range(shnum)]
    out = {}
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        offset, size, link = (sh[4], sh[5], sh[6])
        stroff = sections[link][4]
        for i in range(1, size // symsize):
            fields = struct.unpack_from(end + symfmt, data, offset + i * symsize)
            name_off, shndx = fields[0], (fields[3] if is64 else fields[5])
            name = data[stroff + name_off:data.index(b"\0", stroff + name_off)].decode()
            out[name] = out.get(name, False) or shndx != 0
    return out


def header_functions() -> set:
    """The functions kvm.h and kvm_ext.h declare: the library's public interface."""
    text = (ROOT / "csrc" / "kvm.h").read_text() + (ROOT / "csrc" / "kvm_ext.h").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return set(re.findall(r"\b(kvm_[a-z0-9_]+)\s*\(", text))


# ---- the build under test ----

def test_the_build_is_the_one_make_asked_for():
    expect = os.environ.get("PYKVM_EXPECT_PLATFORM")
    assert (pykvm.backend, pykvm.platform) in {("shim", "shim"), ("native", "freebsd"),
                                               ("native", "illumos")}
    if expect is None:
        return  # run by hand: the consistency above is all there is to check
    assert pykvm.platform == expect
    assert pykvm.backend == ("shim" if expect == "shim" else "native")
    if expect != "shim" and LINUX:
        # make test-native imports its own build, not the repository's in-place one
        assert Path(pykvm.__file__).resolve().parent != (ROOT / "pykvm").resolve()


def test_the_glue_calls_only_its_platforms_libkvm():
    """illumos mode must not lean on FreeBSD's kvm_geterr, nor FreeBSD mode on
    illumos's kvm_pread: the module's undefined kvm_* symbols say what it calls."""
    used = {name for name, defined in elf_dynamic_symbols(pykvm._kvm.__file__).items()
            if name.startswith("kvm_") and not defined}
    if pykvm.backend == "shim":
        assert used == set()  # the shim is compiled in
        return
    assert used <= PLATFORM_API[pykvm.platform], used - PLATFORM_API[pykvm.platform]
    if pykvm.platform == "freebsd":
        assert {"kvm_openfiles", "kvm_geterr", "kvm_nlist2", "kvm_read2", "kvm_write"} <= used
    else:
        assert {"kvm_open", "kvm_nlist", "kvm_kread", "kvm_kwrite", "kvm_pread",
                "kvm_physaddr"} <= used


# ---- features: present and working, or UnsupportedError naming the platform ----

@pytest.fixture
def demo():
    """The committed real dump, through whatever this build binds."""
    if not LINUX:
        pytest.skip("the Linux dump fixtures are for the shim's readers; a real "
                    f"{HOST} libkvm reads only {HOST} kernels (see the live tests)")
    with pykvm.open(DEMO_NL, DEMO_CORE) as kd:
        yield kd


KERNDISP = 0xffffffffb8000000 - 0xffffffff81000000  # the demo guest's _stext - link address
BANNER_PA = 0x2161900  # its linux_banner: text_phys + (banner - text_virt), from truth.json


def check_feature(kd, feature):
    banner = kd.symbol("linux_banner")
    if feature == "info":
        assert kd.info["osrelease"] == "6.1.0-56-amd64"
    elif feature == "symbols":
        assert "linux_banner" in {s.name for s in kd.all_symbols()}
    elif feature == "kerndisp":
        assert kd.kerndisp() == KERNDISP
    elif feature == "physaddr":
        assert kd.physaddr(banner) == BANNER_PA
    elif feature == "pread":
        assert kd.read(BANNER_PA, 32, physical=True) == kd.read(banner, 32)
    elif feature == "geterr":
        with pytest.raises(pykvm.FaultError):
            kd.read(0x10, 4)
        assert "0x10" in kd.geterr()
    elif feature == "read_many":
        assert bytes(kd.read_many([banner, banner + 6], 7)) == b"Linux version"[:7] + b"version"
    elif feature == "options":
        with pykvm.open(DEMO_NL, DEMO_CORE, cache_pages=16) as other:
            assert other.read(banner, 5) == b"Linux"
    elif feature == "cache":
        assert kd.cache_used() == 0  # an ELF dump decompresses nothing


FEATURES = ["info", "symbols", "kerndisp", "physaddr", "pread", "geterr", "read_many", "options",
            "cache"]
EXPECTED = {  # what each build has
    "shim": set(FEATURES),
    "freebsd": {"kerndisp", "geterr", "read_many"},
    "illumos": {"physaddr", "pread", "read_many"},
}


@pytest.mark.parametrize("feature", FEATURES)
def test_feature_works_or_says_which_libkvm_lacks_it(demo, feature):
    assert pykvm.has(feature) == (feature in EXPECTED[pykvm.platform])
    if pykvm.has(feature):
        check_feature(demo, feature)
    else:
        assert_unsupported(check_feature, demo, feature)
    # nothing half-done: the handle still reads
    assert demo.read(demo.symbol("linux_banner"), 5) == b"Linux"


def test_what_every_build_has(demo):
    """open, nlist (values and a.out types, missing names as None), read, write refusal."""
    banner = demo.symbol("linux_banner")
    found = demo.nlist(["linux_banner", "no_such_symbol", "", "linux_banner", "_stext"])
    assert found[1] is None and found[2] is None and found[3] == found[0]
    assert found[0] == (banner, pykvm.kvm.N_DATA | pykvm.kvm.N_EXT) == (0xffffffffb9161900, 7)
    assert found[4] == (0xffffffffb8000000, pykvm.kvm.N_TEXT | pykvm.kvm.N_EXT)
    assert demo.read_cstring(banner).startswith("Linux version 6.1.0-56-amd64")
    with pytest.raises(pykvm.FaultError) as ei:
        demo.read(0x10, 4)
    assert ei.value.address == 0x10
    with pytest.raises(pykvm.ReadOnlyError):
        demo.write(banner, b"x")
    assert demo.namelist == DEMO_NL or demo.namelist.endswith("kallsyms-demo.txt")


def test_first_bad_address_of_a_read_that_runs_off_the_map(demo):
    """Neither native libkvm says where a read failed; the glue finds the first bad byte."""
    banner = demo.symbol("linux_banner")
    page_end = (banner | 4095) + 1  # the cut-down dump keeps this page, not the next
    with pytest.raises(pykvm.FaultError) as ei:
        demo.read(page_end - 16, 64)
    assert ei.value.address == page_end
    assert demo.read(page_end - 16, 16)


# ---- errors: messages, stderr, the illumos capture ----

def test_open_failure_prints_only_when_asked(tmp_path, capfd):
    missing = str(tmp_path / "no-such-core")
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(None, missing, errstr="quiet")
    assert ei.value.errno == 2 and missing in str(ei.value) and str(ei.value).startswith("quiet: ")
    assert isinstance(ei.value, FileNotFoundError)
    assert capfd.readouterr().err == ""  # illumos: printed into the capture, not here
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(None, missing, errstr="loud", print_errors=True)
    err = capfd.readouterr().err
    assert err.endswith(f"loud: {ei.value.strerror}\n")
    assert all(line.startswith("loud: ") for line in err.splitlines())
    # fd 2 is the test's again: a write lands where it should
    os.write(2, b"fd 2 still works\n")
    assert capfd.readouterr().err == "fd 2 still works\n"


def test_later_errors_print_once_with_the_prefix(capfd):
    if not LINUX:
        pytest.skip("needs the Linux dump fixture (the shim's readers)")
    with pykvm.open(DEMO_NL, DEMO_CORE, errstr="later", print_errors=True) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(0x10, 4)
    assert capfd.readouterr().err == f"later: {ei.value.strerror}\n"


def test_stderr_of_other_threads_survives_the_capture(tmp_path, capfd):
    """While a failing open has fd 2 captured (illumos), what other threads
    write to stderr is passed on, whole, and nothing of libkvm's leaks."""
    missing = str(tmp_path / "missing-core")
    stop = threading.Event()
    ticks = []

    def ticker():
        i = 0
        while not stop.is_set() or i < 50:
            line = f"tick {i}\n".encode()
            os.write(2, line)
            ticks.append(line.decode())
            i += 1

    def opener():
        for _ in range(40):
            with pytest.raises(pykvm.KvmError):
                pykvm.open(None, missing, errstr="threaded")

    t = threading.Thread(target=ticker)
    openers = [threading.Thread(target=opener) for _ in range(4)]
    t.start()
    for o in openers:
        o.start()
    for o in openers:
        o.join()
    stop.set()
    t.join()
    err = capfd.readouterr().err
    assert sorted(err.splitlines(keepends=True)) == sorted(ticks)
    assert "capture" not in err and "threaded" not in err


needs_linux_lib = pytest.mark.skipif(not LINUX, reason="make lib builds the shim, whose readers "
                                     "and linker flags (version script) target Linux")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """make install-lib PREFIX=<tmp>: the prefix and an environment that finds it."""
    prefix = tmp_path_factory.mktemp("prefix")
    res = run(["make", "-C", str(ROOT), "--no-print-directory", "install-lib", f"PREFIX={prefix}"])
    assert res.returncode == 0, res.stdout + res.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"),
               LD_LIBRARY_PATH=str(prefix / "lib"))
    return prefix, env


def pkg_config(env, *args) -> list:
    return run(["pkg-config", *args, "libkvm"], env=env, check=True).stdout.split()


@needs_linux_lib
def test_install_lib_layout_and_exports(installed):
    prefix, env = installed
    lib = prefix / "lib"
    assert (prefix / "include" / "libkvm" / "kvm.h").read_text() == (ROOT / "csrc" / "kvm.h").read_text()
    assert (prefix / "include" / "libkvm" / "nlist.h").exists()
    assert os.readlink(lib / "libkvm.so") == "libkvm.so.1"
    real = lib / os.readlink(lib / "libkvm.so.1")
    dyn = run(["readelf", "-d", str(real)], check=True).stdout
    assert "Library soname: [libkvm.so.1]" in dyn
    public = header_functions()
    assert "kvm_open" in public and "kvm_nlist2" in public and "kvm_err" not in public
    exported = {n for n, defined in elf_dynamic_symbols(real).items() if defined and n.startswith("kvm")}
    assert exported == public  # csrc/libkvm.map lists exactly the headers' functions
    static = run(["nm", "-g", "--defined-only", str(lib / "libkvm.a")], check=True).stdout
    globals_ = {line.split()[-1] for line in static.splitlines() if re.match(r"^[0-9a-f]+ [A-Z] ", line)}
    assert globals_ == public  # nothing else the shim's files share leaks out
    assert pkg_config(env, "--modversion") == ["1.0.0"]
    assert pkg_config(env, "--cflags") == [f"-I{prefix}/include/libkvm"]
    assert pkg_config(env, "--libs") == [f"-L{prefix}/lib", "-lkvm"]
    assert "-lpthread" in pkg_config(env, "--static", "--libs")


@pytest.fixture(scope="module")
def kvmcat(installed, tmp_path_factory):
    """examples/kvmcat.c built as its comment says: cc ... $(pkg-config --cflags --libs libkvm),
    and a second time statically from libkvm.a."""
    prefix, env = installed
    out = tmp_path_factory.mktemp("kvmcat")
    src = str(ROOT / "examples" / "kvmcat.c")
    shared, static = out / "kvmcat", out / "kvmcat-static"
    run(["cc", "-Wall", "-Wextra", "-Werror", "-o", str(shared), src,
         *pkg_config(env, "--cflags", "--libs")], env=env, check=True)
    libs = [str(prefix / "lib" / "libkvm.a") if a == "-lkvm" else a
            for a in pkg_config(env, "--static", "--libs")]
    run(["cc", "-Wall", "-Wextra", "-Werror", "-o", str(static), src,
         *pkg_config(env, "--cflags"), *libs], env=env, check=True)
    ldd = run(["ldd", str(shared)], env=env, check=True).stdout
    assert f"{prefix}/lib/libkvm.so.1" in ldd
    assert "libkvm" not in run(["ldd", str(static)], env=env).stdout
    return [str(shared), str(static)], env


def kvmcat_cases(proc):
    """(namelist, core, what, size): the real dump and the process cores."""
    yield DEMO_NL, DEMO_CORE, "linux_banner", 198
    yield DEMO_NL, DEMO_CORE, "init_uts_ns+130", 65
    yield DEMO_NL, DEMO_CORE, "__this_module+24", 56  # module space: a page-table walk
    for name in ("target64", "target64-pie", "target64-kernel"):
        for sym, size in (("kvm_t_u64", 8), ("kvm_t_str", 48), ("kvm_t_array", 256),
                          ("kvm_t_struct", 32)):
            yield proc.exe(name), proc.core(name), sym, size


@needs_linux_lib
def test_kvmcat_prints_what_the_python_api_reads(kvmcat, proc):
    progs, env = kvmcat
    checked = 0
    for namelist, core, what, size in kvmcat_cases(proc):
        sym, _, off = what.partition("+")
        with pykvm.open(namelist, core) as kd:
            addr = kd.symbol(sym) + (int(off) if off else 0)
            expected = hexdump(addr, kd.read(addr, size)) + "\n"
        for prog in progs:
            res = run([prog, "-N", namelist, "-M", core, "-n", str(size), what], env=env)
            assert (res.returncode, res.stderr) == (0, ""), (prog, what, res.stderr)
            assert res.stdout == expected, (prog, core, what)
            checked += 1
    assert checked >= 2 * 15


@needs_linux_lib
def test_kvmcat_failures_match_the_python_api(kvmcat, proc):
    progs, env = kvmcat
    main = proc.truth("target64")["functions"]["main"]  # gcore left the text out
    with pykvm.open(proc.exe("target64"), proc.core("target64")) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(main, 16)
    for prog in progs:
        res = run([prog, "-N", proc.exe("target64"), "-M", proc.core("target64"), "-n", "16",
                   hex(main)], env=env)
        assert res.returncode == 1 and res.stdout == ""
        assert f"0x{main:x}" in res.stderr and f"0x{main:x}" in str(ei.value)
        if pykvm.has("geterr"):  # the same library's words (illumos keeps none of its own)
            assert res.stderr == f"kvmcat: {ei.value.strerror}\n"
        res = run([prog, "-N", DEMO_NL, "-M", DEMO_CORE, "no_such_symbol"], env=env)
        assert (res.returncode, res.stderr) == (1, "kvmcat: no_such_symbol: no such symbol\n")
        res = run([prog, "-M", "/nonexistent/core", "x"], env=env)
        assert (res.returncode, res.stderr) == (1, "kvmcat: /nonexistent/core: No such file or directory\n")
        assert run([prog], env=env).returncode == 2


def parse_portable(out: str):
    """portable_tool's output: (address, bytes)."""
    head, _, rest = out.partition(":")
    return int(head.split()[1], 16), bytes.fromhex(rest.replace("\n", " "))


@pytest.fixture(scope="module")
def portable_tool(installed, tmp_path_factory):
    """tests/c/portable_tool.c, unchanged, against the installed kvm.h / nlist.h."""
    prefix, env = installed
    tool = tmp_path_factory.mktemp("portable") / "portable_tool"
    for std in ([], ["-std=c99", "-pedantic"]):
        res = run(["cc", *std, "-Wall", "-Werror", "-o", str(tool),
                   str(ROOT / "tests" / "c" / "portable_tool.c"),
                   *pkg_config(env, "--cflags", "--libs")], env=env)
        assert res.returncode == 0, res.stderr
    return str(tool), env


@needs_linux_lib
def test_a_tool_written_for_illumos_and_freebsd_runs_here(portable_tool, proc):
    tool, env = portable_tool
    g = globals_of(proc.truth("target64"))
    cases = [(proc.exe("target64"), proc.core("target64"), "kvm_t_int", 4),
             (proc.exe("target64"), proc.core("target64"), "kvm_t_str", 32),
             (proc.exe("target64-pie"), proc.core("target64-pie"), "kvm_t_array", 256),
             (DEMO_NL, DEMO_CORE, "linux_banner", 198)]
    for namelist, core, sym, size in cases:
        res = run([tool, "-N", namelist, "-M", core, sym, str(size)], env=env)
        assert res.returncode == 0, res.stderr
        addr, data = parse_portable(res.stdout)
        with pykvm.open(namelist, core) as kd:
            assert addr == kd.symbol(sym)
            assert data == kd.read(addr, size)
    assert struct.unpack("<i", parse_portable(run(
        [tool, "-N", proc.exe("target64"), "-M", proc.core("target64"), "kvm_t_int", "4"],
        env=env).stdout)[1])[0] == g["kvm_t_int"]["value"]
    # errors the illumos/FreeBSD way: kvm_open's errstr prints, the tool just exits
    res = run([tool, "-N", DEMO_NL, "-M", "/nonexistent/vmcore", "linux_banner", "8"], env=env)
    assert (res.returncode, res.stderr) == (1, "portable_tool: /nonexistent/vmcore: No such file or directory\n")
    res = run([tool, "-N", DEMO_NL, "-M", DEMO_CORE, "no_such_symbol", "8"], env=env)
    assert (res.returncode, res.stderr) == (1, "portable_tool: no_such_symbol: symbol not found\n")
