/*
 * core_elf.c - ELF core files: process cores (gcore, the kernel's),
 * /proc/kcore, kdump's /proc/vmcore and QEMU's dump-guest-memory.
 *
 * Process cores and kcore describe virtual memory (p_vaddr).  Kernel dumps
 * describe physical memory (p_paddr), and sometimes virtual too: QEMU with
 * paging=true, kdump for the direct map and text.  QEMU with paging=false
 * writes p_vaddr == p_paddr, which says nothing about virtual addresses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elfread.h"

#define MAX_NOTES (64u << 20) /* more note data than this is not a core */
#define NO_PADDR UINT64_MAX   /* kcore's p_paddr for unmapped ranges */


static int add_seg(kvm_t *kd, struct kvm_segs *s, size_t *cap,
		   uint64_t start, const struct kvm_phdr *ph)
{
	if (s->n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct kvm_seg *v = realloc(s->v, c * sizeof(*v));
		if (v == NULL) {
			kvm_err(kd, ENOMEM, "out of memory for segments");
			return -1;
		}
		s->v = v;
		*cap = c;
	}
	s->v[s->n].start = start;
	s->v[s->n].memsz = ph->memsz;
	s->v[s->n].filesz = ph->filesz;
	s->v[s->n].off = ph->offset;
	s->n++;
	return 0;
}

/* Walk one PT_NOTE segment; remember VMCOREINFO and QEMU CPU registers. */
static int read_notes(kvm_t *kd, const struct kvm_elf *e,
		      const struct kvm_phdr *ph, int *qemu)
{
	unsigned char *buf;
	size_t len = (size_t)ph->filesz;

	if (ph->offset > kd->core.size || ph->filesz > kd->core.size - ph->offset) {
		kvm_err(kd, EINVAL,
			"%s: note segment (offset %llu, %llu bytes) is past the end of the file",
			kd->core.path, (unsigned long long)ph->offset,
			(unsigned long long)ph->filesz);
		return -1;
	}
	if (ph->filesz > MAX_NOTES) {
		kvm_err(kd, EINVAL, "%s: note segment of %llu bytes is too large",
			kd->core.path, (unsigned long long)ph->filesz);
		return -1;
	}
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		kvm_err(kd, ENOMEM, "out of memory for notes");
		return -1;
	}
	if (kvm_file_pread(kd, &kd->core, ph->offset, buf, len) != 0) {
		free(buf);
		return -1;
	}
	if (kvm_notes_parse(kd, buf, len, e->big, e->class / 8, ph->offset,
			    qemu) != 0) {
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

int kvm_core_elf_open(kvm_t *kd, const unsigned char *head, size_t n)
{
	struct kvm_elf e;
	struct kvm_phdr ph;
	size_t vcap = 0, pcap = 0, nload = 0;
	int qemu = 0, distinct_vaddr = 0;
	uint32_t i;

	(void)head;
	(void)n;
	if (kvm_elf_read(kd, &kd->core, &e) != 0)
		return -1;
	if (e.type != KVM_ET_CORE) {
		kvm_err(kd, EINVAL, "%s is not a core file (ELF type %u%s)",
			kd->core.path, e.type,
			e.type == KVM_ET_EXEC || e.type == KVM_ET_DYN
				? ", an executable: give it as the namelist" : "");
		return -1;
	}
	kd->elfclass = e.class;
	kd->bigendian = e.big;
	kd->machine = e.machine;
	if (e.phnum == 0) {
		kvm_err(kd, EINVAL, "%s: core file has no program headers",
			kd->core.path);
		return -1;
	}

	/* Pass 1: notes, and whether p_vaddr carries information. */
	for (i = 0; i < e.phnum; i++) {
		if (kvm_elf_phdr(kd, &e, i, &ph) != 0)
			return -1;
		if (ph.type == KVM_PT_NOTE && read_notes(kd, &e, &ph, &qemu) != 0)
			return -1;
		if (ph.type != KVM_PT_LOAD)
			continue;
		nload++;
		if (ph.filesz > ph.memsz) {
			kvm_err(kd, EINVAL,
				"%s: segment %u has p_filesz %llu > p_memsz %llu",
				kd->core.path, i, (unsigned long long)ph.filesz,
				(unsigned long long)ph.memsz);
			return -1;
		}
		if (ph.offset > kd->core.size ||
		    ph.filesz > kd->core.size - ph.offset) {
			kvm_err(kd, EINVAL,
				"%s: segment %u (offset %llu, %llu bytes) is past the end of the file (%llu bytes)",
				kd->core.path, i, (unsigned long long)ph.offset,
				(unsigned long long)ph.filesz,
				(unsigned long long)kd->core.size);
			return -1;
		}
		if (ph.vaddr + ph.memsz < ph.vaddr && ph.memsz > 0 &&
		    ph.vaddr + ph.memsz != 0) {
			kvm_err(kd, EINVAL, "%s: segment %u wraps the address space",
				kd->core.path, i);
			return -1;
		}
		if (ph.vaddr != ph.paddr)
			distinct_vaddr = 1;
	}
	if (nload == 0) {
		kvm_err(kd, EINVAL, "%s: core file has no PT_LOAD segments",
			kd->core.path);
		return -1;
	}
	kd->kernel = kd->live || qemu || kd->vmcoreinfo != NULL;
	kd->format = kd->live ? "kcore" : kd->kernel ? "elf-kernel" : "elf-process";

	/* Pass 2: the address spaces. */
	for (i = 0; i < e.phnum; i++) {
		if (kvm_elf_phdr(kd, &e, i, &ph) != 0)
			return -1;
		if (ph.type != KVM_PT_LOAD || ph.memsz == 0)
			continue;
		/* A process core is all virtual; a kernel dump is physical, and
		 * virtual too where p_vaddr says something p_paddr does not. */
		if ((!kd->kernel || (distinct_vaddr && ph.vaddr != ph.paddr)) &&
		    add_seg(kd, &kd->vsegs, &vcap, ph.vaddr, &ph) != 0)
			return -1;
		if (kd->kernel && ph.paddr != NO_PADDR &&
		    (ph.paddr != 0 || !kd->live) &&
		    add_seg(kd, &kd->psegs, &pcap, ph.paddr, &ph) != 0)
			return -1;
	}
	if (kvm_segs_finish(kd, &kd->vsegs, "virtual", 0) != 0 ||
	    kvm_segs_finish(kd, &kd->psegs, "physical", 1) != 0)
		return -1;
	return 0;
}
