/*
 * kvm.h - the libkvm interface, as implemented by the pykvm shim.
 *
 * Source compatible with programs written for illumos or FreeBSD libkvm:
 * kvm_open, kvm_openfiles, kvm_nlist (struct nlist with n_name / n_value /
 * n_type), kvm_read, kvm_write, kvm_close, kvm_geterr, and the FreeBSD
 * 64-bit forms kvm_nlist2 / kvm_read2.  The handle is opaque.
 */
#ifndef PYKVM_KVM_H
#define PYKVM_KVM_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct __kvm kvm_t;
typedef uint64_t kvaddr_t; /* kernel virtual address (FreeBSD) */
typedef uint64_t kpaddr_t; /* physical address (FreeBSD) */
typedef int64_t kssize_t;

/* Default version symbol and key (FreeBSD's kvm.h defines them). */
#define VRS_SYM "_version"
#define VRS_KEY "VERSION"

/* Size of the errbuf that kvm_openfiles fills (FreeBSD's _POSIX2_LINE_MAX). */
#define KVM_ERRBUF_SIZE 2048

/*
 * struct nlist (FreeBSD a.out layout) and the N_* types: in nlist.h, as on
 * both systems, where <kvm.h> includes <nlist.h>.
 */
#include "nlist.h"

struct kvm_nlist {
	const char *n_name;
	unsigned char n_type;
	kvaddr_t n_value;
};

struct as; /* illumos address-space handle; only NULL (the kernel) is accepted */

kvm_t *kvm_open(const char *namelist, const char *corefile,
		const char *swapfile, int flag, const char *errstr);
kvm_t *kvm_openfiles(const char *namelist, const char *corefile,
		     const char *swapfile, int flag, char *errbuf);
int kvm_close(kvm_t *kd);
char *kvm_geterr(kvm_t *kd);
const char *kvm_namelist(kvm_t *kd);

int kvm_nlist(kvm_t *kd, struct nlist *nl);
int kvm_nlist2(kvm_t *kd, struct kvm_nlist *nl);

ssize_t kvm_read(kvm_t *kd, unsigned long addr, void *buf, size_t len);
ssize_t kvm_read2(kvm_t *kd, kvaddr_t addr, void *buf, size_t len);
ssize_t kvm_kread(kvm_t *kd, uintptr_t addr, void *buf, size_t len);
ssize_t kvm_write(kvm_t *kd, unsigned long addr, const void *buf, size_t len);
ssize_t kvm_kwrite(kvm_t *kd, uintptr_t addr, const void *buf, size_t len);

/* Physical memory (illumos names). */
ssize_t kvm_pread(kvm_t *kd, uint64_t paddr, void *buf, size_t len);
ssize_t kvm_pwrite(kvm_t *kd, uint64_t paddr, const void *buf, size_t len);
/* Physical address of a kernel virtual address; as must be NULL. -1 on failure. */
uint64_t kvm_physaddr(kvm_t *kd, struct as *as, uintptr_t addr);

/* Kernel displacement: runtime address minus link-time address (KASLR). */
kssize_t kvm_kerndisp(kvm_t *kd);
/* 1 when the core's machine, class and byte order are the process's own. */
int kvm_native(kvm_t *kd);

#ifdef __cplusplus
}
#endif

#endif /* PYKVM_KVM_H */
