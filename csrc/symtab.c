/*
 * symtab.c - the symbol table every namelist reader fills: one array
 * sorted by address (for iteration and address lookups) and one index
 * sorted by name (for kvm_nlist).
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

/* qsort has no context argument in C99: the pool being sorted. */
static const char *sort_pool;
static const struct kvm_sym *sort_syms;
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int by_value(const void *a, const void *b)
{
	const struct kvm_sym *x = a, *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	/* Pool offsets grow in load order: keep that order among equals. */
	return x->name < y->name ? -1 : x->name > y->name;
}

static int by_name(const void *a, const void *b)
{
	const struct kvm_sym *x = &sort_syms[*(const uint32_t *)a];
	const struct kvm_sym *y = &sort_syms[*(const uint32_t *)b];
	int c = strcmp(sort_pool + x->name, sort_pool + y->name);
	if (c != 0)
		return c;
	/* A name defined twice: the kernel's own before a module's, global
	 * before local, then the lower address. */
	if ((x->module == 0) != (y->module == 0))
		return x->module == 0 ? -1 : 1;
	if ((x->type & N_EXT) != (y->type & N_EXT))
		return (x->type & N_EXT) ? -1 : 1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

int kvm_symtab_finish(kvm_t *kd, struct kvm_symtab *t)
{
	uint32_t *idx;
	size_t i;

	if (t->n == 0)
		return 0;
	qsort(t->syms, t->n, sizeof(t->syms[0]), by_value);
	idx = malloc(t->n * sizeof(*idx));
	if (idx == NULL) {
		kvm_err(kd, ENOMEM, "out of memory for the symbol index");
		return -1;
	}
	for (i = 0; i < t->n; i++)
		idx[i] = (uint32_t)i;
	pthread_mutex_lock(&sort_lock);
	sort_pool = t->pool;
	sort_syms = t->syms;
	qsort(idx, t->n, sizeof(*idx), by_name);
	pthread_mutex_unlock(&sort_lock);
	free(t->byname);
	t->byname = idx;
	t->nbyname = t->n;
	return 0;
}

/* The preferred definition of name, or NULL. */
const struct kvm_sym *kvm_symtab_lookup(const struct kvm_symtab *t,
					const char *name)
{
	size_t lo = 0, hi = t->nbyname;

	while (lo < hi) { /* lower bound: the first entry >= name */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->pool + t->syms[t->byname[mid]].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->nbyname &&
	    strcmp(t->pool + t->syms[t->byname[lo]].name, name) == 0)
		return &t->syms[t->byname[lo]];
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
