/* core_kdump.c - placeholder until the kdump reader lands (being written now). */
#include <errno.h>
#include <string.h>
#include "kvm_private.h"
int kvm_kdump_probe(const unsigned char *head, size_t n)
{
	return (n >= 8 && (memcmp(head, "KDUMP   ", 8) == 0 || memcmp(head, "DISKDUMP", 8) == 0)) ||
	       (n >= 12 && memcmp(head, "makedumpfile", 12) == 0);
}
int kvm_kdump_open(kvm_t *kd)
{
	kvm_err(kd, ENOTSUP, "%s: kdump-compressed dumps: not yet", kd->core.path);
	return -1;
}
