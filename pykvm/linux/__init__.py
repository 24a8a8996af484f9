"""Kernel knowledge over a Kvm handle: the log, tasks, modules, facts, backtraces.

Each module reads only through the handle (reads, symbols, VMCOREINFO, the kernel's types):
no debuginfo is needed.
"""

from .vmcoreinfo import VmcoreInfo, vmcoreinfo
from .printk import Record, dmesg, format_makedumpfile

__all__ = ["VmcoreInfo", "vmcoreinfo", "Record", "dmesg", "format_makedumpfile"]
