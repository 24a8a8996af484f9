"""pykvm sym: an address as symbol+offset/size [module]."""

from __future__ import annotations

import argparse
from typing import Any, Dict, List

from .common import Parser, add_files, open_kvm, parse_addr, print_json


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("sym", help="an address as name+0xoff/0xsize [module]",
                       description="Print the symbol at or before each ADDR (hex, with or "
                                   "without 0x, or symbol+N) as name+0xoffset/0xsize and its "
                                   "module in brackets; an address no symbol covers prints "
                                   "as ? and makes the exit status 1.")
    p.add_argument("addrs", nargs="+", metavar="ADDR")
    add_files(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    rows: List[Dict[str, Any]] = []
    with open_kvm(args) as kd:
        for text in args.addrs:
            addr = parse_addr(kd, text)
            s = kd.symbolize(addr)
            if s is None:
                status = 1
                rows.append({"address": addr, "name": None, "offset": None, "size": None,
                             "module": None})
            else:
                rows.append({"address": addr, "name": s.name, "offset": s.offset,
                             "size": s.size, "module": s.module})
    if args.json:
        print_json(rows)
        return status
    for r, s in zip(rows, args.addrs):
        if r["name"] is None:
            print(f"{r['address']:016x} ?")
        else:
            mod = f" [{r['module']}]" if r["module"] else ""
            print(f"{r['address']:016x} {r['name']}+0x{r['offset']:x}/0x{r['size']:x}{mod}")
    return status
