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
 * A flattened file holds the same bytes scattered (kdump_flat.c).  The
 * header layouts are in kdump_header.c, the codecs in kdump_codec.c, the
 * page cache in pagecache.c; this file has the bitmaps, notes, reads and
 * open.
 *
 * Reads: a pfn's descriptor is found by counting the bits of bitmap 2
 * below it (prefix counts kept per RANK_WORDS words).  Raw pages are copied
 * straight from the file; compressed pages go through the bounded cache of
 * decompressed pages (pagecache.h), decompressed outside its locks.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kdump.h"
#include "pagecache.h"

/* ---- notes ---- */

/* The sub-header's ELF notes: VMCOREINFO (when the field is absent) and QEMU's CPU state. */
static int read_notes(kvm_t *kd, struct kdump *k, uint64_t off, uint64_t size)
{
	unsigned char *buf;
	size_t len;
	int qemu = 0;

	/* Sized by the file, not the flattened records' logical offsets. */
	if (size > MAX_NOTES || size > kd->core.size) {
		kvm_err(kd, EINVAL, "%s: note area of %llu bytes is too large for the file (%llu bytes)",
			kd->core.path, ull(size), ull(kd->core.size));
		return -1;
	}
	len = (size_t)size;
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		kvm_err(kd, ENOMEM, "out of memory for notes");
		return -1;
	}
	if (kdump_read_at(kd, k, off, buf, len, "the ELF notes") != 0) {
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
	uint64_t need, blocks, nwords, ngroups, w, total = 0;
	uint64_t off2;
	size_t bytes;

	/*
	 * The bitmaps' blocks are inside the dump (hdr_problem), so they hold
	 * at most len * 8 pfns: a larger max_mapnr (a 64-bit field may be near
	 * 2^64) is refused before any size is computed from it, and nothing
	 * below can wrap.
	 */
	if (k->max_mapnr > len * 8) {
		kvm_err(kd, EINVAL,
			"%s: max_mapnr %llu is more pages than the bitmaps (%u blocks of %llu bytes) can describe",
			kd->core.path, ull(k->max_mapnr), h->bitmap_blocks, ull(bs));
		return -1;
	}
	need = (k->max_mapnr + 7) / 8;
	blocks = (need + bs - 1) / bs;
	nwords = (k->max_mapnr + 63) / 64;
	/*
	 * What is allocated below (a copy of the bitmaps when they are not
	 * contiguous in the mapping, the rank and raw-page indexes: 8 bytes a
	 * word each) is sized by the bitmaps, which must be bytes the file
	 * holds: a flattened file's logical size is only its records' word.
	 */
	if (2 * nwords * 8 > kd->core.size) {
		kvm_err(kd, EINVAL,
			"%s: truncated or corrupt: max_mapnr %llu needs two bitmaps of %llu bytes, more than the file's %llu bytes",
			kd->core.path, ull(k->max_mapnr), ull(nwords * 8), ull(kd->core.size));
		return -1;
	}

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
	k->ram = kdump_ptr(kd, k, off, bytes);
	k->dumped = kdump_ptr(kd, k, off2, bytes);
	if (k->ram == NULL || k->dumped == NULL) {
		k->bitmap_copy = malloc(2 * bytes + 1);
		if (k->bitmap_copy == NULL) {
			kvm_err(kd, ENOMEM, "%s: out of memory for %zu bytes of bitmaps",
				kd->core.path, 2 * bytes);
			return -1;
		}
		if (kdump_read_at(kd, k, off, k->bitmap_copy, bytes, "bitmap 1") != 0 ||
		    kdump_read_at(kd, k, off2, k->bitmap_copy + bytes, bytes,
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
	/* A descriptor table past the end: truncated (see find_truncation). */
	return 0;
}

/* ---- reads ---- */

/* A page the truncated dump lost: a fault that says so. */
static enum kvm_status truncated_page(kvm_t *kd, const struct kdump *k, uint64_t pfn,
				      const char *what, uint64_t off)
{
	kvm_err(kd, EFAULT,
		"the dump is truncated: pfn 0x%llx is lost with it (%s, at dump offset %llu, is not in %s, which ends early; %llu pages missing)",
		ull(pfn), what, ull(off), kd->core.path, ull(k->lost_pages));
	return KVM_FAULT_MSG;
}

/*
 * Is the dump cut short?  Its descriptor table, or the page data of its last
 * descriptors, past the end (a plain file), or a flattened file without its
 * end record.  Count the pages lost: from the last descriptor back to the
 * first whose page is there.  Pages are written in pfn order, so only the
 * shared zero page (stored before the others) is present among lost ones.
 */
static int find_truncation(kvm_t *kd, struct kdump *k)
{
	uint64_t i, have, lost = 0;
	unsigned char p[DESC_SIZE];

	if (k->status & DH_INCOMPLETE)
		return 0; /* makedumpfile said so itself: such pages read as excluded */
	/* A split part's table holds its own pfns' descriptors only. */
	uint64_t used = k->split ? kdump_rank(k, k->end_pfn) - k->desc_base : k->ndesc;

	have = k->desc_off > k->size ? 0 : (k->size - k->desc_off) / DESC_SIZE;
	if (have > used)
		have = used;
	lost = used - have;
	for (i = have; i > 0; i--) {
		uint64_t pos = k->desc_off + (i - 1) * DESC_SIZE, off;
		uint32_t size;
		if (!kdump_covered(k, pos, DESC_SIZE) ||
		    kdump_copy(kd, k, pos, p, DESC_SIZE) != KVM_OK) {
			lost++;
			continue;
		}
		off = ld64(k->big, p);
		size = ld32(k->big, p + 8);
		if (off > k->size || size > k->size - off || !kdump_covered(k, off, size)) {
			lost++;
			continue;
		}
		if (off > k->data_off)
			break; /* a page of its own, there: everything before it is too */
	}
	if (lost == 0 && !k->flat_cut)
		return 0;
	k->truncated = 1;
	k->lost_pages = lost;
	kd->truncated = lost;
	kd->truncated_pages = 1;
	return 0;
}

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
	idx -= k->desc_base; /* a split part's table starts at its first pfn */
	pos = k->desc_off + idx * DESC_SIZE;
	if (k->truncated && !kdump_covered(k, pos, DESC_SIZE))
		return truncated_page(kd, k, pfn, "its page descriptor", pos);
	p = kdump_ptr(kd, k, pos, DESC_SIZE);
	if (p == NULL) {
		if (kdump_copy(kd, k, pos, tmp, DESC_SIZE) != KVM_OK) {
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
	if (k->truncated && (d->off > k->size || d->size > k->size - d->off ||
			     !kdump_covered(k, d->off, d->size)))
		return truncated_page(kd, k, pfn, "its page data", d->off);
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

/* Bits of bitmap 2 below pfn (pfn <= max_mapnr). */
uint64_t kdump_rank(const struct kdump *k, uint64_t pfn)
{
	uint64_t w = pfn / 64, g, n;

	if (pfn >= k->max_mapnr)
		return k->ndesc;
	n = k->rank[w / RANK_WORDS];
	for (g = w - w % RANK_WORDS; g < w; g++)
		n += popcount64(bm_word(k->dumped, g));
	return n + popcount64(bm_word(k->dumped, w) & ((1ULL << (pfn % 64)) - 1));
}

/* Fill a cache slot: decompress the page whose descriptor is arg. */
static enum kvm_status fill_page(kvm_t *kd, void *arg, uint64_t pfn,
				 unsigned char *dst)
{
	return kdump_decompress(kd, kd->physdata, pfn, arg, dst);
}

/* A compressed page through the cache; *raw when pfn turns out stored raw. */
static enum kvm_status read_cached(kvm_t *kd, struct kdump *k, uint64_t pfn,
				   uint64_t word, size_t off, unsigned char *out,
				   size_t n, struct pdesc *d, int *raw,
				   struct kvm_pageref *ref)
{
	enum kvm_status st;

	if (kvm_pagecache_lookup(k->cache, pfn, off, out, n, ref))
		return KVM_OK;
	/* A miss: find out what the page is, without a lock. */
	st = get_desc(kd, k, pfn, word, d);
	if (st != KVM_OK)
		return st;
	if ((d->flags & DH_CODECS) == 0) {
		SET_BITS(k->rawmap[pfn / 64], 1ULL << (pfn % 64));
		*raw = 1;
		return KVM_OK;
	}
	return kvm_pagecache_read(kd, k->cache, pfn, off, out, n, fill_page, d, ref);
}

static enum kvm_status read_page(kvm_t *kd, struct kdump *k, uint64_t pfn,
				 size_t off, unsigned char *out, size_t n,
				 struct kvm_pageref *ref)
{
	uint64_t w = pfn / 64, bit = 1ULL << (pfn % 64), word;
	struct pdesc d;
	enum kvm_status st;

	if (pfn >= k->max_mapnr)
		return KVM_UNMAPPED;
	word = bm_word(k->dumped, w);
	if (!(word & bit))
		return bm_word(k->ram, w) & bit ? KVM_EXCLUDED : KVM_UNMAPPED;
	if (k->split && (pfn < k->start_pfn || pfn >= k->end_pfn)) {
		/* The bitmaps are the whole dump's: the page is dumped, elsewhere. */
		kvm_err(kd, EFAULT,
			"pfn 0x%llx is in another part of a split dump: %s holds pfns 0x%llx-0x%llx only (open all the parts together)",
			ull(pfn), kd->core.path, ull(k->start_pfn), ull(k->end_pfn));
		return KVM_FAULT_MSG;
	}
	if (!(LOAD(k->rawmap[w]) & bit)) {
		int raw = 0;
		st = read_cached(kd, k, pfn, word, off, out, n, &d, &raw, ref);
		if (!raw)
			return st;
		if (ref != NULL)
			ref->slot = NULL; /* stored raw: copied from the file below */
	} else if ((st = get_desc(kd, k, pfn, word, &d)) != KVM_OK) {
		return st;
	}
	if (kdump_copy(kd, k, d.off + off, out, n) != KVM_OK) {
		kvm_err(kd, EIO, "%s: pfn 0x%llx: cannot read page data at offset %llu",
			kd->core.path, ull(pfn), ull(d.off));
		return KD_IOERR;
	}
	return KVM_OK;
}

static enum kvm_status kdump_read(kvm_t *kd, uint64_t pa, void *buf, size_t len,
				  struct kvm_pageref *ref)
{
	struct kdump *k = kd->physdata;
	unsigned char *out = buf;

	if (ref != NULL) {
		/* Blocks are pages of 4 KiB or more: the 4 KiB page of pa is in one. */
		ref->slot = NULL;
		ref->base = (size_t)(pa & (k->block_size - 1) & ~(uint64_t)4095);
		if (k->block_size < 4096 || (pa & (k->block_size - 1)) + len > k->block_size)
			ref = NULL;
	}
	/* One block at a time (callers already split at pages). */
	while (len > 0) {
		size_t off = (size_t)(pa & (k->block_size - 1));
		size_t n = k->block_size - off < len ? k->block_size - off : len;
		enum kvm_status st = read_page(kd, k, pa >> k->shift, off, out, n, ref);
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
	kvm_pagecache_free(k->cache);
	kdump_codec_free(k);
	kdump_flat_free(k);
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
		if (kdump_copy(kd, k, k->desc_off + i * DESC_SIZE, p, DESC_SIZE) != KVM_OK)
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
	h.lay = &kdump_hdr_layouts[0];
	hn = k->size < sizeof(b) ? (size_t)k->size : sizeof(b);
	if (kdump_read_at(kd, k, 0, b, hn, "the header") != 0)
		return -1;
	kdump_sig = memcmp(b, "KDUMP   ", 8) == 0;
	if (!kdump_sig && memcmp(b, "DISKDUMP", 8) != 0) {
		kvm_err(kd, EINVAL, "%s: flattened dump does not hold a kdump header",
			kd->core.path);
		return -1;
	}
	if (hn < kdump_hdr_layouts[1].status + 40) {
		kvm_err(kd, EINVAL, "%s: truncated: the kdump header needs %u bytes, the dump has %zu",
			kd->core.path, kdump_hdr_layouts[1].status + 40, hn);
		return -1;
	}
	memcpy(machine, b + UTS_MACHINE, UTS_LEN);
	machine[UTS_LEN] = '\0';
	memcpy(release, b + UTS_RELEASE, UTS_LEN);
	release[UTS_LEN] = '\0';
	em = kdump_machine_of(machine, &word);
	if (kdump_hdr_choose(kd, k, b, kdump_sig, word, &h) != 0)
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
		em = kdump_machine32(em);
	if (word == 0 || h.lay->word == 32)
		word = h.lay->word;

	/* The sub-header (makedumpfile's and QEMU's, not the old diskdump's). */
	have_sub = kdump_sig && h.version >= 1;
	memset(&s, 0, sizeof(s));
	if (have_sub) {
		const struct sub_layout *l = &kdump_sub_layouts[0];
		memset(sb, 0, sizeof(sb));
		if (kdump_read_at(kd, k, k->block_size, sb, sizeof(sb), "the sub-header") != 0)
			return -1;
		if (word == 32)
			l = kdump_sub_choose(sb, &h, k->size, em);
		kdump_sub_load(&s, sb, h.big, l, h.version);
		k->sublay = l;
		if (h.version >= 6 && s.max64 != 0)
			k->max_mapnr = s.max64;
		k->dump_level = s.dump_level;
		k->have_dump_level = 1;
	}
	k->version = h.version;
	if (k->max_mapnr == 0) {
		kvm_err(kd, EINVAL, "%s: max_mapnr is 0: the dump holds no memory",
			kd->core.path);
		return -1;
	}
	if (setup_bitmaps(kd, k, &h, kdump_sig) != 0)
		return -1;
	if (have_sub && s.split != 0) {
		/* One part of makedumpfile --split: its own pfns only. */
		if (s.start_pfn >= s.end_pfn || s.end_pfn > k->max_mapnr) {
			kvm_err(kd, EINVAL,
				"%s: part of a split dump with an invalid pfn range 0x%llx-0x%llx (max_mapnr 0x%llx)",
				kd->core.path, ull(s.start_pfn), ull(s.end_pfn), ull(k->max_mapnr));
			return -1;
		}
		k->split = 1;
		k->start_pfn = s.start_pfn;
		k->end_pfn = s.end_pfn;
		k->desc_base = kdump_rank(k, s.start_pfn);
	}
	if (find_truncation(kd, k) != 0)
		return -1;
	k->sub_blocks = (uint32_t)h.sub_hdr_size;

	/* VMCOREINFO, from its field or else from the notes. */
	if (s.size_vmci > 0) {
		char *text;
		if (s.size_vmci > MAX_VMCOREINFO || s.size_vmci > kd->core.size ||
		    s.off_vmci > k->size ||
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
		if (kdump_read_at(kd, k, s.off_vmci, text, (size_t)s.size_vmci,
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

	/* At most cache_pages decompressed pages, and never more than the dump has. */
	k->cache = kvm_pagecache_new(kd, kd->cache_pages < k->ndesc ? kd->cache_pages
				     : k->ndesc ? (size_t)k->ndesc : 1, k->block_size);
	if (k->cache == NULL || kdump_codec_init(kd, k) != 0)
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
	    kdump_flat_index(kd, k) != 0)
		goto fail;
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
	if (kd == NULL || kd->physops == NULL)
		return 0;
	if (kd->physops->read != kdump_read)
		return kvm_kdump_split_cache_used(kd);
	return kvm_pagecache_used(((struct kdump *)kd->physdata)->cache);
}

/* What kvm_info tells of a kdump file; 0 if kd is not one. */
int kvm_kdump_facts(kvm_t *kd, struct kvm_kdump_facts *f)
{
	struct kdump *k;

	if (kd == NULL || kd->physops == NULL || kd->physops->read != kdump_read)
		return 0;
	k = kd->physdata;
	f->version = k->version;
	f->pages_total = k->max_mapnr;
	f->pages_dumped = k->ndesc;
	f->dump_level = k->dump_level;
	f->have_dump_level = k->have_dump_level;
	return 1;
}
