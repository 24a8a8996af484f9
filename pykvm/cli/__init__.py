"""pykvm command line: ``pykvm [-N namelist] [-M core] COMMAND ...``.

-N and -M follow BSD tools (ps, netstat, vmstat): without them the running
kernel is used; they may come before the command or after it.  Each command
is a module of this package with ``add_parser(subparsers)`` and a
``run(args)`` it sets as ``func``; COMMANDS lists them in the order
``--help`` shows, TABLE their names and help lines, so that only the module
of the command run is imported.  Every failure is one line on stderr and
exit status 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import List, Optional

from ..errors import KvmError
from .common import CliError, Parser, add_files

COMMANDS = ["info", "nlist", "read", "convert", "dmesg", "sysinfo", "ps", "lsmod", "bt", "typeinfo", "printval", "sym"]  # typeinfo: `type`, printval: `print` (module names that shadow no builtin)
# module -> (command, its help line): what --help lists without importing the modules;
# a command's module (its options, its run) is imported only when it is the one run.
# tests/test_cli_table.py checks this against what each module's add_parser says.
TABLE = {
    "info": ("info", "describe the core: format, machine, kernel facts, pages, segments"),
    "nlist": ("nlist", "print symbol values, like nm for the given names"),
    "read": ("read", "read memory at a symbol or address"),
    "convert": ("convert", "write an image (LiME, AVML, raw, ...) as an ELF vmcore with VMCOREINFO"),
    "dmesg": ("dmesg", "print the kernel log (text as makedumpfile --dump-dmesg; --json: records)"),
    "sysinfo": ("sys", "system facts: release, machine, CPUs, memory, uptime, the panic message"),
    "ps": ("ps", "list every task: pid, ppid, state letter, cpu, comm, task_struct address"),
    "lsmod": ("lsmod", "list loaded modules: name, size, refcount, users, state, address"),
    "bt": ("bt", "kernel backtrace of the panic (--panic), of a task (PID) or of every task (--all)"),
    "typeinfo": ("type", "a kernel type's layout (BTF), like pahole"),
    "printval": ("print", "print a typed value: symbol.member->member[index]"),
    "sym": ("sym", "an address as name+0xoff/0xsize [module]"),
}


def build_parser(command: Optional[str] = None) -> Parser:
    """The parser: with command (a module of COMMANDS), that command's own and a bare entry
    (name and help) for each other; without, every command's own."""
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
        if command is None or name == command:
            importlib.import_module(f"{__name__}.{name}").add_parser(sub)
        else:  # what --help lists; never parses (main knows the command first)
            cmd, help = TABLE[name]
            sub.add_parser(cmd, help=help, add_help=False)
    return ap


# the options of the top parser that take a value (add_files): -N X, -M X, --format X
_VALUED = ("-N", "-M", "--format")


def _command(argv: List[str]) -> Optional[str]:
    """The module of the command argv runs.  The first word that is not an option or an
    option's value is the command when it names one; otherwise (an abbreviated option, a
    typo) a parser of bare commands finds it as argparse does, or gives argparse's own
    errors, --help and --version.  None when there is no command."""
    by_command = {cmd: name for name, (cmd, _help) in TABLE.items()}
    value = False
    for a in argv:
        if value:
            value = False
        elif a in _VALUED:
            value = True
        elif a.startswith("--for") and "--format".startswith(a) and a != "--for":
            value = True  # an abbreviation of --format ("--for" alone is ambiguous)
        elif not a.startswith("-") or a == "-":
            if a in by_command:
                return by_command[a]
            break
    ns, _ = build_parser("").parse_known_args(argv)
    return by_command.get(getattr(ns, "command", None) or "")


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(_command(argv)).parse_args(argv)
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
