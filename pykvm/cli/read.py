"""pykvm read: memory at a symbol or address, as hex, words, a string or raw bytes."""

from __future__ import annotations

import argparse
import sys
from typing import IO, TYPE_CHECKING, Any, List

from .common import CliError, Parser, U64_MAX, add_files, note, open_kvm, parse_addr, print_json, size_arg
from .progress import Progress

if TYPE_CHECKING:
    from ..kvm import Kvm

DEFAULT_SIZE = 64
STRING_MAX = 4096
CHUNK = 1 << 20  # large reads go by this much: no allocation of the whole size
JSON_MAX = 1 << 24  # --json holds what it read in memory


def hexdump(addr: int, data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{addr + i:016x}  {hexes:<47}  |{text}|")
    return "\n".join(lines)


def printable(s: str) -> str:
    """The string with control characters (but newline and tab) as \\xNN."""
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in s)


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "read", help="read memory at a symbol or address",
        description="Read memory at WHERE: a symbol, a hexadecimal address with or without "
                    "0x (as nlist prints it), or symbol+N / symbol-N (N decimal or 0x hex).")
    p.add_argument("where", metavar="WHERE", help="symbol, hex address, or symbol+offset")
    p.add_argument("-n", "--size", type=size_arg("size"), default=None, metavar="BYTES",
                   help=f"bytes to read (default: {DEFAULT_SIZE}; with --string the most to "
                        f"read, default {STRING_MAX}; with --u64/--u32 a multiple of the word)")
    p.add_argument("-c", "--count", type=size_arg("count"), default=None, metavar="WORDS",
                   help="words to print with --u64/--u32 (default: 1, or --size / word size)")
    p.add_argument("-p", "--physical", action="store_true",
                   help="WHERE is a physical address (default: kernel virtual)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--string", action="store_true", help="a NUL-terminated string")
    fmt.add_argument("--u64", action="store_true", help="64-bit words (in the core's byte order)")
    fmt.add_argument("--u32", action="store_true", help="32-bit words (in the core's byte order)")
    fmt.add_argument("--raw", action="store_true", help="the bytes themselves, to stdout")
    add_files(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    words = args.u64 or args.u32
    if args.count is not None and not words:
        raise CliError("-c/--count counts words: use it with --u64 or --u32 (-n gives bytes)")
    if args.raw and args.json:
        raise CliError("--raw and --json: choose one")
    with open_kvm(args) as kd:
        addr = parse_addr(kd, args.where)
        phys = args.physical
        if args.string:
            return read_string(kd, args, addr, phys)
        if words:
            return read_words(kd, args, addr, phys)
        size = args.size if args.size is not None else DEFAULT_SIZE
        check_range(addr, size)
        if args.json and size > JSON_MAX:
            raise CliError(f"--json reads at most {JSON_MAX:#x} bytes; use --raw for more")
        # the ends first: a range that cannot be read fails before any output
        kd.read(addr, 1, physical=phys)
        kd.read(addr + size - 1, 1, physical=phys)
        if args.json:
            data = kd.read(addr, size, physical=phys)
            print_json({"address": addr, "physical": phys, "size": size, "hex": data.hex()})
            return 0
        out: IO[Any] = sys.stdout.buffer if args.raw else sys.stdout
        with Progress(size if size >= 4 * CHUNK else 0, "read") as bar:
            done = 0
            while done < size:
                n = min(CHUNK, size - done)
                data = kd.read(addr + done, n, physical=phys)
                if args.raw:
                    out.write(data)
                else:
                    out.write(hexdump(addr + done, data) + "\n")
                done += n
                bar.update(done)
    return 0


def check_range(addr: int, size: int) -> None:
    if addr + size - 1 > U64_MAX:
        raise CliError(f"{size:#x} bytes at {addr:#x} run past the end of the address space")


def read_string(kd: Kvm, args: argparse.Namespace, addr: int, phys: bool) -> int:
    limit = args.size if args.size is not None else STRING_MAX
    if limit > JSON_MAX:
        raise CliError(f"--string reads at most {JSON_MAX:#x} bytes")
    check_range(addr, limit)
    raw = kd.read_cstring(addr, limit, physical=phys, encoding=None)
    text = raw.decode("utf-8", "replace")
    if args.json:
        print_json({"address": addr, "physical": phys, "string": text,
                    "terminated": len(raw) < limit})
        return 0
    if not raw:
        note(f"the string at {addr:#x} is empty (its first byte is NUL)", "pykvm read")
        return 1
    out = printable(text)
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    if len(raw) >= limit:
        note(f"no NUL within {limit} bytes: the string is cut (-n reads more)", "pykvm read")
    return 0


def read_words(kd: Kvm, args: argparse.Namespace, addr: int, phys: bool) -> int:
    width = 8 if args.u64 else 4
    if args.size is not None and args.count is not None:
        raise CliError("give -n (bytes) or -c (words), not both")
    if args.size is not None:
        if args.size % width:
            raise CliError(f"-n {args.size} is not a multiple of the {width}-byte word")
        count = args.size // width
    else:
        count = args.count if args.count is not None else 1
    check_range(addr, count * width)
    kd.read(addr, 1, physical=phys)
    kd.read(addr + count * width - 1, 1, physical=phys)
    reader = kd.read_u64 if args.u64 else kd.read_u32
    values: List[int] = []
    with Progress(count if count >= 1 << 18 else 0, "read") as bar:
        for i in range(count):
            a = addr + i * width
            value = reader(a, physical=phys)
            if args.json:
                values.append(value)
                if len(values) * width > JSON_MAX:
                    raise CliError(f"--json reads at most {JSON_MAX:#x} bytes")
            else:
                print(f"{a:016x}  {value:#0{2 + 2 * width}x}")
            bar.update(i + 1)
    if args.json:
        print_json({"address": addr, "physical": phys, "width": width, "values": values})
    return 0
