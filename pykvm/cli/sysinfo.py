"""pykvm sys: the system a dump comes from (crash's sys), from the dump alone."""

from __future__ import annotations

import argparse
import time

from .common import Parser, add_files, open_kvm

HELP = "system facts: release, machine, CPUs, memory, uptime, the panic message"


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("sys", help=HELP, description=HELP)
    add_files(p)
    p.epilog = "--json prints " + ("one JSON object")
    p.set_defaults(func=run)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def run(args: argparse.Namespace) -> int:
    from ..linux.sysinfo import sysinfo
    from ..linux import tasks as _tasks
    with open_kvm(args) as kd:
        facts = sysinfo(kd, tasks=_tasks.pid_on_cpu_function(kd))
    if args.json:
        import json
        print(json.dumps(facts, indent=1))
        return 0
    rows = [
        ("RELEASE", facts["release"]), ("VERSION", facts["version"]),
        ("MACHINE", facts["machine"]), ("NODENAME", facts["nodename"]),
        ("CPUS", facts["cpus"]),
        ("MEMORY", None if facts["memory_bytes"] is None else _human(facts["memory_bytes"])),
        ("UPTIME", None if facts["uptime_s"] is None else f"{facts['uptime_s']:.0f} s"),
        ("PANIC", facts["panic"] and f'"{facts["panic"]}"'),
        ("PANIC CPU", facts["panic_cpu"]), ("PANIC PID", facts["panic_pid"]),
        ("CRASH TIME", None if facts["crash_time"] is None else time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(facts["crash_time"]))),
        ("DUMP FORMAT", facts["format"]),
    ]
    for key, value in rows:
        print(f"{key:>12}: {'-' if value is None else value}")
    return 0
