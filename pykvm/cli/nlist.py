"""pykvm nlist: symbol values, like nm for the names given."""

from __future__ import annotations

import argparse
import fnmatch
from typing import Any, Dict, List

from .common import Parser, add_files, open_kvm, print_json

GLOB = "*?["

TYPE_NAMES = {0x0: "U", 0x2: "A", 0x4: "T", 0x6: "D", 0x8: "B"}


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("nlist", help="print symbol values, like nm for the given names",
                       description="Print each symbol's value, nm type letter and name; a "
                                   "missing name prints as U and makes the exit status 1.  "
                                   "The value is what `pykvm read` takes as an address.  A NAME "
                                   "with * ? or [...] is a glob: every matching symbol, "
                                   "sorted by value (none matching: exit status 1).")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_files(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    rows: List[Dict[str, Any]] = []
    with open_kvm(args) as kd:
        names = []
        for name in args.names:
            if not any(c in name for c in GLOB):
                names.append(name)
                continue
            hits = sorted({(s.value, s.name) for s in kd.all_symbols()
                           if fnmatch.fnmatchcase(s.name, name)})
            if not hits:
                rows.append({"name": name, "found": False, "value": None, "type": None,
                             "letter": "U"})
                status = 1
            names += [n for _, n in hits]
        for name, found in zip(names, kd.nlist(names) if names else []):
            if found is None:
                rows.append({"name": name, "found": False, "value": None, "type": None,
                             "letter": "U"})
                status = 1
                continue
            value, ntype = found
            letter = TYPE_NAMES.get(ntype & 0x1E, "?")
            letter = letter if ntype & 1 else letter.lower()
            rows.append({"name": name, "found": True, "value": value, "type": ntype,
                         "letter": letter})
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            shown = "" if r["value"] is None else f"{r['value']:016x}"
            print(f"{shown:16} {r['letter']} {r['name']}")
    return status
