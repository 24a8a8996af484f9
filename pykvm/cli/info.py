"""pykvm info: what the core is, in words: format, machine, kernel facts,
for kdump files the page counts and dump level, the paging mode, segments."""

from __future__ import annotations

import argparse
import datetime
from typing import Any, Dict, List, Mapping, Tuple

from .common import Parser, add_files, open_kvm, print_json

HELP = "describe the core: format, machine, kernel facts, pages, segments"

# ELF e_machine values of the machines kernels are dumped on.
MACHINES = {3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC 64", 22: "S/390", 40: "ARM",
            43: "SPARC v9", 62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch"}
FORMATS = {
    "elf-kernel": "ELF kernel core (kdump /proc/vmcore or QEMU dump-guest-memory)",
    "elf-process": "ELF process core",
    "elf-live": "the running kernel (/proc/kcore)",
    "kdump": "kdump-compressed (makedumpfile or QEMU)",
    "kdump-flattened": "kdump-compressed, flattened (makedumpfile -F)",
}
# makedumpfile -d: what each bit of the dump level leaves out.
DUMP_LEVEL_BITS = [(1, "zero pages"), (2, "cache pages"), (4, "private cache pages"),
                   (8, "user pages"), (16, "free pages")]
YES_NO = ("kernel", "live", "writable", "mapped", "translation", "vmcoreinfo")
HEX = ("kerndisp", "phys_base", "kerneloffset", "symbol_displacement")

# key -> label, in the order shown; keys not listed follow under their own name.
LABELS: List[Tuple[str, str]] = [
    ("format", "format"), ("corefile", "core file"), ("namelist", "namelist"),
    ("machine", "machine"), ("arch", "architecture"), ("word_size", "word size"),
    ("byte_order", "byte order"), ("kernel", "kernel image"), ("live", "live kernel"),
    ("writable", "writable"), ("mapped", "file mapped"), ("page_size", "page size"),
    ("osrelease", "kernel release"), ("header_release", "header release"),
    ("build_id", "build ID"), ("crash_time", "crash time"),
    ("symbols", "symbols"), ("translation", "address translation"),
    ("paging_levels", "paging"), ("kerndisp", "KASLR displacement"),
    ("kerneloffset", "KERNELOFFSET"), ("phys_base", "phys_base"),
    ("symbol_displacement", "symbol displacement"),
    ("compression", "compression"), ("dump_level", "dump level"),
    ("pages_total", "pages"), ("pages_dumped", "pages dumped"),
    ("kdump_version", "kdump header version"), ("cache_pages", "page cache"),
    ("vmcoreinfo", "VMCOREINFO"),
]
HIDDEN = {"segments", "parts", "virtual_segments", "physical_segments", "vmcoreinfo_crashtime"}


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("info", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument("--segments", action="store_true",
                   help="list every segment (default: the first 8)")
    p.add_argument("--raw-keys", action="store_true",
                   help="print the library's own keys and values (key value per line)")
    add_files(p)
    p.set_defaults(func=run)


def signed_hex(value: int) -> str:
    return f"{value:#x}" if value >= 0 else f"-{-value:#x}"


def describe(info: Mapping[str, Any]) -> Dict[str, str]:
    """label -> readable value, in display order."""
    out: Dict[str, str] = {}
    seen = set()
    for key, label in LABELS + [(k, k) for k in info if k not in dict(LABELS)]:
        if key in seen or key in HIDDEN or key not in info:
            continue
        seen.add(key)
        value = info[key]
        if key == "format":
            text = f"{value}: {FORMATS[value]}" if value in FORMATS else str(value)
        elif key == "machine":
            text = f"{MACHINES.get(value, 'unknown')} (ELF machine {value})"
        elif key in YES_NO:
            text = "yes" if value else "no"
        elif key in HEX and isinstance(value, int):
            text = signed_hex(value)
        elif key == "word_size":
            text = f"{value}-bit"
        elif key == "page_size":
            text = f"{value} bytes"
        elif key == "crash_time" and isinstance(value, int):
            when = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
            text = f"{when:%Y-%m-%d %H:%M:%S} UTC ({value})"
        elif key == "paging_levels":
            text = f"{value}-level page tables"
        elif key == "dump_level" and isinstance(value, int):
            left = [what for bit, what in DUMP_LEVEL_BITS if value & bit]
            text = f"{value} (left out: {', '.join(left)})" if left else f"{value} (nothing left out)"
        elif key == "pages_total" and isinstance(value, int):
            text = (f"{value} page frames covered "
                    f"({value * int(info.get('page_size', 4096)) / 2**20:.0f} MiB of physical addresses)")
        elif key == "pages_dumped" and isinstance(value, int):
            total = info.get("pages_total")
            share = f", {100 * value / total:.1f}%" if isinstance(total, int) and total else ""
            text = f"{value} ({value * int(info.get('page_size', 4096)) / 2**20:.0f} MiB{share} of the frames)"
        elif key == "cache_pages":
            text = f"{value} decompressed pages at most"
        else:
            text = str(value)
        out[label] = text
    return out


def run(args: argparse.Namespace) -> int:
    with open_kvm(args) as kd:
        info = kd.info
    segs = info.get("segments", [])
    if args.json:
        print_json(info)
        return 0
    if args.raw_keys:
        for key, value in info.items():
            if key not in ("segments", "parts"):
                print(f"{key} {value}")
    else:
        lines = describe(info)
        width = max(len(k) for k in lines) + 2
        for label, text in lines.items():
            print(f"{label + ':':{width}} {text}")
    for part in info.get("parts", []):
        print(f"part: pfns {part['start_pfn']:#x}-{part['end_pfn']:#x} {part['path']}")
    shown = segs if args.segments else segs[:8]
    if segs:
        print(f"segments: {len(segs)}")
    for s in shown:
        print(f"  {s['space']:8} {s['start']:#018x}-{s['start'] + s['size']:#018x} "
              f"file {s['offset']:#x} ({s['filesz']:#x} bytes)")
    if len(segs) > len(shown):
        print(f"  ... {len(segs) - len(shown)} more (--segments shows all)")
    return 0
