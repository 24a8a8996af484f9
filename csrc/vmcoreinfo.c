/*
 * vmcoreinfo.c - the kernel's VMCOREINFO text ("KEY=VALUE" lines) and the
 * kernel facts derived from it: page size, KASLR displacement, phys_base,
 * the architecture's translation, and whether a namelist fits the dump.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

#define MAX_VMCOREINFO (1u << 20)

int kvm_vmcoreinfo_set(kvm_t *kd, const char *text, size_t len)
{
	char *copy;

	if (len > MAX_VMCOREINFO) {
		kvm_err(kd, EINVAL, "%s: VMCOREINFO of %zu bytes is too large",
			kd->core.path, len);
		return -1;
	}
	if (kd->vmcoreinfo != NULL)
		return 0; /* the first one wins; later copies are the same */
	copy = malloc(len + 1);
	if (copy == NULL) {
		kvm_err(kd, ENOMEM, "out of memory for VMCOREINFO");
		return -1;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	/* The note's size may include trailing NULs. */
	kd->vmcoreinfo_len = strlen(copy);
	kd->vmcoreinfo = copy;
	return 0;
}

/* The value of key (e.g. "SYMBOL(_stext)"), not NUL-terminated: *len. */
const char *kvm_vmcoreinfo_get(const kvm_t *kd, const char *key, size_t *len)
{
	const char *p = kd->vmcoreinfo, *end;
	size_t klen = strlen(key);

	if (p == NULL)
		return NULL;
	end = p + kd->vmcoreinfo_len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if ((size_t)(le - p) > klen && memcmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			*len = (size_t)(le - p) - klen - 1;
			return p + klen + 1;
		}
		p = nl ? nl + 1 : end;
	}
	return NULL;
}

/* An unsigned value in base 16 or 10; 0 if absent or malformed. */
int kvm_vmcoreinfo_u64(const kvm_t *kd, const char *key, int base,
		       uint64_t *out)
{
	char buf[32], *end;
	size_t len;
	const char *v = kvm_vmcoreinfo_get(kd, key, &len);

	if (v == NULL || len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtoull(buf, &end, base);
	return *end == '\0' && errno == 0 && buf[0] != '-';
}

/* NUMBER(x) values are signed decimal (phys_base can be negative). */
int kvm_vmcoreinfo_s64(const kvm_t *kd, const char *key, int64_t *out)
{
	char buf[32], *end;
	size_t len;
	const char *v = kvm_vmcoreinfo_get(kd, key, &len);

	if (v == NULL || len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return *end == '\0' && errno == 0;
}

/* Facts every kernel core needs before reads: called once after the format opened. */
int kvm_kernel_setup(kvm_t *kd)
{
	uint64_t v;
	int64_t s;

	if (kvm_vmcoreinfo_u64(kd, "PAGESIZE", 10, &v)) {
		if (v < 512 || v > (1u << 20) || (v & (v - 1)) != 0) {
			kvm_err(kd, EINVAL, "%s: VMCOREINFO PAGESIZE=%llu is not a page size",
				kd->core.path, (unsigned long long)v);
			return -1;
		}
		kd->pagesize = v;
	}
	if (kvm_vmcoreinfo_u64(kd, "KERNELOFFSET", 16, &v)) {
		kd->kerndisp = (int64_t)v;
		kd->have_kerndisp = 1;
	}
	if (kvm_vmcoreinfo_s64(kd, "NUMBER(phys_base)", &s)) {
		kd->phys_base = s;
		kd->have_phys_base = 1;
	}
	kd->arch = kvm_arch_find(kd->machine);
	if (kd->arch != NULL && kd->arch->init(kd) != 0)
		return -1;
	return 0;
}

/* The namelist's linux_banner against the one found in memory (orient.c). */
static int match_banner(kvm_t *kd)
{
	const struct kvm_sym *s = kvm_symtab_lookup(&kd->syms, "linux_banner");
	int i;

	if (s == NULL) {
		kvm_err(kd, EINVAL,
			"%s has no linux_banner symbol: cannot tell whether it belongs to %s",
			kd->namelist, kd->core.path);
		return -1;
	}
	for (i = 0; i < kd->orient_nbanners; i++) {
		if (s->value == kd->orient_banners[i]) {
			kd->symdisp = 0;
			return 0;
		}
		if (kd->have_kerndisp &&
		    s->value + (uint64_t)kd->kerndisp == kd->orient_banners[i]) {
			kd->symdisp = kd->kerndisp;
			return 0;
		}
	}
	kvm_err(kd, EINVAL,
		"namelist %s does not match %s: linux_banner is 0x%llx in the namelist, but no banner in memory is there (the first at 0x%llx; KERNELOFFSET 0x%llx)",
		kd->namelist, kd->core.path, (unsigned long long)s->value,
		(unsigned long long)kd->orient_banners[0], (unsigned long long)kd->kerndisp);
	return -1;
}

/*
 * Does the namelist belong to this kernel?  A vmlinux's build-id must be
 * the dump's BUILD-ID.  Then _stext tells: equal to the
 * dump's means runtime addresses (kallsyms of the same boot); differing by
 * KERNELOFFSET means link-time addresses (System.map, vmlinux), shifted on
 * lookup; anything else is another kernel's namelist.
 */
int kvm_kernel_match(kvm_t *kd)
{
	const struct kvm_sym *ns = kvm_symtab_lookup(&kd->syms, "_stext");
	uint64_t dump;
	size_t len;
	const char *id = kvm_vmcoreinfo_get(kd, "BUILD-ID", &len);

	/* A vmlinux carries the build-id the dump records: compare first. */
	if (id != NULL && kd->nl_build_id[0] != '\0' &&
	    (strlen(kd->nl_build_id) != len ||
	     strncmp(kd->nl_build_id, id, len) != 0)) {
		kvm_err(kd, EINVAL,
			"namelist %s does not match %s: BUILD-ID is %s in the namelist but %.*s in the dump",
			kd->namelist, kd->core.path, kd->nl_build_id, (int)len, id);
		return -1;
	}
	if (!kvm_vmcoreinfo_u64(kd, "SYMBOL(_stext)", 16, &dump)) {
		/* An image oriented by its page tables: linux_banner was found. */
		if (kd->orient_nbanners > 0)
			return match_banner(kd);
		return 0; /* nothing to check against: trust the caller */
	}
	if (ns == NULL) {
		kvm_err(kd, EINVAL,
			"%s has no _stext symbol: cannot tell whether it belongs to %s",
			kd->namelist, kd->core.path);
		return -1;
	}
	if (ns->value == dump) {
		kd->symdisp = 0;
		return 0;
	}
	if (kd->have_kerndisp && ns->value + (uint64_t)kd->kerndisp == dump) {
		kd->symdisp = kd->kerndisp;
		return 0;
	}
	kvm_err(kd, EINVAL,
		"namelist %s does not match %s: _stext is 0x%llx in the namelist but 0x%llx in the dump (KERNELOFFSET 0x%llx)",
		kd->namelist, kd->core.path, (unsigned long long)ns->value,
		(unsigned long long)dump, (unsigned long long)kd->kerndisp);
	return -1;
}
