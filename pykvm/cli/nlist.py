"""pykvm nlist: symbol values, like nm for the names given."""

from __future__ import annotations

from .common import add_files, open_kvm

TYPE_NAMES = {0x0: "U", 0x2: "A", 0x4: "T", 0x6: "D", 0x8: "B"}


def add_parser(sub) -> None:
    p = sub.add_parser("nlist", help="print symbol values, like nm for the given names")
    add_files(p)
    p.add_argument("names", nargs="+")
    p.set_defaults(func=run)


def run(args) -> int:
    status = 0
    with open_kvm(args) as kd:
        for name, found in zip(args.names, kd.nlist(args.names)):
            if found is None:
                print(f"{'':16} U {name}")
                status = 1
            else:
                value, ntype = found
                letter = TYPE_NAMES.get(ntype & 0x1E, "?")
                print(f"{value:016x} {letter if ntype & 1 else letter.lower()} {name}")
    return status
