/*
 * btf.c - kernel types from the BTF the kernel carries in its own memory
 * (__start_BTF..__stop_BTF), parsed by libbpf.  Loaded on the first type
 * question, never at open.  Without libbpf (HAVE_BTF undefined) every
 * call fails with ENOTSUP naming the package.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"
#include "kvm_btf.h"

#define BTF_MAX_BYTES (256u << 20) /* no kernel's BTF is near this */

#ifdef HAVE_BTF
#include <bpf/btf.h>
#include <bpf/libbpf.h>

struct kvm_btf_mod {
	char *name;
	struct btf *btf;
};

struct kvm_btf {
	struct btf *vmlinux;
	unsigned nvmlinux; /* types in vmlinux, counting id 0 */
	char *source;      /* where it came from, for messages */
};

static pthread_mutex_t btf_lock = PTHREAD_MUTEX_INITIALIZER;

static int quiet_print(enum libbpf_print_level level, const char *fmt,
		       va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static int btf_from_bytes(kvm_t *kd, const void *data, size_t len,
			  const char *where, struct btf **out)
{
	struct btf *b;
	const unsigned char *p = data;

	if (len < 24) {
		kvm_err(kd, EINVAL, "%s: BTF is %zu bytes, shorter than its header",
			where, len);
		return -1;
	}
	if (!((p[0] == 0x9f && p[1] == 0xeb) || (p[0] == 0xeb && p[1] == 0x9f))) {
		kvm_err(kd, EINVAL, "%s: no BTF magic (0xeb9f) at its start "
			"(bytes %02x %02x)", where, p[0], p[1]);
		return -1;
	}
	{
		/* The types are read as 4-byte structs where the header puts
		 * them (the kernel requires type_off to be 4-aligned too). */
		int big = p[0] == 0xeb;
		uint32_t hdr_len = kvm_ld32(big, p + 4), type_off = kvm_ld32(big, p + 8);
		if (((uint64_t)hdr_len + type_off) % 4 != 0) {
			kvm_err(kd, EINVAL, "%s: corrupt BTF: its type section (header %u bytes, type_off %u) is not 4-byte aligned",
				where, hdr_len, type_off);
			return -1;
		}
	}
	libbpf_set_print(quiet_print);
	b = btf__new(data, (uint32_t)len);
	if (b == NULL) {
		int e = errno;
		kvm_err(kd, EINVAL, "%s: corrupt BTF (%zu bytes): libbpf: %s",
			where, len, strerror(e ? e : EINVAL));
		return -1;
	}
	*out = b;
	return 0;
}

static int btf_load_memory(kvm_t *kd, struct kvm_btf *kb)
{
	struct kvm_nlist nl[3];
	uint64_t start, stop;
	size_t len;
	unsigned char *buf;
	ssize_t got;
	int rc;

	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "__start_BTF";
	nl[1].n_name = "__stop_BTF";
	if (kvm_nlist2(kd, nl) != 0 || nl[0].n_value == 0 || nl[1].n_value == 0) {
		kvm_err(kd, ENOTSUP, "no kernel BTF: the symbols __start_BTF and "
			"__stop_BTF are not known (a kernel without "
			"CONFIG_DEBUG_INFO_BTF, or no symbols); open with btf=PATH "
			"(a copy of /sys/kernel/btf/vmlinux or a vmlinux with .BTF)");
		return -1;
	}
	start = nl[0].n_value;
	stop = nl[1].n_value;
	if (stop <= start || stop - start > BTF_MAX_BYTES) {
		kvm_err(kd, EINVAL, "kernel BTF range __start_BTF 0x%llx .. "
			"__stop_BTF 0x%llx is not a plausible size",
			(unsigned long long)start, (unsigned long long)stop);
		return -1;
	}
	len = (size_t)(stop - start);
	/* Size the copy by what the BTF header declares (its string and type
	 * sections end where the BTF does), read before allocating. */
	{
		unsigned char h[24];
		uint64_t end;
		int big;
		if (len < sizeof(h) || kvm_read(kd, (unsigned long)start, h, sizeof(h)) != (ssize_t)sizeof(h) ||
		    !((h[0] == 0x9f && h[1] == 0xeb) || (h[0] == 0xeb && h[1] == 0x9f))) {
			kvm_err(kd, ENOTSUP, "no kernel BTF: no BTF header at __start_BTF "
				"(0x%llx); open with btf=PATH (a copy of "
				"/sys/kernel/btf/vmlinux or a vmlinux with .BTF)",
				(unsigned long long)start);
			return -1;
		}
		big = h[0] == 0xeb;
		end = (uint64_t)kvm_ld32(big, h + 4); /* hdr_len */
		{
			uint64_t types = end + kvm_ld32(big, h + 8) + kvm_ld32(big, h + 12);
			uint64_t strs = end + kvm_ld32(big, h + 16) + kvm_ld32(big, h + 20);
			end = types > strs ? types : strs;
		}
		if (end > len) {
			kvm_err(kd, EINVAL, "kernel BTF at 0x%llx: its header declares %llu bytes, "
				"more than __start_BTF..__stop_BTF (%zu bytes)",
				(unsigned long long)start, (unsigned long long)end, len);
			return -1;
		}
		if (end >= sizeof(h))
			len = (size_t)end;
	}
	buf = malloc(len);
	if (buf == NULL) {
		kvm_err(kd, ENOMEM, "kernel BTF: out of memory for %zu bytes", len);
		return -1;
	}
	got = kvm_read(kd, (unsigned long)start, buf, len);
	if (got < 0 || (size_t)got != len) {
		char why[KVM_ERRBUF_SIZE];
		snprintf(why, sizeof(why), "%s", kvm_geterr(kd));
		free(buf);
		kvm_err(kd, EIO, "kernel BTF at 0x%llx (%zu bytes) does not read: %s",
			(unsigned long long)start, len, why);
		return -1;
	}
	{
		const unsigned char *p = buf;
		if (!((p[0] == 0x9f && p[1] == 0xeb) || (p[0] == 0xeb && p[1] == 0x9f))) {
			unsigned m0 = p[0], m1 = p[1];
			free(buf);
			kvm_err(kd, ENOTSUP, "no kernel BTF: the bytes at __start_BTF "
				"(0x%llx) are not BTF (magic %02x %02x); open with "
				"btf=PATH (a copy of /sys/kernel/btf/vmlinux or a "
				"vmlinux with .BTF)", (unsigned long long)start,
				m0, m1);
			return -1;
		}
	}
	rc = btf_from_bytes(kd, buf, len, "kernel BTF (__start_BTF)", &kb->vmlinux);
	free(buf); /* libbpf keeps its own copy */
	if (rc == 0)
		kb->source = strdup("__start_BTF");
	return rc;
}

int kvm_btf_ensure(kvm_t *kd)
{
	struct kvm_btf *kb;
	int rc = 0;

	if (kd->btf != NULL)
		return 0;
	pthread_mutex_lock(&btf_lock);
	if (kd->btf != NULL)
		goto out;
	kb = calloc(1, sizeof(*kb));
	if (kb == NULL) {
		kvm_err(kd, ENOMEM, "kernel BTF: out of memory");
		rc = -1;
		goto out;
	}
	if (btf_load_memory(kd, kb) != 0) {
		free(kb);
		rc = -1;
		goto out;
	}
	kb->nvmlinux = btf__type_cnt(kb->vmlinux);
	kd->btf = kb;
out:
	pthread_mutex_unlock(&btf_lock);
	return rc;
}

void kvm_btf_free(kvm_t *kd)
{
	struct kvm_btf *kb = kd->btf;

	if (kb == NULL)
		return;
	btf__free(kb->vmlinux);
	free(kb->source);
	free(kb);
	kd->btf = NULL;
}

static const struct btf_type *btf_get(kvm_t *kd, unsigned id)
{
	const struct btf_type *t;

	if (kvm_btf_ensure(kd) != 0)
		return NULL;
	if (id >= kd->btf->nvmlinux) {
		kvm_err(kd, EINVAL, "BTF type id %u is out of range (%u types)", id,
			kd->btf->nvmlinux);
		return NULL;
	}
	t = btf__type_by_id(kd->btf->vmlinux, id);
	if (t == NULL)
		kvm_err(kd, EINVAL, "BTF type id %u is out of range", id);
	return t;
}

static const char *btf_str(kvm_t *kd, uint32_t off)
{
	const char *s = btf__name_by_offset(kd->btf->vmlinux, off);
	return s != NULL ? s : "";
}

int kvm_btf_count(kvm_t *kd, unsigned *n)
{
	if (kvm_btf_ensure(kd) != 0)
		return -1;
	*n = kd->btf->nvmlinux;
	return 0;
}

int kvm_btf_find(kvm_t *kd, const char *name, int kind)
{
	int id;

	if (kvm_btf_ensure(kd) != 0)
		return -1;
	if (kind < 0)
		id = btf__find_by_name(kd->btf->vmlinux, name);
	else
		id = btf__find_by_name_kind(kd->btf->vmlinux, name, (uint32_t)kind);
	return id < 0 ? 0 : id;
}

int kvm_btf_type(kvm_t *kd, unsigned id, struct kvm_btf_type *out)
{
	const struct btf_type *t = btf_get(kd, id);

	if (t == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	out->kind = btf_kind(t);
	out->name = btf_str(kd, t->name_off);
	out->vlen = btf_vlen(t);
	out->kflag = btf_kflag(t);
	switch (out->kind) {
	case BTF_KIND_INT:
		out->size = t->size;
		out->encoding = BTF_INT_ENCODING(*(const uint32_t *)(t + 1));
		out->bits = BTF_INT_BITS(*(const uint32_t *)(t + 1));
		out->bit_offset = BTF_INT_OFFSET(*(const uint32_t *)(t + 1));
		break;
	case BTF_KIND_ARRAY: {
		const struct btf_array *a = btf_array(t);
		out->type = a->type;
		out->index_type = a->index_type;
		out->nelems = a->nelems;
		break;
	}
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64: case BTF_KIND_DATASEC: case BTF_KIND_FLOAT:
		out->size = t->size;
		break;
	case BTF_KIND_VAR:
		out->type = t->type;
		out->linkage = btf_var(t)->linkage;
		break;
	case BTF_KIND_FUNC:
		out->type = t->type;
		out->linkage = out->vlen;
		out->vlen = 0;
		break;
	case BTF_KIND_DECL_TAG:
		out->type = t->type;
		out->component_idx = btf_decl_tag(t)->component_idx;
		break;
	default: /* PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC_PROTO, TYPE_TAG, FWD */
		out->type = t->type;
		break;
	}
	return 0;
}

int kvm_btf_member(kvm_t *kd, unsigned id, unsigned i, struct kvm_btf_member *out)
{
	const struct btf_type *t = btf_get(kd, id);

	if (t == NULL)
		return -1;
	if (i >= btf_vlen(t)) {
		kvm_err(kd, EINVAL, "BTF type id %u has %u members, not %u", id,
			btf_vlen(t), i + 1);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	switch (btf_kind(t)) {
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: {
		const struct btf_member *m = btf_members(t) + i;
		out->name = btf_str(kd, m->name_off);
		out->type = m->type;
		out->bit_offset = btf_member_bit_offset(t, i);
		out->bit_size = btf_member_bitfield_size(t, i);
		break;
	}
	case BTF_KIND_ENUM: {
		const struct btf_enum *e = btf_enum(t) + i;
		out->name = btf_str(kd, e->name_off);
		out->value = btf_kflag(t) ? (int64_t)(int32_t)e->val : (int64_t)(uint32_t)e->val;
		break;
	}
	case BTF_KIND_ENUM64: {
		const struct btf_enum64 *e = btf_enum64(t) + i;
		out->name = btf_str(kd, e->name_off);
		out->value = (int64_t)btf_enum64_value(e);
		break;
	}
	case BTF_KIND_FUNC_PROTO: {
		const struct btf_param *p = btf_params(t) + i;
		out->name = btf_str(kd, p->name_off);
		out->type = p->type;
		break;
	}
	case BTF_KIND_DATASEC: {
		const struct btf_var_secinfo *v = btf_var_secinfos(t) + i;
		out->type = v->type;
		out->bit_offset = (uint64_t)v->offset * 8;
		out->bit_size = v->size * 8;
		break;
	}
	default:
		kvm_err(kd, EINVAL, "BTF type id %u has no members", id);
		return -1;
	}
	return 0;
}

int kvm_btf_available(void)
{
	return 1;
}

#else /* !HAVE_BTF */

static int no_btf(kvm_t *kd)
{
	kvm_err(kd, ENOTSUP, "kernel types need libbpf: this build has no BTF "
		"support (install libbpf-dev and rebuild)");
	return -1;
}

int kvm_btf_ensure(kvm_t *kd) { return no_btf(kd); }
void kvm_btf_free(kvm_t *kd) { (void)kd; }
int kvm_btf_count(kvm_t *kd, unsigned *n) { (void)n; return no_btf(kd); }
int kvm_btf_find(kvm_t *kd, const char *name, int kind)
{
	(void)name;
	(void)kind;
	return no_btf(kd);
}
int kvm_btf_type(kvm_t *kd, unsigned id, struct kvm_btf_type *out)
{
	(void)id;
	(void)out;
	return no_btf(kd);
}
int kvm_btf_member(kvm_t *kd, unsigned id, unsigned i, struct kvm_btf_member *out)
{
	(void)id;
	(void)i;
	(void)out;
	return no_btf(kd);
}
int kvm_btf_available(void) { return 0; }

#endif /* HAVE_BTF */
