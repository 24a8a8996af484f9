"""Kernel knowledge over a Kvm handle: the log, tasks, modules, facts, backtraces.

Each module reads only through the handle (reads, symbols, VMCOREINFO, the kernel's types):
no debuginfo is needed.  The log's names are imported on first use, so that a tool
importing one module (pykvm.linux.tasks) does not load the printk reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

# eager: the submodule of the same name would otherwise shadow the function once imported
from .vmcoreinfo import VmcoreInfo, vmcoreinfo

if TYPE_CHECKING:
    from .printk import Record, dmesg, format_makedumpfile

__all__ = ["VmcoreInfo", "vmcoreinfo", "Record", "dmesg", "format_makedumpfile"]
_WHERE = {"Record": "printk", "dmesg": "printk", "format_makedumpfile": "printk"}

__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
