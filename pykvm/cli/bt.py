"""pykvm bt: kernel backtraces with the kernel's own ORC tables (no debuginfo)."""

from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from .common import Parser, add_files, open_kvm

if TYPE_CHECKING:
    from ..linux.stack import Backtrace

HELP = "kernel backtrace of the panic (--panic), of a task (PID) or of every task (--all)"


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("bt", help=HELP, description=HELP)
    add_files(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("pid", nargs="?", type=int, help="a task's pid")
    g.add_argument("--panic", action="store_true", help="the panicking CPU, from its registers")
    g.add_argument("--all", action="store_true", help="every task")
    p.epilog = "--json prints " + ('{"pid", "cpu", "comm", "frames": [{"address", "function", "offset", '
                        '"module"}]} (a list of them with --all)')
    p.set_defaults(func=run)


def _print(bt: Backtrace) -> None:
    task = f"{bt.task:x}" if bt.task is not None else "-"
    cpu = "-" if bt.cpu is None else bt.cpu
    pid = "-" if bt.pid is None else bt.pid
    print(f'PID: {pid:<7} TASK: {task}  CPU: {cpu}  COMMAND: "{bt.comm or "?"}"')
    for i, f in enumerate(bt.frames):
        print(f" #{i:<2} [{f.address:016x}] {f.text()}")
    if bt.error:
        print(f"    (backtrace stopped: {bt.error})")


def run(args: argparse.Namespace) -> int:
    from ..linux import stack, tasks
    with open_kvm(args) as kd:
        if args.panic:
            out = [stack.panic_backtrace(kd, tasks.task_on_cpu_function(kd))]
        elif args.all:
            out = [stack.task_backtrace(kd, t) for t in tasks.tasks(kd)]
        else:
            t = tasks.find_task(kd, args.pid)
            if t is None:
                print(f"pykvm bt: no task with pid {args.pid}")
                return 1
            out = [stack.task_backtrace(kd, t)]
    if args.json:
        import json
        data = [b.as_json() for b in out]
        print(json.dumps(data if args.all else data[0], indent=1))
    else:
        for i, bt in enumerate(out):
            if i:
                print()
            _print(bt)
    bad = any(b.error and not b.error.startswith("clean") for b in out if b.error)
    return 1 if bad else 0
