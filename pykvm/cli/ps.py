"""pykvm ps: every task of a dump (pid, ppid, state, cpu, comm), from the dump alone."""

from __future__ import annotations

import argparse

from .common import Parser, add_files, open_kvm

HELP = "list every task: pid, ppid, state letter, cpu, comm, task_struct address"


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("ps", help=HELP, description=HELP)
    add_files(p)
    p.epilog = "--json prints " + ('a JSON list of {"pid", "ppid", "state", "cpu", "comm", "task"}')
    p.add_argument("--idle", action="store_true", help="also each CPU's idle task (pid 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..linux.tasks import tasks
    with open_kvm(args) as kd:
        ts = tasks(kd, idle=args.idle)
    if args.json:
        import json
        print(json.dumps([t.as_json() for t in ts], indent=1))
    else:
        print(f"{'PID':>7} {'PPID':>7} {'CPU':>3} {'TASK':>16} ST COMM")
        for t in ts:
            if t.error and t.pid < 0:
                print(f"{'?':>7} {'?':>7} {'?':>3} {t.task:16x} ?  <{t.error}>")
                continue
            ppid = "?" if t.ppid is None else t.ppid
            cpu = "?" if t.cpu is None else t.cpu
            print(f"{t.pid:>7} {ppid:>7} {cpu:>3} {t.task:16x} {t.state:2} {t.comm}"
                  + (f"  <{t.error}>" if t.error else ""))
    return 1 if any(t.error for t in ts) else 0
