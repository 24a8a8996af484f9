"""pykvm dmesg: the kernel log of a dump, from the printk ring buffer (no debuginfo)."""

from __future__ import annotations

import argparse
import sys

from .common import Parser, add_files, open_kvm

HELP = "print the kernel log (text as makedumpfile --dump-dmesg; --json: records)"


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("dmesg", help=HELP, description=HELP)
    add_files(p)
    p.epilog = "--json prints " + ("a JSON list of records: seq, timestamp_ns, caller_id, text "
                        "(level, facility when the kernel's BTF gives them)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..linux.printk import format_makedumpfile, iter_records
    with open_kvm(args) as kd:
        records = list(iter_records(kd, levels=args.json))
    out = sys.stdout
    if args.json:
        import json
        json.dump([r.as_json() for r in records], out, indent=1)
        out.write("\n")
    else:
        out.write(format_makedumpfile(records))
    out.flush()
    return 1 if any(r.error for r in records) else 0
