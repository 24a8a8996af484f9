"""What every command shares: the -N/-M options, opening, addresses, output."""

from __future__ import annotations

import argparse

from .. import open as kvm_open


def add_files(p: argparse.ArgumentParser) -> None:
    p.add_argument("-N", dest="namelist", help="namelist: executable, vmlinux, System.map or kallsyms")
    p.add_argument("-M", dest="core", help="core: crash dump, process core or /proc/kcore")
    p.add_argument("--foreign", action="store_true", help="accept another data model (32/64-bit)")
    p.add_argument("--excluded-zero", action="store_true", help="read filtered-out dump pages as zeros")
    p.add_argument("--format", dest="core_format", metavar="NAME",
                   help="force the core's format (elf, kdump, lime, avml, raw); raw images need it")


def open_kvm(args: argparse.Namespace):
    extra = {"format": args.core_format} if getattr(args, "core_format", None) else {}
    return kvm_open(args.namelist, args.core, errstr="pykvm", foreign=args.foreign,
                    excluded_zero=args.excluded_zero, **extra)


def parse_addr(kd, text: str) -> int:
    """A number (0x... or decimal), a symbol, or symbol+offset."""
    base, _, off = text.partition("+")
    try:
        value = int(base, 0)
    except ValueError:
        value = kd.symbol(base)
    return value + (int(off, 0) if off else 0)
