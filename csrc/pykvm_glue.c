/*
 * pykvm_glue.c - pykvm_api.h over the shim.  Every call is a thin wrapper:
 * the Python layer sees one API whatever the backend, and the native
 * backends (pykvm_native.c) implement the same functions over the
 * platform libkvm.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kvm_ext.h"
#include "kvm_private.h"
#include "kvm_btf.h"

/* What pykvm_api.h declares, with the shim's real types in scope. */
#include "pykvm_api.h"

const char *pykvm_backend(void)
{
	return "shim";
}

const char *pykvm_platform(void)
{
	return "shim";
}

int pykvm_has(const char *feature)
{
	static const char *const have[] = {
		"geterr", "pread", "pwrite", "physaddr", "info", "symbols",
		"kerndisp", "options", "read_many", "page_offset", "cache", "vmcoreinfo", "notes",
#ifdef HAVE_ZLIB
		"zlib",
#endif
#ifdef HAVE_LZO
		"lzo",
#endif
#ifdef HAVE_SNAPPY
		"snappy",
#endif
#ifdef HAVE_ZSTD
		"zstd",
#endif
#ifdef HAVE_BTF
		"btf",
#endif
	};
	size_t i;

	for (i = 0; i < sizeof(have) / sizeof(have[0]); i++)
		if (strcmp(have[i], feature) == 0)
			return 1;
	return 0;
}

kvm_t *pykvm_open(const char *namelist, const char *corefile,
		  const char *swapfile, int flag, const char *errstr,
		  char *errbuf, const struct pykvm_open_opts *o)
{
	struct kvm_open_opts ko;

	if (o == NULL)
		return kvm_open_opts(namelist, corefile, swapfile, flag, errstr,
				     errbuf, NULL);
	memset(&ko, 0, sizeof(ko));
	ko.size = sizeof(ko);
	ko.flags = o->flags;
	ko.cache_pages = o->cache_pages;
	ko.format = o->format;
	ko.parts = o->parts;
	ko.nparts = o->nparts;
	ko.map_budget = o->map_budget;
	ko.btf = o->btf;
	return kvm_open_opts(namelist, corefile, swapfile, flag, errstr, errbuf, &ko);
}

int pykvm_close(kvm_t *kd)
{
	return kvm_close(kd);
}

const char *pykvm_geterr(kvm_t *kd)
{
	return kvm_geterr(kd);
}

int pykvm_errno(kvm_t *kd)
{
	return kvm_errno(kd);
}

uint64_t pykvm_erraddr(kvm_t *kd)
{
	return kvm_erraddr(kd);
}

int pykvm_nlist(kvm_t *kd, const char **names, size_t n, uint64_t *values,
		unsigned char *types)
{
	struct kvm_nlist one[2];
	size_t i;
	int missing = 0;

	/* One at a time: an empty name would end a kvm_nlist2 array early. */
	for (i = 0; i < n; i++) {
		int r;
		memset(one, 0, sizeof(one));
		one[0].n_name = names[i];
		values[i] = 0;
		types[i] = 0;
		if (names[i][0] == '\0') {
			missing++;
			continue;
		}
		r = kvm_nlist2(kd, one);
		if (r < 0)
			return -1;
		missing += r;
		values[i] = one[0].n_value;
		types[i] = one[0].n_type;
	}
	return missing;
}

int64_t pykvm_read(kvm_t *kd, uint64_t addr, void *buf, size_t len)
{
	return kvm_read2(kd, addr, buf, len);
}

int64_t pykvm_write(kvm_t *kd, uint64_t addr, const void *buf, size_t len)
{
	ssize_t r;

	/* kvm_write takes an unsigned long: go round it for 64-bit addresses. */
	if (len == 0)
		return kvm_write(kd, 0, buf, 0);
	r = kvm_access(kd, addr, (void *)(uintptr_t)buf, len, 1, 0);
	if (r != (ssize_t)len)
		kvm_report(kd);
	return r;
}

int64_t pykvm_pread(kvm_t *kd, uint64_t addr, void *buf, size_t len)
{
	return kvm_pread(kd, addr, buf, len);
}

int64_t pykvm_pwrite(kvm_t *kd, uint64_t addr, const void *buf, size_t len)
{
	return kvm_pwrite(kd, addr, buf, len);
}

uint64_t pykvm_physaddr(kvm_t *kd, uint64_t addr)
{
	return kvm_physaddr(kd, NULL, (uintptr_t)addr);
}

int64_t pykvm_kerndisp(kvm_t *kd)
{
	return kvm_kerndisp(kd);
}

size_t pykvm_read_many(kvm_t *kd, const uint64_t *addrs, size_t n,
		       size_t size, void *out, int64_t *results, int physical)
{
	return kvm_read_many(kd, addrs, n, size, out, results, physical);
}

size_t pykvm_read_scatter(kvm_t *kd, const uint64_t *addrs,
			  const uint64_t *sizes, size_t n, void *out,
			  int64_t *results)
{
	unsigned char *o = out;
	size_t i, failed = 0;

	for (i = 0; i < n; i++) {
		ssize_t r = kvm_read2(kd, addrs[i], o, (size_t)sizes[i]);
		if (r == (ssize_t)sizes[i]) {
			results[i] = r;
		} else {
			results[i] = -(int64_t)(kvm_errno(kd) ? kvm_errno(kd) : EIO);
			failed++;
		}
		o += sizes[i];
	}
	return failed;
}

const void *pykvm_mapping(kvm_t *kd, uint64_t *size)
{
	return kvm_mapping(kd, size);
}

int64_t pykvm_page_offset(kvm_t *kd, uint64_t addr, int physical)
{
	return kvm_page_offset(kd, addr, physical);
}

size_t pykvm_cache_used(kvm_t *kd)
{
	return kvm_kdump_cache_used(kd);
}

size_t pykvm_info(kvm_t *kd, char *buf, size_t len)
{
	return kvm_info(kd, buf, len);
}

size_t pykvm_vmcoreinfo(kvm_t *kd, char *buf, size_t len)
{
	return kvm_vmcoreinfo(kd, buf, len);
}

size_t pykvm_symcount(kvm_t *kd)
{
	return kvm_symcount(kd);
}

int pykvm_symbol(kvm_t *kd, size_t i, const char **name, uint64_t *value,
		 unsigned char *type, char *letter, const char **module)
{
	return kvm_symbol(kd, i, name, value, type, letter, module);
}

int64_t pykvm_symbol_index(kvm_t *kd, const char *name)
{
	return kvm_symbol_index(kd, name);
}

size_t pykvm_notes(kvm_t *kd, void *buf, size_t len)
{
	if (kd == NULL || kd->notes == NULL)
		return 0;
	if (buf != NULL && len >= kd->notes_len)
		memcpy(buf, kd->notes, kd->notes_len);
	return kd->notes_len;
}

int pykvm_btf_count(kvm_t *kd, unsigned *n)
{
	return kvm_btf_count(kd, n);
}

int pykvm_btf_find(kvm_t *kd, const char *name, int kind)
{
	return kvm_btf_find(kd, name, kind);
}

int pykvm_btf_type(kvm_t *kd, unsigned id, struct pykvm_btf_type *out)
{
	struct kvm_btf_type t;

	if (kvm_btf_type(kd, id, &t) != 0)
		return -1;
	out->kind = t.kind;
	out->name = t.name;
	out->size = t.size;
	out->type = t.type;
	out->vlen = t.vlen;
	out->kflag = t.kflag;
	out->nelems = t.nelems;
	out->index_type = t.index_type;
	out->encoding = t.encoding;
	out->bits = t.bits;
	out->bit_offset = t.bit_offset;
	out->linkage = t.linkage;
	return 0;
}

int pykvm_btf_member(kvm_t *kd, unsigned id, unsigned i, struct pykvm_btf_member *out)
{
	struct kvm_btf_member m;

	if (kvm_btf_member(kd, id, i, &m) != 0)
		return -1;
	out->name = m.name;
	out->type = m.type;
	out->bit_offset = m.bit_offset;
	out->bit_size = m.bit_size;
	out->value = m.value;
	return 0;
}

const char *pykvm_btf_module(kvm_t *kd, unsigned id)
{
	return kvm_btf_module(kd, id);
}

const char *pykvm_btf_skipped(kvm_t *kd)
{
	return kvm_btf_skipped(kd);
}
