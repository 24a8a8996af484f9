/*
 * core_raw.c - raw physical memory images: the byte at file offset N is
 * physical address N (`dd` of a memory device, LiME format=padded,
 * hypervisor snapshots of guest RAM).  Nothing marks such a file, so it
 * is only opened when asked for by name (format="raw").
 */
#include <errno.h>

#include "physimage.h"

int kvm_raw_open(kvm_t *kd, const unsigned char *head, size_t n)
{
	size_t cap = 0;

	(void)head;
	(void)n;
	if (kd->core.size < 4096) {
		kvm_err(kd, EINVAL,
			"%s: a raw memory image of %llu bytes is smaller than a page",
			kd->core.path, (unsigned long long)kd->core.size);
		return -1;
	}
	if (kvm_physimage_add(kd, &cap, 0, kd->core.size, 0) != 0)
		return -1;
	kd->format = "raw";
	return kvm_physimage_orient(kd);
}
