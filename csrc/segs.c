/* segs.c - address ranges stored in a core file, and access through them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

static int seg_cmp(const void *a, const void *b)
{
	const struct kvm_seg *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Sort the ranges and refuse overlaps: two file ranges for one address
 * would make the answer depend on which one we happened to pick.
 * In physical memory an overlap is an
 * alias of the same RAM (kdump and kcore list the kernel text on its own
 * and inside its RAM range): with alias set, the later range is trimmed.
 */
int kvm_segs_finish(kvm_t *kd, struct kvm_segs *s, const char *what, int alias)
{
	size_t i, out = 0;

	if (s->n == 0)
		return 0;
	qsort(s->v, s->n, sizeof(s->v[0]), seg_cmp);
	for (i = 0; i < s->n; i++) {
		struct kvm_seg *c = &s->v[i];
		if (out > 0) {
			struct kvm_seg *p = &s->v[out - 1];
			uint64_t pend = p->start + p->memsz;
			if (c->start < pend) {
				if (!alias) {
					kvm_err(kd, EINVAL,
						"%s: overlapping %s segments at 0x%llx and 0x%llx",
						kd->core.path, what,
						(unsigned long long)p->start,
						(unsigned long long)c->start);
					return -1;
				}
				uint64_t t = pend - c->start;
				uint64_t declared = c->filesz + c->cut;
				if (t >= c->memsz)
					continue; /* inside the previous range */
				c->memsz -= t;
				c->off += t;
				c->filesz = c->filesz > t ? c->filesz - t : 0;
				c->cut = (declared > t ? declared - t : 0) - c->filesz;
				c->start = pend;
			}
		}
		s->v[out++] = *c;
	}
	s->n = out;
	return 0;
}

const struct kvm_seg *kvm_segs_find(const struct kvm_segs *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kvm_seg *g = &s->v[mid];
		if (addr < g->start)
			hi = mid;
		else if (addr - g->start >= g->memsz)
			lo = mid + 1;
		else
			return g;
	}
	return NULL;
}

/*
 * Move up to len bytes at addr, stopping at the end of the segment that
 * holds addr; *done says how many moved.  Bytes past p_filesz read as
 * zeros (or fault, in a process core: not saved) and cannot be written;
 * bytes a truncated file lost fault, saying so.
 */
enum kvm_status kvm_segs_access(kvm_t *kd, const struct kvm_segs *s,
				uint64_t addr, void *buf, size_t len,
				int write, size_t *done)
{
	const struct kvm_seg *g = kvm_segs_find(s, addr);
	uint64_t rel, avail;
	size_t n;

	*done = 0;
	if (g == NULL)
		return KVM_UNMAPPED;
	rel = addr - g->start;
	avail = g->memsz - rel;
	n = avail < len ? (size_t)avail : len;
	if (rel < g->filesz) {
		uint64_t inf = g->filesz - rel;
		size_t m = inf < n ? (size_t)inf : n;
		enum kvm_status st = kvm_file_copy(&kd->core, g->off + rel,
						   buf, m, write);
		if (st != KVM_OK)
			return st;
		*done = m;
		return KVM_OK;
	}
	if (write)
		return KVM_RDONLY;
	if (rel - g->filesz < g->cut) {
		kvm_err(kd, EFAULT,
			"%s is truncated: the segment at 0x%llx lacks its last %llu bytes (the file ends at %llu bytes, the segment at %llu)",
			kd->core.path, (unsigned long long)g->start,
			(unsigned long long)g->cut, (unsigned long long)kd->core.size,
			(unsigned long long)(g->off + g->filesz + g->cut));
		return KVM_FAULT_MSG;
	}
	if (s->unsaved_faults) {
		kvm_err(kd, EFAULT,
			"not saved in the core %s (the segment at 0x%llx has %llu of its %llu bytes in the file: p_filesz < p_memsz)",
			kd->core.path, (unsigned long long)g->start,
			(unsigned long long)g->filesz, (unsigned long long)g->memsz);
		return KVM_FAULT_MSG;
	}
	memset(buf, 0, n);
	*done = n;
	return KVM_OK;
}
