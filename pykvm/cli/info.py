"""pykvm info: what the core is (format, word size, byte order, segments, kernel facts)."""

from __future__ import annotations

from .common import add_files, open_kvm

HELP = "describe the core: format, word size, byte order, segments"


def add_parser(sub) -> None:
    p = sub.add_parser("info", help=HELP)
    add_files(p)
    p.add_argument("--segments", action="store_true", help="list every segment")
    p.set_defaults(func=run)


def run(args) -> int:
    with open_kvm(args) as kd:
        info = kd.info
        for key, value in info.items():
            if key in ("segments", "parts"):
                continue
            if isinstance(value, int) and key in ("kerndisp", "phys_base", "kerneloffset",
                                                  "symbol_displacement"):
                value = f"{value:#x}" if value >= 0 else f"-{-value:#x}"
            print(f"{key:20} {value}")
        for part in info.get("parts", []):
            print(f"part     pfns {part['start_pfn']:#x}-{part['end_pfn']:#x} {part['path']}")
        segs = info["segments"]
        shown = segs if args.segments else segs[:8]
        for s in shown:
            print(f"segment {s['space']:8} {s['start']:#018x}-{s['start'] + s['size']:#018x} "
                  f"file {s['offset']:#x} ({s['filesz']:#x} bytes)")
        if len(segs) > len(shown):
            print(f"... {len(segs) - len(shown)} more segments (--segments shows all)")
    return 0
