/*
 * physimage.h - memory images that carry no metadata: LiME, AVML and raw
 * (padded) physical images.  Each format is its own file (core_lime.c,
 * core_avml.c, core_raw.c) and fills kd->psegs (or physops); then
 * kvm_physimage_orient (orient.c) finds out which kernel the memory holds,
 * by scanning it for the kernel's VMCOREINFO text, else for its page
 * tables and linux_banner.
 */
#ifndef PYKVM_PHYSIMAGE_H
#define PYKVM_PHYSIMAGE_H

#include "kvm_private.h"

/* LiME and AVML range headers: 32 bytes, little-endian. */
#define LIME_MAGIC 0x4C694D45u /* "EMiL" */
#define AVML_MAGIC 0x4C4D5641u /* "AVML" */
#define PHYSIMG_HEADER 32
#define PHYSIMG_MAX_RANGES (1u << 20) /* more ranges than this: not an image */

int kvm_lime_probe(const unsigned char *head, size_t n);
int kvm_lime_open(kvm_t *kd, const unsigned char *head, size_t n);
int kvm_avml_probe(const unsigned char *head, size_t n);
int kvm_avml_open(kvm_t *kd, const unsigned char *head, size_t n);
int kvm_raw_open(kvm_t *kd, const unsigned char *head, size_t n);

/* Add a physical range to kd->psegs (grown as needed); 0 or -1 with the error set. */
int kvm_physimage_add(kvm_t *kd, size_t *cap, uint64_t start, uint64_t len,
		      uint64_t off);

/* The kernel facts of an image with no metadata; the caller sets format,
 * psegs/physops first.  0 (found or not: kd->orient says), -1 on error. */
int kvm_physimage_orient(kvm_t *kd);

#endif /* PYKVM_PHYSIMAGE_H */
