/*
 * notes.c - ELF notes, wherever a dump keeps them (PT_NOTE segments of ELF
 * cores, the note area of a kdump sub-header): VMCOREINFO, QEMU's per-CPU
 * state, and a process core's auxiliary vector.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

#define NT_PRSTATUS 1
#define NT_PRPSINFO 3
#define NT_AUXV 6
#define NT_SIGINFO 0x53494749u
#define NT_FILE 0x46494c45u
#define AT_NULL 0
#define AT_ENTRY 9

/* QEMUCPUState: version, size, 18 registers, 10 segments, then cr[0..4]. */
#define QEMU_CR_OFFSET (8 + 18 * 8 + 10 * 24)

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* A process's AT_ENTRY: where a PIE's entry point was loaded. */
static void read_auxv(kvm_t *kd, int big, size_t word,
		      const unsigned char *desc, size_t len)
{
	size_t i;

	for (i = 0; i + 2 * word <= len; i += 2 * word) {
		uint64_t type = word == 8 ? kvm_ld64(big, desc + i)
					  : kvm_ld32(big, desc + i);
		uint64_t val = word == 8 ? kvm_ld64(big, desc + i + word)
					 : kvm_ld32(big, desc + i + word);
		if (type == AT_NULL)
			break;
		if (type == AT_ENTRY) {
			kd->at_entry = val;
			kd->have_at_entry = 1;
		}
	}
}

/* Keep a copy of every note area (bounded) for callers that want the CPUs' registers. */
#define KVM_NOTES_MAX (16u << 20)

static void keep_notes(kvm_t *kd, const unsigned char *buf, size_t len)
{
	unsigned char *p;

	if (len == 0 || len > KVM_NOTES_MAX || kd->notes_len > KVM_NOTES_MAX - len)
		return;
	p = realloc(kd->notes, kd->notes_len + len);
	if (p == NULL)
		return; /* the registers are extras: the open goes on without them */
	memcpy(p + kd->notes_len, buf, len);
	kd->notes = p;
	kd->notes_len += len;
}

int kvm_notes_parse(kvm_t *kd, const unsigned char *buf, size_t len, int big,
		    size_t word, uint64_t file_off, int *qemu)
{
	size_t pos = 0;

	keep_notes(kd, buf, len);

	while (len - pos >= 12) {
		uint32_t namesz = kvm_ld32(big, buf + pos);
		uint32_t descsz = kvm_ld32(big, buf + pos + 4);
		uint32_t type = kvm_ld32(big, buf + pos + 8);
		const char *name = (const char *)buf + pos + 12;
		const unsigned char *desc;
		size_t nlen = pad4(namesz), dlen = pad4(descsz);

		if (namesz > len || descsz > len || nlen + dlen > len - pos - 12) {
			kvm_err(kd, EINVAL,
				"%s: note at offset %llu runs past its note area (%zu bytes at offset %llu)",
				kd->core.path, (unsigned long long)(file_off + pos),
				len, (unsigned long long)file_off);
			return -1;
		}
		desc = buf + pos + 12 + nlen;
		if (namesz == 11 && memcmp(name, "VMCOREINFO", 11) == 0) {
			if (kvm_vmcoreinfo_set(kd, (const char *)desc, descsz) != 0)
				return -1;
		} else if (namesz == 5 && memcmp(name, "CORE", 5) == 0) {
			/* Evidence of what the core is (core_elf.c weighs it). */
			if (type == NT_PRSTATUS)
				kd->note_prstatus++;
			else if (type == NT_PRPSINFO || type == NT_AUXV ||
				 type == NT_SIGINFO || type == NT_FILE)
				kd->note_process++;
			if (type == NT_AUXV)
				read_auxv(kd, big, word, desc, descsz);
		} else if (namesz == 5 && memcmp(name, "QEMU", 5) == 0) {
			/* The first CPU's control registers: a page-table root
			 * (CR3) and paging mode (CR4) when VMCOREINFO is absent. */
			if (!*qemu && descsz >= QEMU_CR_OFFSET + 40) {
				kd->cpu_cr3 = kvm_ld64(big, desc + QEMU_CR_OFFSET + 24);
				kd->cpu_cr4 = kvm_ld64(big, desc + QEMU_CR_OFFSET + 32);
				kd->have_cpu_cr = 1;
			}
			*qemu = 1;
		}
		pos += 12 + nlen + dlen;
	}
	return 0;
}
