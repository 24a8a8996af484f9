/* elfread.c - checked ELF header, program header and section header reads. */
#include <errno.h>
#include <string.h>

#include "elfread.h"

#define PN_XNUM 0xffff

int kvm_elf_is(const unsigned char *head, size_t n)
{
	return n >= 4 && memcmp(head, "\177ELF", 4) == 0;
}

int kvm_elf_read(kvm_t *kd, struct kvm_file *f, struct kvm_elf *e)
{
	unsigned char h[64];
	size_t hsize;
	int big;

	memset(e, 0, sizeof(*e));
	e->f = f;
	if (f->size < 52 || kvm_file_copy(f, 0, h, 52, 0) != KVM_OK) {
		kvm_err(kd, EINVAL, "%s: truncated ELF header", f->path);
		return -1;
	}
	if (h[4] != 1 && h[4] != 2) {
		kvm_err(kd, EINVAL, "%s: bad ELF class %u", f->path, h[4]);
		return -1;
	}
	if (h[5] != 1 && h[5] != 2) {
		kvm_err(kd, EINVAL, "%s: unsupported ELF data encoding %u",
			f->path, h[5]);
		return -1;
	}
	e->class = h[4] == 1 ? 32 : 64;
	e->big = big = h[5] == 2;
	hsize = e->class == 64 ? 64 : 52;
	if (f->size < hsize || kvm_file_copy(f, 0, h, hsize, 0) != KVM_OK) {
		kvm_err(kd, EINVAL, "%s: truncated ELF header", f->path);
		return -1;
	}
	e->type = kvm_ld16(big, h + 16);
	e->machine = kvm_ld16(big, h + 18);
	if (e->class == 64) {
		e->phoff = kvm_ld64(big, h + 32);
		e->shoff = kvm_ld64(big, h + 40);
		e->phentsize = kvm_ld16(big, h + 54);
		e->phnum = kvm_ld16(big, h + 56);
		e->shentsize = kvm_ld16(big, h + 58);
		e->shnum = kvm_ld16(big, h + 60);
		e->shstrndx = kvm_ld16(big, h + 62);
	} else {
		e->phoff = kvm_ld32(big, h + 28);
		e->shoff = kvm_ld32(big, h + 32);
		e->phentsize = kvm_ld16(big, h + 42);
		e->phnum = kvm_ld16(big, h + 44);
		e->shentsize = kvm_ld16(big, h + 46);
		e->shnum = kvm_ld16(big, h + 48);
		e->shstrndx = kvm_ld16(big, h + 50);
	}
	if (e->shoff != 0 && e->shentsize < (e->class == 64 ? 64 : 40)) {
		kvm_err(kd, EINVAL, "%s: bad section header size %u", f->path,
			e->shentsize);
		return -1;
	}
	if (e->phnum != 0 && e->phentsize < (e->class == 64 ? 56 : 32)) {
		kvm_err(kd, EINVAL, "%s: bad program header size %u", f->path,
			e->phentsize);
		return -1;
	}
	/* Counts too large for the header live in section header 0. */
	if (e->shoff != 0 && (e->shnum == 0 || e->phnum == PN_XNUM ||
			      e->shstrndx == 0xffff)) {
		struct kvm_shdr s0;
		uint32_t save = e->shnum;
		e->shnum = 1;
		if (kvm_elf_shdr(kd, e, 0, &s0) != 0)
			return -1;
		e->shnum = save ? save : (uint32_t)s0.size;
		if (e->phnum == PN_XNUM)
			e->phnum = s0.info;
		if (e->shstrndx == 0xffff)
			e->shstrndx = s0.link;
		if ((uint64_t)s0.size != e->shnum && save == 0) {
			kvm_err(kd, EINVAL, "%s: bad extended section count",
				f->path);
			return -1;
		}
	} else if (e->phnum == PN_XNUM) {
		kvm_err(kd, EINVAL,
			"%s: PN_XNUM program header count but no section header 0",
			f->path);
		return -1;
	}
	/* The tables must lie inside the file. */
	if (e->phnum != 0 &&
	    (e->phoff > f->size ||
	     (uint64_t)e->phnum * e->phentsize > f->size - e->phoff)) {
		kvm_err(kd, EINVAL,
			"%s: program header table (%u entries at offset %llu) is past the end of the file",
			f->path, e->phnum, (unsigned long long)e->phoff);
		return -1;
	}
	if (e->shnum != 0 &&
	    (e->shoff > f->size ||
	     (uint64_t)e->shnum * e->shentsize > f->size - e->shoff)) {
		kvm_err(kd, EINVAL,
			"%s: section header table (%u entries at offset %llu) is past the end of the file",
			f->path, e->shnum, (unsigned long long)e->shoff);
		return -1;
	}
	return 0;
}

int kvm_elf_phdr(kvm_t *kd, const struct kvm_elf *e, uint32_t i,
		 struct kvm_phdr *ph)
{
	unsigned char b[56];
	size_t n = e->class == 64 ? 56 : 32;
	int big = e->big;

	if (i >= e->phnum ||
	    kvm_file_pread(kd, e->f, e->phoff + (uint64_t)i * e->phentsize, b,
			   n) != 0)
		return -1;
	ph->type = kvm_ld32(big, b);
	if (e->class == 64) {
		ph->offset = kvm_ld64(big, b + 8);
		ph->vaddr = kvm_ld64(big, b + 16);
		ph->paddr = kvm_ld64(big, b + 24);
		ph->filesz = kvm_ld64(big, b + 32);
		ph->memsz = kvm_ld64(big, b + 40);
	} else {
		ph->offset = kvm_ld32(big, b + 4);
		ph->vaddr = kvm_ld32(big, b + 8);
		ph->paddr = kvm_ld32(big, b + 12);
		ph->filesz = kvm_ld32(big, b + 16);
		ph->memsz = kvm_ld32(big, b + 20);
	}
	return 0;
}

int kvm_elf_shdr(kvm_t *kd, const struct kvm_elf *e, uint32_t i,
		 struct kvm_shdr *sh)
{
	unsigned char b[64];
	size_t n = e->class == 64 ? 64 : 40;
	int big = e->big;

	if (i >= e->shnum) {
		kvm_err(kd, EINVAL, "%s: section index %u out of range",
			e->f->path, i);
		return -1;
	}
	if (kvm_file_pread(kd, e->f, e->shoff + (uint64_t)i * e->shentsize, b,
			   n) != 0)
		return -1;
	sh->name = kvm_ld32(big, b);
	sh->type = kvm_ld32(big, b + 4);
	if (e->class == 64) {
		sh->flags = kvm_ld64(big, b + 8);
		sh->addr = kvm_ld64(big, b + 16);
		sh->offset = kvm_ld64(big, b + 24);
		sh->size = kvm_ld64(big, b + 32);
		sh->link = kvm_ld32(big, b + 40);
		sh->info = kvm_ld32(big, b + 44);
		sh->entsize = kvm_ld64(big, b + 56);
	} else {
		sh->flags = kvm_ld32(big, b + 8);
		sh->addr = kvm_ld32(big, b + 12);
		sh->offset = kvm_ld32(big, b + 16);
		sh->size = kvm_ld32(big, b + 20);
		sh->link = kvm_ld32(big, b + 24);
		sh->info = kvm_ld32(big, b + 28);
		sh->entsize = kvm_ld32(big, b + 36);
	}
	return 0;
}

/*
 * The data-model check of illumos libkvm: a 64-bit process reads 64-bit
 * images only (and 32 with 32), unless the caller opted in.
 */
int kvm_elf_check_model(kvm_t *kd, const struct kvm_elf *e, const char *what)
{
	int self = (int)(sizeof(void *) * 8);

	if (e->class == self || (kd->opts & KVM_OPT_FOREIGN))
		return 0;
	kvm_err(kd, EINVAL, "%s is a %d-bit %s - cannot examine with %d-bit libkvm",
		e->f->path, e->class, what, self);
	return -1;
}
