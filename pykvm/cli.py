"""pykvm command line: ``pykvm info|nlist|read [-N namelist] [-M core]``.

-N and -M follow BSD tools (ps, netstat, vmstat): without them the running
kernel is used.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from . import open as kvm_open
from .errors import KvmError

TYPE_NAMES = {0x0: "U", 0x2: "A", 0x4: "T", 0x6: "D", 0x8: "B"}


def _add_files(p: argparse.ArgumentParser) -> None:
    p.add_argument("-N", dest="namelist", help="namelist: executable, vmlinux, System.map or kallsyms")
    p.add_argument("-M", dest="core", help="core: crash dump, process core or /proc/kcore")
    p.add_argument("--foreign", action="store_true", help="accept another data model (32/64-bit)")
    p.add_argument("--excluded-zero", action="store_true", help="read filtered-out dump pages as zeros")


def _open(args: argparse.Namespace):
    return kvm_open(args.namelist, args.core, errstr="pykvm", foreign=args.foreign,
                    excluded_zero=args.excluded_zero)


def _addr(kd, text: str) -> int:
    """A number (0x... or decimal), a symbol, or symbol+offset."""
    base, _, off = text.partition("+")
    try:
        value = int(base, 0)
    except ValueError:
        value = kd.symbol(base)
    return value + (int(off, 0) if off else 0)


def cmd_info(args) -> int:
    with _open(args) as kd:
        info = kd.info
        for key, value in info.items():
            if key == "segments":
                continue
            if isinstance(value, int) and key in ("kerndisp", "phys_base", "kerneloffset",
                                                  "symbol_displacement"):
                value = f"{value:#x}" if value >= 0 else f"-{-value:#x}"
            print(f"{key:20} {value}")
        segs = info["segments"]
        shown = segs if args.segments else segs[:8]
        for s in shown:
            print(f"segment {s['space']:8} {s['start']:#018x}-{s['start'] + s['size']:#018x} "
                  f"file {s['offset']:#x} ({s['filesz']:#x} bytes)")
        if len(segs) > len(shown):
            print(f"... {len(segs) - len(shown)} more segments (--segments shows all)")
    return 0


def cmd_nlist(args) -> int:
    status = 0
    with _open(args) as kd:
        for name, found in zip(args.names, kd.nlist(args.names)):
            if found is None:
                print(f"{'':16} U {name}")
                status = 1
            else:
                value, ntype = found
                letter = TYPE_NAMES.get(ntype & 0x1E, "?")
                print(f"{value:016x} {letter if ntype & 1 else letter.lower()} {name}")
    return status


def hexdump(addr: int, data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{addr + i:016x}  {hexes:<47}  |{text}|")
    return "\n".join(lines)


def cmd_read(args) -> int:
    with _open(args) as kd:
        addr = _addr(kd, args.where)
        phys = args.physical
        if args.string:
            print(kd.read_cstring(addr, args.size or 4096, physical=phys))
        elif args.u64 or args.u32:
            count = args.count
            reader = kd.read_u64 if args.u64 else kd.read_u32
            width = 8 if args.u64 else 4
            for i in range(count):
                print(f"{addr + i * width:016x}  {reader(addr + i * width, physical=phys):#0{2 + 2 * width}x}")
        else:
            data = kd.read(addr, args.size or 64, physical=phys)
            if args.raw:
                sys.stdout.buffer.write(data)
            else:
                print(hexdump(addr, data))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pykvm", description="Read kernel memory through libkvm.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="describe the core: format, word size, byte order, segments")
    _add_files(p)
    p.add_argument("--segments", action="store_true", help="list every segment")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("nlist", help="print symbol values, like nm for the given names")
    _add_files(p)
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_nlist)
    p = sub.add_parser("read", help="read memory at a symbol or address")
    _add_files(p)
    p.add_argument("where", help="address, symbol, or symbol+offset")
    p.add_argument("-n", "--size", type=lambda s: int(s, 0), default=0, help="bytes to read")
    p.add_argument("-p", "--physical", action="store_true", help="a physical address")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--string", action="store_true", help="a NUL-terminated string")
    fmt.add_argument("--u64", action="store_true", help="64-bit words (core byte order)")
    fmt.add_argument("--u32", action="store_true", help="32-bit words (core byte order)")
    fmt.add_argument("--raw", action="store_true", help="raw bytes to stdout")
    p.add_argument("-c", "--count", type=int, default=1, help="words to print with --u64/--u32")
    p.set_defaults(func=cmd_read)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KvmError as e:
        print(e, file=sys.stderr)
        return 2
    except BrokenPipeError:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
