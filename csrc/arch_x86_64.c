/*
 * arch_x86_64.c - x86-64 virtual to physical translation for kernel dumps.
 *
 * The root of the kernel's page tables is init_top_pgt, a kernel-image
 * symbol, so its physical address is va - __START_KERNEL_map + phys_base.
 * Everything else goes through a walk of the 4- or 5-level tables; the
 * translation cache in access.c makes repeated walks rare.  We do not
 * assume the direct map or text are linear: with CONFIG_RANDOMIZE_MEMORY
 * the bases move, and freed parts of the image are unmapped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

#define START_KERNEL_MAP 0xffffffff80000000ULL
#define PTE_PRESENT 0x1ULL
#define PTE_PS 0x80ULL
#define ADDR_MASK 0x000ffffffffff000ULL
#define CR4_LA57 (1ULL << 12)
#define CR3_ADDR_MASK 0x000ffffffffff000ULL

struct x86_64 {
	uint64_t root;     /* physical address of the top-level table */
	int levels;        /* 4 or 5 */
	uint64_t sme_mask; /* memory-encryption bit(s) to clear from entries */
};

static void set_levels(kvm_t *kd, struct x86_64 *a)
{
	uint64_t l5 = 0;
	int64_t sme = 0;

	if (kvm_vmcoreinfo_u64(kd, "NUMBER(pgtable_l5_enabled)", 10, &l5))
		a->levels = l5 ? 5 : 4;
	else if (kd->have_cpu_cr)
		a->levels = (kd->cpu_cr4 & CR4_LA57) ? 5 : 4;
	else
		a->levels = 4;
	if (kvm_vmcoreinfo_s64(kd, "NUMBER(sme_mask)", &sme))
		a->sme_mask = (uint64_t)sme;
}

static enum kvm_status x86_64_translate(kvm_t *kd, uint64_t va, uint64_t *pa,
					uint64_t *pagesize);

/*
 * The page-table root's names: init_top_pgt since Linux 4.13, before it
 * init_level4_pgt (4-level only); swapper_pg_dir is the generic alias some
 * VMCOREINFO writers use.
 */
static const char *const root_names[] = {
	"init_top_pgt", "init_level4_pgt", "swapper_pg_dir",
};

/*
 * A root taken from the namelist must map init_top_pgt itself to the root:
 * a link-time namelist on a KASLR dump with nothing to shift it by would
 * otherwise walk garbage.
 */
static int root_maps_itself(kvm_t *kd, uint64_t va, uint64_t root)
{
	uint64_t pa = 0, size;

	return x86_64_translate(kd, va, &pa, &size) == KVM_OK && pa == root;
}

/*
 * Find the page-table root: VMCOREINFO's init_top_pgt (or an older name), else the first
 * CPU's CR3 (QEMU notes), else -- called again once the namelist is loaded
 * -- the namelist's init_top_pgt with the dump's phys_base (old kdump
 * headers).  Without one, translation stays off and kd->notrans says why.
 */
static int x86_64_init(kvm_t *kd)
{
	struct x86_64 *a;
	uint64_t va;
	int from_namelist = 0;

	size_t i;

	va = 0;
	for (i = 0; i < sizeof(root_names) / sizeof(root_names[0]) && va == 0; i++) {
		char key[40];
		snprintf(key, sizeof(key), "SYMBOL(%s)", root_names[i]);
		if (!kvm_vmcoreinfo_u64(kd, key, 16, &va))
			va = 0;
	}
	if (va == 0 && !kd->have_cpu_cr && kd->have_syms) {
		const struct kvm_sym *s = NULL;
		for (i = 0; i < sizeof(root_names) / sizeof(root_names[0]) && s == NULL; i++)
			s = kvm_symtab_lookup(&kd->syms, root_names[i]);
		if (s != NULL && kd->have_phys_base) {
			va = s->value + (uint64_t)kd->symdisp;
			from_namelist = 1;
		}
	}
	if (va == 0 && !kd->have_cpu_cr) {
		/* Say what is missing: VMCOREINFO itself, or only the root's key. */
		snprintf(kd->notrans, sizeof(kd->notrans), "%s%s",
			 kd->vmcoreinfo != NULL
				 ? "the dump's VMCOREINFO has no SYMBOL(init_top_pgt), SYMBOL(init_level4_pgt) or SYMBOL(swapper_pg_dir), and the dump has no CPU registers, to find the page tables with"
				 : "the dump has no VMCOREINFO or CPU registers to find the page tables with",
			 kd->have_syms ? (kd->have_phys_base
						  ? ", and the namelist has no init_top_pgt or init_level4_pgt"
						  : ", and no phys_base to place the namelist's init_top_pgt with")
				       : "; give a namelist that has init_top_pgt (init_level4_pgt before Linux 4.13)");
		return 0;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	if (va != 0) {
		if (va < START_KERNEL_MAP) {
			kvm_err(kd, EINVAL, "%s: init_top_pgt 0x%llx is not a kernel-image address",
				kd->core.path, (unsigned long long)va);
			free(a);
			return -1;
		}
		a->root = va - START_KERNEL_MAP + (uint64_t)kd->phys_base;
	} else {
		/* No VMCOREINFO: the CPU's CR3 maps the kernel half too. */
		a->root = kd->cpu_cr3 & CR3_ADDR_MASK;
	}
	set_levels(kd, a);
	kd->archdata = a;
	if (from_namelist && !root_maps_itself(kd, va, a->root)) {
		kd->archdata = NULL;
		free(a);
		snprintf(kd->notrans, sizeof(kd->notrans),
			 "init_top_pgt 0x%llx from the namelist does not map itself (a link-time namelist on a KASLR dump that has no KERNELOFFSET?)",
			 (unsigned long long)va);
	}
	return 0;
}

static enum kvm_status read_entry(kvm_t *kd, uint64_t pa, uint64_t *e)
{
	unsigned char b[8];
	size_t done;
	enum kvm_status st = kvm_phys_access(kd, pa, b, 8, 0, &done);

	if (st == KVM_EXCLUDED)
		return KVM_UNMAPPED; /* a filtered page table maps nothing we have */
	if (st != KVM_OK)
		return st;
	*e = kvm_get64(kd, b);
	return KVM_OK;
}

static enum kvm_status x86_64_translate(kvm_t *kd, uint64_t va, uint64_t *pa,
					uint64_t *pagesize)
{
	const struct x86_64 *a = kd->archdata;
	uint64_t table, e = 0;
	int level, shift;

	if (a == NULL)
		return KVM_UNMAPPED;
	/* Canonical: bits above the top index are copies of the top bit. */
	shift = a->levels == 5 ? 56 : 47;
	if (((int64_t)va >> shift) != 0 && ((int64_t)va >> shift) != -1)
		return KVM_UNMAPPED;
	table = a->root;
	for (level = a->levels; level >= 1; level--) {
		int bits = 12 + 9 * (level - 1);
		uint64_t idx = (va >> bits) & 0x1ff;
		enum kvm_status st = read_entry(kd, table + idx * 8, &e);
		if (st != KVM_OK)
			return st;
		e &= ~a->sme_mask;
		if (!(e & PTE_PRESENT))
			return KVM_UNMAPPED;
		/* PS in a PDPT (level 3) or PD (level 2) entry: a huge page. */
		if ((level == 3 || level == 2) && (e & PTE_PS)) {
			uint64_t size = 1ULL << bits;
			*pa = (e & ADDR_MASK & ~(size - 1)) | (va & (size - 1));
			*pagesize = size;
			return KVM_OK;
		}
		table = e & ADDR_MASK;
	}
	*pa = table | (va & 0xfff);
	*pagesize = 4096;
	return KVM_OK;
}

/* Per-CPU symbols are offsets, not addresses: only image symbols move. */
static int x86_64_shift_symbol(kvm_t *kd, uint64_t value, char letter)
{
	(void)kd;
	return value >= START_KERNEL_MAP && letter != 'A' && letter != 'a';
}

static void x86_64_close(kvm_t *kd)
{
	free(kd->archdata);
	kd->archdata = NULL;
}

const struct kvm_arch kvm_arch_x86_64 = {
	"x86_64", 62, x86_64_init, x86_64_translate, x86_64_shift_symbol,
	x86_64_close,
};

int kvm_x86_64_levels(kvm_t *kd)
{
	const struct x86_64 *a;

	if (kd == NULL || kd->arch != &kvm_arch_x86_64 || kd->archdata == NULL)
		return 0;
	a = kd->archdata;
	return a->levels;
}
