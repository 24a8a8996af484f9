"""pykvm command line: ``pykvm [-N namelist] [-M core] COMMAND ...``.

-N and -M follow BSD tools (ps, netstat, vmstat): without them the running
kernel is used; they may come before the command or after it.  Each command
is a module of this package with ``add_parser(subparsers)`` and a
``run(args)`` it sets as ``func``; COMMANDS lists them in the order
``--help`` shows.  Every failure is one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import List, Optional

from ..errors import KvmError
from .common import CliError, Parser, add_files

COMMANDS = ["info", "nlist", "read", "convert", "dmesg", "sysinfo", "ps", "lsmod", "bt", "typeinfo", "printval", "sym"]  # typeinfo: `type`, printval: `print` (module names that shadow no builtin)


def build_parser() -> Parser:
    from .. import __version__, backend, platform

    ap = Parser(prog="pykvm", description="Read kernel memory through libkvm: the running "
                "kernel, a crash dump or a process core.",
                epilog="Options -N, -M, --foreign, --excluded-zero and --json may come before "
                       "the command or after it.  Exit status: 0 done, 1 something asked for "
                       "was not found, 2 an error (one line on stderr).")
    ap.add_argument("--version", action="version",
                    version=f"pykvm {__version__} ({backend}{'' if platform == 'shim' else ', ' + platform})")
    add_files(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    prog = f"pykvm {args.command}"
    try:
        status: int = args.func(args)
        return status
    except KvmError as e:
        print(e if str(e).startswith("pykvm") else f"pykvm: {e}", file=sys.stderr)
        return 2
    except CliError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OverflowError, MemoryError) as e:  # never a traceback for bad input
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        os._exit(0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
