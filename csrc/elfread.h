/*
 * elfread.h - reading ELF headers of either class and byte order, with
 * every offset and count checked against the file.  Field offsets are the
 * ELF specification's; the system's <elf.h> is not used so that a 32-bit
 * big-endian file reads the same on every host.
 */
#ifndef PYKVM_ELFREAD_H
#define PYKVM_ELFREAD_H

#include "kvm_private.h"

#define KVM_ET_EXEC 2
#define KVM_ET_DYN 3
#define KVM_ET_CORE 4
#define KVM_PT_LOAD 1
#define KVM_PT_NOTE 4
#define KVM_SHT_SYMTAB 2
#define KVM_SHT_STRTAB 3
#define KVM_SHT_NOTE 7
#define KVM_SHT_NOBITS 8
#define KVM_SHT_DYNSYM 11
#define KVM_EM_386 3
#define KVM_EM_X86_64 62

struct kvm_elf {
	struct kvm_file *f;
	int big;   /* byte order */
	int class; /* 32 or 64 */
	uint16_t type, machine;
	uint64_t phoff, shoff;
	uint32_t phnum, shnum; /* after PN_XNUM / SHN_UNDEF escapes */
	uint16_t phentsize, shentsize;
	uint32_t shstrndx;
};

struct kvm_phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

struct kvm_shdr {
	uint32_t name, type, link, info;
	uint64_t flags, addr, offset, size, entsize;
};

int kvm_elf_is(const unsigned char *head, size_t n);
int kvm_elf_read(kvm_t *kd, struct kvm_file *f, struct kvm_elf *e);
int kvm_elf_phdr(kvm_t *kd, const struct kvm_elf *e, uint32_t i,
		 struct kvm_phdr *ph);
int kvm_elf_shdr(kvm_t *kd, const struct kvm_elf *e, uint32_t i,
		 struct kvm_shdr *sh);
int kvm_elf_check_model(kvm_t *kd, const struct kvm_elf *e, const char *what);

#endif /* PYKVM_ELFREAD_H */
