/*
 * kdump.h - what the kdump-compressed ("diskdump") reader's files share:
 * the header layouts, the dump-as-bytes view (plain or flattened), the
 * page descriptors and the reader's state.
 *
 *   kdump_flat.c    the dump's bytes: a plain file, or a flattened file's index
 *   kdump_header.c  the header and sub-header layouts and which one a file uses
 *   kdump_codec.c   page decompression through zlib, LZO, snappy and zstd
 *   core_kdump.c    bitmaps, notes, page reads and open
 *   kdump_split.c   the parts of a makedumpfile --split dump as one dump
 */
#ifndef PYKVM_KDUMP_H
#define PYKVM_KDUMP_H

#include <pthread.h>
#include <string.h>

#include "kvm_private.h"

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
 * A read error the kdump files have described with kvm_err.  kvm_status_err
 * replaces the message for KVM_IOERR with a generic one; a status that
 * keeps it would go here.
 */
#define KD_IOERR KVM_IOERR_MSG

#define RANK_WORDS 8 /* bitmap words per prefix count */

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

extern const struct hdr_layout kdump_hdr_layouts[3];

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

extern const struct sub_layout kdump_sub_layouts[3];

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

/* The sub-header's fields, whatever its layout. */
struct sub {
	uint64_t phys_base, off_vmci, size_vmci, off_note, size_note, max64;
	uint32_t dump_level;
	int have_phys_base;
	unsigned phys_ulong; /* bytes of the phys_base field */
	int32_t split;        /* v2+: one part of a makedumpfile --split set */
	uint64_t start_pfn, end_pfn; /* v2+ (v6+: the 64-bit fields): the part's pfns */
};

struct kdump_scratch;
struct kvm_pagecache;

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

	struct kvm_pagecache *cache; /* decompressed pages */

	/* One part of a split dump (makedumpfile --split): the pfns
	 * [start_pfn, end_pfn) are in this file; its descriptor table starts
	 * at the first dumped pfn of the range (desc_base bits of bitmap 2
	 * lie below it).  Bitmaps and headers are the whole dump's. */
	int split;
	uint64_t start_pfn, end_pfn, desc_base;

	/* A dump cut short (disk full): pages past the end fault, saying so. */
	int truncated, flat_cut; /* flat_cut: a flattened file without its end */
	uint64_t lost_pages;
	const struct sub_layout *sublay; /* the sub-header's layout */
	uint32_t sub_blocks;             /* sub_hdr_size */
	/* For kvm_info: the header version, the sub-header's dump level. */
	int32_t version;
	uint32_t dump_level;
	int have_dump_level;

	/* Decompression state, one per concurrent reader (kdump_codec.c). */
	pthread_mutex_t pool_mu;
	int pool_ready;
	struct kdump_scratch *pool;
};

static inline unsigned popcount64(uint64_t x)
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
static inline uint64_t bm_word(const unsigned char *bm, uint64_t w)
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
static inline uint32_t ld32(int big, const unsigned char *p)
{
	return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			     (uint32_t)p[2] << 8 | p[3]
		   : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
			     (uint32_t)p[1] << 8 | p[0];
}

static inline uint64_t ld64(int big, const unsigned char *p)
{
	return big ? (uint64_t)ld32(1, p) << 32 | ld32(1, p + 4)
		   : (uint64_t)ld32(0, p + 4) << 32 | ld32(0, p);
}

static inline uint64_t ld(int big, const unsigned char *p, unsigned size)
{
	return size == 8 ? ld64(big, p) : ld32(big, p);
}

static inline unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* kdump_flat.c: the dump's bytes at logical offsets. */
const unsigned char *kdump_ptr(const kvm_t *kd, const struct kdump *k,
			       uint64_t loff, size_t len);
enum kvm_status kdump_copy(kvm_t *kd, const struct kdump *k, uint64_t loff,
			   void *buf, size_t len);
int kdump_read_at(kvm_t *kd, const struct kdump *k, uint64_t loff, void *buf,
		  size_t len, const char *what);
int kdump_flat_index(kvm_t *kd, struct kdump *k);
int kdump_covered(const struct kdump *k, uint64_t loff, uint64_t len);
void kdump_flat_free(struct kdump *k);

/* kdump_header.c */
void kdump_hdr_load(struct hdr *h, const unsigned char *b, int big,
		    const struct hdr_layout *lay);
int kdump_machine_of(const char *m, int *word);
int kdump_machine32(int em);
int kdump_hdr_choose(kvm_t *kd, struct kdump *k, const unsigned char *b,
		     int kdump_sig, int word, struct hdr *out);
void kdump_sub_load(struct sub *s, const unsigned char *b, int big,
		    const struct sub_layout *l, int version);
const struct sub_layout *kdump_sub_choose(const unsigned char *b,
					  const struct hdr *h, uint64_t size,
					  int machine);

/* core_kdump.c: a part's pfn range (for kdump_split.c). */
uint64_t kdump_rank(const struct kdump *k, uint64_t pfn);

/* kdump_codec.c */
int kdump_codec_init(kvm_t *kd, struct kdump *k);
void kdump_codec_free(struct kdump *k);
const char *kdump_codec_name(unsigned codec);
enum kvm_status kdump_decompress(kvm_t *kd, struct kdump *k, uint64_t pfn,
				 const struct pdesc *d, unsigned char *dst);

#endif /* PYKVM_KDUMP_H */
