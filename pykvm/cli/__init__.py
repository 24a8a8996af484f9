"""pykvm command line: ``pykvm COMMAND [-N namelist] [-M core] ...``.

-N and -M follow BSD tools (ps, netstat, vmstat): without them the running
kernel is used.  Each command is a module of this package with
``add_parser(subparsers)`` and a ``run(args)`` it sets as ``func``; COMMANDS
lists them in the order ``--help`` shows.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from ..errors import KvmError

COMMANDS = ["info", "nlist", "read", "convert"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pykvm", description="Read kernel memory through libkvm.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KvmError as e:
        print(e, file=sys.stderr)
        return 2
    except BrokenPipeError:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
