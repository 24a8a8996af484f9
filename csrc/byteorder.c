/* byteorder.c - loads in the core's byte order (cores may be foreign). */
#include <string.h>

#include "kvm_private.h"

uint16_t kvm_ld16(int big, const void *p)
{
	const unsigned char *b = p;
	return big ? (uint16_t)(b[0] << 8 | b[1]) : (uint16_t)(b[1] << 8 | b[0]);
}

uint32_t kvm_ld32(int big, const void *p)
{
	const unsigned char *b = p;
	if (big)
		return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		       (uint32_t)b[2] << 8 | b[3];
	return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[1] << 8 | b[0];
}

uint64_t kvm_ld64(int big, const void *p)
{
	const unsigned char *b = p;
	uint64_t hi = kvm_ld32(big, big ? b : b + 4);
	uint64_t lo = kvm_ld32(big, big ? b + 4 : b);
	return hi << 32 | lo;
}

uint16_t kvm_get16(const kvm_t *kd, const void *p)
{
	return kvm_ld16(kd->bigendian, p);
}

uint32_t kvm_get32(const kvm_t *kd, const void *p)
{
	return kvm_ld32(kd->bigendian, p);
}

uint64_t kvm_get64(const kvm_t *kd, const void *p)
{
	return kvm_ld64(kd->bigendian, p);
}
