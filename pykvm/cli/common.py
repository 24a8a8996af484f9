"""What every command shares: the -N/-M options, opening, addresses, output."""

from __future__ import annotations

import argparse

from .. import open as kvm_open


def add_files(p: argparse.ArgumentParser) -> None:
    p.add_argument("-N", dest="namelist", help="namelist: executable, vmlinux, System.map or kallsyms")
    p.add_argument("-M", dest="core", action="append",
                   help="core: crash dump, process core or /proc/kcore; give -M once per "
                        "file of a dump written in parts (makedumpfile --split)")
    p.add_argument("--foreign", action="store_true", help="accept another data model (32/64-bit)")
    p.add_argument("--excluded-zero", action="store_true", help="read filtered-out dump pages as zeros")


def open_kvm(args: argparse.Namespace):
    core = args.core[0] if args.core and len(args.core) == 1 else args.core
    return kvm_open(args.namelist, core, errstr="pykvm", foreign=args.foreign,
                    excluded_zero=args.excluded_zero)


def parse_addr(kd, text: str) -> int:
    """A number (0x... or decimal), a symbol, or symbol+offset."""
    base, _, off = text.partition("+")
    try:
        value = int(base, 0)
    except ValueError:
        value = kd.symbol(base)
    return value + (int(off, 0) if off else 0)
