"""Declarations of well-known kernel globals.

Kernel BTF describes the types and the per-CPU variables, not the other
globals, so their declarations live here (as in the kernel's headers).  A
user adds more with ``Kvm.declare()`` or by passing ``type=`` to
``Kvm.object()``.
"""

from __future__ import annotations

import re
from typing import Dict, Tuple

# symbol -> its C type (x86-64 Linux 5.x-6.x).  Arrays sized by NR_CPUS
# use 0 (unknown length): index them, do not take their value.
GLOBALS: Dict[str, str] = {
    "init_task": "struct task_struct",
    "init_uts_ns": "struct uts_namespace",
    "init_pid_ns": "struct pid_namespace",
    "init_mm": "struct mm_struct",
    "init_nsproxy": "struct nsproxy",
    "init_cred": "struct cred",
    "init_files": "struct files_struct",
    "init_fs": "struct fs_struct",
    "init_net": "struct net",
    "init_user_ns": "struct user_namespace",
    "prb": "struct printk_ringbuffer *",
    "printk_rb_static": "struct printk_ringbuffer",
    "printk_rb_dynamic": "struct printk_ringbuffer",
    "modules": "struct list_head",
    "btf_modules": "struct list_head",
    "slab_caches": "struct list_head",
    "super_blocks": "struct list_head",
    "vmap_area_list": "struct list_head",
    "jiffies_64": "u64",
    "jiffies": "unsigned long",
    "__per_cpu_offset": "unsigned long [0]",
    "nr_cpu_ids": "unsigned int",
    "panic_cpu": "atomic_t",
    "crashing_cpu": "int",
    "panic_on_oops": "int",
    "oops_in_progress": "int",
    "tainted_mask": "unsigned long",
    "system_state": "enum system_states",
    "linux_banner": "char [0]",
    "saved_command_line": "char *",
    "_totalram_pages": "atomic_long_t",
    "totalram_pages": "atomic_long_t",
    "max_pfn": "unsigned long",
    "max_low_pfn": "unsigned long",
    "page_offset_base": "unsigned long",
    "vmemmap_base": "unsigned long",
    "vmalloc_base": "unsigned long",
    "phys_base": "unsigned long",
    "boot_cpu_data": "struct cpuinfo_x86",
    "__cpu_online_mask": "struct cpumask",
    "__cpu_possible_mask": "struct cpumask",
    "__cpu_present_mask": "struct cpumask",
    "__cpu_active_mask": "struct cpumask",
    "pid_max": "int",
    "nr_threads": "int",
    "total_forks": "unsigned long",
    "avenrun": "unsigned long [3]",
    "sys_tz": "struct timezone",
    "mod_tree": "struct mod_tree_root",
    "node_data": "struct pglist_data *[0]",
    "contig_page_data": "struct pglist_data",
    "mem_section": "struct mem_section **",
    "vmcoreinfo_data": "unsigned char *",
    "vmcoreinfo_note": "u32 *",
    "kexec_crash_image": "struct kimage *",
    "init_thread_union": "union thread_union",
    "shmem_fs_type": "struct file_system_type",
    "file_systems": "struct file_system_type *",
    "cgroup_roots": "struct list_head",
    "cgrp_dfl_root": "struct cgroup_root",
    "ftrace_trace_function": "ftrace_func_t",
    "kptr_restrict": "int",
    "dmesg_restrict": "int",
    "console_drivers": "struct console *",
    "console_list": "struct hlist_head",
    "pid_hash": "struct hlist_head *",
}

_DECL = re.compile(r"^\s*(?P<type>.*?[\s\*\]]?)\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<arr>(\[\s*\d*\s*\])*)\s*;?\s*$")


def parse_declaration(text: str) -> Tuple[str, str]:
    """'struct foo *bar;' -> ('bar', 'struct foo *'); 'char name[16]' ->
    ('name', 'char [16]')."""
    m = _DECL.match(text)
    if m is None or not m.group("type").strip():
        raise ValueError(f"not a C declaration: {text!r}")
    typ = m.group("type").strip()
    if m.group("arr"):
        typ = f"{typ} {m.group('arr').replace(' ', '')}"
    return m.group("name"), typ
