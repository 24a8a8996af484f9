"""What every command shares: the -N/-M options, opening, numbers and
addresses, one-line errors, JSON output.

The file options are accepted before the command too (``pykvm -N nl -M core
info``, as in ``vmstat -M core -N kernel``): they are defined on the top
parser and again on each command's, where their default is SUPPRESS so a
value given before the command is not reset after it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, NoReturn, Optional

from .. import open as kvm_open

if TYPE_CHECKING:
    from ..kvm import Kvm

U64_MAX = (1 << 64) - 1


class CliError(Exception):
    """A usage problem: printed as one line on stderr, exit status 2."""


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size gives it ($COLUMNS, else the
    terminal of stdout, else 80), without importing shutil (and its compressors) on every
    run: argparse asks for it whenever an argument is added."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        out = sys.__stdout__
        try:
            columns = os.get_terminal_size(out.fileno()).columns if out is not None else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class Parser(argparse.ArgumentParser):
    """argparse, with every error as one line on stderr (status 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_files(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-N, -M, --foreign, --excluded-zero and --json: on the top parser
    (top=True, with their defaults) and on each command's (given or not)."""
    def d(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    g = p.add_argument_group("files and output (also accepted before the command)")
    g.add_argument("-N", dest="namelist", metavar="NAMELIST", default=d(None),
                   help="symbols: an executable, vmlinux, System.map or kallsyms "
                        "(default: the running kernel's, or those a Linux >= 6.0 dump carries)")
    g.add_argument("-M", dest="core", metavar="CORE", default=d(None), action="append",
                   help="a crash dump, process core or memory device "
                        "(default: the running kernel, /proc/kcore); once per file "
                        "of a dump written in parts (makedumpfile --split)")
    g.add_argument("--foreign", action="store_true", default=d(False),
                   help="accept another data model (a 32-bit core in this 64-bit program)")
    g.add_argument("--excluded-zero", action="store_true", default=d(False),
                   help="read pages a filtered dump left out as zeros (default: an error)")
    g.add_argument("--format", dest="core_format", metavar="NAME", default=d(None),
                   help="force the core's format (elf, kdump, lime, avml, raw, elf-kernel, "
                        "elf-process); raw images need it")
    g.add_argument("--btf", metavar="FILE", default=d(None),
                   help="kernel types from this file (a copy of /sys/kernel/btf/vmlinux, or a "
                        "vmlinux with .BTF) for a kernel without CONFIG_DEBUG_INFO_BTF "
                        "(default: the BTF the dump carries)")
    g.add_argument("--json", action="store_true", default=d(False),
                   help="print JSON instead of text")


def open_kvm(args: argparse.Namespace) -> Kvm:
    core = args.core[0] if args.core and len(args.core) == 1 else args.core
    extra: Dict[str, Any] = {"format": args.core_format} if getattr(args, "core_format", None) else {}
    if getattr(args, "btf", None):
        extra["btf"] = args.btf
    return kvm_open(args.namelist, core, errstr="pykvm", foreign=args.foreign,
                    excluded_zero=args.excluded_zero, **extra)


def parse_int(text: str, what: str, lo: int = 0, hi: int = U64_MAX) -> int:
    """A decimal or 0x-hexadecimal number in lo..hi, else CliError."""
    s = text.strip()
    try:
        value = int(s, 0)
    except ValueError:
        raise CliError(f"{what} {text!r} is not a number (decimal, or hexadecimal with 0x)") from None
    if not lo <= value <= hi:
        raise CliError(f"{what} {text!r} is out of range ({lo:#x}..{hi:#x})")
    return value


def size_arg(what: str, lo: int = 1, hi: int = U64_MAX) -> Callable[[str], int]:
    """An argparse type= for a number in lo..hi, named in its error."""
    def convert(text: str) -> int:
        try:
            return parse_int(text, what, lo, hi)
        except CliError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = what  # argparse names the type in some messages
    return convert


_HEX = re.compile(r"(?:0[xX])?[0-9a-fA-F]+")
# symbol or number, then an optional +offset or -offset
_WHERE = re.compile(r"\s*([^\s+-][^\s+-]*)\s*(?:([+-])\s*(\S+))?\s*")


def parse_addr(kd: Kvm, text: str) -> int:
    """An address: a symbol, or hexadecimal with or without 0x (as nlist
    prints it), optionally +N or -N (decimal or 0x hex).  A name the
    namelist defines is the symbol, even if it also reads as hex."""
    if text.strip().startswith("-"):
        raise CliError(f"address {text!r} is negative")
    m = _WHERE.fullmatch(text)
    if m is None:
        raise CliError(f"bad address {text!r}: give a symbol, a hex address, or symbol+offset")
    base, sign, off = m.groups()
    if base[:2].lower() == "0x":
        if not _HEX.fullmatch(base):
            raise CliError(f"bad address {text!r}: {base!r} is not hexadecimal")
        value = int(base, 16)
    else:
        found = kd.nlist([base])[0]
        if found is not None:
            value = found[0]
        elif _HEX.fullmatch(base):
            value = int(base, 16)
        else:
            value = kd.symbol(base)  # raises SymbolNotFoundError, naming the namelist
    if sign:
        delta = parse_int(off, f"offset in {text!r}")
        value = value + delta if sign == "+" else value - delta
    if not 0 <= value <= U64_MAX:
        raise CliError(f"address {text!r} is outside 0..{U64_MAX:#x}")
    return value


def print_json(value: Any) -> None:
    import json
    json.dump(value, sys.stdout, indent=1)
    sys.stdout.write("\n")


def note(message: str, prog: Optional[str] = None) -> None:
    """One line on stderr that is not an error."""
    print(f"{prog or 'pykvm'}: {message}", file=sys.stderr)
