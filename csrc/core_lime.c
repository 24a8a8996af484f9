/*
 * core_lime.c - LiME memory images (format=lime of the LiME module).
 *
 * The file is a sequence of ranges, each a 32-byte header followed by the
 * range's bytes:
 *
 *   u32 magic 0x4C694D45, u32 version 1, u64 start, u64 end (inclusive),
 *   8 reserved bytes
 *
 * all little-endian.  Physical addresses outside every range are not in
 * the image (reads fail).  The ranges are the file's segments, read
 * through the mapping like an ELF dump's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "physimage.h"

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int kvm_lime_probe(const unsigned char *head, size_t n)
{
	return n >= PHYSIMG_HEADER && le32(head) == LIME_MAGIC && le32(head + 4) == 1;
}

int kvm_physimage_add(kvm_t *kd, size_t *cap, uint64_t start, uint64_t len,
		      uint64_t off)
{
	struct kvm_segs *s = &kd->psegs;

	if (s->n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct kvm_seg *v = realloc(s->v, c * sizeof(*v));
		if (v == NULL) {
			kvm_err(kd, ENOMEM, "out of memory for the ranges of %s",
				kd->core.path);
			return -1;
		}
		s->v = v;
		*cap = c;
	}
	s->v[s->n].start = start;
	s->v[s->n].memsz = len;
	s->v[s->n].filesz = len;
	s->v[s->n].off = off;
	s->n++;
	return 0;
}

int kvm_lime_open(kvm_t *kd, const unsigned char *head, size_t n)
{
	uint64_t off = 0, size = kd->core.size;
	size_t cap = 0, i;
	unsigned char h[PHYSIMG_HEADER];

	(void)head;
	(void)n;
	while (off < size) {
		uint64_t start, end, len;
		size_t r = kd->psegs.n;

		if (size - off < PHYSIMG_HEADER) {
			kvm_err(kd, EINVAL,
				"%s: %llu bytes at offset %llu after range %zu are too few for a LiME range header",
				kd->core.path, (unsigned long long)(size - off),
				(unsigned long long)off, r);
			return -1;
		}
		if (kvm_file_pread(kd, &kd->core, off, h, sizeof(h)) != 0)
			return -1;
		if (le32(h) != LIME_MAGIC || le32(h + 4) != 1) {
			kvm_err(kd, EINVAL,
				"%s: range %zu at offset %llu has no LiME header (magic 0x%08x version %u)",
				kd->core.path, r, (unsigned long long)off, le32(h),
				le32(h + 4));
			return -1;
		}
		start = le64(h + 8);
		end = le64(h + 16);
		if (end < start || end == UINT64_MAX) {
			kvm_err(kd, EINVAL,
				"%s: range %zu at offset %llu ends (0x%llx) before it starts (0x%llx)",
				kd->core.path, r, (unsigned long long)off,
				(unsigned long long)end, (unsigned long long)start);
			return -1;
		}
		len = end - start + 1;
		off += PHYSIMG_HEADER;
		if (len > size - off) {
			kvm_err(kd, EINVAL,
				"%s: range %zu (0x%llx-0x%llx, %llu bytes at offset %llu) runs past the end of the file (%llu bytes)",
				kd->core.path, r, (unsigned long long)start,
				(unsigned long long)end, (unsigned long long)len,
				(unsigned long long)off, (unsigned long long)size);
			return -1;
		}
		if (r >= PHYSIMG_MAX_RANGES) {
			kvm_err(kd, EINVAL, "%s: more than %u ranges", kd->core.path,
				PHYSIMG_MAX_RANGES);
			return -1;
		}
		if (kvm_physimage_add(kd, &cap, start, len, off) != 0)
			return -1;
		off += len;
	}
	if (kd->psegs.n == 0) {
		kvm_err(kd, EINVAL, "%s: LiME image with no ranges", kd->core.path);
		return -1;
	}
	/* LiME writes ranges in address order; any overlap is a broken image. */
	for (i = 1; i < kd->psegs.n; i++) {
		const struct kvm_seg *a = &kd->psegs.v[i - 1], *b = &kd->psegs.v[i];
		if (b->start < a->start + a->memsz && a->start < b->start + b->memsz) {
			kvm_err(kd, EINVAL,
				"%s: range %zu (0x%llx-0x%llx) overlaps range %zu (0x%llx-0x%llx)",
				kd->core.path, i, (unsigned long long)b->start,
				(unsigned long long)(b->start + b->memsz - 1), i - 1,
				(unsigned long long)a->start,
				(unsigned long long)(a->start + a->memsz - 1));
			return -1;
		}
	}
	if (kvm_segs_finish(kd, &kd->psegs, "physical", 0) != 0)
		return -1;
	kd->format = "lime";
	return kvm_physimage_orient(kd);
}
