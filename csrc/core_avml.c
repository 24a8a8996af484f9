/*
 * core_avml.c - AVML memory images, version 2 (Microsoft's AVML with
 * compression; its version 1 is LiME's layout, read by core_lime.c).
 *
 * The file is a sequence of blocks of at most 16 MiB of physical memory,
 * each:
 *
 *   32-byte header: u32 magic 0x4C4D5641, u32 version 2, u64 start,
 *                   u64 end (inclusive), u64 padding (0)
 *   a Snappy framed stream of the block's bytes
 *   u64 the stream's length in bytes
 *
 * all little-endian.  AVML leaves out blocks that are all zeros; those
 * addresses are not in the image.  A framed stream is a stream identifier
 * chunk, then chunks of a 1-byte type and a 3-byte length: compressed data
 * (0x00) or uncompressed data (0x01), each a masked CRC-32C of the data and
 * at most 64 KiB of it, or padding/skippable chunks.
 *
 * Open indexes every data chunk (file offset, length, where its bytes go);
 * reads decompress whole chunks with the snappy library into the bounded
 * page cache (pagecache.h), one cache slot per chunk, checking each
 * chunk's CRC as it is decompressed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_SNAPPY
#include <snappy-c.h>
#endif

#include "pagecache.h"
#include "physimage.h"

#define CHUNK_MAX 65536u /* data bytes in one chunk, by the framing format */
#define MAX_CHUNKS (64u << 20)

enum {
	CH_COMPRESSED = 0x00,
	CH_UNCOMPRESSED = 0x01,
	CH_PADDING = 0xfe,
	CH_STREAM_ID = 0xff,
};

struct avml_chunk {
	uint64_t off;  /* file offset of the chunk's body (its CRC) */
	uint64_t pa;   /* physical address of its first byte */
	uint32_t clen; /* body length, CRC included */
	uint32_t ulen; /* data bytes it holds */
	uint32_t block;
	unsigned char type;
};

struct avml {
	struct avml_chunk *chunks; /* in address order */
	size_t nchunks, cap;
	struct kvm_pagecache *cache;
};

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int kvm_avml_probe(const unsigned char *head, size_t n)
{
	return n >= PHYSIMG_HEADER && le32(head) == AVML_MAGIC && le32(head + 4) == 2;
}

/* ---- CRC-32C (Castagnoli), as the framing format checks data ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	uint32_t i, k, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^
					  crc_table[0][crc_table[k - 1][i] & 0xff];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
__attribute__((target("sse4.2"))) static uint32_t crc_hw(const unsigned char *p, size_t n)
{
	uint64_t c = 0xffffffffu;
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
	}
	for (; n > 0; p++, n--)
		c = _mm_crc32_u8((uint32_t)c, *p);
	return (uint32_t)c ^ 0xffffffffu;
}
#endif

static uint32_t crc32c(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc_hw(p, n);
#endif
	pthread_once(&crc_once, crc_init);
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t lo = c ^ le32(p), hi = le32(p + 4);
		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
	}
	for (; n > 0; p++, n--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p) & 0xff];
	return c ^ 0xffffffffu;
}

static uint32_t crc_masked(const unsigned char *p, size_t n)
{
	uint32_t c = crc32c(p, n);
	return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---- reads ---- */

static void block_range(kvm_t *kd, uint32_t block, unsigned long long *a,
			unsigned long long *b)
{
	const struct kvm_seg *g = &kd->psegs.v[block];
	*a = g->start;
	*b = g->start + g->memsz - 1;
}

/* Decode chunk key into dst (CHUNK_MAX bytes). */
static enum kvm_status fill_chunk(kvm_t *kd, void *arg, uint64_t key,
				  unsigned char *dst)
{
	struct avml *a = arg;
	const struct avml_chunk *c = &a->chunks[key];
	unsigned char *body = NULL;
	const unsigned char *data;
	unsigned long long s, e;
	size_t dlen = c->clen - 4;

	if (kd->core.map != NULL) {
		body = NULL;
		data = kd->core.map + c->off;
	} else {
		if ((body = malloc(c->clen)) == NULL) {
			kvm_err(kd, ENOMEM, "%s: out of memory", kd->core.path);
			return KVM_IOERR_MSG;
		}
		if (kvm_file_copy(&kd->core, c->off, body, c->clen, 0) != KVM_OK) {
			free(body);
			return KVM_IOERR;
		}
		data = body;
	}
	block_range(kd, c->block, &s, &e);
	if (c->type == CH_UNCOMPRESSED) {
		memcpy(dst, data + 4, c->ulen);
	} else {
#ifdef HAVE_SNAPPY
		size_t out = CHUNK_MAX;
		if (snappy_uncompress((const char *)data + 4, dlen, (char *)dst, &out) !=
			    SNAPPY_OK || out != c->ulen) {
			kvm_err(kd, EIO,
				"%s: block %u (0x%llx-0x%llx): the snappy chunk at offset %llu does not decompress to %u bytes",
				kd->core.path, c->block, s, e,
				(unsigned long long)c->off - 4, c->ulen);
			free(body);
			return KVM_IOERR_MSG;
		}
#else
		(void)dlen;
		free(body);
		kvm_err(kd, ENOTSUP, "%s: this build has no snappy (install libsnappy-dev and rebuild)",
			kd->core.path);
		return KVM_IOERR_MSG;
#endif
	}
	if (crc_masked(dst, c->ulen) != le32(data)) {
		kvm_err(kd, EIO,
			"%s: block %u (0x%llx-0x%llx): the chunk at offset %llu fails its CRC-32C",
			kd->core.path, c->block, s, e, (unsigned long long)c->off - 4);
		free(body);
		return KVM_IOERR_MSG;
	}
	free(body);
	return KVM_OK;
}

/* The chunk holding pa, or NULL. */
static const struct avml_chunk *find_chunk(const struct avml *a, uint64_t pa)
{
	size_t lo = 0, hi = a->nchunks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct avml_chunk *c = &a->chunks[mid];
		if (pa < c->pa)
			hi = mid;
		else if (pa - c->pa >= c->ulen)
			lo = mid + 1;
		else
			return c;
	}
	return NULL;
}

static enum kvm_status avml_read(kvm_t *kd, uint64_t pa, void *buf, size_t len,
				 struct kvm_pageref *ref)
{
	struct avml *a = kd->physdata;
	unsigned char *out = buf;
	const struct avml_chunk *first = ref != NULL ? find_chunk(a, pa) : NULL;
	uint64_t page = pa & ~(uint64_t)4095;

	/* A page ref only when the 4 KiB page of pa and the read lie in one chunk. */
	if (ref != NULL) {
		ref->slot = NULL;
		if (first == NULL || page < first->pa || page + 4096 > first->pa + first->ulen ||
		    pa + len > first->pa + first->ulen)
			ref = NULL;
		else
			ref->base = (size_t)(page - first->pa);
	}
	while (len > 0) {
		const struct avml_chunk *c = find_chunk(a, pa);
		size_t off, n;
		enum kvm_status st;

		if (c == NULL)
			return KVM_UNMAPPED;
		off = (size_t)(pa - c->pa);
		n = c->ulen - off < len ? c->ulen - off : len;
		if (!kvm_pagecache_lookup(a->cache, (uint64_t)(c - a->chunks), off, out, n, ref)) {
			st = kvm_pagecache_read(kd, a->cache, (uint64_t)(c - a->chunks), off,
						out, n, fill_chunk, a, ref);
			if (st != KVM_OK)
				return st;
		}
		out += n;
		pa += n;
		len -= n;
	}
	return KVM_OK;
}

static void avml_close(kvm_t *kd)
{
	struct avml *a = kd->physdata;

	if (a == NULL)
		return;
	kvm_pagecache_free(a->cache);
	free(a->chunks);
	free(a);
	kd->physdata = NULL;
}

static const struct kvm_physops avml_ops = { "snappy", avml_read, avml_close };

/* ---- open ---- */

static int add_chunk(kvm_t *kd, struct avml *a, const struct avml_chunk *c)
{
	if (a->nchunks == a->cap) {
		size_t n = a->cap ? a->cap * 2 : 256;
		struct avml_chunk *v;
		if (a->nchunks >= MAX_CHUNKS) {
			kvm_err(kd, EINVAL, "%s: more than %u snappy chunks", kd->core.path,
				MAX_CHUNKS);
			return -1;
		}
		if ((v = realloc(a->chunks, n * sizeof(*v))) == NULL) {
			kvm_err(kd, ENOMEM, "%s: out of memory for the chunk index", kd->core.path);
			return -1;
		}
		a->chunks = v;
		a->cap = n;
	}
	a->chunks[a->nchunks++] = *c;
	return 0;
}

#define BLOCK_ERR(fmt, ...)                                                      \
	kvm_err(kd, EINVAL, "%s: block %zu (0x%llx-0x%llx) at offset %llu: " fmt, \
		kd->core.path, b, (unsigned long long)start, (unsigned long long)end, \
		(unsigned long long)hoff, __VA_ARGS__)

/* The framed stream of block b; returns the offset after it, or 0 on error. */
static uint64_t index_block(kvm_t *kd, struct avml *a, size_t b, uint64_t hoff,
			    uint64_t start, uint64_t end)
{
	uint64_t size = kd->core.size, off = hoff + PHYSIMG_HEADER, len = end - start + 1;
	uint64_t have = 0, slen;
	unsigned char h[8], body[16];
	int first = 1;

	while (have < len) {
		struct avml_chunk c;
		uint32_t clen;
		unsigned type;

		if (size - off < 4) {
			BLOCK_ERR("the snappy stream is cut short at offset %llu (%llu of %llu bytes decoded)",
				  (unsigned long long)off, (unsigned long long)have,
				  (unsigned long long)len);
			return 0;
		}
		if (kvm_file_pread(kd, &kd->core, off, h, 4) != 0)
			return 0;
		type = h[0];
		clen = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16;
		if (clen > size - off - 4) {
			BLOCK_ERR("the snappy chunk at offset %llu (%u bytes) runs past the end of the file",
				  (unsigned long long)off, clen);
			return 0;
		}
		if (first && type != CH_STREAM_ID) {
			BLOCK_ERR("no snappy stream identifier (chunk type 0x%02x)", type);
			return 0;
		}
		first = 0;
		if (type == CH_STREAM_ID) {
			if (clen != 6 || kvm_file_pread(kd, &kd->core, off + 4, body, 6) != 0 ||
			    memcmp(body, "sNaPpY", 6) != 0) {
				BLOCK_ERR("bad snappy stream identifier at offset %llu",
					  (unsigned long long)off);
				return 0;
			}
		} else if (type == CH_COMPRESSED || type == CH_UNCOMPRESSED) {
			size_t ulen;
			if (clen < 4 + (type == CH_COMPRESSED)) {
				BLOCK_ERR("snappy chunk at offset %llu is too short (%u bytes)",
					  (unsigned long long)off, clen);
				return 0;
			}
			if (type == CH_UNCOMPRESSED) {
				ulen = clen - 4;
			} else {
#ifdef HAVE_SNAPPY
				/* The length is a varint of at most 5 bytes after the CRC. */
				size_t peek = clen - 4 < 5 ? clen - 4 : 5;
				if (kvm_file_pread(kd, &kd->core, off + 8, body, peek) != 0)
					return 0;
				if (snappy_uncompressed_length((const char *)body, peek, &ulen) !=
				    SNAPPY_OK) {
					BLOCK_ERR("snappy chunk at offset %llu has no valid length",
						  (unsigned long long)off);
					return 0;
				}
#else
				kvm_err(kd, ENOTSUP,
					"%s: this build has no snappy (install libsnappy-dev and rebuild)",
					kd->core.path);
				return 0;
#endif
			}
			if (ulen == 0 || ulen > CHUNK_MAX || ulen > len - have) {
				BLOCK_ERR("snappy chunk at offset %llu holds %zu bytes (%llu of the block's %llu left)",
					  (unsigned long long)off, ulen,
					  (unsigned long long)(len - have), (unsigned long long)len);
				return 0;
			}
			c.off = off + 4;
			c.pa = start + have;
			c.clen = clen;
			c.ulen = (uint32_t)ulen;
			c.block = (uint32_t)b;
			c.type = (unsigned char)type;
			if (add_chunk(kd, a, &c) != 0)
				return 0;
			have += ulen;
		} else if (type < 0x80) {
			BLOCK_ERR("reserved snappy chunk type 0x%02x at offset %llu",
				  type, (unsigned long long)off);
			return 0;
		} /* else padding or a skippable chunk */
		off += 4 + (uint64_t)clen;
	}
	if (size - off < 8) {
		BLOCK_ERR("no compressed length after the snappy stream (offset %llu)",
			  (unsigned long long)off);
		return 0;
	}
	if (kvm_file_pread(kd, &kd->core, off, h, 8) != 0)
		return 0;
	slen = le64(h);
	if (slen != off - hoff - PHYSIMG_HEADER) {
		BLOCK_ERR("its compressed length says %llu bytes but its snappy stream takes %llu",
			  (unsigned long long)slen,
			  (unsigned long long)(off - hoff - PHYSIMG_HEADER));
		return 0;
	}
	return off + 8;
}

int kvm_avml_open(kvm_t *kd, const unsigned char *head, size_t n)
{
	struct avml *a = calloc(1, sizeof(*a));
	uint64_t off = 0, size = kd->core.size, last_end = 0;
	size_t cap = 0, b, per_chunk;
	unsigned char h[PHYSIMG_HEADER];

	(void)head;
	(void)n;
	if (a == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	kd->physdata = a;
	kd->physops = &avml_ops; /* from here on, close frees a */
	for (b = 0; off < size; b++) {
		uint64_t start, end, hoff = off;
		if (size - off < PHYSIMG_HEADER) {
			kvm_err(kd, EINVAL,
				"%s: %llu bytes at offset %llu after block %zu are too few for an AVML header",
				kd->core.path, (unsigned long long)(size - off),
				(unsigned long long)off, b);
			return -1;
		}
		if (kvm_file_pread(kd, &kd->core, off, h, sizeof(h)) != 0)
			return -1;
		start = le64(h + 8);
		end = le64(h + 16);
		if (le32(h) != AVML_MAGIC || le32(h + 4) != 2) {
			kvm_err(kd, EINVAL,
				"%s: block %zu at offset %llu has no AVML header (magic 0x%08x version %u)",
				kd->core.path, b, (unsigned long long)off, le32(h), le32(h + 4));
			return -1;
		}
		if (end < start || end == UINT64_MAX) {
			BLOCK_ERR("%s", "it ends before it starts");
			return -1;
		}
		if (le64(h + 24) != 0) {
			BLOCK_ERR("%s", "its header's padding is not zero");
			return -1;
		}
		if (b > 0 && start < last_end) {
			BLOCK_ERR("it overlaps or precedes the block before it (which ends at 0x%llx)",
				  (unsigned long long)(last_end - 1));
			return -1;
		}
		if (b >= PHYSIMG_MAX_RANGES) {
			kvm_err(kd, EINVAL, "%s: more than %u blocks", kd->core.path,
				PHYSIMG_MAX_RANGES);
			return -1;
		}
		if (kvm_physimage_add(kd, &cap, start, end - start + 1, hoff) != 0)
			return -1;
		if ((off = index_block(kd, a, b, hoff, start, end)) == 0)
			return -1;
		last_end = end + 1;
	}
	if (b == 0) {
		kvm_err(kd, EINVAL, "%s: AVML image with no blocks", kd->core.path);
		return -1;
	}
	/* The cache holds chunks; its bound stays cache_pages pages of memory. */
	per_chunk = CHUNK_MAX / 4096;
	a->cache = kvm_pagecache_new(kd, kd->cache_pages / per_chunk ? kd->cache_pages / per_chunk : 1,
				     CHUNK_MAX);
	if (a->cache == NULL)
		return -1;
	kd->format = "avml";
	return kvm_physimage_orient(kd);
}
