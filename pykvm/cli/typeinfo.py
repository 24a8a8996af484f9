"""pykvm type (this module is not named type: it would shadow the builtin in the package): a kernel type's layout from the image's BTF, like pahole."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Dict

from .common import CliError, Parser, add_files, open_kvm, print_json

if TYPE_CHECKING:
    from ..btf import Type


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("type", help="a kernel type's layout (BTF), like pahole",
                       description="Print NAME's layout: each member's byte offset, size and "
                                   "type ('struct task_struct', 'union thread_union', 'u64').  "
                                   "--json: {name, kind, size, members: [{name, offset, "
                                   "bit_offset, bit_size, type}]}, bit_offset from the start "
                                   "of the type; an anonymous struct/union member has name null.")
    p.add_argument("name", metavar="NAME", help="a C type name, e.g. 'struct task_struct'")
    add_files(p)
    p.set_defaults(func=run)


def layout(t: Type) -> Dict[str, Any]:
    r = t.resolve()
    out: Dict[str, Any] = {"name": t.name_str(), "kind": r.kind, "size": t.size, "members": []}
    if r.kind in ("struct", "union"):
        out["members"] = [{"name": m.name, "offset": m.offset, "bit_offset": m.bit_offset,
                           "bit_size": m.bit_size, "type": m.type.name_str()}
                          for m in r.members]
    elif r.kind in ("enum", "enum64"):
        out["enumerators"] = [{"name": n, "value": v} for n, v in r.enumerators]
    return out


def run(args: argparse.Namespace) -> int:
    with open_kvm(args) as kd:
        try:
            t = kd.type(args.name)
        except LookupError as err:
            raise CliError(err.args[0] if err.args else str(err)) from None
        info = layout(t)
        if args.json:
            print_json(info)
            return 0
        r = t.resolve()
        head = info["name"] if r is t else f"{info['name']} = {r.name_str()}"
        if not info["members"] and "enumerators" not in info:
            print(f"{head}; /* kind {info['kind']}, size {info['size']} */")
            return 0
        print(head + " {")
        for e in info.get("enumerators", []):
            print(f"\t{e['name']} = {e['value']},")
        for m in info["members"]:
            decl = m["type"] if m["name"] is None else _decl(r, m)
            bits = f":{m['bit_size']}" if m["bit_size"] else ""
            where = (f"{m['offset']:6}:{m['bit_offset'] % 8:<2}" if m["bit_size"]
                     else f"{m['offset']:6}   ")
            msize = "" if m["bit_size"] else _size(r, m)
            print(f"\t{decl + bits + ';':<48} /* {where} {msize:>5} */")
        print(f"}}; /* size: {info['size']} */")
    return 0


def _decl(r: Type, m: Dict[str, Any]) -> str:
    for mem in r.members:
        if mem.name == m["name"]:
            return mem.type.name_str(m["name"])
    return f"{m['type']} {m['name']}"


def _size(r: Type, m: Dict[str, Any]) -> str:
    for mem in r.members:
        if mem.name == m["name"] and mem.bit_offset == m["bit_offset"]:
            return str(mem.type.size if mem.type.size is not None else "")
    return ""
