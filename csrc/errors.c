/*
 * errors.c - the ground every other file stands on: setting and reporting
 * a handle's error, the public accessors for it, and freeing a handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

/* ---- errors ---- */

void kvm_err(kvm_t *kd, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(kd->errbuf, sizeof(kd->errbuf), fmt, ap);
	va_end(ap);
	kd->errnum = errnum;
	/* Callers that see only kvm.h (no kvm_errno) learn the cause too. */
	errno = errnum;
}

/*
 * A public call is failing with the message set: print it when kvm_open
 * was given an errstr, as the native libraries do.  Messages of inner
 * steps that were retried or replaced are never printed.
 */
int kvm_report(kvm_t *kd)
{
	if (kd->program != NULL)
		fprintf(stderr, "%s: %s\n", kd->program, kd->errbuf);
	errno = kd->errnum;
	return -1;
}

/* "<path>: <strerror>" (or "<path>: <what>: <strerror>") for a failed call. */
void kvm_syserr(kvm_t *kd, const char *path, const char *what)
{
	int e = errno;

	if (what != NULL)
		kvm_err(kd, e, "%s: %s: %s", path, what, strerror(e));
	else
		kvm_err(kd, e, "%s: %s", path, strerror(e));
}

int kvm_status_err(kvm_t *kd, enum kvm_status st, uint64_t addr,
		   const char *space)
{
	unsigned long long a = (unsigned long long)addr;

	kd->erraddr = addr;
	switch (st) {
	case KVM_UNMAPPED:
		kvm_err(kd, EFAULT, "%s address 0x%llx is not mapped in %s",
			space, a, kd->core.path);
		break;
	case KVM_EXCLUDED:
		kvm_err(kd, ENODATA,
			"%s address 0x%llx: page excluded from %s (filtered dump)",
			space, a, kd->core.path);
		break;
	case KVM_NOTRANS:
		kvm_err(kd, EFAULT, "%s address 0x%llx: cannot translate virtual addresses in %s: %s",
			space, a, kd->core.path,
			kd->notrans[0] ? kd->notrans : "no page tables for this architecture");
		break;
	case KVM_RDONLY:
		kvm_err(kd, EROFS, "%s address 0x%llx: cannot write %s there",
			space, a, kd->core.path);
		break;
	case KVM_IOERR_MSG: {
		/* The format reader said what is wrong: keep its words, and its
		 * errno where it is more precise than EIO (ENOTSUP: a codec
		 * this build lacks). */
		char why[KVM_ERRBUF_SIZE];
		int err = kd->errnum == ENOTSUP ? ENOTSUP : EIO;
		snprintf(why, sizeof(why), "%s", kd->errbuf);
		kvm_err(kd, err, "%s address 0x%llx: %s", space, a, why);
		break;
	}
	case KVM_FAULT_MSG: {
		/* Not in this file, for a reason the reader gave. */
		char why[KVM_ERRBUF_SIZE];
		snprintf(why, sizeof(why), "%s", kd->errbuf);
		kvm_err(kd, EFAULT, "%s address 0x%llx: %s", space, a, why);
		break;
	}
	default:
		kvm_err(kd, EIO, "%s address 0x%llx: I/O error or corrupt data in %s",
			space, a, kd->core.path);
		break;
	}
	return -1;
}

char *kvm_geterr(kvm_t *kd)
{
	static char empty[] = "";
	return kd == NULL ? empty : kd->errbuf;
}

int kvm_errno(kvm_t *kd)
{
	return kd == NULL ? EINVAL : kd->errnum;
}

uint64_t kvm_erraddr(kvm_t *kd)
{
	return kd == NULL ? 0 : kd->erraddr;
}

/* ---- the handle ---- */

/* Everything a handle owns; the format and architecture free their own. */
void kvm_handle_free(kvm_t *kd)
{
	if (kd->physops != NULL && kd->physops->close != NULL)
		kd->physops->close(kd);
	if (kd->arch != NULL && kd->arch->close != NULL)
		kd->arch->close(kd);
	kvm_file_close(&kd->core);
	kvm_caches_free(kd);
	kvm_symtab_free(&kd->syms);
	free(kd->btf_path);
	free(kd->vsegs.v);
	free(kd->psegs.v);
	free(kd->vmcoreinfo);
	free(kd->notes);
	free(kd->osrelease_hdr);
	free(kd->namelist);
	free(kd->program);
	free(kd->want_format);
	free(kd->extra_info);
	free(kd);
}

