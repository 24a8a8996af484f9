/*
 * kdump_split.c - the files of a makedumpfile --split dump opened as one.
 *
 * Each part is a whole kdump-compressed file: the same header, sub-header
 * and bitmaps as its siblings, but page descriptors and data only for the
 * pfns [start_pfn, end_pfn) its sub-header names.  Each part is opened as
 * its own (inner) handle; the outer handle's physical reads go to the part
 * that holds the pfn.  Opening checks that the parts belong together: the
 * same header, sub-headers that differ only in the pfn range, the same
 * bitmaps, and ranges that cover every pfn exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kdump.h"

#define MAX_PARTS 4096 /* each part holds an open file */

struct split {
	size_t n;
	kvm_t **part;      /* sorted by start pfn */
	uint64_t *start;   /* part[i]'s first pfn ... */
	uint64_t *end;     /* ... and the one after its last */
	unsigned shift;    /* log2 of the block size */
	uint64_t block_size, max_mapnr;
	struct kvm_physops ops;
};

static void split_free(struct split *sp)
{
	size_t i;

	if (sp == NULL)
		return;
	for (i = 0; i < sp->n; i++)
		if (sp->part[i] != NULL)
			kvm_handle_free(sp->part[i]);
	free(sp->part);
	free(sp->start);
	free(sp->end);
	free(sp);
}

static void split_close(kvm_t *kd)
{
	split_free(kd->physdata);
	kd->physdata = NULL;
}

/* The part holding pfn, or -1 (past max_mapnr: nothing holds it). */
static long find_part(const struct split *sp, uint64_t pfn)
{
	size_t lo = 0, hi = sp->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pfn < sp->start[mid])
			hi = mid;
		else if (pfn >= sp->end[mid])
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

static enum kvm_status split_read(kvm_t *kd, uint64_t pa, void *buf, size_t len,
				  struct kvm_pageref *ref)
{
	const struct split *sp = kd->physdata;
	unsigned char *out = buf;

	/* A page ref only for a read within one block: the part's own. */
	if (ref != NULL && (pa & (sp->block_size - 1)) + len > sp->block_size) {
		ref->slot = NULL;
		ref = NULL;
	}
	while (len > 0) {
		size_t off = (size_t)(pa & (sp->block_size - 1));
		size_t n = sp->block_size - off < len ? sp->block_size - off : len;
		long i = find_part(sp, pa >> sp->shift);
		kvm_t *p;
		enum kvm_status st;

		if (i < 0)
			return KVM_UNMAPPED;
		p = sp->part[i];
		st = p->physops->read(p, pa, out, n, ref);
		if (st == KVM_IOERR_MSG || st == KVM_FAULT_MSG)
			kvm_err(kd, p->errnum, "%s", p->errbuf); /* the part's words */
		if (st != KVM_OK)
			return st;
		pa += n;
		out += n;
		len -= n;
	}
	return KVM_OK;
}

size_t kvm_kdump_split_cache_used(kvm_t *kd)
{
	const struct split *sp;
	size_t i, used = 0;

	if (kd == NULL || kd->physops == NULL || kd->physops->read != split_read)
		return 0;
	sp = kd->physdata;
	for (i = 0; i < sp->n; i++)
		used += kvm_kdump_cache_used(sp->part[i]);
	return used;
}

/* One part as its own handle: a kdump file, nothing more. */
static kvm_t *open_part(kvm_t *kd, const char *path, size_t cache_pages)
{
	kvm_t *p = calloc(1, sizeof(*p));
	unsigned char head[16];
	size_t n;

	if (p == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return NULL;
	}
	p->core.fd = -1;
	p->flag = O_RDONLY;
	p->opts = kd->opts;
	p->pagesize = 4096;
	p->cache_pages = cache_pages;
	if (kvm_file_open(p, &p->core, path, O_RDONLY, 1) != 0)
		goto fail;
	n = p->core.size < sizeof(head) ? (size_t)p->core.size : sizeof(head);
	if (kvm_file_pread(p, &p->core, 0, head, n) != 0)
		goto fail;
	if (!kvm_kdump_probe(head, n)) {
		kvm_err(p, EINVAL,
			"%s is not a kdump-compressed file: only the parts of a makedumpfile --split dump open as one dump",
			path);
		goto fail;
	}
	if (kvm_kdump_open(p) != 0)
		goto fail;
	return p;
fail:
	kvm_err(kd, p->errnum ? p->errnum : EINVAL, "%s", p->errbuf);
	kvm_handle_free(p);
	return NULL;
}

/* The dump's bytes [off, off + len) of a part, in a new buffer. */
static unsigned char *part_bytes(kvm_t *kd, kvm_t *p, uint64_t off, uint64_t len)
{
	const struct kdump *k = p->physdata;
	unsigned char *b;

	/* len > the file: a flattened file's logical size is no bound. */
	if (off > k->size || len > k->size - off || len > p->core.size) {
		kvm_err(kd, EINVAL, "%s: truncated: %llu bytes at offset %llu are past the end of the dump",
			p->core.path, ull(len), ull(off));
		return NULL;
	}
	if ((b = malloc((size_t)len + 1)) == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return NULL;
	}
	if (kdump_copy(p, k, off, b, (size_t)len) != KVM_OK) {
		kvm_err(kd, EIO, "%s: cannot read %llu bytes at offset %llu",
			p->core.path, ull(len), ull(off));
		free(b);
		return NULL;
	}
	return b;
}

/* Blank a part's pfn range fields in a copy of its sub-header. */
static void blank_range(const struct kdump *k, unsigned char *sub, uint64_t len)
{
	const struct sub_layout *l = k->sublay;
	const unsigned at[4] = { l->start_pfn, l->end_pfn, l->start64, l->end64 };
	const unsigned size[4] = { l->ulong, l->ulong, 8, 8 };
	size_t i;

	for (i = 0; i < 4; i++)
		if (at[i] + size[i] <= len)
			memset(sub + at[i], 0, size[i]);
}

/* Do parts a and b belong to the same dump?  0, or -1 with the error set. */
static int same_dump(kvm_t *kd, kvm_t *a, kvm_t *b)
{
	const struct kdump *ka = a->physdata, *kb = b->physdata;
	uint64_t bs = ka->block_size, sub_len = (uint64_t)ka->sub_blocks * bs;
	uint64_t bm = (ka->max_mapnr + 63) / 64 * 8;
	unsigned char *x = NULL, *y = NULL;
	const char *what = NULL;

	if (ka->block_size != kb->block_size || ka->max_mapnr != kb->max_mapnr ||
	    ka->sub_blocks != kb->sub_blocks || ka->big != kb->big ||
	    ka->sublay != kb->sublay) {
		what = "their headers differ (block size, max_mapnr or layout)";
		goto differ;
	}
	/* Block 0, the disk_dump_header (and its cpu mask), byte for byte. */
	if ((x = part_bytes(kd, a, 0, bs)) == NULL || (y = part_bytes(kd, b, 0, bs)) == NULL)
		goto fail;
	if (memcmp(x, y, (size_t)bs) != 0) {
		what = "their headers differ";
		goto differ;
	}
	free(x);
	free(y);
	x = y = NULL;
	/* The sub-header blocks (VMCOREINFO, notes): all but the pfn range. */
	if (sub_len > 0) {
		if ((x = part_bytes(kd, a, bs, sub_len)) == NULL ||
		    (y = part_bytes(kd, b, bs, sub_len)) == NULL)
			goto fail;
		blank_range(ka, x, sub_len);
		blank_range(kb, y, sub_len);
		if (memcmp(x, y, (size_t)sub_len) != 0) {
			what = "their sub-headers differ in more than the pfn range";
			goto differ;
		}
	}
	if (memcmp(ka->ram, kb->ram, (size_t)bm) != 0 ||
	    memcmp(ka->dumped, kb->dumped, (size_t)bm) != 0) {
		what = "their page bitmaps differ";
		goto differ;
	}
	free(x);
	free(y);
	return 0;
differ:
	kvm_err(kd, EINVAL, "%s and %s are not parts of the same split dump: %s",
		a->core.path, b->core.path, what);
fail:
	free(x);
	free(y);
	return -1;
}

static int cmp_start(const void *x, const void *y)
{
	const struct kdump *a = (*(kvm_t *const *)x)->physdata;
	const struct kdump *b = (*(kvm_t *const *)y)->physdata;

	return a->start_pfn < b->start_pfn ? -1 : a->start_pfn > b->start_pfn;
}

/* The parts, sorted, must cover pfns 0 .. max_mapnr once each. */
static int check_ranges(kvm_t *kd, struct split *sp)
{
	uint64_t next = 0;
	size_t i;

	for (i = 0; i < sp->n; i++) {
		if (sp->start[i] > next) {
			kvm_err(kd, EINVAL,
				"the split dump is incomplete: no part given holds pfns 0x%llx-0x%llx (%zu parts given; a part is missing?)",
				ull(next), ull(sp->start[i]), sp->n);
			return -1;
		}
		if (sp->start[i] < next) {
			kvm_err(kd, EINVAL,
				"%s and %s both hold pfns from 0x%llx (the same part given twice?)",
				sp->part[i - 1]->core.path, sp->part[i]->core.path,
				ull(sp->start[i]));
			return -1;
		}
		next = sp->end[i];
	}
	if (next != sp->max_mapnr) {
		kvm_err(kd, EINVAL,
			"the split dump is incomplete: no part given holds pfns 0x%llx-0x%llx (%zu parts given; a part is missing?)",
			ull(next), ull(sp->max_mapnr), sp->n);
		return -1;
	}
	return 0;
}

/* "part=<start pfn> <end pfn> <path>" lines for kvm_info. */
static int describe(kvm_t *kd, const struct split *sp)
{
	size_t i, len = 1, used = 0;
	char *text;

	for (i = 0; i < sp->n; i++)
		len += strlen(sp->part[i]->core.path) + 64;
	if ((text = malloc(len)) == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	text[0] = '\0';
	for (i = 0; i < sp->n; i++) {
		int w = snprintf(text + used, len - used, "part=0x%llx 0x%llx %s\n",
				 ull(sp->start[i]), ull(sp->end[i]), sp->part[i]->core.path);
		if (w > 0)
			used += (size_t)w;
	}
	kd->extra_info = text;
	return 0;
}

int kvm_kdump_open_parts(kvm_t *kd, const char *const *paths, size_t n)
{
	struct split *sp;
	const struct kdump *k0;
	kvm_t *p0;
	size_t i, cache;

	if (n > MAX_PARTS) {
		kvm_err(kd, EINVAL, "%zu parts: at most %u can be opened as one dump", n,
			MAX_PARTS);
		return -1;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL ||
	    (sp->part = calloc(n, sizeof(*sp->part))) == NULL ||
	    (sp->start = calloc(n, sizeof(*sp->start))) == NULL ||
	    (sp->end = calloc(n, sizeof(*sp->end))) == NULL) {
		split_free(sp);
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	sp->n = n;
	/* The page-cache bound is the whole handle's: shared out. */
	cache = kd->cache_pages / n ? kd->cache_pages / n : 1;
	for (i = 0; i < n; i++) {
		if (paths[i] == NULL) {
			kvm_err(kd, EINVAL, "part %zu of the split dump has no path", i + 1);
			goto fail;
		}
		if ((sp->part[i] = open_part(kd, paths[i], cache)) == NULL)
			goto fail;
	}
	for (i = 0; i < n; i++) {
		const struct kdump *k = sp->part[i]->physdata;
		if (!k->split && n > 1) {
			kvm_err(kd, EINVAL,
				"%s is not part of a split dump (its sub-header does not say split): give it alone",
				sp->part[i]->core.path);
			goto fail;
		}
		if (i > 0 && same_dump(kd, sp->part[0], sp->part[i]) != 0)
			goto fail;
	}
	qsort(sp->part, n, sizeof(*sp->part), cmp_start);
	p0 = sp->part[0];
	k0 = p0->physdata;
	sp->block_size = k0->block_size;
	sp->shift = k0->shift;
	sp->max_mapnr = k0->max_mapnr;
	for (i = 0; i < n; i++) {
		const struct kdump *k = sp->part[i]->physdata;
		sp->start[i] = k->split ? k->start_pfn : 0;
		sp->end[i] = k->split ? k->end_pfn : k->max_mapnr;
	}
	if (check_ranges(kd, sp) != 0)
		goto fail;

	/* The whole dump's facts: the first part's (every part has them). */
	kd->core.path = strdup(p0->core.path);
	if (kd->core.path == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		goto fail;
	}
	if (p0->vmcoreinfo != NULL &&
	    kvm_vmcoreinfo_set(kd, p0->vmcoreinfo, p0->vmcoreinfo_len) != 0)
		goto fail;
	if (p0->osrelease_hdr != NULL &&
	    (kd->osrelease_hdr = strdup(p0->osrelease_hdr)) == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		goto fail;
	}
	if (describe(kd, sp) != 0)
		goto fail;
	kd->format = "kdump-split";
	kd->kernel = 1;
	kd->elfclass = p0->elfclass;
	kd->bigendian = p0->bigendian;
	kd->machine = p0->machine;
	kd->pagesize = p0->pagesize;
	kd->crashtime = p0->crashtime;
	kd->have_crashtime = p0->have_crashtime;
	kd->phys_base = p0->phys_base;
	kd->have_phys_base = p0->have_phys_base;
	for (i = 0; i < n; i++) { /* pages lost from truncated parts */
		kd->truncated += sp->part[i]->truncated;
		kd->truncated_pages |= sp->part[i]->truncated_pages;
	}
	kd->cpu_cr3 = p0->cpu_cr3;
	kd->cpu_cr4 = p0->cpu_cr4;
	kd->have_cpu_cr = p0->have_cpu_cr;
	sp->ops.name = p0->physops->name;
	sp->ops.read = split_read;
	sp->ops.close = split_close;
	kd->physops = &sp->ops;
	kd->physdata = sp;
	return 0;
fail:
	split_free(sp);
	return -1;
}
