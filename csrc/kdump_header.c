/*
 * kdump_header.c - the disk_dump_header and kdump_sub_header: their
 * layouts on each kind of machine, and choosing the byte order and
 * layout a file was written with.
 */
#include <errno.h>
#include <string.h>

#include "kdump.h"

/* Header layouts (see struct hdr_layout in kdump.h). */
const struct hdr_layout kdump_hdr_layouts[3] = {
	{ "64-bit", 64, 408, 416, 8, 424 },
	{ "32-bit", 32, 404, 408, 4, 412 },
	{ "32-bit with 64-bit time", 32, 404, 412, 8, 420 },
};

/* Sub-header layouts (see struct sub_layout in kdump.h). */
const struct sub_layout kdump_sub_layouts[3] = {
	{ "64-bit", 8, 0, 8, 12, 16, 24, 32, 40, 48, 56, 80, 88, 96, 104 },
	{ "32-bit packed", 4, 0, 4, 8, 12, 16, 20, 28, 32, 40, 56, 64, 72, 80 },
	{ "32-bit padded", 4, 0, 4, 8, 12, 16, 24, 32, 40, 48, 72, 80, 88, 96 },
};

void kdump_hdr_load(struct hdr *h, const unsigned char *b, int big,
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
int kdump_machine_of(const char *m, int *word)
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
int kdump_machine32(int em)
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
int kdump_hdr_choose(kvm_t *kd, struct kdump *k, const unsigned char *b,
		     int kdump_sig, int word, struct hdr *out)
{
	char why[256], first[256] = "";
	int best = -1, big;
	size_t i;

	for (big = 0; big <= 1; big++) {
		for (i = 0; i < sizeof(kdump_hdr_layouts) / sizeof(kdump_hdr_layouts[0]); i++) {
			struct hdr h;
			int score = 0;
			kdump_hdr_load(&h, b, big, &kdump_hdr_layouts[i]);
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
		kdump_hdr_load(&h, b, 0, &kdump_hdr_layouts[word == 32 ? 1 : 0]);
		hdr_problem(&h, kdump_sig, k->size, first, sizeof(first));
	}
	kvm_err(kd, EINVAL, "%s: not a valid kdump header: %s", kd->core.path, first);
	return -1;
}

void kdump_sub_load(struct sub *s, const unsigned char *b, int big,
		    const struct sub_layout *l, int version)
{
	memset(s, 0, sizeof(*s));
	s->phys_base = ld(big, b + l->phys_base, l->ulong);
	s->phys_ulong = l->ulong;
	s->have_phys_base = 1;
	if (version >= 2) {
		s->split = (int32_t)kvm_ld32(big, b + l->split);
		s->start_pfn = ld(big, b + l->start_pfn, l->ulong);
		s->end_pfn = ld(big, b + l->end_pfn, l->ulong);
	}
	s->dump_level = kvm_ld32(big, b + l->dump_level);
	if (version >= 3) {
		s->off_vmci = kvm_ld64(big, b + l->off_vmci);
		s->size_vmci = ld(big, b + l->size_vmci, l->ulong);
	}
	if (version >= 4) {
		s->off_note = kvm_ld64(big, b + l->off_note);
		s->size_note = ld(big, b + l->size_note, l->ulong);
	}
	if (version >= 6) {
		uint64_t start = kvm_ld64(big, b + l->start64);
		uint64_t end = kvm_ld64(big, b + l->end64);
		s->max64 = kvm_ld64(big, b + l->max64);
		if (start != 0 || end != 0) { /* the unsigned longs may be cut to 32 bits */
			s->start_pfn = start;
			s->end_pfn = end;
		}
	}
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
const struct sub_layout *kdump_sub_choose(const unsigned char *b,
					  const struct hdr *h, uint64_t size,
					  int machine)
{
	uint64_t bs = (uint32_t)h->block_size;
	uint64_t sub_end = (1 + (uint64_t)h->sub_hdr_size) * bs;
	int score[2];
	size_t i;

	for (i = 0; i < 2; i++) {
		struct sub s;
		kdump_sub_load(&s, b, h->big, &kdump_sub_layouts[1 + i], h->version);
		score[i] = range_score(s.off_vmci, s.size_vmci, sub_end, bs, size) +
			   range_score(s.off_note, s.size_note, sub_end, bs, size);
		if (h->version >= 6 && s.max64 == h->max_mapnr)
			score[i]++;
	}
	if (score[0] != score[1])
		return &kdump_sub_layouts[score[0] > score[1] ? 1 : 2];
	/* QEMU always packs; of the others only i386 aligns 8-byte fields to 4. */
	return &kdump_sub_layouts[machine == 3 ? 1 : 2];
}

