/*
 * kvm.c - the public entry points: open and close, symbol lookup and the
 * read/write family.  Errors and the handle's basics are in errors.c, core
 * formats in formats.c and their own files; this one only dispatches.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfread.h"
#include "kvm_btf.h"

#define LIVE_CORE "/proc/kcore"
#define LIVE_MEM "/dev/mem"
#define LIVE_SYMS "/proc/kallsyms"

/* ---- open and close ---- */

int kvm_close(kvm_t *kd)
{
	if (kd == NULL) {
		errno = EINVAL;
		return -1;
	}
	/* Types load on first use, never at open, so only a handle that was
	 * returned can hold them: they are freed here, above the handle basics. */
	kvm_btf_free(kd);
	kvm_handle_free(kd);
	return 0;
}

/* Open the core: a named file, or the live kernel's memory. */
static int open_core(kvm_t *kd, const char *corefile)
{
	unsigned char head[512];
	size_t n;
	struct stat st;

	if (corefile == NULL) {
		/* /proc/kcore, else /dev/mem: only the outcome is reported. */
		int rc = kvm_file_open(kd, &kd->core, LIVE_CORE, kd->flag, 0);
		if (rc != 0 && kd->errnum == ENOENT) {
			kvm_file_close(&kd->core);
			rc = kvm_file_open(kd, &kd->core, LIVE_MEM, kd->flag, 0);
			if (rc != 0 && kd->errnum == ENOENT)
				kvm_err(kd, ENOENT,
					"no live kernel memory: %s and %s do not exist",
					LIVE_CORE, LIVE_MEM);
		}
		if (rc != 0)
			return -1;
		kd->live = 1;
	} else {
		if (kvm_file_open(kd, &kd->core, corefile, kd->flag,
				  (kd->opts & KVM_OPT_PREAD) ? 0 : 1) != 0)
			return -1;
		kvm_file_bound(&kd->core, kd->map_budget);
		if (strcmp(corefile, LIVE_CORE) == 0)
			kd->live = 1;
	}
	if (fstat(kd->core.fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		/* A memory device holds physical memory at its own offsets. */
		kvm_err(kd, ENOTSUP,
			"%s: reading a memory device needs its kernel's page tables; use /proc/kcore",
			kd->core.path);
		return -1;
	}
	n = kd->core.size < sizeof(head) ? (size_t)kd->core.size : sizeof(head);
	if (kd->live && n == 0)
		n = sizeof(head); /* /proc/kcore may report 0 where unsized */
	if (kvm_file_pread(kd, &kd->core, 0, head, n) != 0)
		return -1;
	if (kvm_core_formats_open(kd, head, n) != 0)
		return -1;
	/* The data model (illumos): a core of another word size is an opt-in. */
	if (kd->elfclass != (int)(sizeof(void *) * 8) && !(kd->opts & KVM_OPT_FOREIGN)) {
		kvm_err(kd, EINVAL, "%s is a %d-bit core file - cannot examine with %d-bit libkvm",
			kd->core.path, kd->elfclass, (int)(sizeof(void *) * 8));
		return -1;
	}
	if (kd->kernel && kvm_kernel_setup(kd) != 0)
		return -1;
	return 0;
}

/* A dump written in several files (makedumpfile --split), as one core. */
static int open_parts(kvm_t *kd, const char *const *parts, size_t nparts)
{
	if (kvm_kdump_open_parts(kd, parts, nparts) != 0)
		return -1;
	if (kd->elfclass != (int)(sizeof(void *) * 8) && !(kd->opts & KVM_OPT_FOREIGN)) {
		kvm_err(kd, EINVAL, "%s is a %d-bit core file - cannot examine with %d-bit libkvm",
			kd->core.path, kd->elfclass, (int)(sizeof(void *) * 8));
		return -1;
	}
	return kvm_kernel_setup(kd);
}

static int open_namelist(kvm_t *kd, const char *namelist)
{
	struct kvm_file f;
	unsigned char head[4];
	int rc;

	if (namelist == NULL) {
		if (kd->live)
			namelist = LIVE_SYMS;
		else if (kd->kernel)
			return kvm_kallsyms_dump_load(kd);
		else
			return 0; /* a process core without a namelist: no symbols */
	}
	if (kd->namelist == NULL)
		kd->namelist = strdup(namelist);
	if (kd->namelist == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	/* /proc/kallsyms is not mappable and reports size 0: read it to EOF. */
	if (kvm_file_open(kd, &f, namelist, O_RDONLY,
			  strncmp(namelist, "/proc/", 6) == 0 ? 2 : 1) != 0) {
		kvm_file_close(&f);
		return -1;
	}
	if (f.map != NULL && f.size >= 4)
		memcpy(head, f.map, 4);
	else
		memset(head, 0, sizeof(head));
	if (kvm_elf_is(head, 4))
		rc = kvm_nlist_elf_load(kd, &f);
	else
		rc = kvm_nlist_text_load(kd, &f);
	kvm_file_close(&f);
	if (rc != 0)
		return -1;
	if (kvm_symtab_finish(kd, &kd->syms) != 0)
		return -1;
	kd->have_syms = 1;
	if (kd->kernel)
		return kvm_kernel_match(kd);
	/* A PIE in a process core moved by AT_ENTRY - e_entry. */
	if (kd->nl_pie && kd->have_at_entry && kd->nl_entry != 0)
		kd->symdisp = (int64_t)(kd->at_entry - kd->nl_entry);
	return 0;
}

/* The caller's options, as far as its struct goes (older callers pass less). */
#define OPT_HAS(o, field) \
	((o)->size >= offsetof(struct kvm_open_opts, field) + sizeof((o)->field))

kvm_t *kvm_open_opts(const char *namelist, const char *corefile,
		     const char *swapfile, int flag, const char *errstr,
		     char *errbuf, const struct kvm_open_opts *o)
{
	kvm_t *kd = calloc(1, sizeof(*kd));
	const char *const *parts = NULL;
	size_t nparts = 0;
	int e;

	if (kd == NULL || kvm_caches_new(kd) != 0) {
		free(kd);
		if (errstr != NULL)
			fprintf(stderr, "%s: out of memory\n", errstr);
		if (errbuf != NULL)
			snprintf(errbuf, KVM_ERRBUF_SIZE, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	kd->core.fd = -1;
	kd->flag = flag;
	kd->pagesize = 4096;
	kd->cache_pages = KVM_DEFAULT_CACHE_PAGES;
	kd->map_budget = KVM_DEFAULT_MAP_BUDGET;
	if (errstr != NULL && (kd->program = strdup(errstr)) == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		goto fail;
	}
	if (o != NULL) {
		if (OPT_HAS(o, flags))
			kd->opts = o->flags;
		if (OPT_HAS(o, cache_pages) && o->cache_pages != 0)
			kd->cache_pages = o->cache_pages;
		if (OPT_HAS(o, format) && o->format != NULL) {
			if (kvm_core_format_check(kd, o->format) != 0)
				goto fail;
			if ((kd->want_format = strdup(o->format)) == NULL) {
				kvm_err(kd, ENOMEM, "out of memory");
				goto fail;
			}
		}
		if (OPT_HAS(o, map_budget) && o->map_budget != 0)
			kd->map_budget = o->map_budget;
		if (OPT_HAS(o, btf) && o->btf != NULL &&
		    (kd->btf_path = strdup(o->btf)) == NULL) {
			kvm_err(kd, ENOMEM, "out of memory");
			goto fail;
		}
		if (OPT_HAS(o, nparts) && o->nparts != 0) {
			if (!OPT_HAS(o, parts) || o->parts == NULL || corefile != NULL) {
				kvm_err(kd, EINVAL,
					"a dump in parts: give the parts (parts, nparts) and no corefile");
				goto fail;
			}
			parts = o->parts;
			nparts = o->nparts;
		}
	}
	if (flag != O_RDONLY && flag != O_RDWR) {
		kvm_err(kd, EINVAL, "illegal flag 0x%x to kvm_open()", (unsigned)flag);
		goto fail;
	}
	if (swapfile != NULL) {
		/* Never read (as in both native libkvms), but it must exist. */
		int fd = open(swapfile, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			kvm_syserr(kd, swapfile, NULL);
			goto fail;
		}
		close(fd);
	}
	/* The namelist's path first: an ELF core's notes may leave what it is
	 * (kernel or process) to the namelist to tell. */
	if (namelist != NULL && (kd->namelist = strdup(namelist)) == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		goto fail;
	}
	if ((nparts != 0 ? open_parts(kd, parts, nparts) : open_core(kd, corefile)) != 0 ||
	    open_namelist(kd, namelist) != 0)
		goto fail;
	/* Dumps without VMCOREINFO: the namelist may name the page-table root. */
	if (kd->kernel && kd->arch != NULL && kd->archdata == NULL &&
	    kd->arch->init(kd) != 0)
		goto fail;
	/*
	 * A kernel dump of physical segments in a mapped file: virtual reads
	 * within a page copy straight from the mapping the translation cache
	 * names (access.c).  The cache starts again so every entry knows.
	 */
	if (kd->kernel && !kd->live && kd->core.map != NULL && kd->physops == NULL &&
	    kd->vsegs.n == 0) {
		memset(kd->tlb, 0, KVM_TLB_SIZE * sizeof(*kd->tlb));
		kd->fastmap = 1;
	}
	/* A compressed kernel dump: warm small reads go through page refs. */
	if (kd->kernel && kd->physops != NULL && kd->vsegs.n == 0)
		kvm_reftlb_init(kd);
	/* The open succeeded: the buffer starts clean for later calls. */
	kd->errbuf[0] = '\0';
	kd->errnum = 0;
	return kd;
fail:
	kvm_report(kd);
	if (errbuf != NULL)
		snprintf(errbuf, KVM_ERRBUF_SIZE, "%s", kd->errbuf);
	e = kd->errnum ? kd->errnum : EINVAL;
	kvm_handle_free(kd);
	errno = e;
	return NULL;
}

kvm_t *kvm_open_ex(const char *namelist, const char *corefile,
		   const char *swapfile, int flag, const char *errstr,
		   char *errbuf, unsigned opts, size_t cache_pages)
{
	struct kvm_open_opts o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.flags = opts;
	o.cache_pages = cache_pages;
	return kvm_open_opts(namelist, corefile, swapfile, flag, errstr, errbuf, &o);
}

kvm_t *kvm_open(const char *namelist, const char *corefile,
		const char *swapfile, int flag, const char *errstr)
{
	return kvm_open_ex(namelist, corefile, swapfile, flag, errstr, NULL, 0, 0);
}

kvm_t *kvm_openfiles(const char *namelist, const char *corefile,
		     const char *swapfile, int flag, char *errbuf)
{
	return kvm_open_ex(namelist, corefile, swapfile, flag, NULL, errbuf, 0, 0);
}

const char *kvm_namelist(kvm_t *kd)
{
	return kd == NULL ? NULL : kd->namelist;
}

/* ---- symbols ---- */

/* A symbol's runtime value: link-time namelists move with the kernel. */
static uint64_t sym_value(const kvm_t *kd, const struct kvm_sym *s)
{
	int shift;

	if (kd->symdisp == 0)
		return s->value;
	if (kd->kernel) /* the architecture knows which symbols move */
		shift = kd->arch != NULL &&
			kd->arch->shift_symbol(NULL, s->value, s->letter);
	else /* a PIE: everything but absolute symbols */
		shift = (s->type & N_TYPE) != N_ABS;
	return shift ? s->value + (uint64_t)kd->symdisp : s->value;
}

/*
 * A name's symbol.  Programs written for FreeBSD ask for a.out-style names
 * ("_mp_maxcpus"); FreeBSD's libkvm then retries an ELF kernel's lookup
 * without the leading underscore.  Only when the exact name is absent:
 * "_cpu_up" and "cpu_up" are both real, different Linux symbols.
 */
static const struct kvm_sym *lookup(const kvm_t *kd, const char *name)
{
	const struct kvm_sym *s = kvm_symtab_lookup(&kd->syms, name);

	if (s == NULL && name[0] == '_' && name[1] != '\0')
		s = kvm_symtab_lookup(&kd->syms, name + 1);
	return s;
}

static int have_symbols(kvm_t *kd)
{
	if (kd->have_syms)
		return 1;
	kvm_err(kd, ENOENT, "%s: no namelist: give the executable or kernel symbols",
		kd->core.path);
	kvm_report(kd);
	return 0;
}

int kvm_nlist(kvm_t *kd, struct nlist *nl)
{
	int missing = 0;

	if (kd == NULL || nl == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (!have_symbols(kd))
		return -1;
	for (; nl->n_name != NULL && nl->n_name[0] != '\0'; nl++) {
		const struct kvm_sym *s = lookup(kd, nl->n_name);
		nl->n_other = 0;
		nl->n_desc = 0;
		if (s == NULL) {
			/* illumos zeroes every field of a missing entry but the name. */
			nl->n_type = 0;
			nl->n_value = 0;
			missing++;
			continue;
		}
		nl->n_type = s->type;
		nl->n_value = (unsigned long)sym_value(kd, s);
	}
	return missing;
}

int kvm_nlist2(kvm_t *kd, struct kvm_nlist *nl)
{
	int missing = 0;

	if (kd == NULL || nl == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (!have_symbols(kd))
		return -1;
	for (; nl->n_name != NULL && nl->n_name[0] != '\0'; nl++) {
		const struct kvm_sym *s = lookup(kd, nl->n_name);
		if (s == NULL) {
			nl->n_type = 0;
			nl->n_value = 0;
			missing++;
			continue;
		}
		nl->n_type = s->type;
		nl->n_value = sym_value(kd, s);
	}
	return missing;
}

size_t kvm_symcount(kvm_t *kd)
{
	return kd != NULL && kd->have_syms ? kd->syms.n : 0;
}

int kvm_symbol(kvm_t *kd, size_t i, const char **name, uint64_t *value,
	       unsigned char *type, char *letter, const char **module)
{
	const struct kvm_sym *s;

	if (kd == NULL || !kd->have_syms || i >= kd->syms.n)
		return -1;
	s = &kd->syms.syms[i];
	*name = kd->syms.pool + s->name;
	*value = sym_value(kd, s);
	*type = s->type;
	*letter = s->letter;
	*module = s->module ? kd->syms.pool + s->module : NULL;
	return 0;
}

/*
 * The kvm_symbol index of the definition kvm_nlist returns for name, or -1
 * (not in the public interface: the Python layer's symbols[name] reads the
 * whole entry, module included, with it).
 */
int64_t kvm_symbol_index(kvm_t *kd, const char *name)
{
	const struct kvm_sym *s;

	if (kd == NULL || name == NULL || !kd->have_syms)
		return -1;
	s = lookup(kd, name);
	return s == NULL ? -1 : (int64_t)(s - kd->syms.syms);
}

/* ---- reads and writes ---- */

/* A public read or write: report a failure (or a short count) once. */
static ssize_t public_access(kvm_t *kd, uint64_t addr, void *buf, size_t len,
			     int write, int physical)
{
	ssize_t r = kvm_access(kd, addr, buf, len, write, physical);

	if (r != (ssize_t)len)
		kvm_report(kd);
	return r;
}

ssize_t kvm_read2(kvm_t *kd, kvaddr_t addr, void *buf, size_t len)
{
	if (kd == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		return 0;
	return public_access(kd, addr, buf, len, 0, 0);
}

ssize_t kvm_read(kvm_t *kd, unsigned long addr, void *buf, size_t len)
{
	return kvm_read2(kd, addr, buf, len);
}

ssize_t kvm_kread(kvm_t *kd, uintptr_t addr, void *buf, size_t len)
{
	return kvm_read2(kd, addr, buf, len);
}

ssize_t kvm_write(kvm_t *kd, unsigned long addr, const void *buf, size_t len)
{
	if (kd == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0 && kd->flag == O_RDWR)
		return 0;
	/* Writing moves bytes out of buf; the cast only shares the path. */
	return public_access(kd, addr, (void *)(uintptr_t)buf, len, 1, 0);
}

ssize_t kvm_kwrite(kvm_t *kd, uintptr_t addr, const void *buf, size_t len)
{
	return kvm_write(kd, addr, buf, len);
}

ssize_t kvm_pread(kvm_t *kd, uint64_t paddr, void *buf, size_t len)
{
	if (kd == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		return 0;
	return public_access(kd, paddr, buf, len, 0, 1);
}

ssize_t kvm_pwrite(kvm_t *kd, uint64_t paddr, const void *buf, size_t len)
{
	if (kd == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0 && kd->flag == O_RDWR)
		return 0;
	return public_access(kd, paddr, (void *)(uintptr_t)buf, len, 1, 1);
}

uint64_t kvm_physaddr(kvm_t *kd, struct as *as, uintptr_t addr)
{
	uint64_t pa, room;
	enum kvm_status st;

	if (kd == NULL)
		return (uint64_t)-1;
	if (as != NULL) {
		kvm_err(kd, EINVAL, "kvm_physaddr: only the kernel address space (NULL) is supported");
		kvm_report(kd);
		return (uint64_t)-1;
	}
	st = kvm_translate(kd, addr, &pa, &room);
	if (st != KVM_OK) {
		kvm_status_err(kd, st, addr, "virtual");
		kvm_report(kd);
		return (uint64_t)-1;
	}
	return pa;
}

kssize_t kvm_kerndisp(kvm_t *kd)
{
	return kd != NULL && kd->have_kerndisp ? kd->kerndisp : 0;
}

int kvm_native(kvm_t *kd)
{
	static const union { uint16_t v; unsigned char b[2]; } probe = { 1 };
	int big = probe.b[0] == 0;

	return kd != NULL && kd->elfclass == (int)(sizeof(void *) * 8) &&
	       kd->bigendian == big;
}

size_t kvm_read_many(kvm_t *kd, const uint64_t *addrs, size_t n, size_t size,
		     void *out, int64_t *results, int physical)
{
	unsigned char *o = out;
	size_t i, failed = 0;

	for (i = 0; i < n; i++) {
		ssize_t r = public_access(kd, addrs[i], o + i * size, size, 0, physical);
		if (r != (ssize_t)size) {
			results[i] = -(int64_t)(kd->errnum ? kd->errnum : EIO);
			failed++;
		} else {
			results[i] = r;
		}
	}
	return failed;
}
