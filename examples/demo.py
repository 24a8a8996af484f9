"""Read a real Linux crash dump with pykvm and check it against the guest's own words.

usage: python examples/demo.py [fixtures/demo]

fixtures/demo holds a real QEMU dump of a Debian kernel (KASLR on), cut down
to the pages read here plus the page tables that map them, and the guest's
own kallsyms lines and banner (truth.json).
"""

import json
import sys
from pathlib import Path

import pykvm

demo = Path(sys.argv[1] if len(sys.argv) > 1 else "fixtures/demo")
truth = json.loads((demo / "truth.json").read_text())

with pykvm.open(demo / "kallsyms-demo.txt", demo / "vmcore-demo.elf", errstr="demo") as kd:
    banner = kd.read_cstring(kd.symbol("linux_banner"))
    release = kd.read_cstring(kd.symbol("init_uts_ns") + 2 * 65)  # new_utsname.release
    jiffies = kd.read_u64(kd.symbol("jiffies_64"))
    # __this_module of a loaded module: module space, reached by a page-table walk
    module = kd.read_cstring(kd.symbols["__this_module"].value + 24, 56)
    if pykvm.has("info"):  # the shim's kvm_info; a native libkvm has none
        info = kd.info
        print(f"dump        {info['format']}, {info['osrelease']}, build-id {info['build_id']}")
        print(f"KASLR       kernel displaced by {info['kerndisp']:#x}, phys_base {info['phys_base']:#x}")
    print(f"banner      {banner.strip()}")
    print(f"release     {release}")
    print(f"jiffies_64  {jiffies}")
    where = f"__this_module at {kd.symbol('__this_module'):#x}"
    if pykvm.has("physaddr"):
        where += f", physical {kd.physaddr(kd.symbol('__this_module')):#x}"
    print(f"module      {module} ({where})")
    ok = banner == truth["banner"] and release == truth["release"] and module == truth["module"]
    print("matches the guest's own output:", "yes" if ok else "NO")
    sys.exit(0 if ok else 1)
