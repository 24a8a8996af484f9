"""kd.symbols[name] gives a Symbol that is its address (an int): it goes
straight into the reads, shows its value in hex, and names the module that
defines it as all_symbols() does.  Checked against the guest's own words:
the banner it printed and its /proc/kallsyms."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import pytest

import pykvm

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"


@pytest.fixture(scope="module")
def demo():
    truth = json.loads((DEMO / "truth.json").read_text())
    with pykvm.open(DEMO / "kallsyms-demo.txt", DEMO / "vmcore-demo.elf") as kd:
        yield kd, truth


def test_symbol_is_an_address(demo):
    """kd.read(kd.symbols["linux_banner"], 64): the guest's banner."""
    kd, truth = demo
    sym = kd.symbols["linux_banner"]
    banner = truth["banner"].encode()
    assert kd.read(sym, 64) == banner[:64]
    assert kd.read_cstring(sym) == truth["banner"]
    assert kd.read(sym + 8, 8) == banner[8:16]  # arithmetic gives plain ints
    assert type(sym + 8) is int
    assert isinstance(sym, int) and sym == int(truth["symbols"]["linux_banner"], 16)
    assert sym.value == sym and type(sym.value) is int
    assert f"{sym:#x}" == truth["symbols"]["linux_banner"]


def test_symbol_repr_shows_hex(demo):
    kd, truth = demo
    sym = kd.symbols["linux_banner"]
    assert f"value={truth['symbols']['linux_banner']}" in repr(sym)
    assert repr(sym).startswith("Symbol(name='linux_banner', ")
    assert str(sym) == repr(sym)


def test_symbol_is_read_only_and_pickles(demo):
    kd, _ = demo
    sym = kd.symbols["__this_module"]
    with pytest.raises(AttributeError):
        sym.module = "other"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(sym))
    assert (again, again.name, again.type, again.letter, again.module) == \
        (sym, sym.name, sym.type, sym.letter, sym.module)


def test_symbols_module_as_all_symbols(demo):
    """__this_module of qemu_fw_cfg: the module column of the guest's kallsyms."""
    kd, truth = demo
    sym = kd.symbols["__this_module"]
    assert sym == int(truth["symbols"]["__this_module [qemu_fw_cfg]"], 16)
    if not pykvm.has("symbols"):  # a native libkvm: nlist only, no module column
        assert sym.module is None
        return
    assert sym.module == truth["module"] == "qemu_fw_cfg"
    listed = [s for s in kd.all_symbols() if s.name == "__this_module"]
    assert [(s, s.letter, s.module) for s in listed] == [(sym, sym.letter, sym.module)]
    assert kd.symbols["linux_banner"].module is None


def test_symbols_module_on_a_real_kallsyms(dumps):
    """Every name the guest's kallsyms lists once: symbols[name] has the
    guest's address, letter and module."""
    d = dumps["kaslr-96M"]
    counts = Counter(name for name, _ in d.syms)
    unique = {name: entry for (name, _), entry in d.syms.items() if counts[name] == 1}
    modular = [n for n, e in unique.items() if e[2] is not None]
    assert len(modular) > 20, "the guest loaded a module (qemu_fw_cfg)"
    with pykvm.open(d.kallsyms, d.path("vmcore.elf")) as kd:
        for name in modular + sorted(unique)[:2000]:
            addr, letter, module = unique[name]
            sym = kd.symbols[name]
            assert sym == addr, name
            if pykvm.has("symbols"):
                assert (sym.letter, sym.module) == (letter, module), name
        if pykvm.has("symbols"):
            listed = {s.name: s.module for s in kd.all_symbols() if s.name in unique}
            assert all(listed[n] == kd.symbols[n].module for n in modular)
