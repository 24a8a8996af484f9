/*
 * orient.c - which kernel does an image with no metadata hold, and where?
 *
 * A LiME, AVML or raw image is physical memory and nothing else.  Two ways
 * to find the kernel in it, tried in order:
 *
 * 1. The VMCOREINFO text.  The kernel writes it ("OSRELEASE=...\n"
 *    "SYMBOL(init_top_pgt)=...\nNUMBER(phys_base)=...\nKERNELOFFSET=...")
 *    into a page at boot, and again into its ELF note buffer, so it is in
 *    memory whether or not a crash kernel was ever loaded.  Every
 *    "OSRELEASE=" in physical memory (searched over the mapping) is a
 *    candidate; copies also turn up in the page cache of whatever the
 *    acquisition tool wrote to.  A candidate is taken only when its
 *    page-table root maps itself (init_top_pgt's address translates, through
 *    the tables at the physical address phys_base gives it, to that same
 *    physical address) and _stext translates to its physical address too.
 *    The rest (KASLR displacement, phys_base, kallsyms) then comes from the
 *    text as for any dump with VMCOREINFO.
 *
 * 2. Without one: the kernel's page tables and linux_banner.  A candidate
 *    top-level table (x86-64, 4 levels) is a page whose lower (user) half is
 *    empty and whose entries 256-511 are empty or point inside the image,
 *    with entry 511 present (the kernel image mapping).  It is the kernel's
 *    init_top_pgt when the image mapping (entries 510 and 511 of the table
 *    entry 511 points to) maps the table's own page and a
 *    "Linux version ...\n" string.  The lowest address the image mapping
 *    maps is _text (the kernel frees and unmaps what lies below), so
 *    KERNELOFFSET = _text - 0xffffffff81000000 (CONFIG_PHYSICAL_START
 *    16 MiB) and phys_base = pa(_text) - (_text - 0xffffffff80000000).
 *    Symbols then need a namelist; it is matched by linux_banner.
 *
 * kd->orient says which way worked, for info's orientation=.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "physimage.h"

#define START_KERNEL_MAP 0xffffffff80000000ULL
#define DEFAULT_TEXT 0xffffffff81000000ULL
#define IMAGE_MAP_BASE 0xffffff8000000000ULL /* what PML4 entry 511 maps */
#define PTE_PRESENT 0x1ULL
#define PTE_PS 0x80ULL
#define ADDR_MASK 0x000ffffffffff000ULL
#define PAGE 4096u
#define SCAN_CHUNK (1u << 20)
#define VMCI_MAX 4096u   /* the kernel keeps it in one page */
#define BANNER_MAX 512u
#define MAX_CANDIDATES 64

#include <unistd.h>

/*
 * The first place in [p, p + len) where needle (nlen >= 1 bytes) starts, or
 * NULL.  memchr for its first byte, then a compare: glibc's memchr is
 * vectorised, its memmem is not, and over a whole image the difference is
 * about half the scan's time (0.3 against 0.6 s per GiB measured here).
 */
static const unsigned char *find(const unsigned char *p, size_t len,
				 const char *needle, size_t nlen)
{
	const unsigned char *end = p + len;

	while ((size_t)(end - p) >= nlen &&
	       (p = memchr(p, (unsigned char)needle[0], (size_t)(end - p) - nlen + 1)) != NULL) {
		if (memcmp(p, needle, nlen) == 0)
			return p;
		p++;
	}
	return NULL;
}

/* Read len bytes of physical memory; 0 or -1 (nothing reported). */
static int phys_read(kvm_t *kd, uint64_t pa, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		size_t done = 0;
		if (kvm_phys_access(kd, pa, p, len, 0, &done) != KVM_OK || done == 0)
			return -1;
		p += done;
		pa += done;
		len -= done;
	}
	return 0;
}

/* Up to max bytes at pa, stopping where the image does; returns the count. */
static size_t phys_read_upto(kvm_t *kd, uint64_t pa, unsigned char *buf, size_t max)
{
	size_t got = 0;

	while (got < max) {
		size_t done = 0;
		if (kvm_phys_access(kd, pa + got, buf + got, max - got, 0, &done) != KVM_OK ||
		    done == 0)
			break;
		got += done;
	}
	return got;
}

/* The core stores its physical segments as they are (no format decoding). */
static int plain(const kvm_t *kd)
{
	return kd->physops == NULL && kd->core.fd >= 0;
}

/*
 * Up to want bytes of segment g from pos.  A plain core is read with pread,
 * not through its mapping: the scan touches every page once, and mapping
 * them would fill RSS with the whole image, past map_budget; one buffer
 * that stays in the CPU cache is also faster to search (0.25 against 0.31 s
 * per GiB measured here).
 */
static size_t seg_read(kvm_t *kd, const struct kvm_seg *g, uint64_t pos,
		       unsigned char *buf, size_t want)
{
	size_t got = 0;

	if (!plain(kd))
		return phys_read_upto(kd, g->start + pos, buf, want);
	while (got < want) {
		ssize_t r = pread(kd->core.fd, buf + got, want - got,
				  (off_t)(g->off + pos + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Call hit(kd, pa, arg) for every physical address where needle starts, in
 * address order, until it returns nonzero (returned) or -1 (error).
 * Read a chunk at a time (seg_read).
 */
typedef int (*hit_fn)(kvm_t *kd, uint64_t pa, void *arg);

static int scan(kvm_t *kd, const char *needle, hit_fn hit, void *arg,
		uint64_t *scanned)
{
	size_t nlen = strlen(needle), i;
	unsigned char *buf = NULL;
	int rc = 0;

	for (i = 0; i < kd->psegs.n && rc == 0; i++) {
		const struct kvm_seg *g = &kd->psegs.v[i];
		/* Chunks overlapping by nlen - 1 bytes, so no match is cut in two. */
		if (buf == NULL && (buf = malloc(SCAN_CHUNK)) == NULL) {
			kvm_err(kd, ENOMEM, "%s: out of memory for the scan", kd->core.path);
			return -1;
		}
		{
			uint64_t pos = 0, size = plain(kd) ? g->filesz : g->memsz;
			while (rc == 0 && pos < size) {
				uint64_t left = size - pos;
				size_t want = left < SCAN_CHUNK ? (size_t)left : SCAN_CHUNK;
				size_t got = seg_read(kd, g, pos, buf, want);
				const unsigned char *p = buf;
				while (rc == 0 && (size_t)(buf + got - p) >= nlen &&
				       (p = find(p, (size_t)(buf + got - p), needle, nlen)) != NULL) {
					rc = hit(kd, g->start + pos + (uint64_t)(p - buf), arg);
					p++;
				}
				if (got < want) /* an unreadable block: skip past it */
					got = got + PAGE - ((g->start + pos + got) % PAGE);
				if (got <= nlen || pos + got >= size)
					pos += got;
				else
					pos += got - (nlen - 1);
			}
			*scanned += pos < size ? pos : size;
		}
	}
	free(buf);
	return rc;
}

/* ---- 1. the VMCOREINFO text ---- */

struct vmci_scan {
	char *last;      /* the last candidate that failed, to skip its copies */
	size_t last_len;
	uint64_t found;
	int tried;
};

/* The candidate's facts, checked against its own page tables. */
static int vmci_check(kvm_t *kd)
{
	uint64_t pgt, stext, pa = 0, size;
	int64_t pb;
	int ok;

	if ((!kvm_vmcoreinfo_u64(kd, "SYMBOL(init_top_pgt)", 16, &pgt) &&
	     !kvm_vmcoreinfo_u64(kd, "SYMBOL(swapper_pg_dir)", 16, &pgt)) ||
	    !kvm_vmcoreinfo_s64(kd, "NUMBER(phys_base)", &pb) ||
	    !kvm_vmcoreinfo_u64(kd, "SYMBOL(_stext)", 16, &stext) ||
	    pgt < START_KERNEL_MAP || stext < START_KERNEL_MAP)
		return 0;
	kd->phys_base = pb;
	kd->have_phys_base = 1;
	kd->machine = 62;
	kd->arch = kvm_arch_find(kd->machine);
	if (kd->arch == NULL)
		return 0;
	if (kd->arch->init(kd) != 0)
		return -1;
	ok = kd->archdata != NULL &&
	     kd->arch->translate(kd, pgt, &pa, &size) == KVM_OK &&
	     pa == pgt - START_KERNEL_MAP + (uint64_t)pb &&
	     kd->arch->translate(kd, stext, &pa, &size) == KVM_OK &&
	     pa == stext - START_KERNEL_MAP + (uint64_t)pb;
	/* kvm_kernel_setup sets all of this up again from the text. */
	kd->arch->close(kd);
	kd->arch = NULL;
	kd->phys_base = 0;
	kd->have_phys_base = 0;
	kd->notrans[0] = '\0';
	return ok;
}

static int vmci_hit(kvm_t *kd, uint64_t pa, void *arg)
{
	struct vmci_scan *v = arg;
	unsigned char text[VMCI_MAX + 1];
	size_t len = phys_read_upto(kd, pa, text, VMCI_MAX), n;
	int ok;

	text[len] = '\0';
	n = strlen((char *)text);
	/* "OSRELEASE=%s" in the kernel's rodata and the like: not a value. */
	if (n < 20 || text[10] == '%' || text[10] == '\n' ||
	    memmem(text, n, "\nSYMBOL(", 8) == NULL)
		return 0;
	if (v->last != NULL && v->last_len == n && memcmp(v->last, text, n) == 0)
		return 0;
	if (++v->tried > MAX_CANDIDATES)
		return 1;
	if (kvm_vmcoreinfo_set(kd, (char *)text, n) != 0)
		return -1;
	ok = vmci_check(kd);
	if (ok > 0) {
		v->found = pa;
		return 1;
	}
	free(kd->vmcoreinfo);
	kd->vmcoreinfo = NULL;
	kd->vmcoreinfo_len = 0;
	if (ok < 0)
		return -1;
	free(v->last);
	v->last = malloc(n);
	if (v->last != NULL)
		memcpy(v->last, text, n);
	v->last_len = v->last != NULL ? n : 0;
	return 0;
}

/* ---- 2. page tables and linux_banner ---- */

struct banner {
	uint64_t pa;
	char release[65];
};

struct banners {
	struct banner v[MAX_CANDIDATES];
	size_t n;
};

/* "Linux version <release> ...\n" then NUL: linux_banner's shape. */
static int banner_hit(kvm_t *kd, uint64_t pa, void *arg)
{
	struct banners *b = arg;
	unsigned char text[BANNER_MAX + 1];
	size_t len = phys_read_upto(kd, pa, text, BANNER_MAX), i, r;
	const unsigned char *nl;

	text[len] = '\0';
	nl = memchr(text, '\n', len);
	if (nl == NULL || (size_t)(nl - text) + 1 >= len || nl[1] != '\0')
		return 0;
	for (i = 0; text + i < nl; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return 0;
	for (r = 0; r < 64 && text[14 + r] != ' ' && text + 14 + r < nl; r++)
		b->v[b->n].release[r] = (char)text[14 + r];
	if (r == 0)
		return 0;
	b->v[b->n].release[r] = '\0';
	b->v[b->n].pa = pa;
	return ++b->n == MAX_CANDIDATES;
}

/* One page of physical memory, or -1. */
static int read_table(kvm_t *kd, uint64_t pa, unsigned char *page)
{
	return phys_read(kd, pa & ADDR_MASK, page, PAGE);
}

/*
 * Walk what PML4 entry 511 maps (the kernel image lives in its entries 510
 * and 511): the lowest mapped address and its physical address, and the
 * virtual address of each target physical address (0 when unmapped).
 */
struct image_map {
	uint64_t low_va, low_pa;
	const uint64_t *targets;
	uint64_t *target_va;
	size_t ntargets;
};

static void note(struct image_map *m, uint64_t va, uint64_t pa, uint64_t size)
{
	size_t i;

	if (m->low_va == 0 || va < m->low_va) {
		m->low_va = va;
		m->low_pa = pa;
	}
	for (i = 0; i < m->ntargets; i++)
		if (m->target_va[i] == 0 && m->targets[i] >= pa &&
		    m->targets[i] - pa < size)
			m->target_va[i] = va + (m->targets[i] - pa);
}

static int walk_image(kvm_t *kd, uint64_t e511, struct image_map *m)
{
	unsigned char pdpt[PAGE], pd[PAGE], pt[PAGE];
	int j, k, l;

	if (read_table(kd, e511, pdpt) != 0)
		return -1;
	for (j = 510; j <= 511; j++) {
		uint64_t e3 = le64(pdpt + 8 * j);
		if (!(e3 & PTE_PRESENT) || (e3 & PTE_PS) || read_table(kd, e3, pd) != 0)
			continue;
		for (k = 0; k < 512; k++) {
			uint64_t e2 = le64(pd + 8 * k);
			uint64_t va = IMAGE_MAP_BASE + ((uint64_t)j << 30) + ((uint64_t)k << 21);
			if (!(e2 & PTE_PRESENT))
				continue;
			if (e2 & PTE_PS) {
				note(m, va, e2 & ADDR_MASK & ~0x1fffffULL, 1u << 21);
				continue;
			}
			if (read_table(kd, e2, pt) != 0)
				continue;
			for (l = 0; l < 512; l++) {
				uint64_t e1 = le64(pt + 8 * l);
				if (e1 & PTE_PRESENT)
					note(m, va + ((uint64_t)l << 12), e1 & ADDR_MASK, PAGE);
			}
		}
	}
	return 0;
}

static int in_image(kvm_t *kd, uint64_t pa)
{
	return kvm_segs_find(&kd->psegs, pa & ADDR_MASK) != NULL;
}

/* Could this page be the kernel's top-level table? */
static int looks_like_pml4(kvm_t *kd, const unsigned char *page)
{
	uint64_t e511 = le64(page + 8 * 511);
	int i, present = 0;

	if (!(e511 & PTE_PRESENT) || !in_image(kd, e511))
		return 0;
	for (i = 0; i < 256; i++)
		if (le64(page + 8 * i) != 0)
			return 0;
	for (i = 256; i < 512; i++) {
		uint64_t e = le64(page + 8 * i);
		if (e == 0)
			continue;
		if (!(e & PTE_PRESENT) || (e & PTE_PS) || !in_image(kd, e))
			return 0;
		present++;
	}
	return present >= 2;
}

static int pgt_scan(kvm_t *kd, const struct banners *b)
{
	unsigned char *page = malloc(PAGE);
	uint64_t targets[MAX_CANDIDATES + 1], target_va[MAX_CANDIDATES + 1];
	size_t i, t;
	int rc = 0;

	if (page == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the scan", kd->core.path);
		return -1;
	}
	for (i = 0; i < kd->psegs.n && rc == 0; i++) {
		const struct kvm_seg *g = &kd->psegs.v[i];
		uint64_t pa = (g->start + PAGE - 1) & ~(uint64_t)(PAGE - 1);
		for (; pa + PAGE <= g->start + g->memsz && rc == 0; pa += PAGE) {
			struct image_map m;
			if (phys_read(kd, pa, page, PAGE) != 0 || !looks_like_pml4(kd, page))
				continue;
			memset(&m, 0, sizeof(m));
			targets[0] = pa;
			for (t = 0; t < b->n; t++)
				targets[t + 1] = b->v[t].pa;
			memset(target_va, 0, sizeof(target_va));
			m.targets = targets;
			m.target_va = target_va;
			m.ntargets = b->n + 1;
			if (walk_image(kd, le64(page + 8 * 511), &m) != 0 || target_va[0] == 0 ||
			    m.low_va < DEFAULT_TEXT - (1ULL << 30))
				continue;
			kd->orient_nbanners = 0;
			for (t = b->n; t-- > 0;)
				if (target_va[t + 1] != 0 && kd->orient_nbanners < 8)
					kd->orient_banners[kd->orient_nbanners++] = target_va[t + 1];
			if (kd->orient_nbanners == 0)
				continue;
			for (t = 0; target_va[t + 1] == 0; t++)
				;
			/* Found: the tables at pa map themselves and a banner. */
			kd->machine = 62;
			kd->cpu_cr3 = pa;   /* the root, as a CPU's CR3 would give it */
			kd->cpu_cr4 = 0;    /* 4 levels */
			kd->have_cpu_cr = 1;
			kd->kerndisp = (int64_t)(m.low_va - DEFAULT_TEXT);
			kd->have_kerndisp = 1;
			kd->phys_base = (int64_t)(m.low_pa - (m.low_va - START_KERNEL_MAP));
			kd->have_phys_base = 1;
			free(kd->osrelease_hdr);
			kd->osrelease_hdr = strdup(b->v[t].release);
			snprintf(kd->orient, sizeof(kd->orient),
				 "page tables (no VMCOREINFO text in memory): init_top_pgt at physical 0x%llx maps itself at 0x%llx; %d linux_banner candidate%s in the kernel image, the first at 0x%llx (physical 0x%llx); _text 0x%llx",
				 (unsigned long long)pa, (unsigned long long)target_va[0],
				 kd->orient_nbanners, kd->orient_nbanners == 1 ? "" : "s",
				 (unsigned long long)target_va[t + 1],
				 (unsigned long long)b->v[t].pa, (unsigned long long)m.low_va);
			rc = 1;
		}
	}
	free(page);
	return rc < 0 ? -1 : 0;
}

int kvm_physimage_orient(kvm_t *kd)
{
	struct vmci_scan v;
	struct banners *b;
	struct timespec t0, t1;
	uint64_t banner_bytes = 0;
	int rc;

	kd->kernel = 1;
	kd->elfclass = 64;
	kd->bigendian = 0;
	kd->machine = 62; /* x86-64: the one architecture these images are read for */
	memset(&v, 0, sizeof(v));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = scan(kd, "OSRELEASE=", vmci_hit, &v, &kd->scan_bytes);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	kd->scan_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
		      (uint64_t)(t1.tv_nsec - t0.tv_nsec);
	free(v.last);
	if (rc < 0)
		return -1;
	if (kd->vmcoreinfo != NULL) {
		snprintf(kd->orient, sizeof(kd->orient),
			 "VMCOREINFO text found in memory at physical 0x%llx (init_top_pgt maps itself, _stext maps to its physical address)",
			 (unsigned long long)v.found);
		return 0;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the scan", kd->core.path);
		return -1;
	}
	rc = scan(kd, "Linux version ", banner_hit, b, &banner_bytes);
	if (rc >= 0 && b->n > 0)
		rc = pgt_scan(kd, b);
	if (rc >= 0 && kd->orient[0] == '\0')
		snprintf(kd->orient, sizeof(kd->orient),
			 "none: no VMCOREINFO text, and no kernel page tables mapping a linux_banner (%zu banner%s seen); physical reads only",
			 b->n, b->n == 1 ? "" : "s");
	free(b);
	return rc < 0 ? -1 : 0;
}
