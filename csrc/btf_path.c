/*
 * btf_path.c - kvm_type_size and kvm_member_offset (kvm_ext.h): sizes and
 * member offsets by C name, over the handle's BTF (btf.c), so C tools stop
 * hard-coding layouts.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"
#include "kvm_btf.h"

/* BTF_KIND_* (linux/btf.h) */
enum { K_INT = 1, K_PTR, K_ARRAY, K_STRUCT, K_UNION, K_ENUM, K_FWD, K_TYPEDEF,
       K_VOLATILE, K_CONST, K_RESTRICT, K_FUNC, K_FUNC_PROTO, K_VAR, K_DATASEC,
       K_FLOAT, K_DECL_TAG, K_TYPE_TAG, K_ENUM64 };

#define NAME_MAX_LEN 256
#define MAX_HOPS 64 /* typedef/qualifier chains and anonymous nesting */

/* C spellings of the integer types -> the names BTF (from DWARF) has. */
static const char *const int_alias[][2] = {
	{"unsigned", "unsigned int"}, {"signed", "int"}, {"signed int", "int"},
	{"long", "long int"}, {"signed long", "long int"},
	{"unsigned long", "long unsigned int"},
	{"unsigned long int", "long unsigned int"},
	{"long long", "long long int"}, {"signed long long", "long long int"},
	{"unsigned long long", "long long unsigned int"},
	{"unsigned long long int", "long long unsigned int"},
	{"short", "short int"}, {"signed short", "short int"},
	{"unsigned short", "short unsigned int"},
	{"unsigned short int", "short unsigned int"}, {"bool", "_Bool"},
};

static size_t word_size(kvm_t *kd)
{
	return kd->elfclass == 32 ? 4 : 8;
}

/* Strip typedefs and qualifiers; the id, or 0 with the error set. */
static unsigned resolve(kvm_t *kd, unsigned id, struct kvm_btf_type *t)
{
	int hops;

	for (hops = 0; hops < MAX_HOPS; hops++) {
		if (id == 0) {
			memset(t, 0, sizeof(*t));
			return 0;
		}
		if (kvm_btf_type(kd, id, t) != 0)
			return 0;
		switch (t->kind) {
		case K_TYPEDEF: case K_VOLATILE: case K_CONST: case K_RESTRICT:
		case K_TYPE_TAG:
			id = t->type;
			continue;
		default:
			return id;
		}
	}
	kvm_err(kd, EINVAL, "BTF: typedef/qualifier chain longer than %d at type %u",
		MAX_HOPS, id);
	return 0;
}

/* The size of a type by id, or -1. */
static ssize_t size_of(kvm_t *kd, unsigned id, const char *what)
{
	struct kvm_btf_type t;
	uint64_t mult = 1;
	int hops;

	for (hops = 0; hops < MAX_HOPS; hops++) {
		if (id == 0 || (id = resolve(kd, id, &t)) == 0) {
			if (kd->errnum == 0)
				kvm_err(kd, EINVAL, "%s: void has no size", what);
			return -1;
		}
		switch (t.kind) {
		case K_INT: case K_STRUCT: case K_UNION: case K_ENUM: case K_ENUM64:
		case K_FLOAT:
			return (ssize_t)(t.size * mult);
		case K_PTR:
			return (ssize_t)(word_size(kd) * mult);
		case K_ARRAY:
			mult *= t.nelems;
			id = t.type;
			continue;
		default:
			kvm_err(kd, EINVAL, "%s has no size (a function or a declaration only)",
				what);
			return -1;
		}
	}
	kvm_err(kd, EINVAL, "%s: arrays nest deeper than %d", what, MAX_HOPS);
	return -1;
}

/* A type id by C name: "struct x", "u64", "unsigned long"; pointers and
 * arrays as *psize.  0 with the error set. */
static unsigned lookup(kvm_t *kd, const char *spec, ssize_t *psize)
{
	char buf[NAME_MAX_LEN], *p, *end, *word;
	const char *name;
	size_t len = strlen(spec), i;
	unsigned stars = 0;
	uint64_t mult = 1;
	int id = 0, kind = -1;

	*psize = 0;
	if (len == 0 || len >= sizeof(buf)) {
		kvm_err(kd, EINVAL, "not a type name: \"%.64s\"", spec);
		return 0;
	}
	memcpy(buf, spec, len + 1);
	/* declarators at the end: "*", "[N]" */
	end = buf + len;
	for (;;) {
		while (end > buf && isspace((unsigned char)end[-1]))
			end--;
		if (end > buf && end[-1] == '*') {
			stars++;
			end--;
		} else if (end > buf && end[-1] == ']') {
			char *open = end - 1, *stop;
			unsigned long n;
			while (open > buf && *open != '[')
				open--;
			if (*open != '[') {
				kvm_err(kd, EINVAL, "not a type name: \"%s\"", spec);
				return 0;
			}
			n = strtoul(open + 1, &stop, 10);
			if (stop == open + 1 || *stop != ']') {
				kvm_err(kd, EINVAL, "not a type name: \"%s\" (array length)", spec);
				return 0;
			}
			mult *= n;
			end = open;
		} else {
			break;
		}
	}
	*end = '\0';
	p = buf;
	while (isspace((unsigned char)*p))
		p++;
	for (word = p; *word; word++) /* one space between words */
		if (isspace((unsigned char)*word))
			*word = ' ';
	if (strncmp(p, "const ", 6) == 0)
		p += 6;
	if (strncmp(p, "volatile ", 9) == 0)
		p += 9;
	name = p;
	if (strncmp(p, "struct ", 7) == 0) {
		kind = K_STRUCT;
		name = p + 7;
	} else if (strncmp(p, "union ", 6) == 0) {
		kind = K_UNION;
		name = p + 6;
	} else if (strncmp(p, "enum ", 5) == 0) {
		kind = K_ENUM;
		name = p + 5;
	}
	while (*name == ' ')
		name++;
	if (*name == '\0') {
		kvm_err(kd, EINVAL, "no type name in \"%s\"", spec);
		return 0;
	}
	if (kind >= 0) {
		id = kvm_btf_find(kd, name, kind);
		if (id == 0 && kind == K_ENUM)
			id = kvm_btf_find(kd, name, K_ENUM64);
	} else {
		for (i = 0; i < sizeof(int_alias) / sizeof(int_alias[0]); i++)
			if (strcmp(name, int_alias[i][0]) == 0)
				name = int_alias[i][1];
		if (strcmp(name, "void") == 0 && stars == 0) {
			kvm_err(kd, EINVAL, "void has no size");
			return 0;
		}
		id = kvm_btf_find(kd, name, K_INT);
		if (id == 0)
			id = kvm_btf_find(kd, name, K_TYPEDEF);
		if (id == 0)
			id = kvm_btf_find(kd, name, K_FLOAT);
		if (id == 0 && strcmp(name, "void") == 0)
			id = -2; /* void *: no id, a pointer all the same */
	}
	if (id == -1)
		return 0;
	if (id == 0) {
		const char *sk = kvm_btf_skipped(kd);
		char note[512] = "";
		if (sk != NULL && *sk != '\0') {
			/* Its type may be in a module whose BTF could not be used. */
			size_t i;
			snprintf(note, sizeof(note), "; module BTF left out: %s", sk);
			for (i = 0; note[i] != '\0'; i++)
				if (note[i] == '\n')
					note[i] = note[i + 1] != '\0' ? ';' : '\0';
		}
		kvm_err(kd, ENOENT, "no type \"%s\" in the kernel's BTF%s", p, note);
		return 0;
	}
	if (stars)
		*psize = (ssize_t)(word_size(kd) * mult);
	else if (mult != 1) {
		ssize_t one = size_of(kd, (unsigned)id, spec);
		if (one < 0)
			return 0;
		*psize = (ssize_t)((uint64_t)one * mult);
	}
	return id > 0 ? (unsigned)id : 1;
}

ssize_t kvm_type_size(kvm_t *kd, const char *type)
{
	ssize_t size;
	unsigned id;

	kd->errnum = 0;
	if (type == NULL) {
		kvm_err(kd, EINVAL, "kvm_type_size: no type name");
		return -1;
	}
	id = lookup(kd, type, &size);
	if (id == 0)
		return -1;
	return size != 0 ? size : size_of(kd, id, type);
}

/* Member name of struct/union id (resolved), searched through anonymous
 * members: *bits gets its offset, *mtype its type. 1 found, 0 not, -1 error. */
static int find_member(kvm_t *kd, unsigned id, const char *name, size_t nlen,
		       uint64_t *bits, unsigned *mtype, int depth)
{
	struct kvm_btf_type t;
	struct kvm_btf_member m;
	unsigned i;

	if (depth > MAX_HOPS) {
		kvm_err(kd, EINVAL, "BTF: anonymous members nest deeper than %d", MAX_HOPS);
		return -1;
	}
	if (kvm_btf_type(kd, id, &t) != 0)
		return -1;
	for (i = 0; i < t.vlen; i++) {
		if (kvm_btf_member(kd, id, i, &m) != 0)
			return -1;
		if (m.name[0] == '\0') {
			struct kvm_btf_type at;
			unsigned aid = resolve(kd, m.type, &at);
			uint64_t inner = 0;
			int r;
			if (aid == 0)
				return -1;
			if (at.kind != K_STRUCT && at.kind != K_UNION)
				continue;
			r = find_member(kd, aid, name, nlen, &inner, mtype, depth + 1);
			if (r != 0) {
				*bits = m.bit_offset + inner;
				return r;
			}
		} else if (strlen(m.name) == nlen && memcmp(m.name, name, nlen) == 0) {
			*bits = m.bit_offset;
			*mtype = m.type;
			return 1;
		}
	}
	return 0;
}

ssize_t kvm_member_offset(kvm_t *kd, const char *type, const char *member_path)
{
	ssize_t size;
	unsigned id;
	uint64_t bits = 0;
	const char *p = member_path;
	struct kvm_btf_type t;

	kd->errnum = 0;
	if (type == NULL || member_path == NULL) {
		kvm_err(kd, EINVAL, "kvm_member_offset: no type or member");
		return -1;
	}
	id = lookup(kd, type, &size);
	if (id == 0)
		return -1;
	if (size != 0) {
		kvm_err(kd, EINVAL, "%s is a pointer or array, not a struct or union", type);
		return -1;
	}
	while (*p != '\0') {
		unsigned rid = resolve(kd, id, &t);
		if (rid == 0) {
			if (kd->errnum == 0)
				kvm_err(kd, EINVAL, "%s: void in the path \"%s\"", type, member_path);
			return -1;
		}
		if (*p == '[') {
			char *stop;
			unsigned long i = strtoul(p + 1, &stop, 0);
			ssize_t es;
			if (stop == p + 1 || *stop != ']') {
				kvm_err(kd, EINVAL, "bad index in the member path \"%s\"", member_path);
				return -1;
			}
			if (t.kind != K_ARRAY) {
				kvm_err(kd, EINVAL, "%s: not an array at \"%s\" in \"%s\"", type, p,
					member_path);
				return -1;
			}
			es = size_of(kd, t.type, member_path);
			if (es < 0)
				return -1;
			bits += (uint64_t)i * (uint64_t)es * 8;
			id = t.type;
			p = stop + 1;
		} else {
			size_t n;
			uint64_t mb = 0;
			int r;
			if (*p == '.')
				p++;
			n = strcspn(p, ".[");
			if (n == 0) {
				kvm_err(kd, EINVAL, "bad member path \"%s\"", member_path);
				return -1;
			}
			if (t.kind != K_STRUCT && t.kind != K_UNION) {
				kvm_err(kd, EINVAL, "%s: no members at \"%s\" in \"%s\"", type, p,
					member_path);
				return -1;
			}
			r = find_member(kd, rid, p, n, &mb, &id, 0);
			if (r < 0)
				return -1;
			if (r == 0) {
				kvm_err(kd, ENOENT, "%s has no member \"%.*s\" (in \"%s\")", type,
					(int)n, p, member_path);
				return -1;
			}
			bits += mb;
			p += n;
		}
	}
	return (ssize_t)(bits / 8);
}
