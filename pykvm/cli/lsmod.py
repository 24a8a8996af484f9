"""pykvm lsmod: the loaded modules of a dump, as /proc/modules shows them."""

from __future__ import annotations

import argparse
import sys

from .common import Parser, add_files, open_kvm

HELP = "list loaded modules: name, size, refcount, users, state, address"


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("lsmod", help=HELP, description=HELP)
    add_files(p)
    p.epilog = "--json prints " + ('a JSON list of {"name", "size", "refcount", "address", ...}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UnsupportedError
    from ..linux.layout import layout
    from ..linux.modules import lsmod
    with open_kvm(args) as kd:
        layout(kd)  # no kernel types at all: an error (status 2)
        try:
            mods = lsmod(kd)
        except UnsupportedError as e:  # a struct module this reader does not know
            print(f"pykvm lsmod: {e}", file=sys.stderr)
            return 1
    if args.json:
        import json
        print(json.dumps([m.as_json() for m in mods], indent=1))
    else:
        print(f"{'Module':<24} {'Size':>8} {'Used by'}")
        for m in mods:
            if m.error and m.size is None:
                print(f"{'?':<24} {'?':>8}  <{m.error}>")
                continue
            ref = "-" if m.refcount is None else m.refcount
            print(f"{m.name:<24} {m.size:>8} {ref} {','.join(m.used_by)}"
                  + (f"  <{m.error}>" if m.error else ""))
    return 1 if any(m.error for m in mods) else 0
