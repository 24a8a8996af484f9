/*
 * arch.c - the table of architectures the shim can translate for.
 * Adding one is a new arch_<name>.c and one line here.
 */
#include <stddef.h>

#include "kvm_private.h"

extern const struct kvm_arch kvm_arch_x86_64;

static const struct kvm_arch *const kvm_arches[] = {
	&kvm_arch_x86_64,
};

const struct kvm_arch *kvm_arch_find(int machine)
{
	size_t i;

	for (i = 0; i < sizeof(kvm_arches) / sizeof(kvm_arches[0]); i++)
		if (kvm_arches[i]->machine == machine)
			return kvm_arches[i];
	return NULL;
}
