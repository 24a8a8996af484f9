/*
 * kdump_flat.c - a kdump's bytes by logical offset: the file itself, or a
 * flattened file ("makedumpfile" header, then {be64 offset, be64 size,
 * data} records) whose records are indexed once and read through the
 * index, never rewriting the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kdump.h"

/*
 * The last record starting at or before loff, or NULL.  The chunk table
 * narrows the search to the records starting in loff's chunk (about one).
 */
static const struct flatrec *flat_find(const struct kdump *k, uint64_t loff)
{
	uint64_t c = loff >> k->chunk_shift;
	size_t lo, hi;

	if (c >= k->nchunks)
		c = k->nchunks - 1;
	lo = k->chunk_cnt[c];
	hi = k->chunk_cnt[c + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->rec_loff[mid] <= loff)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 ? &k->recs[lo - 1] : NULL;
}

/* The dump's bytes at loff in place, when the file is mapped and they are contiguous. */
const unsigned char *kdump_ptr(const kvm_t *kd, const struct kdump *k,
			       uint64_t loff, size_t len)
{
	const struct flatrec *r;

	if (kd->core.map == NULL || loff > k->size || len > k->size - loff)
		return NULL;
	if (k->recs == NULL) {
		kvm_file_touch((struct kvm_file *)&kd->core, loff, len);
		return kd->core.map + loff;
	}
	r = flat_find(k, loff);
	if (r == NULL || loff - r->loff > r->len || len > r->len - (loff - r->loff))
		return NULL;
	kvm_file_touch((struct kvm_file *)&kd->core, r->foff + (loff - r->loff), len);
	return kd->core.map + r->foff + (loff - r->loff);
}

/* Does the file hold all of the dump's bytes [loff, loff + len)? (A
 * flattened file may leave gaps, which kdump_copy reads as zeros.) */
int kdump_covered(const struct kdump *k, uint64_t loff, uint64_t len)
{
	const struct flatrec *r, *end;

	if (loff > k->size || len > k->size - loff)
		return 0;
	if (k->recs == NULL || len == 0)
		return 1;
	r = flat_find(k, loff);
	end = k->recs + k->nrecs;
	while (len > 0) {
		uint64_t in, n;
		if (r == NULL || r >= end || loff < r->loff || loff - r->loff >= r->len)
			return 0;
		in = loff - r->loff;
		n = r->len - in < len ? r->len - in : len;
		loff += n;
		len -= n;
		r++;
	}
	return 1;
}

/* Copy the dump's bytes at loff; a gap between flattened records reads as zeros. */
enum kvm_status kdump_copy(kvm_t *kd, const struct kdump *k, uint64_t loff,
			   void *buf, size_t len)
{
	unsigned char *p = buf;
	const struct flatrec *r, *end;

	if (loff > k->size || len > k->size - loff)
		return KVM_IOERR;
	if (k->recs == NULL)
		return kvm_file_copy(&kd->core, loff, buf, len, 0);
	r = flat_find(k, loff);
	end = k->recs + k->nrecs;
	if (r == NULL)
		r = k->recs;
	while (len > 0) {
		size_t n;
		if (r < end && loff >= r->loff && loff - r->loff < r->len) {
			uint64_t in = loff - r->loff;
			n = r->len - in < len ? (size_t)(r->len - in) : len;
			if (kvm_file_copy(&kd->core, r->foff + in, p, n, 0) != KVM_OK)
				return KVM_IOERR;
			r++;
		} else {
			uint64_t next;
			if (r < end && r->loff <= loff)
				r++; /* loff is past this record's end */
			next = r < end ? r->loff : k->size;
			n = next - loff < len ? (size_t)(next - loff) : len;
			memset(p, 0, n);
		}
		p += n;
		loff += n;
		len -= n;
	}
	return KVM_OK;
}

/* kdump_copy at open time: a failure is an error naming what was read. */
int kdump_read_at(kvm_t *kd, const struct kdump *k, uint64_t loff, void *buf,
		  size_t len, const char *what)
{
	if (kdump_copy(kd, k, loff, buf, len) == KVM_OK)
		return 0;
	if (loff > k->size || len > k->size - loff)
		kvm_err(kd, EINVAL,
			"%s: truncated: %s (%zu bytes at offset %llu) is past the end of the dump (%llu bytes)",
			kd->core.path, what, len, ull(loff), ull(k->size));
	else
		kvm_syserr(kd, kd->core.path, "read");
	return -1;
}

/* ---- flattened files ---- */

struct rawrec {
	uint64_t loff, len, foff;
	size_t seq; /* later records win */
};

static int cmp_rawrec(const void *a, const void *b)
{
	const struct rawrec *x = a, *y = b;

	if (x->loff != y->loff)
		return x->loff < y->loff ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Max-heap of record indexes by seq. */
static void heap_push(size_t *h, size_t *n, size_t v, const struct rawrec *r)
{
	size_t i = (*n)++;

	while (i > 0 && r[h[(i - 1) / 2]].seq < r[v].seq) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = v;
}

static void heap_pop(size_t *h, size_t *n, const struct rawrec *r)
{
	size_t i = 0, v = h[--(*n)];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && r[h[c + 1]].seq > r[h[c]].seq)
			c++;
		if (r[h[c]].seq <= r[v].seq)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n > 0)
		h[i] = v;
}

static void add_rec(struct flatrec *out, size_t *n, uint64_t loff,
		    uint64_t len, uint64_t foff)
{
	struct flatrec *last = *n ? &out[*n - 1] : NULL;

	if (last != NULL && last->loff + last->len == loff &&
	    last->foff + last->len == foff) {
		last->len += len;
		return;
	}
	out[*n].loff = loff;
	out[*n].len = len;
	out[*n].foff = foff;
	(*n)++;
}

/*
 * Turn records (sorted by offset, then file order) into disjoint ranges
 * where a later record wins.  Usually nothing overlaps; otherwise sweep
 * the elementary intervals with a heap of the records covering them.
 */
static int flat_resolve(kvm_t *kd, struct kdump *k, struct rawrec *r, size_t n)
{
	uint64_t *pts = NULL;
	size_t *heap = NULL, i, j, npts = 0, hn = 0, next = 0, nout = 0;
	struct flatrec *out;
	int overlap = 0;

	for (i = 0; i + 1 < n; i++)
		if (r[i].loff + r[i].len > r[i + 1].loff)
			overlap = 1;
	out = malloc((overlap ? 2 * n : n) * sizeof(*out) + 1);
	if (out == NULL)
		goto nomem;
	if (!overlap) {
		for (i = 0; i < n; i++)
			add_rec(out, &nout, r[i].loff, r[i].len, r[i].foff);
		goto done;
	}
	pts = malloc(2 * n * sizeof(*pts));
	heap = malloc(n * sizeof(*heap));
	if (pts == NULL || heap == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		pts[npts++] = r[i].loff;
		pts[npts++] = r[i].loff + r[i].len;
	}
	qsort(pts, npts, sizeof(*pts), cmp_u64);
	for (i = j = 0; i < npts; i++)
		if (j == 0 || pts[i] != pts[j - 1])
			pts[j++] = pts[i];
	npts = j;
	for (j = 0; j + 1 < npts; j++) {
		uint64_t a = pts[j], b = pts[j + 1];
		const struct rawrec *w;
		while (next < n && r[next].loff <= a)
			heap_push(heap, &hn, next++, r);
		while (hn > 0 && r[heap[0]].loff + r[heap[0]].len <= a)
			heap_pop(heap, &hn, r);
		if (hn == 0)
			continue; /* a gap */
		w = &r[heap[0]];
		add_rec(out, &nout, a, b - a, w->foff + (a - w->loff));
	}
done:
	free(pts);
	free(heap);
	k->recs = out;
	k->nrecs = nout;
	k->size = nout ? out[nout - 1].loff + out[nout - 1].len : 0;
	if ((k->rec_loff = malloc(nout * sizeof(*k->rec_loff) + 1)) == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the flattened index",
			kd->core.path);
		return -1;
	}
	for (i = 0; i < nout; i++)
		k->rec_loff[i] = out[i].loff;
	/* Chunks of 2^shift bytes, at most about two per record. */
	for (k->chunk_shift = 0; k->chunk_shift < 63 &&
	     (k->size >> k->chunk_shift) > 2 * (uint64_t)nout; k->chunk_shift++)
		;
	k->nchunks = (size_t)(k->size >> k->chunk_shift) + 1;
	if ((k->chunk_cnt = malloc((k->nchunks + 1) * sizeof(*k->chunk_cnt))) == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the flattened index",
			kd->core.path);
		return -1;
	}
	for (i = j = 0; j < k->nchunks; j++) {
		uint64_t start = (uint64_t)j << k->chunk_shift;
		while (i < nout && out[i].loff <= start)
			i++;
		k->chunk_cnt[j] = i;
	}
	k->chunk_cnt[k->nchunks] = nout;
	return 0;
nomem:
	free(out);
	free(pts);
	free(heap);
	kvm_err(kd, ENOMEM, "%s: out of memory for the flattened index", kd->core.path);
	return -1;
}

/* Index a flattened file's records: read each record header once. */
int kdump_flat_index(kvm_t *kd, struct kdump *k)
{
	struct kvm_file *f = &kd->core;
	unsigned char h[FLAT_REC_HDR];
	struct rawrec *r = NULL;
	size_t n = 0, cap = 0;
	uint64_t pos = FLAT_HDR_SIZE;
	int rc;

	if (f->size < FLAT_HDR_SIZE + FLAT_REC_HDR) {
		kvm_err(kd, EINVAL, "%s: truncated flattened dump: %llu bytes",
			f->path, ull(f->size));
		return -1;
	}
	if (kvm_file_pread(kd, f, 16, h, 16) != 0)
		return -1;
	if (kvm_ld64(1, h) != 1 || kvm_ld64(1, h + 8) != 1) {
		kvm_err(kd, EINVAL,
			"%s: flattened dump of unknown type %llu or version %llu (only 1 and 1 are known)",
			f->path, ull(kvm_ld64(1, h)), ull(kvm_ld64(1, h + 8)));
		return -1;
	}
	for (;;) {
		uint64_t loff, len;
		if (pos > f->size || f->size - pos < FLAT_REC_HDR) {
			if (n > 0) { /* cut short: what is there opens */
				k->flat_cut = 1;
				break;
			}
			kvm_err(kd, EINVAL,
				"%s: truncated flattened dump: no end record (the records stop at offset %llu of %llu)",
				f->path, ull(pos), ull(f->size));
			goto fail;
		}
		if (kvm_file_pread(kd, f, pos, h, FLAT_REC_HDR) != 0)
			goto fail;
		loff = kvm_ld64(1, h);
		len = kvm_ld64(1, h + 8);
		if (loff == FLAT_END)
			break;
		if (loff > INT64_MAX || len > INT64_MAX) {
			kvm_err(kd, EINVAL,
				"%s: flattened record at offset %llu has a negative offset or size",
				f->path, ull(pos));
			goto fail;
		}
		pos += FLAT_REC_HDR;
		if (len > f->size - pos && n > 0) {
			/* The last record, cut short: keep its bytes that are there. */
			len = f->size - pos;
			k->flat_cut = 1;
		} else if (len > f->size - pos) {
			kvm_err(kd, EINVAL,
				"%s: truncated flattened dump: the record at offset %llu (%llu bytes for dump offset %llu) runs past the end of the file (%llu bytes)",
				f->path, ull(pos - FLAT_REC_HDR), ull(len), ull(loff),
				ull(f->size));
			goto fail;
		}
		if (len > 0) {
			if (n == cap) {
				/* At most one record per 16 bytes of file. */
				size_t c = cap ? 2 * cap : 256;
				struct rawrec *v = realloc(r, c * sizeof(*v));
				if (v == NULL) {
					kvm_err(kd, ENOMEM,
						"%s: out of memory for the flattened index",
						f->path);
					goto fail;
				}
				r = v;
				cap = c;
			}
			r[n].loff = loff;
			r[n].len = len;
			r[n].foff = pos;
			r[n].seq = n;
			n++;
		}
		pos += len;
		if (k->flat_cut)
			break;
	}
	if (n == 0) {
		kvm_err(kd, EINVAL, "%s: flattened dump holds no data", f->path);
		goto fail;
	}
	qsort(r, n, sizeof(*r), cmp_rawrec);
	rc = flat_resolve(kd, k, r, n);
	free(r);
	return rc;
fail:
	free(r);
	return -1;
}


void kdump_flat_free(struct kdump *k)
{
	free(k->recs);
	free(k->rec_loff);
	free(k->chunk_cnt);
	k->recs = NULL;
	k->rec_loff = NULL;
	k->chunk_cnt = NULL;
}
