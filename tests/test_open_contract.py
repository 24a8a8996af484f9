"""The kvm_open(3KVM) contract, through the Python API: flags, NULL defaults,
errstr, swapfile, the data model, O_RDONLY integrity and O_RDWR writes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading

import pytest

import pykvm
from conftest import globals_of
from native_support import assert_unsupported, load_segments


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("flag", [os.O_WRONLY, os.O_RDWR | os.O_CREAT, os.O_RDONLY | os.O_TRUNC, 0x7F])
def test_only_rdonly_and_rdwr(proc, flag):
    """Any flag but O_RDONLY / O_RDWR is refused with illumos's words."""
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(proc.exe("target64"), proc.core("target64"), flag=flag)
    assert str(ei.value) == f"illegal flag 0x{flag:x} to kvm_open()"


def test_rdonly_and_rdwr_open(proc, tmp_path):
    core = tmp_path / "core"
    shutil.copy(proc.core("target64"), core)
    for flag in (os.O_RDONLY, os.O_RDWR):
        with pykvm.open(proc.exe("target64"), core, flag=flag) as kd:
            if pykvm.has("info"):
                assert kd.info["writable"] == (flag == os.O_RDWR)
            else:
                assert_unsupported(lambda: kd.info)
            # either way: the bytes write back only through an O_RDWR handle
            addr = kd.symbol("kvm_t_int")
            same = kd.read(addr, 4)
            if flag == os.O_RDWR:
                assert kd.write(addr, same) == 4
            else:
                with pytest.raises(pykvm.ReadOnlyError):
                    kd.write(addr, same)


def test_null_corefile_means_the_live_kernel():
    """corefile None opens /proc/kcore, else /dev/mem; this machine has neither."""
    if os.path.exists("/proc/kcore") or os.path.exists("/dev/mem"):
        pytest.skip("this machine has live kernel memory")  # never true here or in CI
    with pytest.raises(pykvm.KvmFileNotFoundError) as ei:
        pykvm.open()
    assert "/proc/kcore" in str(ei.value) and "/dev/mem" in str(ei.value)


def test_null_namelist_for_a_process_core(proc):
    """A process core opens without a namelist; symbol lookups then fail clearly."""
    with pykvm.open(None, proc.core("target64")) as kd:
        g = globals_of(proc.truth("target64"))["kvm_t_u64"]
        assert kd.read(g["addr"], 8).hex() == g["hex"]
        with pytest.raises(pykvm.KvmFileNotFoundError, match="no namelist"):
            kd.nlist(["kvm_t_int"])


def test_errstr_prefixes_and_prints_only_when_asked(proc, capfd):
    missing = "/nonexistent/core"
    with pytest.raises(pykvm.KvmFileNotFoundError) as ei:
        pykvm.open(proc.exe("target64"), missing, errstr="mytool")
    assert str(ei.value) == f"mytool: {missing}: No such file or directory"
    assert ei.value.prefix == "mytool" and ei.value.filename == missing
    assert capfd.readouterr().err == ""
    with pytest.raises(pykvm.KvmFileNotFoundError):
        pykvm.open(proc.exe("target64"), missing, errstr="mytool", print_errors=True)
    assert capfd.readouterr().err == f"mytool: {missing}: No such file or directory\n"
    with pytest.raises(pykvm.KvmFileNotFoundError) as ei:
        pykvm.open(proc.exe("target64"), missing)
    assert str(ei.value) == f"{missing}: No such file or directory"
    assert capfd.readouterr().err == ""


def test_errstr_applies_to_later_errors(proc, capfd):
    with pykvm.open(proc.exe("target64"), proc.core("target64"), errstr="t", print_errors=True) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(0x10, 4)
    err = capfd.readouterr().err
    assert err == f"t: {ei.value.strerror}\n" and str(ei.value).startswith("t: virtual address 0x10")


def test_swapfile_must_exist(proc, tmp_path):
    swap = tmp_path / "swap"
    swap.write_bytes(b"\0" * 4096)
    with pykvm.open(proc.exe("target64"), proc.core("target64"), swap) as kd:
        assert kd.symbol("kvm_t_int")
    with pytest.raises(pykvm.KvmFileNotFoundError) as ei:
        pykvm.open(proc.exe("target64"), proc.core("target64"), str(tmp_path / "noswap"))
    assert str(tmp_path / "noswap") in str(ei.value)


def test_data_model_core(proc):
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(proc.exe("target32"), proc.core("target32"))
    assert str(ei.value) == (f"{proc.core('target32')} is a 32-bit core file - "
                             "cannot examine with 64-bit libkvm")


def test_data_model_namelist(proc):
    with pytest.raises(pykvm.KvmFormatError) as ei:
        pykvm.open(proc.path("le32.elf"), proc.core("target64"))
    assert str(ei.value) == (f"{proc.path('le32.elf')} is a 32-bit kernel image - "
                             "cannot examine with 64-bit libkvm")


def test_rdonly_never_modifies(proc, tmp_path):
    """Reading, and trying to write, through an O_RDONLY handle leaves the file byte-identical."""
    core = tmp_path / "core"
    shutil.copy(proc.core("target64"), core)
    os.chmod(core, 0o644)
    before, mtime = sha256(core), os.stat(core).st_mtime_ns
    with pykvm.open(proc.exe("target64"), core) as kd:
        addr = kd.symbol("kvm_t_int")
        kd.read(addr, 4)
        with pytest.raises(pykvm.ReadOnlyError, match="read-only"):
            kd.write(addr, b"\1\2\3\4")
    assert sha256(core) == before and os.stat(core).st_mtime_ns == mtime


def test_rdonly_works_on_a_readonly_file(proc, tmp_path):
    core = tmp_path / "core"
    shutil.copy(proc.core("target64"), core)
    os.chmod(core, 0o400)
    with pykvm.open(proc.exe("target64"), core) as kd:
        assert kd.read(kd.symbol("kvm_t_u64"), 8) == bytes.fromhex("8877665544332211")


def gdb_print(exe: str, core: str, expr: str) -> str:
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"print {expr}", exe, str(core)],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1].split("=", 1)[1].strip()


def test_rdwr_round_trip_seen_by_gdb(proc, tmp_path):
    """O_RDWR writes land in the core file: gdb, reading the file itself, sees them."""
    core = tmp_path / "core"
    shutil.copy(proc.core("target64"), core)
    with pykvm.open(proc.exe("target64"), core, flag=os.O_RDWR) as kd:
        kd.write(kd.symbol("kvm_t_int"), (-424242).to_bytes(4, "little", signed=True))
        kd.write(kd.symbol("kvm_t_str"), b"written by pykvm\0")
    assert gdb_print(proc.exe("target64"), core, "kvm_t_int") == "-424242"
    assert gdb_print(proc.exe("target64"), core, "kvm_t_str").startswith('"written by pykvm')
    with pykvm.open(proc.exe("target64"), core) as kd:
        assert kd.read_s32(kd.symbol("kvm_t_int")) == -424242


def test_rdwr_cannot_write_where_the_file_has_no_bytes(proc, tmp_path):
    core = tmp_path / "core"
    shutil.copy(proc.core("target64-kernel"), core)
    main = proc.truth("target64-kernel")["functions"]["main"]
    with pykvm.open(proc.exe("target64-kernel"), core, flag=os.O_RDWR) as kd:
        with pytest.raises(pykvm.ReadOnlyError):
            kd.write(main, b"\x90")


def test_close_is_idempotent_and_final(proc):
    kd = pykvm.open(proc.exe("target64"), proc.core("target64"))
    kd.close()
    kd.close()
    assert kd.closed
    with pytest.raises(pykvm.KvmError, match="closed"):
        kd.read(0, 1)


def test_nlist_values_types_and_missing(proc):
    truth = proc.truth("target64")
    with pykvm.open(proc.exe("target64"), proc.core("target64")) as kd:
        found = kd.nlist(["kvm_t_int", "no_such_symbol", "main", "kvm_t_bss"])
        assert found[0] == (truth["nm"]["kvm_t_int"]["value"], pykvm.kvm.N_DATA | pykvm.kvm.N_EXT)
        assert found[1] is None
        assert found[2] == (truth["functions"]["main"], pykvm.kvm.N_TEXT | pykvm.kvm.N_EXT)
        assert found[3][1] == pykvm.kvm.N_BSS | pykvm.kvm.N_EXT
        with pytest.raises(KeyError):
            kd.symbols["no_such_symbol"]
        with pytest.raises(pykvm.SymbolNotFoundError, match="no_such_symbol"):
            kd.symbol("no_such_symbol")
        assert "kvm_t_int" in kd.symbols and "no_such_symbol" not in kd.symbols
        assert kd.symbols["kvm_t_int"].value == truth["nm"]["kvm_t_int"]["value"]


def test_short_read_fails_with_the_first_bad_address(proc):
    """A read running off the end of mapped memory raises FaultError at the first unmapped byte."""
    with pykvm.open(proc.exe("target64"), proc.core("target64")) as kd:
        segs = kd.info["segments"] if pykvm.has("info") else load_segments(proc.core("target64"))
        segs = sorted(segs, key=lambda s: s["start"])
        end = next(s["start"] + s["size"] for i, s in enumerate(segs)
                   if i + 1 == len(segs) or segs[i + 1]["start"] != s["start"] + s["size"])
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(end - 8, 16)
        assert ei.value.address == end
        assert len(kd.read(end - 8, 8)) == 8


def test_c_style_aliases(proc, capfd):
    kd = pykvm.kvm_open(proc.exe("target64"), proc.core("target64"), None, os.O_RDONLY, "port")
    (value, _), = pykvm.kvm_nlist(kd, ["kvm_t_u64"])
    assert pykvm.kvm_read(kd, value, 8) == bytes.fromhex("8877665544332211")
    with pytest.raises(pykvm.ReadOnlyError):
        pykvm.kvm_write(kd, value, b"x")
    assert capfd.readouterr().err.startswith("port: ")
    assert pykvm.kvm_close(kd) == 0


def test_threads_share_a_handle(proc):
    """Many threads reading one handle get the same bytes as one thread."""
    truth = proc.truth("target64")
    items = [(g["addr"], g["size"], g["hex"]) for g in truth["globals"] if g.get("in_core") and g.get("hex")]
    errors = []
    with pykvm.open(proc.exe("target64"), proc.core("target64")) as kd:
        def worker():
            for _ in range(300):
                for addr, size, hexed in items:
                    if kd.read(addr, size).hex() != hexed:
                        errors.append(addr)
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


def test_backend_is_reported():
    assert pykvm.backend in ("shim", "native")
    if pykvm.platform == "shim":
        assert pykvm.backend == "shim"
