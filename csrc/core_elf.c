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
	s->v[s->n].cut = 0;
	/* A file cut short (disk full while dumping): keep what is there. */
	if (ph->filesz > 0 && (ph->offset >= kd->core.size ||
			       ph->filesz > kd->core.size - ph->offset)) {
		uint64_t have = ph->offset >= kd->core.size ? 0 : kd->core.size - ph->offset;
		s->v[s->n].filesz = have;
		s->v[s->n].cut = ph->filesz - have;
	}
	s->n++;
	return 0;
}

/* A segment whose bytes the file does not (all) hold. */
struct lost {
	uint64_t off, end;
	uint32_t index;
};

static int cmp_lost(const void *a, const void *b)
{
	const struct lost *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

#define LAYOUT_SLACK (1u << 20) /* alignment gaps between segments in the file */

/*
 * Segments past the end of the file: a dump cut short (disk full) when
 * they continue the file's layout -- the first one crosses (or starts near)
 * the end and each next starts where the ones before it end -- so it opens
 * and kd->truncated says how many bytes are missing.  A segment far beyond
 * everything else is a corrupt header instead: refused.
 */
static int truncated_by(kvm_t *kd, struct lost *l, size_t n)
{
	uint64_t reach = kd->core.size;
	size_t i;

	qsort(l, n, sizeof(*l), cmp_lost);
	for (i = 0; i < n; i++) {
		if (l[i].off > reach && l[i].off - reach > LAYOUT_SLACK) {
			kvm_err(kd, EINVAL,
				"%s: segment %u (offset %llu, %llu bytes) is past the end of the file (%llu bytes)",
				kd->core.path, l[i].index, (unsigned long long)l[i].off,
				(unsigned long long)(l[i].end - l[i].off),
				(unsigned long long)kd->core.size);
			return -1;
		}
		if (l[i].end > reach)
			reach = l[i].end;
	}
	kd->truncated = reach - kd->core.size;
	return 0;
}

/* Does the namelist look like a kernel's?  A vmlinux (ELF entry in the
 * kernel half) or a System.map / kallsyms listing linux_banner. */
static int namelist_is_kernel(kvm_t *kd, const char *path)
{
	struct kvm_file f;
	int yes = 0;

	if (path == NULL)
		return 0;
	/* A failure here is open_namelist's to report, later. */
	if (kvm_file_open(kd, &f, path, O_RDONLY, 1) == 0 && f.map != NULL) {
		const unsigned char *m = f.map;
		if (f.size >= 32 && kvm_elf_is(m, 4)) {
			int big = m[5] == 2;
			uint64_t entry = m[4] == 2 && f.size >= 32 ? kvm_ld64(big, m + 24)
								: kvm_ld32(big, m + 24);
			yes = m[4] == 2 ? entry >= 0xffff800000000000ULL : entry >= 0xc0000000ULL;
			yes = yes && kvm_ld16(big, m + 16) == KVM_ET_EXEC;
		} else {
			static const char want[] = " linux_banner\n";
			size_t i, w = sizeof(want) - 1;
			for (i = 0; i + w <= f.size && !yes; i++)
				yes = m[i] == ' ' && memcmp(m + i, want, w) == 0;
		}
	}
	kvm_file_close(&f);
	kd->errbuf[0] = '\0';
	kd->errnum = 0;
	return yes;
}

/*
 * An ELF core without VMCOREINFO or QEMU notes: a kernel dump (kdump's
 * /proc/vmcore of an old kernel, a dump whose notes were lost) or a
 * process core?  Kernel dumps put physical addresses in p_paddr (process
 * cores write 0) and map the kernel half; process cores carry notes
 * kernel dumps never do (NT_PRPSINFO, NT_AUXV, NT_FILE, NT_SIGINFO), and
 * a kdump vmcore has NT_PRSTATUS (one per CPU) and nothing else.  When
 * the evidence is absent or conflicts, a kernel namelist decides.
 */
static int looks_like_kernel(kvm_t *kd, int paddrs, int kernel_half)
{
	int kernel = paddrs + kernel_half +
		     (kd->note_prstatus > 0 && kd->note_process == 0);
	int process = kd->note_process > 0;

	if (kernel && !process)
		return 1;
	if (process && !kernel)
		return 0;
	return namelist_is_kernel(kd, kd->namelist);
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
	int qemu = 0, distinct_vaddr = 0, paddrs = 0, kernel_half = 0;
	struct lost *lost = NULL;
	size_t nlost = 0, lost_cap = 0;
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
			goto fail;
		if (ph.type == KVM_PT_NOTE && read_notes(kd, &e, &ph, &qemu) != 0)
			goto fail;
		if (ph.type != KVM_PT_LOAD)
			continue;
		nload++;
		if (ph.filesz > ph.memsz) {
			kvm_err(kd, EINVAL,
				"%s: segment %u has p_filesz %llu > p_memsz %llu",
				kd->core.path, i, (unsigned long long)ph.filesz,
				(unsigned long long)ph.memsz);
			goto fail;
		}
		if (!kd->live && (ph.offset > kd->core.size ||
				  ph.filesz > kd->core.size - ph.offset) &&
		    ph.offset + ph.filesz >= ph.offset) {
			/* Perhaps truncated: judged once every segment is seen. */
			if (nlost == lost_cap) {
				size_t c = lost_cap ? 2 * lost_cap : 16;
				struct lost *v = realloc(lost, c * sizeof(*v));
				if (v == NULL) {
					kvm_err(kd, ENOMEM, "out of memory for segments");
					goto fail;
				}
				lost = v;
				lost_cap = c;
			}
			lost[nlost].off = ph.offset;
			lost[nlost].end = ph.offset + ph.filesz;
			lost[nlost].index = i;
			nlost++;
		} else if (ph.offset > kd->core.size ||
			   ph.filesz > kd->core.size - ph.offset) {
			kvm_err(kd, EINVAL,
				"%s: segment %u (offset %llu, %llu bytes) is past the end of the file (%llu bytes)",
				kd->core.path, i, (unsigned long long)ph.offset,
				(unsigned long long)ph.filesz,
				(unsigned long long)kd->core.size);
			goto fail;
		}
		if (ph.vaddr + ph.memsz < ph.vaddr && ph.memsz > 0 &&
		    ph.vaddr + ph.memsz != 0) {
			kvm_err(kd, EINVAL, "%s: segment %u wraps the address space",
				kd->core.path, i);
			goto fail;
		}
		if (ph.vaddr != ph.paddr)
			distinct_vaddr = 1;
		if (ph.paddr != 0 && ph.paddr != NO_PADDR)
			paddrs = 1;
		/* (32-bit user space reaches 0xffffe000 under a 64-bit kernel.) */
		if (e.class == 64 && ph.vaddr >= 0xffff800000000000ULL)
			kernel_half = 1;
	}
	if (nlost > 0 && truncated_by(kd, lost, nlost) != 0)
		goto fail;
	free(lost);
	if (nload == 0) {
		kvm_err(kd, EINVAL, "%s: core file has no PT_LOAD segments",
			kd->core.path);
		return -1;
	}
	if (kd->want_format != NULL && strcmp(kd->want_format, "elf-kernel") == 0)
		kd->kernel = 1;
	else if (kd->want_format != NULL && strcmp(kd->want_format, "elf-process") == 0)
		kd->kernel = 0;
	else
		kd->kernel = kd->live || qemu || kd->vmcoreinfo != NULL ||
			     looks_like_kernel(kd, paddrs, kernel_half);
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
	/* A process core's p_filesz < p_memsz is memory the dumper left out. */
	kd->vsegs.unsaved_faults = !kd->kernel;
	if (kvm_segs_finish(kd, &kd->vsegs, "virtual", 0) != 0 ||
	    kvm_segs_finish(kd, &kd->psegs, "physical", 1) != 0)
		return -1;
	return 0;
fail:
	free(lost);
	return -1;
}
