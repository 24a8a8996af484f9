/*
 * nlist_text.c - text namelists: System.map and /proc/kallsyms.
 *
 * Each line is "<hex address> <type letter> <name>", and kallsyms adds
 * "\t[<module>]" for module symbols.  Whether the addresses are link-time
 * (System.map) or runtime (kallsyms) is decided later by comparing _stext
 * with the dump's, not guessed from the file.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm_private.h"

/* Longest line we accept; kernel symbol names are at most 512 bytes. */
#define MAX_LINE 1024

/* Parse one line; returns 1 = symbol, 0 = blank, -1 = not a namelist line. */
static int parse_line(kvm_t *kd, const char *p, const char *end,
		      int *nonzero)
{
	const char *name, *mod = NULL;
	size_t namelen, modlen = 0;
	uint64_t value = 0;
	int digits = 0;
	char letter;

	if (p == end)
		return 0;
	for (; p < end; p++, digits++) {
		int c = (unsigned char)*p, v;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = (c | 0x20) - 'a' + 10;
		else
			break;
		if (digits == 16)
			return -1;
		value = value << 4 | (uint64_t)v;
	}
	if (digits == 0 || p + 3 > end || *p != ' ')
		return -1;
	letter = p[1];
	if (!isalpha((unsigned char)letter) && letter != '?' )
		return -1;
	if (p[2] != ' ')
		return -1;
	name = p + 3;
	for (p = name; p < end && *p != '\t' && *p != ' '; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return -1;
	namelen = (size_t)(p - name);
	if (namelen == 0)
		return -1;
	if (p < end) {
		const char *q = p;
		while (q < end && (*q == '\t' || *q == ' '))
			q++;
		if (q < end && *q == '[') {
			const char *close = memchr(q, ']', (size_t)(end - q));
			if (close == NULL)
				return -1;
			mod = q + 1;
			modlen = (size_t)(close - mod);
		}
	}
	if (value != 0)
		*nonzero = 1;
	if (kvm_symtab_add(kd, &kd->syms, name, namelen, value,
			   kvm_letter_type(letter), letter, mod, modlen) != 0)
		return -2;
	return 1;
}

int kvm_nlist_text_load(kvm_t *kd, struct kvm_file *f)
{
	char *text = NULL;
	const char *p, *end;
	size_t lineno = 0, nsyms = 0;
	int nonzero = 0;

	if (f->map == NULL) {
		/* /proc/kallsyms reports size 0: read it to the end. */
		size_t cap = 1 << 20, len = 0;
		text = malloc(cap);
		while (text != NULL) {
			ssize_t r;
			if (len == cap) {
				char *t;
				if (cap >= (size_t)1 << 31) {
					kvm_err(kd, EFBIG, "%s: namelist larger than 2 GiB",
						f->path);
					free(text);
					return -1;
				}
				t = realloc(text, cap * 2);
				if (t == NULL)
					break;
				text = t;
				cap *= 2;
			}
			r = pread(f->fd, text + len, cap - len, (off_t)len);
			if (r < 0) {
				kvm_syserr(kd, f->path, "read");
				free(text);
				return -1;
			}
			if (r == 0)
				break;
			len += (size_t)r;
		}
		if (text == NULL) {
			kvm_err(kd, ENOMEM, "out of memory reading %s", f->path);
			return -1;
		}
		p = text;
		end = text + len;
	} else {
		p = (const char *)f->map;
		end = p + f->size;
	}
	/* A line is at least 20 bytes ("<16 hex> T x"); names are shorter
	 * than their lines. */
	if (kvm_symtab_reserve(kd, &kd->syms, (size_t)(end - p) / 20 + 1,
			       (size_t)(end - p) + 2) != 0)
		goto fail;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		int r;
		lineno++;
		if (le > p && le[-1] == '\r')
			le--;
		if (le - p > MAX_LINE)
			r = -1;
		else
			r = parse_line(kd, p, le, &nonzero);
		if (r == -2)
			goto fail;
		if (r < 0) {
			kvm_err(kd, EINVAL,
				"%s: not a namelist: line %zu is not \"<address> <type> <name>\"",
				f->path, lineno);
			goto fail;
		}
		nsyms += (size_t)r;
		p = nl ? nl + 1 : end;
	}
	if (nsyms == 0) {
		kvm_err(kd, EINVAL, "%s: not a namelist: no symbols", f->path);
		goto fail;
	}
	if (!nonzero) {
		kvm_err(kd, EACCES,
			"%s: kallsyms addresses hidden (kptr_restrict); run as root",
			f->path);
		goto fail;
	}
	free(text);
	return 0;
fail:
	free(text);
	return -1;
}
