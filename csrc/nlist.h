/*
 * nlist.h - struct nlist as the pykvm shim's kvm_nlist fills it.
 *
 * The FreeBSD (a.out) layout: n_name, n_type, n_other, n_desc, n_value.
 * Programs written for illumos use only n_name and n_value (and test n_type
 * against 0 for a missing name), which exist here with the same meaning; on
 * illumos n_type holds an ELF STT_* type, here an a.out N_* type.
 *
 * kvm.h includes this file, so `#include <kvm.h>` alone is enough; tools
 * that also `#include <nlist.h>` (common on both systems) get this same
 * definition when they build with `pkg-config --cflags libkvm`, which puts
 * these headers first.  This header does not declare nlist(3): the shim has
 * no stand-alone nlist().
 */
#ifndef PYKVM_NLIST_H
#define PYKVM_NLIST_H

/* A system <nlist.h> included later is then a no-op, not a second layout. */
#ifndef _NLIST_H
#define _NLIST_H
#endif
#ifndef _NLIST_H_
#define _NLIST_H_
#endif

#ifndef PYKVM_NO_STRUCT_NLIST
struct nlist {
	const char *n_name;
	unsigned char n_type; /* N_TEXT, N_DATA, ... or'd with N_EXT; 0 = not found */
	char n_other;
	short n_desc;
	unsigned long n_value;
};
#endif

#ifndef N_UNDF
#define N_UNDF 0x00 /* undefined (or not found) */
#define N_ABS 0x02  /* absolute */
#define N_TEXT 0x04 /* code */
#define N_DATA 0x06 /* initialized data */
#define N_BSS 0x08  /* uninitialized data */
#define N_EXT 0x01  /* external (global) bit */
#define N_TYPE 0x1e /* mask for the type bits */
#endif

#endif /* PYKVM_NLIST_H */
