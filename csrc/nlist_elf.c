/*
 * nlist_elf.c - symbols from an ELF executable or kernel image (vmlinux):
 * .symtab, or .dynsym when the file was stripped.  Either class, either
 * byte order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elfread.h"

#define SHN_UNDEF 0
#define SHN_LORESERVE 0xff00
#define SHN_ABS 0xfff1
#define SHN_COMMON 0xfff2
#define STB_LOCAL 0
#define STB_WEAK 2
#define STT_SECTION 3
#define STT_FILE 4
#define SHF_WRITE 0x1
#define SHF_EXECINSTR 0x4
#define NT_GNU_BUILD_ID 3

/* nm's letter for a symbol, from its binding and its section. */
static char sym_letter(int bind, unsigned shndx, const struct kvm_shdr *sec)
{
	char c;

	if (shndx == SHN_ABS)
		c = 'a';
	else if (shndx == SHN_COMMON)
		c = 'c';
	else if (sec == NULL)
		c = '?';
	else if (sec->flags & SHF_EXECINSTR)
		c = 't';
	else if (sec->type == KVM_SHT_NOBITS)
		c = 'b';
	else if (sec->flags & SHF_WRITE)
		c = 'd';
	else
		c = 'r';
	if (bind == STB_WEAK)
		return c == 't' ? 'W' : 'V';
	if (bind != STB_LOCAL && c != '?')
		c = (char)(c - 'a' + 'A');
	return c;
}

static int load_table(kvm_t *kd, const struct kvm_elf *e,
		      const struct kvm_shdr *secs, uint32_t symidx)
{
	const struct kvm_shdr *st = &secs[symidx], *strs;
	size_t esize = e->class == 64 ? 24 : 16;
	struct kvm_file *f = e->f;
	unsigned char *tab = NULL;
	char *str = NULL;
	uint64_t i, n;
	int rc = -1;

	if (st->link >= e->shnum || secs[st->link].type != KVM_SHT_STRTAB) {
		kvm_err(kd, EINVAL, "%s: symbol table's string table (section %u) is missing",
			f->path, st->link);
		return -1;
	}
	strs = &secs[st->link];
	if (st->entsize < esize) {
		kvm_err(kd, EINVAL, "%s: bad symbol entry size %llu", f->path,
			(unsigned long long)st->entsize);
		return -1;
	}
	if (st->offset > f->size || st->size > f->size - st->offset ||
	    strs->offset > f->size || strs->size > f->size - strs->offset) {
		kvm_err(kd, EINVAL, "%s: symbol table is past the end of the file",
			f->path);
		return -1;
	}
	n = st->size / st->entsize;
	tab = malloc(st->size ? st->size : 1);
	str = malloc(strs->size + 1);
	if (tab == NULL || str == NULL) {
		kvm_err(kd, ENOMEM, "out of memory reading %s", f->path);
		goto out;
	}
	if (kvm_file_pread(kd, f, st->offset, tab, st->size) != 0 ||
	    kvm_file_pread(kd, f, strs->offset, str, strs->size) != 0)
		goto out;
	str[strs->size] = '\0';
	for (i = 1; i < n; i++) {
		const unsigned char *s = tab + i * st->entsize;
		uint32_t name = kvm_ld32(e->big, s);
		uint64_t value;
		unsigned info, shndx;
		const struct kvm_shdr *sec = NULL;
		const char *nm;
		size_t len;
		char letter;
		int bind;

		if (e->class == 64) {
			info = s[4];
			shndx = kvm_ld16(e->big, s + 6);
			value = kvm_ld64(e->big, s + 8);
		} else {
			value = kvm_ld32(e->big, s + 4);
			info = s[12];
			shndx = kvm_ld16(e->big, s + 14);
		}
		/* Undefined symbols have no address in this image. */
		if ((info & 0xf) == STT_SECTION || (info & 0xf) == STT_FILE ||
		    shndx == SHN_UNDEF)
			continue;
		if (name >= strs->size) {
			kvm_err(kd, EINVAL, "%s: symbol %llu: name offset %u is outside the string table",
				f->path, (unsigned long long)i, name);
			goto out;
		}
		nm = str + name;
		len = strlen(nm);
		if (len == 0)
			continue;
		if (shndx != SHN_UNDEF && shndx < SHN_LORESERVE && shndx < e->shnum)
			sec = &secs[shndx];
		bind = (int)(info >> 4);
		letter = sym_letter(bind, shndx, sec);
		if (kvm_symtab_add(kd, &kd->syms, nm, len, value,
				   kvm_letter_type(letter), letter, NULL, 0) != 0)
			goto out;
	}
	rc = 0;
out:
	free(tab);
	free(str);
	return rc;
}

/*
 * The GNU build-id note (vmlinux has one; VMCOREINFO's BUILD-ID is the
 * same bytes), as lower-case hex in kd->nl_build_id.
 */
static int read_build_id(kvm_t *kd, const struct kvm_elf *e,
			 const struct kvm_shdr *sec)
{
	unsigned char buf[4096];
	size_t pos = 0, len = sec->size < sizeof(buf) ? (size_t)sec->size : sizeof(buf);

	if (sec->offset > e->f->size || len > e->f->size - sec->offset)
		return 0; /* not in the file: no build-id to compare */
	if (kvm_file_pread(kd, e->f, sec->offset, buf, len) != 0)
		return -1;
	while (len - pos >= 12) {
		uint32_t namesz = kvm_ld32(e->big, buf + pos);
		uint32_t descsz = kvm_ld32(e->big, buf + pos + 4);
		uint32_t type = kvm_ld32(e->big, buf + pos + 8);
		size_t nlen = (namesz + 3) & ~(size_t)3, dlen = (descsz + 3) & ~(size_t)3;
		size_t i;

		if (namesz > len || descsz > len || nlen + dlen > len - pos - 12)
			return 0;
		if (type == NT_GNU_BUILD_ID && namesz == 4 &&
		    memcmp(buf + pos + 12, "GNU", 4) == 0 &&
		    descsz * 2 < sizeof(kd->nl_build_id)) {
			for (i = 0; i < descsz; i++)
				snprintf(kd->nl_build_id + 2 * i, 3, "%02x",
					 buf[pos + 12 + nlen + i]);
			return 0;
		}
		pos += 12 + nlen + dlen;
	}
	return 0;
}

int kvm_nlist_elf_load(kvm_t *kd, struct kvm_file *f)
{
	struct kvm_elf e;
	struct kvm_shdr *secs;
	uint32_t i, symtab = 0, dynsym = 0;
	int rc;

	if (kvm_elf_read(kd, f, &e) != 0)
		return -1;
	if (kvm_elf_check_model(kd, &e, "kernel image") != 0)
		return -1;
	if (e.type == KVM_ET_DYN) {
		/* A PIE or shared object: symbols are offsets from its load address. */
		unsigned char h[32];
		if (kvm_file_pread(kd, f, 24, h, e.class == 64 ? 8 : 4) != 0)
			return -1;
		kd->nl_entry = e.class == 64 ? kvm_ld64(e.big, h) : kvm_ld32(e.big, h);
		kd->nl_pie = 1;
	}
	if (e.shnum == 0) {
		kvm_err(kd, EINVAL, "%s: no section headers, so no symbol table",
			f->path);
		return -1;
	}
	secs = calloc(e.shnum, sizeof(*secs));
	if (secs == NULL) {
		kvm_err(kd, ENOMEM, "out of memory reading %s", f->path);
		return -1;
	}
	for (i = 0; i < e.shnum; i++) {
		if (kvm_elf_shdr(kd, &e, i, &secs[i]) != 0) {
			free(secs);
			return -1;
		}
		if (secs[i].type == KVM_SHT_SYMTAB && symtab == 0 && secs[i].size)
			symtab = i;
		if (secs[i].type == KVM_SHT_DYNSYM && dynsym == 0 && secs[i].size)
			dynsym = i;
		if (secs[i].type == KVM_SHT_NOTE && read_build_id(kd, &e, &secs[i]) != 0) {
			free(secs);
			return -1;
		}
	}
	if (symtab == 0 && dynsym == 0) {
		kvm_err(kd, EINVAL, "%s: no symbol table (stripped?)", f->path);
		free(secs);
		return -1;
	}
	rc = load_table(kd, &e, secs, symtab ? symtab : dynsym);
	free(secs);
	if (rc == 0 && kd->syms.n == 0) {
		kvm_err(kd, EINVAL, "%s: symbol table has no symbols", f->path);
		rc = -1;
	}
	return rc;
}
