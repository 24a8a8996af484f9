"""The walks fuzz target (fuzz/walks.py): its seed holds everything the kernel tools read.

The seed is an ELF vmcore cut from the QEMU panic dump by fuzz/make_seeds.py; the tools run
on it with the target's fixed namelist (fuzz/walks.kallsyms) and the dump's own BTF must give
what they give on the full dump: the same tasks, modules, log lines, system facts and
backtraces.  Then every kept input (seeds and regressions) replays with no finding.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import pykvm
from conftest import ROOT
from panic_fixtures import panic  # noqa: F401

sys.path.insert(0, str(ROOT / "fuzz"))
import walks  # noqa: E402

SEED = ROOT / "fuzz" / "seeds" / "walks" / "qemu-panic.elf"


@pytest.fixture(scope="module")
def btf(panic, tmp_path_factory):  # noqa: F811
    """The kernel BTF of the panic dump (__start_BTF .. __stop_BTF), as make fuzz-walks-build
    cuts it."""
    import make_seeds
    path = tmp_path_factory.mktemp("walks") / "walks.btf"
    path.write_bytes(make_seeds.kernel_btf(panic["qemu-panic"].root))
    return path


def check_steps(steps):
    assert len(steps["ps"]) > 50 and not any(t[-1] for t in steps["ps"])
    assert [m["name"] for m in steps["lsmod"]][-1] == "qemu_fw_cfg"
    assert steps["dmesg"].count("\n") > 1000 and "Kernel panic" in steps["dmesg"]
    assert steps["sys"]["panic_cpu"] is not None and steps["bt --panic"]["frames"]


def test_a_cut_gives_the_full_dumps_output(panic, btf, tmp_path):  # noqa: F811
    """The cut (make_seeds.walks_vmcore) of this machine's panic dump, with its namelist:
    every tool gives what it gives on the full dump.  (Each fixture build boots with
    another KASLR offset, so the committed seed is a cut of an earlier build.)"""
    import make_seeds
    src = panic["qemu-panic"]
    elf, namelist, _ = make_seeds.walks_vmcore(src.root, btf)
    (tmp_path / "cut.elf").write_bytes(elf)
    (tmp_path / "cut.kallsyms").write_bytes(namelist)
    with pykvm.open(src.kallsyms, src.path("vmcore.elf"), btf=str(btf)) as kd:
        full = walks.run(kd)
    with pykvm.open(str(tmp_path / "cut.kallsyms"), str(tmp_path / "cut.elf"), btf=str(btf)) as kd:
        cut = walks.run(kd)
    assert [name for name, _ in cut] == [name for name, _ in full]
    for (name, want), (_, got) in zip(full, cut):
        assert got == want, name
    check_steps(dict(full))
    assert len(elf) < 400_000


def test_the_committed_seed_holds_a_whole_walk(btf):
    """The committed seed, with the committed namelist, still holds every walk."""
    with pykvm.open(str(walks.NAMELIST), str(SEED), btf=str(btf)) as kd:
        check_steps(dict(walks.run(kd)))
    assert SEED.stat().st_size < 400_000


def test_kept_inputs_replay_without_findings(btf):
    inputs = [str(ROOT / "fuzz" / d / "walks") for d in ("seeds", "regressions")
              if (ROOT / "fuzz" / d / "walks").is_dir()]
    r = subprocess.run([sys.executable, str(ROOT / "fuzz" / "walks.py"), "--replay", *inputs],
                       capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "PYKVM_WALKS_BTF": str(btf)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 findings" in r.stdout
