/*
 * core_kdump.c - kdump-compressed ("diskdump") dumps: makedumpfile's and
 * QEMU's, plain or flattened.
 *
 * The file, in blocks of block_size bytes (every field in the dumped
 * machine's byte order):
 *
 *   block 0           disk_dump_header (signature, utsname, sizes)
 *   1 .. sub_hdr_size kdump_sub_header, with the VMCOREINFO text and the
 *                     ELF notes after it
 *   bitmap_blocks     bitmap 1 (pfn is RAM), then bitmap 2 (pfn is in the
 *                     file); bit of pfn = byte[pfn / 8] >> (pfn % 8) & 1
 *   then              one 24-byte page descriptor per bit set in bitmap 2,
 *                     in pfn order, then the page data they point to.
 *
 * A flattened file ("makedumpfile" header, then {be64 offset, be64 size,
 * data} records) holds the same bytes scattered; we index the records once
 * and read through the index, never rewriting the file.
 *
 * Reads: a pfn's descriptor is found by counting the bits of bitmap 2
 * below it (prefix counts kept per RANK_WORDS words).  Raw pages are copied
 * straight from the file; compressed pages go through a bounded cache of
 * decompressed pages, striped over several locks so concurrent readers
 * rarely meet, and decompression happens outside the lock.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef HAVE_LZO
#include <lzo/lzo1x.h>
#endif
#ifdef HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

/* Status bits of the header; the codec bits are also page flags. */
#define DH_ZLIB 0x1u
#define DH_LZO 0x2u
#define DH_SNAPPY 0x4u
#define DH_INCOMPLETE 0x8u /* makedumpfile ran out of space */
#define DH_ZSTD 0x20u
#define DH_CODECS (DH_ZLIB | DH_LZO | DH_SNAPPY | DH_ZSTD)

#define FLAT_HDR_SIZE 4096 /* the "makedumpfile" header of a flattened file */
#define FLAT_REC_HDR 16
#define FLAT_END UINT64_MAX /* offset of the last record */

#define UTS_LEN 65
#define UTS_RELEASE (12 + 2 * UTS_LEN)
#define UTS_MACHINE (12 + 4 * UTS_LEN)
#define HDR_BYTES 512 /* covers every header layout */
#define DESC_SIZE 24
#define MIN_BLOCK 512u
#define MAX_BLOCK (1u << 20)
#define MAX_VERSION 100 /* makedumpfile writes 6; later ones only add fields */
#define MAX_VMCOREINFO (1u << 20)
#define MAX_NOTES (64u << 20)

/*
 * A read error this file has described with kvm_err.  kvm_status_err
 * replaces the message for KVM_IOERR with a generic one; a status that
 * keeps it would go here.
 */
#define KD_IOERR KVM_IOERR_MSG

#define RANK_WORDS 8 /* bitmap words per prefix count */
#define CACHE_WAYS 8 /* slots per cache set */
#define CACHE_STRIPES 64

#if defined(__GNUC__)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define SET_BITS(x, v) __atomic_fetch_or(&(x), (v), __ATOMIC_RELAXED)
#else
#define LOAD(x) (x)
#define SET_BITS(x, v) ((void)0) /* only a hint: never set without atomics */
#endif

/*
 * Where the header's fields are.  struct timeval and long follow the word
 * size of the program that wrote the file: 8-byte fields aligned to 8 on
 * 64-bit machines (and on 32-bit ones built with a 64-bit time_t and
 * 8-byte alignment, e.g. armhf), 4-byte fields on 32-bit machines, and
 * 8-byte fields aligned to 4 on i386 with a 64-bit time_t.  The fields
 * after status are at status + 4, + 8, ...
 */
struct hdr_layout {
	const char *name;
	int word;                 /* word size of the machines that write it */
	unsigned sec, usec, tsize; /* timestamp fields and their size */
	unsigned status;
};

static const struct hdr_layout hdr_layouts[] = {
	{ "64-bit", 64, 408, 416, 8, 424 },
	{ "32-bit", 32, 404, 408, 4, 412 },
	{ "32-bit with 64-bit time", 32, 404, 412, 8, 420 },
};

/*
 * kdump_sub_header: 64-bit; 32-bit with 8-byte fields aligned to 4 (i386,
 * and QEMU for every 32-bit guest); 32-bit with them aligned to 8 (arm,
 * ppc, mips).  Offsets from the start of block 1.
 */
struct sub_layout {
	const char *name;
	unsigned ulong; /* size of phys_base, start_pfn, end_pfn, size_* */
	unsigned phys_base, dump_level, split, start_pfn, end_pfn;
	unsigned off_vmci, size_vmci, off_note, size_note;
	unsigned start64, end64, max64, size;
};

static const struct sub_layout sub_layouts[] = {
	{ "64-bit", 8, 0, 8, 12, 16, 24, 32, 40, 48, 56, 80, 88, 96, 104 },
	{ "32-bit packed", 4, 0, 4, 8, 12, 16, 20, 28, 32, 40, 56, 64, 72, 80 },
	{ "32-bit padded", 4, 0, 4, 8, 12, 16, 24, 32, 40, 48, 72, 80, 88, 96 },
};

/* One flattened record, after overlaps are resolved. */
struct flatrec {
	uint64_t loff; /* offset in the dump as if rearranged */
	uint64_t len;
	uint64_t foff; /* where those bytes are in the file */
};

/* A page descriptor. */
struct pdesc {
	uint64_t off;
	uint32_t size, flags;
};

enum { SLOT_EMPTY, SLOT_VALID, SLOT_FILLING };

struct slot {
	uint64_t pfn;
	unsigned char *data; /* block_size bytes, allocated on first use */
	unsigned char state;
	unsigned char ref; /* CLOCK: used since the hand last passed */
};

/* One lock and the cache sets it guards. */
struct stripe {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a slot being filled was published */
	struct slot *slots; /* nsets sets of ways slots */
	unsigned char *hands;
	size_t nsets;
	size_t used; /* valid slots */
	unsigned waiters;
	int ready;
	char pad[64]; /* keep the next stripe's lock off these cache lines */
};

/* Decompression state reused across pages (one per concurrent reader). */
struct scratch {
	struct scratch *next;
	unsigned char *buf; /* compressed bytes the file cannot lend us */
#ifdef HAVE_ZLIB
	z_stream zs;
	int zs_ready;
#endif
#ifdef HAVE_ZSTD
	ZSTD_DCtx *zd;
#endif
};

struct kdump {
	/* The dump's bytes: the file itself, or flattened records. */
	struct flatrec *recs; /* NULL for a plain file */
	uint64_t *rec_loff;   /* recs[i].loff: a dense array to search */
	size_t nrecs;
	size_t *chunk_cnt;    /* records starting at or before c << chunk_shift */
	size_t nchunks;
	unsigned chunk_shift;
	uint64_t size; /* logical size */

	int big;
	uint32_t block_size;
	unsigned shift;
	uint32_t status;
	uint64_t max_mapnr;
	const unsigned char *ram;    /* bitmap 1, words up to max_mapnr */
	const unsigned char *dumped; /* bitmap 2 */
	unsigned char *bitmap_copy;  /* owns both when not read from the map */
	uint64_t *rank;   /* bits of bitmap 2 before each RANK_WORDS words */
	uint64_t *rawmap; /* pfns seen stored raw: no cache lookup for them */
	uint64_t ndesc;
	uint64_t desc_off, data_off;

	struct stripe *stripes;
	size_t nstripes;
	unsigned ways;

	pthread_mutex_t pool_mu;
	int pool_ready;
	struct scratch *pool;
};

/* ---- small helpers ---- */

static unsigned popcount64(uint64_t x)
{
	/* On x86 without POPCNT the builtin is a libgcc call: slower than this. */
#if defined(__GNUC__) && \
	(defined(__POPCNT__) || !(defined(__x86_64__) || defined(__i386__)))
	return (unsigned)__builtin_popcountll(x);
#else
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
#endif
}

/* 64 bitmap bits: the bitmap is bytes, lowest pfn in the lowest bit. */
static uint64_t bm_word(const unsigned char *bm, uint64_t w)
{
	const unsigned char *p = bm + 8 * w;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
#else
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
	       (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
#endif
}

/* Loads in the dump's byte order, inline for the read path. */
static uint32_t ld32(int big, const unsigned char *p)
{
	return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			     (uint32_t)p[2] << 8 | p[3]
		   : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[1] << 8 | p[0];
}

static uint64_t ld64(int big, const unsigned char *p)
{
	return big ? (uint64_t)ld32(1, p) << 32 | ld32(1, p + 4)
		   : (uint64_t)ld32(0, p + 4) << 32 | ld32(0, p);
}

static uint64_t ld(int big, const unsigned char *p, unsigned size)
{
	return size == 8 ? ld64(big, p) : ld32(big, p);
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* ---- the dump's bytes: plain or flattened ---- */

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
static const unsigned char *dump_ptr(const kvm_t *kd, const struct kdump *k,
				     uint64_t loff, size_t len)
{
	const struct flatrec *r;

	if (kd->core.map == NULL || loff > k->size || len > k->size - loff)
		return NULL;
	if (k->recs == NULL)
		return kd->core.map + loff;
	r = flat_find(k, loff);
	if (r == NULL || loff - r->loff > r->len || len > r->len - (loff - r->loff))
		return NULL;
	return kd->core.map + r->foff + (loff - r->loff);
}

/* Copy the dump's bytes at loff; a gap between flattened records reads as zeros. */
static enum kvm_status dump_copy(kvm_t *kd, const struct kdump *k,
				 uint64_t loff, void *buf, size_t len)
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

/* dump_copy at open time: a failure is an error naming what was read. */
static int dump_read(kvm_t *kd, const struct kdump *k, uint64_t loff,
		     void *buf, size_t len, const char *what)
{
	if (dump_copy(kd, k, loff, buf, len) == KVM_OK)
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
static int flat_index(kvm_t *kd, struct kdump *k)
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
		if (len > f->size - pos) {
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

/* ---- the header ---- */

/* One reading of the header: a byte order and a layout. */
struct hdr {
	int big;
	const struct hdr_layout *lay;
	int32_t version;
	uint32_t status;
	int32_t block_size, sub_hdr_size;
	uint32_t bitmap_blocks, max_mapnr;
	uint64_t sec, usec;
};

static void hdr_load(struct hdr *h, const unsigned char *b, int big,
		     const struct hdr_layout *lay)
{
	unsigned s = lay->status;

	h->big = big;
	h->lay = lay;
	h->version = (int32_t)kvm_ld32(big, b + 8);
	h->status = kvm_ld32(big, b + s);
	h->block_size = (int32_t)kvm_ld32(big, b + s + 4);
	h->sub_hdr_size = (int32_t)kvm_ld32(big, b + s + 8);
	h->bitmap_blocks = kvm_ld32(big, b + s + 12);
	h->max_mapnr = kvm_ld32(big, b + s + 16);
	h->sec = ld(big, b + lay->sec, lay->tsize);
	h->usec = ld(big, b + lay->usec, lay->tsize);
}

/* What makes a reading impossible (into why), or 0 if it is plausible. */
static int hdr_problem(const struct hdr *h, int kdump_sig, uint64_t size,
		       char *why, size_t n)
{
	uint64_t bs = (uint64_t)(uint32_t)h->block_size, blocks;

	if (h->version < 0 || h->version > MAX_VERSION) {
		snprintf(why, n, "header_version %d is not a known version", h->version);
		return 1;
	}
	if (h->block_size < (int32_t)MIN_BLOCK || bs > MAX_BLOCK || (bs & (bs - 1))) {
		snprintf(why, n,
			 "block_size %d is not a power of two between %u and %u",
			 h->block_size, MIN_BLOCK, MAX_BLOCK);
		return 1;
	}
	if (h->sub_hdr_size < 0 ||
	    (kdump_sig && h->version >= 1 && h->sub_hdr_size == 0)) {
		snprintf(why, n, "sub_hdr_size %d blocks is not valid", h->sub_hdr_size);
		return 1;
	}
	if (h->bitmap_blocks == 0) {
		snprintf(why, n, "bitmap_blocks is 0: the dump has no bitmap");
		return 1;
	}
	blocks = 1 + (uint64_t)h->sub_hdr_size + h->bitmap_blocks;
	if (blocks > size / bs) {
		snprintf(why, n,
			 "truncated: the header, sub-header and bitmaps take %llu blocks of %llu bytes, more than the dump's %llu bytes",
			 ull(blocks), ull(bs), ull(size));
		return 1;
	}
	return 0;
}

/* The ELF machine and word size a utsname.machine names; 0 if unknown. */
static int machine_of(const char *m, int *word)
{
	static const struct { const char *name; int prefix, em, word; } t[] = {
		{ "x86_64", 0, 62, 64 }, { "amd64", 0, 62, 64 },
		{ "i386", 0, 3, 32 }, { "i486", 0, 3, 32 }, { "i586", 0, 3, 32 },
		{ "i686", 0, 3, 32 }, { "x86", 0, 3, 32 },
		{ "aarch64", 1, 183, 64 }, { "arm64", 0, 183, 64 },
		{ "arm", 1, 40, 32 },
		{ "ppc64", 1, 21, 64 }, { "ppc", 1, 20, 32 },
		{ "s390x", 0, 22, 64 }, { "s390", 0, 22, 32 },
		{ "riscv64", 0, 243, 64 }, { "riscv32", 0, 243, 32 },
		{ "mips64", 1, 8, 64 }, { "mips", 1, 8, 32 },
		{ "sparc64", 0, 43, 64 }, { "sparc", 0, 2, 32 },
		{ "ia64", 0, 50, 64 }, { "loongarch64", 0, 258, 64 },
		{ "alpha", 0, 0x9026, 64 }, { "parisc64", 0, 15, 64 },
		{ "parisc", 0, 15, 32 }, { "m68k", 0, 4, 32 },
		{ "sh", 1, 42, 32 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t l = strlen(t[i].name);
		if (t[i].prefix ? strncmp(m, t[i].name, l) == 0
				: strcmp(m, t[i].name) == 0) {
			*word = t[i].word;
			return t[i].em;
		}
	}
	*word = 0;
	return 0;
}

/* A 64-bit machine's 32-bit sibling (QEMU names its own build, not the guest). */
static int machine32(int em)
{
	switch (em) {
	case 62:
		return 3;
	case 183:
		return 40;
	case 21:
		return 20;
	case 43:
		return 2;
	default:
		return em;
	}
}

/*
 * Choose the byte order and layout.  Every (order, layout) reading that
 * passes hdr_problem is a candidate; header_version and block_size rule
 * out the wrong byte order, and the sizes the wrong layout, in practice.
 * Ties go to the layout of utsname.machine's word size, then to a
 * timestamp with valid microseconds, then to the table order (64-bit
 * first) and little-endian.
 */
static int hdr_choose(kvm_t *kd, struct kdump *k, const unsigned char *b,
		      int kdump_sig, int word, struct hdr *out)
{
	char why[256], first[256] = "";
	int best = -1, big;
	size_t i;

	for (big = 0; big <= 1; big++) {
		for (i = 0; i < sizeof(hdr_layouts) / sizeof(hdr_layouts[0]); i++) {
			struct hdr h;
			int score = 0;
			hdr_load(&h, b, big, &hdr_layouts[i]);
			if (hdr_problem(&h, kdump_sig, k->size, why, sizeof(why))) {
				/* Report the reading a valid version points to. */
				if (first[0] == '\0' && h.version >= 0 &&
				    h.version <= MAX_VERSION &&
				    (word == 0 || word == h.lay->word))
					snprintf(first, sizeof(first), "%s", why);
				continue;
			}
			if (word != 0 && word == h.lay->word)
				score += 2;
			if (h.usec < 1000000)
				score += 1;
			if (score > best) {
				best = score;
				*out = h;
			}
		}
	}
	if (best >= 0)
		return 0;
	if (first[0] == '\0') {
		struct hdr h;
		hdr_load(&h, b, 0, &hdr_layouts[word == 32 ? 1 : 0]);
		hdr_problem(&h, kdump_sig, k->size, first, sizeof(first));
	}
	kvm_err(kd, EINVAL, "%s: not a valid kdump header: %s", kd->core.path, first);
	return -1;
}

/* The sub-header's fields, whatever its layout. */
struct sub {
	uint64_t phys_base, off_vmci, size_vmci, off_note, size_note, max64;
	int have_phys_base;
	unsigned phys_ulong; /* bytes of the phys_base field */
};

static void sub_load(struct sub *s, const unsigned char *b, int big,
		     const struct sub_layout *l, int version)
{
	memset(s, 0, sizeof(*s));
	s->phys_base = ld(big, b + l->phys_base, l->ulong);
	s->phys_ulong = l->ulong;
	s->have_phys_base = 1;
	if (version >= 3) {
		s->off_vmci = kvm_ld64(big, b + l->off_vmci);
		s->size_vmci = ld(big, b + l->size_vmci, l->ulong);
	}
	if (version >= 4) {
		s->off_note = kvm_ld64(big, b + l->off_note);
		s->size_note = ld(big, b + l->size_note, l->ulong);
	}
	if (version >= 6)
		s->max64 = kvm_ld64(big, b + l->max64);
}

/* How well an (offset, size) pair fits: inside the sub-header blocks best. */
static int range_score(uint64_t off, uint64_t size, uint64_t sub_end,
		       uint64_t bs, uint64_t total)
{
	if (off == 0 && size == 0)
		return 1;
	if (off < bs || off > total || size > total - off)
		return -100;
	return off + size <= sub_end ? 3 : 2;
}

/* Choose between the 32-bit sub-header layouts by the sense their fields make. */
static const struct sub_layout *sub_choose(const unsigned char *b,
					   const struct hdr *h, uint64_t size,
					   int machine)
{
	uint64_t bs = (uint32_t)h->block_size;
	uint64_t sub_end = (1 + (uint64_t)h->sub_hdr_size) * bs;
	int score[2];
	size_t i;

	for (i = 0; i < 2; i++) {
		struct sub s;
		sub_load(&s, b, h->big, &sub_layouts[1 + i], h->version);
		score[i] = range_score(s.off_vmci, s.size_vmci, sub_end, bs, size) +
			   range_score(s.off_note, s.size_note, sub_end, bs, size);
		if (h->version >= 6 && s.max64 == h->max_mapnr)
			score[i]++;
	}
	if (score[0] != score[1])
		return &sub_layouts[score[0] > score[1] ? 1 : 2];
	/* QEMU always packs; of the others only i386 aligns 8-byte fields to 4. */
	return &sub_layouts[machine == 3 ? 1 : 2];
}

/* ---- notes ---- */

/* The sub-header's ELF notes: VMCOREINFO (when the field is absent) and QEMU's CPU state. */
static int read_notes(kvm_t *kd, struct kdump *k, uint64_t off, uint64_t size)
{
	unsigned char *buf;
	size_t len;
	int qemu = 0;

	if (size > MAX_NOTES) {
		kvm_err(kd, EINVAL, "%s: note area of %llu bytes is too large",
			kd->core.path, ull(size));
		return -1;
	}
	len = (size_t)size;
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		kvm_err(kd, ENOMEM, "out of memory for notes");
		return -1;
	}
	if (dump_read(kd, k, off, buf, len, "the ELF notes") != 0) {
		free(buf);
		return -1;
	}
	/* The word size only matters for process cores' auxv, not here. */
	if (kvm_notes_parse(kd, buf, len, k->big, 8, off, &qemu) != 0) {
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

/* ---- bitmaps ---- */

/* Find the bitmaps, check them against max_mapnr, count bitmap 2. */
static int setup_bitmaps(kvm_t *kd, struct kdump *k, const struct hdr *h,
			 int kdump_sig)
{
	uint64_t bs = k->block_size;
	uint64_t off = (1 + (uint64_t)h->sub_hdr_size) * bs;
	uint64_t len = (uint64_t)h->bitmap_blocks * bs;
	uint64_t need = (k->max_mapnr + 7) / 8, blocks = (need + bs - 1) / bs;
	uint64_t nwords = (k->max_mapnr + 63) / 64, ngroups, w, total = 0;
	uint64_t off2;
	size_t bytes;

	/* Two bitmaps (makedumpfile and QEMU always write both); the old
	 * diskdump ("DISKDUMP") may write one, meaning both. */
	if (h->bitmap_blocks >= 2 * blocks) {
		off2 = off + len / 2;
	} else if (!kdump_sig && h->bitmap_blocks >= blocks) {
		off2 = off;
	} else {
		kvm_err(kd, EINVAL,
			"%s: max_mapnr %llu needs %llu bitmap blocks for each of the two bitmaps, but bitmap_blocks is %u",
			kd->core.path, ull(k->max_mapnr), ull(blocks), h->bitmap_blocks);
		return -1;
	}
	/* Whole words up to max_mapnr: within each bitmap (a multiple of 8). */
	bytes = (size_t)(nwords * 8);
	k->ram = dump_ptr(kd, k, off, bytes);
	k->dumped = dump_ptr(kd, k, off2, bytes);
	if (k->ram == NULL || k->dumped == NULL) {
		k->bitmap_copy = malloc(2 * bytes + 1);
		if (k->bitmap_copy == NULL) {
			kvm_err(kd, ENOMEM, "%s: out of memory for %zu bytes of bitmaps",
				kd->core.path, 2 * bytes);
			return -1;
		}
		if (dump_read(kd, k, off, k->bitmap_copy, bytes, "bitmap 1") != 0 ||
		    dump_read(kd, k, off2, k->bitmap_copy + bytes, bytes,
			      "bitmap 2") != 0)
			return -1;
		k->ram = k->bitmap_copy;
		k->dumped = k->bitmap_copy + bytes;
	}
	ngroups = (nwords + RANK_WORDS - 1) / RANK_WORDS;
	k->rank = malloc((size_t)(ngroups + 1) * sizeof(*k->rank));
	k->rawmap = calloc((size_t)nwords + 1, sizeof(*k->rawmap));
	if (k->rank == NULL || k->rawmap == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the page index", kd->core.path);
		return -1;
	}
	for (w = 0; w < nwords; w++) {
		uint64_t v = bm_word(k->dumped, w);
		if (w % RANK_WORDS == 0)
			k->rank[w / RANK_WORDS] = total;
		if (w == nwords - 1 && k->max_mapnr % 64)
			v &= (1ULL << (k->max_mapnr % 64)) - 1;
		total += popcount64(v);
	}
	k->ndesc = total;
	k->desc_off = off + len;
	k->data_off = k->desc_off + total * DESC_SIZE;
	if (k->desc_off > k->size || total > (k->size - k->desc_off) / DESC_SIZE) {
		if (!(k->status & DH_INCOMPLETE)) {
			kvm_err(kd, EINVAL,
				"%s: truncated: the page descriptor table (%llu descriptors at offset %llu) runs past the end of the dump (%llu bytes)",
				kd->core.path, ull(total), ull(k->desc_off), ull(k->size));
			return -1;
		}
	}
	return 0;
}

/* ---- the page cache ---- */

static void cache_free(struct kdump *k)
{
	size_t i, j;

	if (k->stripes == NULL)
		return;
	for (i = 0; i < k->nstripes; i++) {
		struct stripe *s = &k->stripes[i];
		if (s->slots != NULL)
			for (j = 0; j < s->nsets * k->ways; j++)
				free(s->slots[j].data);
		free(s->slots);
		free(s->hands);
		if (s->ready) {
			pthread_mutex_destroy(&s->mu);
			pthread_cond_destroy(&s->cv);
		}
	}
	free(k->stripes);
	k->stripes = NULL;
}

/*
 * At most cache_pages decompressed pages (and never more than the dump
 * has): sets of CACHE_WAYS slots, spread over up to CACHE_STRIPES locks.
 * Page buffers are allocated when first filled.
 */
static int cache_init(kvm_t *kd, struct kdump *k)
{
	uint64_t pages = kd->cache_pages ? kd->cache_pages : 1, total_sets;
	size_t i;

	if (pages > k->ndesc)
		pages = k->ndesc ? k->ndesc : 1;
	k->ways = pages < CACHE_WAYS ? (unsigned)pages : CACHE_WAYS;
	total_sets = pages / k->ways;
	k->nstripes = total_sets < CACHE_STRIPES ? (size_t)total_sets : CACHE_STRIPES;
	k->stripes = calloc(k->nstripes, sizeof(*k->stripes));
	if (k->stripes == NULL)
		goto nomem;
	for (i = 0; i < k->nstripes; i++) {
		struct stripe *s = &k->stripes[i];
		/* The sets shared out: some stripes get one more. */
		s->nsets = (size_t)(total_sets / k->nstripes) +
			   (i < total_sets % k->nstripes);
		s->slots = calloc(s->nsets * k->ways, sizeof(*s->slots));
		s->hands = calloc(s->nsets, 1);
		if (s->slots == NULL || s->hands == NULL)
			goto nomem;
		if (pthread_mutex_init(&s->mu, NULL) != 0)
			goto nolock;
		if (pthread_cond_init(&s->cv, NULL) != 0) {
			pthread_mutex_destroy(&s->mu);
			goto nolock;
		}
		s->ready = 1;
	}
	if (pthread_mutex_init(&k->pool_mu, NULL) != 0)
		goto nolock;
	k->pool_ready = 1;
	return 0;
nomem:
	kvm_err(kd, ENOMEM, "%s: out of memory for the page cache", kd->core.path);
	return -1;
nolock:
	kvm_err(kd, EAGAIN, "%s: cannot create the page cache's locks", kd->core.path);
	return -1;
}

static struct slot *cache_find(struct slot *set, unsigned ways, uint64_t pfn)
{
	unsigned i;

	for (i = 0; i < ways; i++)
		if (set[i].pfn == pfn && set[i].state != SLOT_EMPTY)
			return &set[i];
	return NULL;
}

/* CLOCK: an empty slot, else the first not used since the hand passed. */
static struct slot *cache_victim(struct slot *set, unsigned ways,
				 unsigned char *hand)
{
	unsigned i;

	for (i = 0; i < 2 * ways; i++) {
		struct slot *c = &set[*hand];
		*hand = (unsigned char)((*hand + 1) % ways);
		if (c->state == SLOT_EMPTY)
			return c;
		if (c->state == SLOT_FILLING)
			continue;
		if (c->ref) {
			c->ref = 0;
			continue;
		}
		return c;
	}
	return NULL; /* every slot is being filled: wait */
}

/* ---- decompression ---- */

static struct scratch *scratch_get(kvm_t *kd, struct kdump *k)
{
	struct scratch *sc;

	pthread_mutex_lock(&k->pool_mu);
	sc = k->pool;
	if (sc != NULL)
		k->pool = sc->next;
	pthread_mutex_unlock(&k->pool_mu);
	if (sc == NULL && (sc = calloc(1, sizeof(*sc))) == NULL)
		kvm_err(kd, ENOMEM, "%s: out of memory for decompression", kd->core.path);
	return sc;
}

static void scratch_put(struct kdump *k, struct scratch *sc)
{
	pthread_mutex_lock(&k->pool_mu);
	sc->next = k->pool;
	k->pool = sc;
	pthread_mutex_unlock(&k->pool_mu);
}

static void scratch_free(struct scratch *sc)
{
	free(sc->buf);
#ifdef HAVE_ZLIB
	if (sc->zs_ready)
		inflateEnd(&sc->zs);
#endif
#ifdef HAVE_ZSTD
	ZSTD_freeDCtx(sc->zd);
#endif
	free(sc);
}

unsigned kvm_kdump_codecs(void)
{
	return 0
#ifdef HAVE_ZLIB
	       | DH_ZLIB
#endif
#ifdef HAVE_LZO
	       | DH_LZO
#endif
#ifdef HAVE_SNAPPY
	       | DH_SNAPPY
#endif
#ifdef HAVE_ZSTD
	       | DH_ZSTD
#endif
		;
}

static const char *codec_name(unsigned codec)
{
	switch (codec) {
	case DH_ZLIB:
		return "zlib";
	case DH_LZO:
		return "LZO";
	case DH_SNAPPY:
		return "snappy";
	default:
		return "zstd";
	}
}

static const char *codec_package(unsigned codec)
{
	switch (codec) {
	case DH_ZLIB:
		return "zlib1g-dev";
	case DH_LZO:
		return "liblzo2-dev";
	case DH_SNAPPY:
		return "libsnappy-dev";
	default:
		return "libzstd-dev";
	}
}

/*
 * Decompress one page into dst (block_size bytes).  Returns NULL, or why
 * not (in why).  Each codec must produce exactly one block.
 */
static const char *decode(struct kdump *k, struct scratch *sc, unsigned codec,
			  const unsigned char *src, uint32_t len,
			  unsigned char *dst, char *why, size_t wn)
{
	uint32_t bs = k->block_size;

	(void)sc;
	(void)src;
	(void)len;
	(void)dst;
	switch (codec) {
#ifdef HAVE_ZLIB
	case DH_ZLIB: {
		z_stream *z = &sc->zs;
		int rc;
		if (!sc->zs_ready) {
			memset(z, 0, sizeof(*z));
			if (inflateInit(z) != Z_OK)
				return "zlib cannot start (out of memory?)";
			sc->zs_ready = 1;
		} else if (inflateReset(z) != Z_OK) {
			return "zlib cannot reset";
		}
		z->next_in = (Bytef *)src;
		z->avail_in = len;
		z->next_out = dst;
		z->avail_out = bs;
		rc = inflate(z, Z_FINISH);
		if (rc != Z_STREAM_END) {
			snprintf(why, wn, "%s",
				 z->msg != NULL ? z->msg
				 : rc == Z_BUF_ERROR ? "data ends early or is longer than a block"
				 : "zlib error");
			return why;
		}
		if (z->total_out != bs)
			break;
		return NULL;
	}
#endif
#ifdef HAVE_LZO
	case DH_LZO: {
		lzo_uint out = bs;
		int rc = lzo1x_decompress_safe((lzo_bytep)src, len, dst, &out, NULL);
		if (rc != LZO_E_OK) {
			snprintf(why, wn, "LZO error %d", rc);
			return why;
		}
		if (out != bs)
			break;
		return NULL;
	}
#endif
#ifdef HAVE_SNAPPY
	case DH_SNAPPY: {
		size_t out;
		if (snappy_uncompressed_length((const char *)src, len, &out) != SNAPPY_OK)
			return "not snappy data";
		if (out != bs) {
			snprintf(why, wn, "snappy data of %zu bytes, not one block of %u",
				 out, bs);
			return why;
		}
		if (snappy_uncompress((const char *)src, len, (char *)dst, &out) !=
		    SNAPPY_OK)
			return "snappy data is corrupt";
		if (out != bs)
			break;
		return NULL;
	}
#endif
#ifdef HAVE_ZSTD
	case DH_ZSTD: {
		size_t out;
		if (sc->zd == NULL && (sc->zd = ZSTD_createDCtx()) == NULL)
			return "zstd cannot start (out of memory?)";
		out = ZSTD_decompressDCtx(sc->zd, dst, bs, src, len);
		if (ZSTD_isError(out)) {
			snprintf(why, wn, "%s", ZSTD_getErrorName(out));
			return why;
		}
		if (out != bs)
			break;
		return NULL;
	}
#endif
	default:
		return "codec not built in";
	}
	snprintf(why, wn, "decompressed to less than a block of %u bytes", bs);
	return why;
}

static enum kvm_status decompress(kvm_t *kd, struct kdump *k, uint64_t pfn,
				  const struct pdesc *d, unsigned char *dst)
{
	unsigned codec = d->flags & DH_CODECS;
	const unsigned char *src;
	struct scratch *sc = NULL;
	const char *bad;
	char why[160];

	if (!(kvm_kdump_codecs() & codec)) {
		kvm_err(kd, EIO,
			"%s: pfn 0x%llx: page compressed with %s, but this build has no %s support: install %s and rebuild",
			kd->core.path, ull(pfn), codec_name(codec), codec_name(codec),
			codec_package(codec));
		return KD_IOERR;
	}
	src = dump_ptr(kd, k, d->off, d->size);
	if (src == NULL || codec == DH_ZLIB || codec == DH_ZSTD) {
		if ((sc = scratch_get(kd, k)) == NULL)
			return KD_IOERR;
	}
	if (src == NULL) {
		/* Unmapped file, or the data straddles flattened records. */
		if (sc->buf == NULL && (sc->buf = malloc(k->block_size)) == NULL) {
			scratch_put(k, sc);
			kvm_err(kd, ENOMEM, "%s: out of memory for decompression",
				kd->core.path);
			return KD_IOERR;
		}
		if (dump_copy(kd, k, d->off, sc->buf, d->size) != KVM_OK) {
			scratch_put(k, sc);
			kvm_err(kd, EIO, "%s: pfn 0x%llx: cannot read %u bytes at offset %llu",
				kd->core.path, ull(pfn), d->size, ull(d->off));
			return KD_IOERR;
		}
		src = sc->buf;
	}
	bad = decode(k, sc, codec, src, d->size, dst, why, sizeof(why));
	if (sc != NULL)
		scratch_put(k, sc);
	if (bad != NULL) {
		kvm_err(kd, EIO,
			"%s: pfn 0x%llx: %s page (%u bytes at offset %llu) does not decompress: %s",
			kd->core.path, ull(pfn), codec_name(codec), d->size,
			ull(d->off), bad);
		return KD_IOERR;
	}
	return KVM_OK;
}

/* ---- reads ---- */

/* The descriptor of pfn, which bitmap 2 has (word is its bitmap word). */
static enum kvm_status get_desc(kvm_t *kd, const struct kdump *k, uint64_t pfn,
				uint64_t word, struct pdesc *d)
{
	uint64_t w = pfn / 64, g, idx, pos;
	unsigned char tmp[DESC_SIZE];
	const unsigned char *p;
	unsigned codec;

	idx = k->rank[w / RANK_WORDS];
	for (g = w - w % RANK_WORDS; g < w; g++)
		idx += popcount64(bm_word(k->dumped, g));
	idx += popcount64(word & ((1ULL << (pfn % 64)) - 1));
	pos = k->desc_off + idx * DESC_SIZE;
	p = dump_ptr(kd, k, pos, DESC_SIZE);
	if (p == NULL) {
		if (dump_copy(kd, k, pos, tmp, DESC_SIZE) != KVM_OK) {
			if (k->status & DH_INCOMPLETE)
				return KVM_EXCLUDED; /* lost when the dump ran out of space */
			kvm_err(kd, EIO, "%s: pfn 0x%llx: cannot read its page descriptor at offset %llu",
				kd->core.path, ull(pfn), ull(pos));
			return KD_IOERR;
		}
		p = tmp;
	}
	d->off = ld64(k->big, p);
	d->size = ld32(k->big, p + 8);
	d->flags = ld32(k->big, p + 12);
	codec = d->flags & DH_CODECS;
	if (d->off == 0 && (k->status & DH_INCOMPLETE))
		return KVM_EXCLUDED; /* never written */
	if ((d->flags & ~DH_CODECS) || (codec & (codec - 1))) {
		kvm_err(kd, EIO, "%s: pfn 0x%llx: page descriptor has unknown flags 0x%x",
			kd->core.path, ull(pfn), d->flags);
		return KD_IOERR;
	}
	if (codec == 0 ? d->size != k->block_size
		       : d->size == 0 || d->size > k->block_size) {
		kvm_err(kd, EIO,
			"%s: pfn 0x%llx: page descriptor size %u is not valid for a %s page of %u bytes",
			kd->core.path, ull(pfn), d->size, codec ? "compressed" : "raw",
			k->block_size);
		return KD_IOERR;
	}
	if (d->off > k->size || d->size > k->size - d->off) {
		kvm_err(kd, EIO,
			"%s: pfn 0x%llx: page data (%u bytes at offset %llu) is past the end of the dump (%llu bytes): the file is truncated or corrupt",
			kd->core.path, ull(pfn), d->size, ull(d->off), ull(k->size));
		return KD_IOERR;
	}
	if (d->off < k->data_off && !(k->status & DH_INCOMPLETE)) {
		kvm_err(kd, EIO,
			"%s: pfn 0x%llx: corrupt page descriptor: its data offset %llu is before the data area (offset %llu)",
			kd->core.path, ull(pfn), ull(d->off), ull(k->data_off));
		return KD_IOERR;
	}
	return KVM_OK;
}

/* A compressed page through the cache; *raw when pfn turns out stored raw. */
static enum kvm_status read_cached(kvm_t *kd, struct kdump *k, uint64_t pfn,
				   uint64_t word, size_t off, unsigned char *out,
				   size_t n, struct pdesc *d, int *raw)
{
	uint64_t h = (pfn * 0x9E3779B97F4A7C15ULL) >> 17;
	struct stripe *s = &k->stripes[h % k->nstripes];
	size_t set_no = (size_t)((h / k->nstripes) % s->nsets);
	struct slot *set = s->slots + set_no * k->ways, *c;
	unsigned char *hand = &s->hands[set_no];
	enum kvm_status st;
	int looked = 0;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		c = cache_find(set, k->ways, pfn);
		if (c != NULL && c->state == SLOT_VALID) {
			memcpy(out, c->data + off, n);
			if (!c->ref)
				c->ref = 1;
			pthread_mutex_unlock(&s->mu);
			return KVM_OK;
		}
		if (c == NULL) {
			if (!looked) {
				/* A miss: find out what the page is, unlocked. */
				pthread_mutex_unlock(&s->mu);
				st = get_desc(kd, k, pfn, word, d);
				if (st != KVM_OK)
					return st;
				if ((d->flags & DH_CODECS) == 0) {
					SET_BITS(k->rawmap[pfn / 64], 1ULL << (pfn % 64));
					*raw = 1;
					return KVM_OK;
				}
				looked = 1;
				pthread_mutex_lock(&s->mu);
				continue; /* someone may have filled it meanwhile */
			}
			if ((c = cache_victim(set, k->ways, hand)) != NULL)
				break;
		}
		/* Being filled by another reader, or every slot is: wait. */
		s->waiters++;
		pthread_cond_wait(&s->cv, &s->mu);
		s->waiters--;
	}
	if (c->state == SLOT_VALID)
		s->used--;
	c->pfn = pfn;
	c->state = SLOT_FILLING;
	c->ref = 0;
	pthread_mutex_unlock(&s->mu);

	/* The slot is ours until published: fill it without the lock. */
	if (c->data == NULL && (c->data = malloc(k->block_size)) == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the page cache", kd->core.path);
		st = KD_IOERR;
	} else {
		st = decompress(kd, k, pfn, d, c->data);
	}

	pthread_mutex_lock(&s->mu);
	if (st == KVM_OK) {
		c->state = SLOT_VALID;
		c->ref = 1;
		s->used++;
		memcpy(out, c->data + off, n);
	} else {
		c->state = SLOT_EMPTY;
	}
	if (s->waiters)
		pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return st;
}

static enum kvm_status read_page(kvm_t *kd, struct kdump *k, uint64_t pfn,
				 size_t off, unsigned char *out, size_t n)
{
	uint64_t w = pfn / 64, bit = 1ULL << (pfn % 64), word;
	struct pdesc d;
	enum kvm_status st;

	if (pfn >= k->max_mapnr)
		return KVM_UNMAPPED;
	word = bm_word(k->dumped, w);
	if (!(word & bit))
		return bm_word(k->ram, w) & bit ? KVM_EXCLUDED : KVM_UNMAPPED;
	if (!(LOAD(k->rawmap[w]) & bit)) {
		int raw = 0;
		st = read_cached(kd, k, pfn, word, off, out, n, &d, &raw);
		if (!raw)
			return st;
	} else if ((st = get_desc(kd, k, pfn, word, &d)) != KVM_OK) {
		return st;
	}
	if (dump_copy(kd, k, d.off + off, out, n) != KVM_OK) {
		kvm_err(kd, EIO, "%s: pfn 0x%llx: cannot read page data at offset %llu",
			kd->core.path, ull(pfn), ull(d.off));
		return KD_IOERR;
	}
	return KVM_OK;
}

static enum kvm_status kdump_read(kvm_t *kd, uint64_t pa, void *buf, size_t len)
{
	struct kdump *k = kd->physdata;
	unsigned char *out = buf;

	/* One block at a time (callers already split at pages). */
	while (len > 0) {
		size_t off = (size_t)(pa & (k->block_size - 1));
		size_t n = k->block_size - off < len ? k->block_size - off : len;
		enum kvm_status st = read_page(kd, k, pa >> k->shift, off, out, n);
		if (st != KVM_OK)
			return st;
		pa += n;
		out += n;
		len -= n;
	}
	return KVM_OK;
}

static void kdump_free(struct kdump *k)
{
	if (k == NULL)
		return;
	cache_free(k);
	while (k->pool != NULL) {
		struct scratch *sc = k->pool;
		k->pool = sc->next;
		scratch_free(sc);
	}
	if (k->pool_ready)
		pthread_mutex_destroy(&k->pool_mu);
	free(k->recs);
	free(k->rec_loff);
	free(k->chunk_cnt);
	free(k->bitmap_copy);
	free(k->rank);
	free(k->rawmap);
	free(k);
}

static void kdump_close(kvm_t *kd)
{
	kdump_free(kd->physdata);
	kd->physdata = NULL;
}

/* physops->name says how pages are compressed (info's compression=). */
static const struct kvm_physops ops_by_codec[] = {
	{ "none", kdump_read, kdump_close },
	{ "zlib", kdump_read, kdump_close },
	{ "lzo", kdump_read, kdump_close },
	{ "snappy", kdump_read, kdump_close },
	{ "zstd", kdump_read, kdump_close },
};

static const struct kvm_physops *ops_for(unsigned codecs)
{
	if (codecs & DH_ZLIB)
		return &ops_by_codec[1];
	if (codecs & DH_LZO)
		return &ops_by_codec[2];
	if (codecs & DH_SNAPPY)
		return &ops_by_codec[3];
	if (codecs & DH_ZSTD)
		return &ops_by_codec[4];
	return &ops_by_codec[0];
}

/* The codec of the first few descriptors: for headers whose status does not say. */
static unsigned peek_codecs(kvm_t *kd, const struct kdump *k)
{
	unsigned char p[DESC_SIZE];
	uint64_t i;

	for (i = 0; i < k->ndesc && i < 64; i++) {
		unsigned c;
		if (dump_copy(kd, k, k->desc_off + i * DESC_SIZE, p, DESC_SIZE) != KVM_OK)
			break;
		c = kvm_ld32(k->big, p + 12) & DH_CODECS;
		if (c)
			return c;
	}
	return 0;
}

/* ---- open ---- */

int kvm_kdump_probe(const unsigned char *head, size_t n)
{
	return (n >= 8 && (memcmp(head, "KDUMP   ", 8) == 0 ||
			   memcmp(head, "DISKDUMP", 8) == 0)) ||
	       (n >= 12 && memcmp(head, "makedumpfile", 12) == 0);
}

static int open_dump(kvm_t *kd, struct kdump *k)
{
	unsigned char b[HDR_BYTES], sb[128];
	char machine[UTS_LEN + 1], release[UTS_LEN + 1];
	struct hdr h;
	struct sub s;
	int kdump_sig, word, em, have_sub;
	int64_t pb;
	size_t hn;

	memset(b, 0, sizeof(b));
	memset(&h, 0, sizeof(h));
	h.lay = &hdr_layouts[0];
	hn = k->size < sizeof(b) ? (size_t)k->size : sizeof(b);
	if (dump_read(kd, k, 0, b, hn, "the header") != 0)
		return -1;
	kdump_sig = memcmp(b, "KDUMP   ", 8) == 0;
	if (!kdump_sig && memcmp(b, "DISKDUMP", 8) != 0) {
		kvm_err(kd, EINVAL, "%s: flattened dump does not hold a kdump header",
			kd->core.path);
		return -1;
	}
	if (hn < hdr_layouts[1].status + 40) {
		kvm_err(kd, EINVAL, "%s: truncated: the kdump header needs %u bytes, the dump has %zu",
			kd->core.path, hdr_layouts[1].status + 40, hn);
		return -1;
	}
	memcpy(machine, b + UTS_MACHINE, UTS_LEN);
	machine[UTS_LEN] = '\0';
	memcpy(release, b + UTS_RELEASE, UTS_LEN);
	release[UTS_LEN] = '\0';
	em = machine_of(machine, &word);
	if (hdr_choose(kd, k, b, kdump_sig, word, &h) != 0)
		return -1;
	if (hn < h.lay->status + 40) {
		kvm_err(kd, EINVAL, "%s: truncated: the kdump header needs %u bytes, the dump has %zu",
			kd->core.path, h.lay->status + 40, hn);
		return -1;
	}
	k->big = h.big;
	k->block_size = (uint32_t)h.block_size;
	for (k->shift = 0; (1u << k->shift) < k->block_size; k->shift++)
		;
	k->status = h.status;
	k->max_mapnr = h.max_mapnr;
	/*
	 * The word size: utsname.machine's, else the header layout's.  But a
	 * 64-bit name on a 32-bit header is QEMU naming its own build while
	 * dumping a 32-bit guest: the guest is the 32-bit sibling.  (A 32-bit
	 * name on a 64-bit layout is a 32-bit makedumpfile with 64-bit time.)
	 */
	if (word == 64 && h.lay->word == 32)
		em = machine32(em);
	if (word == 0 || h.lay->word == 32)
		word = h.lay->word;

	/* The sub-header (makedumpfile's and QEMU's, not the old diskdump's). */
	have_sub = kdump_sig && h.version >= 1;
	memset(&s, 0, sizeof(s));
	if (have_sub) {
		const struct sub_layout *l = &sub_layouts[0];
		memset(sb, 0, sizeof(sb));
		if (dump_read(kd, k, k->block_size, sb, sizeof(sb), "the sub-header") != 0)
			return -1;
		if (word == 32)
			l = sub_choose(sb, &h, k->size, em);
		sub_load(&s, sb, h.big, l, h.version);
		if (h.version >= 6 && s.max64 != 0)
			k->max_mapnr = s.max64;
	}
	if (k->max_mapnr == 0) {
		kvm_err(kd, EINVAL, "%s: max_mapnr is 0: the dump holds no memory",
			kd->core.path);
		return -1;
	}
	if (setup_bitmaps(kd, k, &h, kdump_sig) != 0)
		return -1;

	/* VMCOREINFO, from its field or else from the notes. */
	if (s.size_vmci > 0) {
		char *text;
		if (s.size_vmci > MAX_VMCOREINFO || s.off_vmci > k->size ||
		    s.size_vmci > k->size - s.off_vmci) {
			kvm_err(kd, EINVAL,
				"%s: VMCOREINFO (%llu bytes at offset %llu) is past the end of the dump (%llu bytes) or too large",
				kd->core.path, ull(s.size_vmci), ull(s.off_vmci), ull(k->size));
			return -1;
		}
		if ((text = malloc((size_t)s.size_vmci)) == NULL) {
			kvm_err(kd, ENOMEM, "out of memory for VMCOREINFO");
			return -1;
		}
		if (dump_read(kd, k, s.off_vmci, text, (size_t)s.size_vmci,
			      "VMCOREINFO") != 0 ||
		    kvm_vmcoreinfo_set(kd, text, (size_t)s.size_vmci) != 0) {
			free(text);
			return -1;
		}
		free(text);
	}
	if (s.size_note > 0) {
		if (s.off_note > k->size || s.size_note > k->size - s.off_note) {
			kvm_err(kd, EINVAL,
				"%s: the ELF notes (%llu bytes at offset %llu) are past the end of the dump (%llu bytes)",
				kd->core.path, ull(s.size_note), ull(s.off_note), ull(k->size));
			return -1;
		}
		if (read_notes(kd, k, s.off_note, s.size_note) != 0)
			return -1;
	}

	if (cache_init(kd, k) != 0)
		return -1;

	kd->format = k->recs != NULL ? "kdump-flattened" : "kdump";
	kd->kernel = 1;
	kd->elfclass = word;
	kd->bigendian = h.big;
	kd->machine = em;
	kd->pagesize = k->block_size;
	if (release[0] != '\0' && (kd->osrelease_hdr = strdup(release)) == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	if (h.sec != 0) {
		kd->crashtime = h.lay->tsize == 4 ? (int64_t)(int32_t)h.sec : (int64_t)h.sec;
		kd->have_crashtime = 1;
	}
	/* VMCOREINFO's phys_base wins: QEMU's sub-header ignores KASLR. */
	if (have_sub && !kvm_vmcoreinfo_s64(kd, "NUMBER(phys_base)", &pb)) {
		/* An unsigned long of the dumped machine: 32-bit ones hold
		 * negative offsets (KASLR) as 2^32 - n. */
		kd->phys_base = s.phys_ulong == 4 ? (int64_t)(int32_t)s.phys_base
						  : (int64_t)s.phys_base;
		kd->have_phys_base = 1;
	}
	kd->physops = ops_for((h.status & DH_CODECS) ? h.status : peek_codecs(kd, k));
	kd->physdata = k;
	return 0;
}

int kvm_kdump_open(kvm_t *kd)
{
	struct kdump *k = calloc(1, sizeof(*k));
	unsigned char sig[12];

	if (k == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	k->size = kd->core.size;
	if (kvm_file_pread(kd, &kd->core, 0, sig, kd->core.size < 12 ? 8 : 12) != 0)
		goto fail;
	if (kd->core.size >= 12 && memcmp(sig, "makedumpfile", 12) == 0 &&
	    flat_index(kd, k) != 0)
		goto fail;
#ifdef HAVE_LZO
	if (lzo_init() != LZO_E_OK) {
		kvm_err(kd, EINVAL, "%s: the LZO library does not initialise", kd->core.path);
		goto fail;
	}
#endif
	if (open_dump(kd, k) != 0)
		goto fail;
	return 0;
fail:
	kdump_free(k);
	return -1;
}

/* Decompressed pages held in the cache now (for tests of its bound). */
size_t kvm_kdump_cache_used(kvm_t *kd)
{
	struct kdump *k;
	size_t i, n = 0;

	if (kd == NULL || kd->physops == NULL || kd->physops->read != kdump_read)
		return 0;
	k = kd->physdata;
	for (i = 0; i < k->nstripes; i++) {
		pthread_mutex_lock(&k->stripes[i].mu);
		n += k->stripes[i].used;
		pthread_mutex_unlock(&k->stripes[i].mu);
	}
	return n;
}
