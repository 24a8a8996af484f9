"""Ground truth for kernel types: bpftool's raw dump of the fixture kernel's
BTF (fixtures/kernel/vmlinux_btf.py writes it with Debian's bpftool, an
independent BTF parser), and sizes and member offsets computed from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from conftest import CACHE, run_fixture_script

_TYPE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_MEMBER = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?$")

# id -> (kind, name, attrs, [(member name, type id, bit offset, bit size)])
Types = Dict[int, Tuple[str, Optional[str], Dict[str, str], List[Tuple[Optional[str], int, int, int]]]]


def bpftool_truth_dir() -> Path:
    """The cache folder holding vmlinux.bpftool.txt and qemu_fw_cfg.bpftool.txt."""
    run_fixture_script("fixtures/kernel/vmlinux_btf.py")
    (d,) = [p for p in (CACHE / "kernel").iterdir() if (p / "vmlinux.bpftool.txt").is_file()][:1]
    return d


def parse_bpftool(path: Path) -> Types:
    """id -> (kind, name, attrs, members) from `bpftool btf dump ... format raw`."""
    types: Types = {}
    cur = None
    for line in path.read_text().splitlines():
        m = _TYPE.match(line)
        if m:
            attrs = dict(kv.split("=", 1) for kv in m.group(4).split() if "=" in kv)
            cur = (m.group(2), None if m.group(3) == "(anon)" else m.group(3), attrs, [])
            types[int(m.group(1))] = cur
            continue
        m = _MEMBER.match(line)
        if m and cur is not None and cur[0] in ("STRUCT", "UNION"):
            cur[3].append((None if m.group(1) in ('', '(anon)') else m.group(1), int(m.group(2)),
                           int(m.group(3)), int(m.group(4) or 0)))
    return types


class Layouts:
    """Sizes and byte offsets of member paths, as bpftool's dump gives them."""

    def __init__(self, types: Types):
        self.types = types
        self.by_name: Dict[Tuple[str, str], int] = {}
        for tid in sorted(types):
            kind, name = types[tid][0], types[tid][1]
            if name and kind in ("STRUCT", "UNION"):
                self.by_name.setdefault((kind.lower(), name), tid)

    def _id(self, type_name: str) -> int:
        kind, name = type_name.split(None, 1)
        return self.by_name[(kind, name)]

    def _strip(self, tid: int) -> int:
        while self.types[tid][0] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
            tid = int(self.types[tid][2]["type_id"])
        return tid

    def size(self, type_name: str) -> int:
        return int(self.types[self._id(type_name)][2]["size"])

    def _find(self, tid: int, name: str) -> Optional[Tuple[int, int]]:
        """(bit offset, member type id) of name in struct tid, looking into
        anonymous members as C does."""
        for mname, mtid, bit, _ in self.types[tid][3]:
            if mname == name:
                return bit, mtid
            if mname is None:
                inner = self._find(self._strip(mtid), name)
                if inner is not None:
                    return bit + inner[0], inner[1]
        return None

    def offset(self, type_name: str, path: str) -> int:
        tid, bits = self._id(type_name), 0
        for part in path.split("."):
            hit = self._find(self._strip(tid), part)
            if hit is None:
                raise KeyError(f"{type_name} has no member {path}")
            bits += hit[0]
            tid = hit[1]
        return bits // 8
