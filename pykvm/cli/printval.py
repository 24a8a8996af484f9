"""pykvm print (this module is not named print: it would shadow the builtin in the package): a typed kernel value: symbol, then .member, ->member, [index]."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from .common import CliError, Parser, add_files, open_kvm, print_json

if TYPE_CHECKING:
    from ..btf import Object
    from ..kvm import Kvm

_STEP = re.compile(r"\s*(?:(\.|->)\s*([A-Za-z_]\w*)|\[\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*\])")
_HEAD = re.compile(r"\s*([A-Za-z_.$][\w.$]*?)(?=\.|->|\[|\s*$)")


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("print", help="print a typed value: symbol.member->member[index]",
                       description="Print EXPR: a global symbol (its declared type, or the "
                                   "kernel's BTF for per-CPU variables), then .member, "
                                   "->member and [index] steps, e.g. init_task.comm, "
                                   "init_uts_ns.name.release, init_task.tasks.next.  --json: "
                                   "{expr, type, address, value}; value an int, a string for "
                                   "char arrays, a list for arrays, an object for structs.")
    p.add_argument("expr", metavar="EXPR")
    add_files(p)
    p.set_defaults(func=run)


def evaluate(kd: Kvm, expr: str) -> Object:
    m = _HEAD.match(expr)
    if m is None:
        raise CliError(f"EXPR must start with a symbol: {expr!r}")
    try:
        obj = kd.object(m.group(1))
    except LookupError as e:
        raise CliError(e.args[0] if e.args else str(e)) from None
    pos = m.end()
    while pos < len(expr.rstrip()):
        s = _STEP.match(expr, pos)
        if s is None:
            raise CliError(f"cannot parse {expr[pos:]!r} in {expr!r} (.member, ->member, [index])")
        try:
            if s.group(2):
                obj = obj.member(s.group(2))
            else:
                obj = obj[int(s.group(3), 0)]
        except (AttributeError, LookupError, TypeError) as e:
            raise CliError(e.args[0] if e.args else str(e)) from None
        pos = s.end()
    return obj


def jsonable(obj: Object, depth: int = 0) -> Any:
    t = obj.type.resolve()
    if t.kind == "array" and t.target.resolve().is_char:  # type: ignore[union-attr]
        return obj.string()
    if t.kind == "array":
        return [jsonable(x, depth + 1) for x in obj]
    if t.kind in ("struct", "union"):
        return {name: jsonable(obj.member(name), depth + 1) for name in t.member_index()}
    if t.kind in ("func", "func_proto", "void", "fwd"):
        return None
    return obj.value()


def run(args: argparse.Namespace) -> int:
    with open_kvm(args) as kd:
        obj = evaluate(kd, args.expr)
        if args.json:
            print_json({"expr": args.expr, "type": obj.type.name_str(), "address": obj.address,
                        "value": jsonable(obj)})
            return 0
        t = obj.type.resolve()
        print(f"({obj.type.name_str()}) {args.expr} @ 0x{obj.address:x}")
        if t.kind in ("struct", "union"):
            for name, (bit, bsize, mt) in t.member_index().items():
                print(f"  .{name} = {obj.member(name).format()}")
        elif t.kind == "array" and not t.target.resolve().is_char:  # type: ignore[union-attr]
            for i, x in enumerate(obj):
                print(f"  [{i}] = {x.format()}")
        else:
            print(f"  = {obj.format()}")
    return 0
