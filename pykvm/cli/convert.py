"""pykvm convert: write any image pykvm reads (LiME, AVML, raw, ...) as an ELF vmcore."""

from __future__ import annotations

import argparse

from .. import open as kvm_open
from .common import Parser, print_json
from ..vmcore import write_elf_vmcore
from .progress import Progress

HELP = "write an image (LiME, AVML, raw, ...) as an ELF vmcore with VMCOREINFO"


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("convert", help=HELP,
                       description="Write IN's physical memory and VMCOREINFO as an ELF "
                       "vmcore that crash, drgn and makedumpfile open.")
    p.add_argument("input", metavar="IN", help="the image to read")
    p.add_argument("output", metavar="OUT", help="the ELF vmcore to write")
    p.add_argument("--to", dest="out_format", default="elf", choices=["elf"],
                   help="output format (default: elf)")
    p.add_argument("--format", dest="core_format", metavar="NAME", default=argparse.SUPPRESS,
                   help="force IN's format (lime, avml, raw, elf, kdump); raw images need it")
    p.add_argument("-N", dest="namelist", metavar="NAMELIST", default=argparse.SUPPRESS,
                   help="namelist, when the image has no VMCOREINFO of its own")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help='print {"output", "loads", "bytes", "pages_left_out"} as JSON')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    extra = {"format": args.core_format} if args.core_format else {}
    with kvm_open(args.namelist, args.input, errstr="pykvm", **extra) as kd:
        total = sum(s["size"] for s in kd.info["segments"] if s["space"] == "physical")
        with Progress(total, "convert") as bar:
            got = write_elf_vmcore(kd, args.output, progress=bar.update)
    if args.json:
        print_json({"output": args.output, "loads": got["loads"], "bytes": got["bytes"],
                    "pages_left_out": got["pages_left_out"]})
        return 0
    print(f"{args.output}: {got['loads']} PT_LOAD ranges, {got['bytes']} bytes"
          + (f", {got['pages_left_out']} unreadable pages left out"
             if got["pages_left_out"] else ""))
    return 0
