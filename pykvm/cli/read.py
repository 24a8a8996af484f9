"""pykvm read: memory at a symbol or address, as hex, words, a string or raw bytes."""

from __future__ import annotations

import sys

from .common import add_files, open_kvm, parse_addr


def hexdump(addr: int, data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{addr + i:016x}  {hexes:<47}  |{text}|")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("read", help="read memory at a symbol or address")
    add_files(p)
    p.add_argument("where", help="address, symbol, or symbol+offset")
    p.add_argument("-n", "--size", type=lambda s: int(s, 0), default=0, help="bytes to read")
    p.add_argument("-p", "--physical", action="store_true", help="a physical address")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--string", action="store_true", help="a NUL-terminated string")
    fmt.add_argument("--u64", action="store_true", help="64-bit words (core byte order)")
    fmt.add_argument("--u32", action="store_true", help="32-bit words (core byte order)")
    fmt.add_argument("--raw", action="store_true", help="raw bytes to stdout")
    p.add_argument("-c", "--count", type=int, default=1, help="words to print with --u64/--u32")
    p.set_defaults(func=run)


def run(args) -> int:
    with open_kvm(args) as kd:
        addr = parse_addr(kd, args.where)
        phys = args.physical
        if args.string:
            print(kd.read_cstring(addr, args.size or 4096, physical=phys))
        elif args.u64 or args.u32:
            reader = kd.read_u64 if args.u64 else kd.read_u32
            width = 8 if args.u64 else 4
            for i in range(args.count):
                value = reader(addr + i * width, physical=phys)
                print(f"{addr + i * width:016x}  {value:#0{2 + 2 * width}x}")
        else:
            data = kd.read(addr, args.size or 64, physical=phys)
            if args.raw:
                sys.stdout.buffer.write(data)
            else:
                print(hexdump(addr, data))
    return 0
