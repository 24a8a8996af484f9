/*
 * kvm_btf.h - the shim's kernel types (btf.c): one BTF type or member at a
 * time, by id.  Kinds and encodings are BTF's own numbers (linux/btf.h).
 * Every call loads the BTF on first use; -1 with kvm_geterr() set on error
 * (ENOTSUP: no BTF here or no libbpf in this build; EINVAL: corrupt BTF).
 */
#ifndef PYKVM_KVM_BTF_H
#define PYKVM_KVM_BTF_H

#include <stdint.h>

#include "kvm.h"

struct kvm_btf_type {
	int kind;            /* BTF_KIND_* */
	const char *name;    /* "" when anonymous; lives as long as the handle */
	uint64_t size;       /* INT, STRUCT, UNION, ENUM*, FLOAT, DATASEC */
	unsigned type;       /* the referenced type (PTR, TYPEDEF, ..., ARRAY elements) */
	unsigned vlen;       /* members, enumerators, parameters, variables */
	int kflag;
	unsigned nelems;     /* ARRAY */
	unsigned index_type; /* ARRAY */
	unsigned encoding;   /* INT: BTF_INT_SIGNED 1, CHAR 2, BOOL 4 */
	unsigned bits;       /* INT */
	unsigned bit_offset; /* INT */
	unsigned linkage;    /* VAR, FUNC */
	int component_idx;   /* DECL_TAG */
};

struct kvm_btf_member {
	const char *name;
	unsigned type;
	uint64_t bit_offset; /* STRUCT/UNION; DATASEC: offset * 8 */
	unsigned bit_size;   /* bitfield size, 0 if not a bitfield */
	int64_t value;       /* ENUM, ENUM64 */
};

int kvm_btf_available(void);
int kvm_btf_ensure(kvm_t *kd);
void kvm_btf_free(kvm_t *kd);
int kvm_btf_count(kvm_t *kd, unsigned *n);
/* The id of a type by name (kind -1: any kind), 0 if none, -1 on error. */
int kvm_btf_find(kvm_t *kd, const char *name, int kind);
int kvm_btf_type(kvm_t *kd, unsigned id, struct kvm_btf_type *out);
int kvm_btf_member(kvm_t *kd, unsigned id, unsigned i, struct kvm_btf_member *out);
/* The module a type id belongs to: "" for vmlinux, NULL on error. */
const char *kvm_btf_module(kvm_t *kd, unsigned id);
/* The modules whose BTF was left out (it did not read or parse), one
 * "name: why" line each; "" when none, NULL on error. */
const char *kvm_btf_skipped(kvm_t *kd);

#endif /* PYKVM_KVM_BTF_H */
