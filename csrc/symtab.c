/*
 * symtab.c - the symbol table every namelist reader fills: one array
 * sorted by address (for iteration) and a hash index by name (for
 * kvm_nlist).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

/* A namelist larger than this is not a namelist. */
#define KVM_MAX_SYMS (64u * 1024 * 1024)

static int pool_add(kvm_t *kd, struct kvm_symtab *t, const char *s,
		    size_t len, uint32_t *off)
{
	if (len > UINT32_MAX / 2 || t->pool_len + len + 1 > UINT32_MAX) {
		kvm_err(kd, EFBIG, "symbol table too large");
		return -1;
	}
	if (t->pool_len + len + 1 > t->pool_cap) {
		size_t cap = t->pool_cap ? t->pool_cap : 65536;
		char *p;
		while (cap < t->pool_len + len + 1)
			cap *= 2;
		p = realloc(t->pool, cap);
		if (p == NULL) {
			kvm_err(kd, ENOMEM, "out of memory for symbol names");
			return -1;
		}
		t->pool = p;
		t->pool_cap = cap;
	}
	if (t->pool_len == 0)
		t->pool[t->pool_len++] = '\0'; /* offset 0 = no string */
	*off = (uint32_t)t->pool_len;
	memcpy(t->pool + t->pool_len, s, len);
	t->pool[t->pool_len + len] = '\0';
	t->pool_len += len + 1;
	return 0;
}

/* Room for about nsyms symbols with pool_bytes of names: fewer reallocs. */
int kvm_symtab_reserve(kvm_t *kd, struct kvm_symtab *t, size_t nsyms,
		       size_t pool_bytes)
{
	if (nsyms > KVM_MAX_SYMS)
		nsyms = KVM_MAX_SYMS;
	if (pool_bytes > UINT32_MAX)
		pool_bytes = UINT32_MAX;
	if (nsyms > t->cap) {
		struct kvm_sym *v = realloc(t->syms, nsyms * sizeof(*v));
		if (v == NULL)
			goto nomem;
		t->syms = v;
		t->cap = nsyms;
	}
	if (pool_bytes > t->pool_cap) {
		char *p = realloc(t->pool, pool_bytes);
		if (p == NULL)
			goto nomem;
		t->pool = p;
		t->pool_cap = pool_bytes;
	}
	return 0;
nomem:
	kvm_err(kd, ENOMEM, "out of memory for symbols");
	return -1;
}

int kvm_symtab_add(kvm_t *kd, struct kvm_symtab *t, const char *name,
		   size_t namelen, uint64_t value, unsigned char type,
		   char letter, const char *module, size_t modlen)
{
	struct kvm_sym *s;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		struct kvm_sym *v;
		if (cap > KVM_MAX_SYMS) {
			kvm_err(kd, EFBIG, "more than %u symbols", KVM_MAX_SYMS);
			return -1;
		}
		v = realloc(t->syms, cap * sizeof(*v));
		if (v == NULL) {
			kvm_err(kd, ENOMEM, "out of memory for symbols");
			return -1;
		}
		t->syms = v;
		t->cap = cap;
	}
	s = &t->syms[t->n];
	memset(s, 0, sizeof(*s));
	if (pool_add(kd, t, name, namelen, &s->name) != 0)
		return -1;
	if (modlen > 0) {
		/* Modules repeat: reuse the previous symbol's copy if equal. */
		const struct kvm_sym *prev = t->n ? &t->syms[t->n - 1] : NULL;
		if (prev && prev->module &&
		    strncmp(t->pool + prev->module, module, modlen) == 0 &&
		    t->pool[prev->module + modlen] == '\0')
			s->module = prev->module;
		else if (pool_add(kd, t, module, modlen, &s->module) != 0)
			return -1;
	}
	s->value = value;
	s->type = type;
	s->letter = letter;
	t->n++;
	return 0;
}

static int by_value(const void *a, const void *b)
{
	const struct kvm_sym *x = a, *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	/* Pool offsets grow in load order: keep that order among equals. */
	return x->name < y->name ? -1 : x->name > y->name;
}

/* FNV-1a: a small, well-known string hash for the name index. */
static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/*
 * Which of two definitions of one name kvm_nlist returns: the kernel's own
 * before a module's, global before local, then the lower address (the
 * earlier one, since symbols are inserted in address order).
 */
static int better(const struct kvm_sym *x, const struct kvm_sym *y)
{
	if ((x->module == 0) != (y->module == 0))
		return x->module == 0;
	if ((x->type & N_EXT) != (y->type & N_EXT))
		return (x->type & N_EXT) != 0;
	return 0;
}

int kvm_symtab_finish(kvm_t *kd, struct kvm_symtab *t)
{
	size_t i, descents, size = 16;

	if (t->n == 0)
		return 0;
	/*
	 * kallsyms and System.map come (almost) sorted: a few module symbols
	 * out of place are cheaper to insert than a full sort.
	 */
	for (i = 1, descents = 0; i < t->n; i++)
		descents += by_value(&t->syms[i - 1], &t->syms[i]) > 0;
	if (descents > 256) {
		qsort(t->syms, t->n, sizeof(t->syms[0]), by_value);
	} else if (descents > 0) {
		for (i = 1; i < t->n; i++) {
			struct kvm_sym s = t->syms[i];
			size_t j = i;
			while (j > 0 && by_value(&t->syms[j - 1], &s) > 0) {
				t->syms[j] = t->syms[j - 1];
				j--;
			}
			t->syms[j] = s;
		}
	}
	while (size < t->n * 2)
		size *= 2;
	free(t->byname);
	t->byname = calloc(size, sizeof(*t->byname));
	if (t->byname == NULL) {
		kvm_err(kd, ENOMEM, "out of memory for the symbol index");
		return -1;
	}
	t->nbyname = size;
	/* Open addressing, linear probing; a slot holds index + 1. */
	for (i = 0; i < t->n; i++) {
		const char *name = t->pool + t->syms[i].name;
		size_t slot = name_hash(name) & (size - 1);
		for (;; slot = (slot + 1) & (size - 1)) {
			uint32_t *e = &t->byname[slot];
			if (*e == 0) {
				*e = (uint32_t)i + 1;
				break;
			}
			if (strcmp(t->pool + t->syms[*e - 1].name, name) == 0) {
				if (better(&t->syms[i], &t->syms[*e - 1]))
					*e = (uint32_t)i + 1;
				break;
			}
		}
	}
	return 0;
}

/* The preferred definition of name, or NULL. */
const struct kvm_sym *kvm_symtab_lookup(const struct kvm_symtab *t,
					const char *name)
{
	size_t slot, mask = t->nbyname - 1;

	if (t->nbyname == 0)
		return NULL;
	for (slot = name_hash(name) & mask; t->byname[slot] != 0;
	     slot = (slot + 1) & mask) {
		const struct kvm_sym *s = &t->syms[t->byname[slot] - 1];
		if (strcmp(t->pool + s->name, name) == 0)
			return s;
	}
	return NULL;
}

void kvm_symtab_free(struct kvm_symtab *t)
{
	free(t->syms);
	free(t->pool);
	free(t->byname);
	memset(t, 0, sizeof(*t));
}

/* nm's letters to a.out types: upper case is global. */
unsigned char kvm_letter_type(char letter)
{
	unsigned char ext = (letter >= 'A' && letter <= 'Z') ? N_EXT : 0;
	switch (letter | 0x20) {
	case 't':
	case 'w': /* weak: kallsyms lists weak functions as W */
		return N_TEXT | ext;
	case 'd':
	case 'r':
	case 'g':
	case 'v':
		return N_DATA | ext;
	case 'b':
	case 's':
		return N_BSS | ext;
	case 'a':
		return N_ABS | ext;
	default:
		return N_UNDF | ext;
	}
}
