/*
 * access.c - the read and write paths: virtual segments, else translate
 * (through a small cache) and move physical bytes, and the translation
 * caches themselves.  Reads neither allocate nor lock; the caches tolerate
 * concurrent use by checking each entry instead of locking it.
 */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, madvise(MADV_HUGEPAGE) */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <stdint.h>
#include <sys/mman.h>

#include "kvm_private.h"
#include "pagecache.h"

#define PAGE_SHIFT 12
#define PAGE_MASK ((1ULL << PAGE_SHIFT) - 1)
#define PAGE_SIZE_4K (1ULL << PAGE_SHIFT)

#if defined(__GNUC__)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
#define LOAD(x) (x)
#define STORE(x, v) ((x) = (v))
#endif

#if defined(__GNUC__)
/*
 * The page-ref cache (kd->reftlb, compressed formats): where the decoded
 * copy of a virtual page is.  Entries are seqlocks: a reader takes one
 * only if its seq was even and unchanged around the reading of it, and
 * the copy itself is checked the same way by the page cache.
 */
static int ref_get(kvm_t *kd, uint64_t addr, void *buf, size_t len)
{
	uint64_t vpn = (addr >> PAGE_SHIFT) + 1, s;
	const struct kvm_ref_entry *e = &kd->reftlb[vpn % KVM_TLB_SIZE];
	struct kvm_pageref r;

	s = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
	if ((s & 1) || LOAD(e->vpage) != vpn)
		return 0;
	r.slot = LOAD(e->ref.slot);
	r.seq = LOAD(e->ref.seq);
	r.base = LOAD(e->ref.base);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (LOAD(e->seq) != s)
		return 0;
	return kvm_pagecache_reread(&r, r.base + (size_t)(addr & PAGE_MASK), buf, len);
}

/* Remember where page addr was found; skipped if another thread is at it. */
static void ref_put(kvm_t *kd, uint64_t addr, const struct kvm_pageref *r)
{
	uint64_t vpn = (addr >> PAGE_SHIFT) + 1;
	struct kvm_ref_entry *e = &kd->reftlb[vpn % KVM_TLB_SIZE];
	uint64_t s = LOAD(e->seq);

	if ((s & 1) || !__atomic_compare_exchange_n(&e->seq, &s, s + 1, 0,
						    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	STORE(e->vpage, vpn);
	STORE(e->ref.slot, r->slot);
	STORE(e->ref.seq, r->seq);
	STORE(e->ref.base, r->base);
	__atomic_store_n(&e->seq, s + 2, __ATOMIC_RELEASE);
}

void kvm_reftlb_init(kvm_t *kd)
{
	kd->reftlb = (struct kvm_ref_entry *)(void *)(kd->tlb + KVM_TLB_SIZE);
}
#else
/* No atomics: no page-ref cache (kvm_reftlb_init leaves it NULL). */
static int ref_get(kvm_t *kd, uint64_t addr, void *buf, size_t len)
{
	(void)kd, (void)addr, (void)buf, (void)len;
	return 0;
}

static void ref_put(kvm_t *kd, uint64_t addr, const struct kvm_pageref *r)
{
	(void)kd, (void)addr, (void)r;
}

void kvm_reftlb_init(kvm_t *kd)
{
	(void)kd;
}
#endif

/*
 * Both translation caches in one mapping, in huge pages where the kernel
 * gives them (MADV_HUGEPAGE).  A small read looks up a random entry of a
 * table that spans 140 pages of 4 KiB: reading thousands of scattered
 * pages, that look-up missed the CPU's own TLB about as often as the
 * dump's page did, doubling the page walks of every read (two of them, on
 * a virtual machine, are each a walk of two sets of tables).  The 2 MiB
 * the mapping is rounded to cost memory only where huge pages back it.
 */
#define HUGE_BYTES ((size_t)2 << 20)

int kvm_caches_new(kvm_t *kd)
{
	size_t bytes = KVM_TLB_SIZE * (sizeof(struct kvm_tlb_entry) + sizeof(struct kvm_ref_entry));
	size_t len = (bytes + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES + HUGE_BYTES;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (m == MAP_FAILED)
		return -1;
	a = ((uintptr_t)m + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
#ifdef MADV_HUGEPAGE
	(void)madvise((void *)a, len - HUGE_BYTES, MADV_HUGEPAGE); /* advice only */
#endif
	kd->caches_map = m;
	kd->caches_len = len;
	kd->tlb = (struct kvm_tlb_entry *)a;
	return 0;
}

void kvm_caches_free(kvm_t *kd)
{
	if (kd->caches_map != NULL)
		munmap(kd->caches_map, kd->caches_len);
	kd->caches_map = NULL;
	kd->tlb = NULL;
	kd->reftlb = NULL;
}

enum kvm_status kvm_phys_access(kvm_t *kd, uint64_t pa, void *buf,
				size_t len, int write, size_t *done)
{
	if (kd->physops != NULL) {
		/* Compressed formats: one page at a time, read only. */
		uint64_t room = kd->pagesize - (pa & (kd->pagesize - 1));
		size_t n = room < len ? (size_t)room : len;
		enum kvm_status st;
		*done = 0;
		if (write)
			return KVM_RDONLY;
		st = kd->physops->read(kd, pa, buf, n, NULL);
		if (st == KVM_OK)
			*done = n;
		return st;
	}
	return kvm_segs_access(kd, &kd->psegs, pa, buf, len, write, done);
}

static int64_t seg_page_offset(const struct kvm_segs *s, uint64_t page);

/* va -> pa through the cache; *room is how many bytes stay contiguous. */
enum kvm_status kvm_translate(kvm_t *kd, uint64_t va, uint64_t *pa,
			      uint64_t *room)
{
	uint64_t vpn = (va >> PAGE_SHIFT) + 1, pagesize = 0, p, fp = 0;
	struct kvm_tlb_entry *t = &kd->tlb[vpn % KVM_TLB_SIZE];
	uint64_t tv = LOAD(t->vpage), tp = LOAD(t->ppage), tf = LOAD(t->fpage);
	uint64_t tc = LOAD(t->check);
	enum kvm_status st;

	if (tv == vpn && tc == (tv ^ tp ^ tf)) {
		*pa = tp | (va & PAGE_MASK);
		*room = PAGE_SIZE_4K - (va & PAGE_MASK);
		return KVM_OK;
	}
	if (kd->arch == NULL || kd->archdata == NULL)
		return kd->kernel ? KVM_NOTRANS : KVM_UNMAPPED;
	st = kd->arch->translate(kd, va, &p, &pagesize);
	if (st != KVM_OK)
		return st;
	if (kd->fastmap) {
		/* Where the page lies whole in the mapped file, for kvm_access. */
		int64_t off = seg_page_offset(&kd->psegs, p & ~PAGE_MASK);
		fp = off >= 0 ? (uint64_t)off + 1 : 0;
	}
	/* Cache the 4 KiB page; the walk told us the whole (huge) page. */
	STORE(t->vpage, 0);
	STORE(t->ppage, p & ~PAGE_MASK);
	STORE(t->fpage, fp);
	STORE(t->check, vpn ^ (p & ~PAGE_MASK) ^ fp);
	STORE(t->vpage, vpn);
	*pa = p;
	*room = pagesize - (va & (pagesize - 1));
	return KVM_OK;
}

/*
 * Move len bytes at addr.  Returns the count moved: all of it, or the
 * part before the first failure; -1 (with the error set) if nothing moved.
 */
ssize_t kvm_access(kvm_t *kd, uint64_t addr, void *buf, size_t len,
		   int write, int physical)
{
	unsigned char *p = buf;
	size_t total = 0;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (!write && !physical && kd->fastmap &&
	    len <= PAGE_SIZE_4K - (addr & PAGE_MASK)) {
		/*
		 * The hot case: a read within one page that the translation
		 * cache knows is stored whole in the mapped file.
		 */
		uint64_t vpn = (addr >> PAGE_SHIFT) + 1;
		const struct kvm_tlb_entry *t = &kd->tlb[vpn % KVM_TLB_SIZE];
		uint64_t tv = LOAD(t->vpage), tp = LOAD(t->ppage), tf = LOAD(t->fpage);
		if (tv == vpn && tf != 0 && LOAD(t->check) == (tv ^ tp ^ tf)) {
			uint64_t off = tf - 1 + (addr & PAGE_MASK);
			kvm_file_touch(&kd->core, off, len);
			memcpy(buf, kd->core.map + off, len);
			return (ssize_t)len;
		}
	}
	if (kd->reftlb != NULL && !write && !physical && len > 0 &&
	    len <= PAGE_SIZE_4K - (addr & PAGE_MASK) &&
	    ref_get(kd, addr, buf, len))
		return (ssize_t)len; /* a warm page of a compressed dump */
	if (write && kd->flag != O_RDWR) {
		kvm_err(kd, EBADF, "%s: opened read-only: cannot write",
			kd->core.path);
		return -1;
	}
	if (write && kd->live) {
		/* /proc/kcore opens O_RDWR for root but has no write method. */
		kvm_err(kd, EROFS, "%s: the live kernel's memory cannot be written",
			kd->core.path);
		return -1;
	}
	if (write && kd->physops != NULL) {
		/* The format's name: the pages may also be stored raw. */
		kvm_err(kd, EROFS, "%s: writing a %s is not supported", kd->core.path,
			kd->format != NULL && strcmp(kd->format, "avml") == 0
				? "compressed AVML image" : "kdump-compressed dump");
		return -1;
	}
	while (total < len) {
		uint64_t a = addr + total;
		size_t want = len - total, done = 0;
		enum kvm_status st = KVM_UNMAPPED;

		if (physical) {
			st = kvm_phys_access(kd, a, p + total, want, write, &done);
		} else {
			if (kd->vsegs.n > 0)
				st = kvm_segs_access(kd, &kd->vsegs, a, p + total,
						     want, write, &done);
			if (st == KVM_UNMAPPED && kd->kernel) {
				uint64_t pa, room;
				st = kvm_translate(kd, a, &pa, &room);
				if (st == KVM_OK && kd->reftlb != NULL && !write &&
				    want <= PAGE_SIZE_4K - (a & PAGE_MASK)) {
					/* Within a page: note where the format keeps it decoded. */
					struct kvm_pageref r = { NULL, 0, 0 };
					st = kd->physops->read(kd, pa, p + total, want, &r);
					if (st == KVM_OK) {
						done = want;
						if (r.slot != NULL)
							ref_put(kd, a, &r);
					}
				} else if (st == KVM_OK) {
					st = kvm_phys_access(kd, pa, p + total,
							     room < want ? (size_t)room : want,
							     write, &done);
				}
			}
		}
		if (st == KVM_EXCLUDED && !write &&
		    (kd->opts & KVM_OPT_EXCLUDED_ZERO)) {
			uint64_t room = kd->pagesize - (a & (kd->pagesize - 1));
			done = room < want ? (size_t)room : want;
			memset(p + total, 0, done);
			st = KVM_OK;
		}
		if (st != KVM_OK) {
			kvm_status_err(kd, st, a, physical ? "physical" : "virtual");
			return total > 0 ? (ssize_t)total : -1;
		}
		total += done;
	}
	return (ssize_t)total;
}

/* The file offset of a page stored whole in a mapped segment, or -1. */
static int64_t seg_page_offset(const struct kvm_segs *s, uint64_t page)
{
	const struct kvm_seg *g = kvm_segs_find(s, page);

	if (g == NULL || page - g->start > g->filesz ||
	    g->filesz - (page - g->start) < PAGE_SIZE_4K)
		return -1;
	return (int64_t)(g->off + (page - g->start));
}

const void *kvm_mapping(kvm_t *kd, uint64_t *size)
{
	if (kd == NULL || kd->core.map == NULL)
		return NULL;
	*size = kd->core.size;
	return kd->core.map;
}

int64_t kvm_page_offset(kvm_t *kd, uint64_t addr, int physical)
{
	uint64_t page = addr & ~PAGE_MASK, pa, room;

	if (kd == NULL || kd->core.map == NULL || kd->physops != NULL)
		return -1;
	if (physical)
		return seg_page_offset(&kd->psegs, page);
	if (kd->vsegs.n > 0 && kvm_segs_find(&kd->vsegs, page) != NULL)
		return seg_page_offset(&kd->vsegs, page);
	if (kd->archdata == NULL || kvm_translate(kd, page, &pa, &room) != KVM_OK)
		return -1;
	return seg_page_offset(&kd->psegs, pa);
}
