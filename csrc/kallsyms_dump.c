/*
 * kallsyms_dump.c - the kernel's own symbol table, read out of a dump.
 *
 * When kvm_open gets no namelist for a kernel dump, the symbols come from
 * the kallsyms tables the kernel keeps in its read-only data, which
 * VMCOREINFO locates since Linux 6.0:
 *
 *   kallsyms_num_syms     u32: number of symbols
 *   kallsyms_names        per symbol: a token count (one byte; since 6.1 two
 *                         bytes, ULEB128, when the high bit is set), then
 *                         that many token numbers
 *   kallsyms_token_index  256 u16: offset of each token in token_table
 *   kallsyms_token_table  the tokens, each NUL-terminated
 *   kallsyms_addresses    unsigned long per symbol (no base-relative)
 *   kallsyms_offsets      32 bits per symbol, read one of three ways:
 *                         relative_base + (u32)offset;
 *                         absolute-percpu: offset >= 0 is an absolute value,
 *                         else relative_base - 1 - offset;
 *                         place-relative: &offsets[i] + (s32)offset.
 *   kallsyms_relative_base unsigned long
 *
 * A name expands to the nm type letter followed by the symbol name.  The
 * offset scheme is not recorded anywhere, so it is the one that gives
 * _stext the address VMCOREINFO states (without SYMBOL(_stext): the one
 * that gives addresses in ascending order, as kallsyms sorts them).  Which
 * count encoding is in use is not recorded either: by OSRELEASE, and the
 * other one if that does not decode.  Every symbol is the kernel's own (no
 * modules), at its runtime address.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"

#define KS_MAX_SYMS (4u * 1024 * 1024)   /* more symbols than this: corrupt */
#define KS_MAX_NAMES (64u * 1024 * 1024) /* bytes of kallsyms_names */
/*
 * The kernel's KSYM_NAME_LEN (512 since 6.1, 128 before): scripts/kallsyms
 * refuses a longer name, so an expanded name (type letter included) and
 * each token, a piece of one, are at most this long.
 */
#define KSYM_NAME_LEN 512
#define KS_MAX_NAME KSYM_NAME_LEN
/* Bytes of expanded names: KS_MAX_SYMS symbols of 32 bytes (a distribution
 * kernel has about 150,000 of about 25). */
#define KS_MAX_POOL (128u * 1024 * 1024)
#define KS_NAMES_CHUNK (1u << 20)        /* names read this much at a time */
#define KS_TOKEN_SLACK 1024              /* bytes read past the last token's start */
#define KS_MAX_TOKENS (64u * 1024 + 4096)

#define PASS_NAMELIST \
	"pass a namelist (System.map, vmlinux or the guest's /proc/kallsyms)"

enum ks_scheme {
	KS_ABSOLUTE,   /* kallsyms_addresses[] */
	KS_RELATIVE,   /* relative_base + (u32)offset */
	KS_PERCPU,     /* absolute-percpu: offset >= 0 absolute, else base - 1 - offset */
	KS_PLACE,      /* &offsets[i] + (s32)offset */
	KS_NSCHEMES
};

static const char *const scheme_names[KS_NSCHEMES] = {
	"absolute addresses", "base-relative", "base-relative with absolute per-CPU",
	"place-relative",
};

/* Where the tables are (VMCOREINFO) and what was read of them. */
struct ks {
	kvm_t *kd;
	uint64_t names_va, num_va, ttab_va, tidx_va;
	uint64_t offsets_va, base_va, addrs_va;
	int have_offsets, have_base, have_addrs;
	int ptrsize;
	uint64_t ptrmask;

	uint32_t num;
	uint16_t tidx[256];
	unsigned char *ttab;   /* token table as read */
	size_t ttab_len;
	uint16_t toklen[256];  /* length of each token */
	unsigned char tokbad[256]; /* token is empty or holds a control/space byte */

	unsigned char *names;  /* kallsyms_names, read so far */
	size_t names_len, names_cap, names_max;
	int names_short;       /* a read came back short: no more to read */

	unsigned char *vals;   /* kallsyms_offsets or kallsyms_addresses */
};

/* "<core>: kallsyms in the dump: <what>" */
static void ks_err(struct ks *k, int errnum, const char *fmt, ...) KVM_PRINTF(3, 4);
static void ks_err(struct ks *k, int errnum, const char *fmt, ...)
{
	char what[KVM_ERRBUF_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	kvm_err(k->kd, errnum, "%s: kallsyms in the dump: %s", k->kd->core.path,
		what);
}

/*
 * Read up to len bytes at va; returns the count read (short at the first
 * failure), -1 if nothing.  The caller reports failures.
 */
static ssize_t ks_read(struct ks *k, uint64_t va, void *buf, size_t len)
{
	return kvm_access(k->kd, va, buf, len, 0, 0);
}

/* Read exactly len bytes of table what, or fail with the reason. */
static int ks_read_all(struct ks *k, const char *what, uint64_t va, void *buf,
		       size_t len)
{
	ssize_t r = ks_read(k, va, buf, len);
	char inner[KVM_ERRBUF_SIZE];

	if (r == (ssize_t)len)
		return 0;
	snprintf(inner, sizeof(inner), "%s", k->kd->errbuf);
	ks_err(k, k->kd->errnum ? k->kd->errnum : EIO,
	       "cannot read %s (%zu bytes at 0x%llx): %s", what, len,
	       (unsigned long long)va, inner);
	return -1;
}

static int ks_symbol(struct ks *k, const char *name, uint64_t *va)
{
	char key[64];

	snprintf(key, sizeof(key), "SYMBOL(%s)", name);
	return kvm_vmcoreinfo_u64(k->kd, key, 16, va);
}

/*
 * How many bytes the table at va can hold: up to the next table VMCOREINFO
 * places above it (the tables do not overlap), at most max.  The dump's
 * own layout thus bounds every table before anything is sized by a count.
 */
static uint64_t ks_extent(const struct ks *k, uint64_t va, uint64_t max)
{
	const uint64_t at[] = { k->names_va, k->num_va, k->ttab_va, k->tidx_va,
				k->offsets_va, k->base_va, k->addrs_va };
	const int have[] = { 1, 1, 1, 1, k->have_offsets, k->have_base,
			     k->have_addrs };
	size_t i;

	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		if (have[i] && at[i] > va && at[i] - va < max)
			max = at[i] - va;
	return max;
}

/* Find the tables; a dump that does not list them cannot give symbols. */
static int ks_locate(struct ks *k)
{
	kvm_t *kd = k->kd;
	static const char *const need[] = {
		"kallsyms_names", "kallsyms_num_syms", "kallsyms_token_table",
		"kallsyms_token_index",
	};
	uint64_t *const where[] = { &k->names_va, &k->num_va, &k->ttab_va,
				    &k->tidx_va };
	size_t i, rlen = 0;
	const char *rel;

	if (kd->vmcoreinfo == NULL) {
		kvm_err(kd, ENOTSUP,
			"%s: no namelist given, and the dump has no VMCOREINFO note to find the kernel's symbol table (kallsyms) with; "
			PASS_NAMELIST, kd->core.path);
		return -1;
	}
	rel = kvm_vmcoreinfo_get(kd, "OSRELEASE", &rlen);
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!ks_symbol(k, need[i], where[i])) {
			kvm_err(kd, ENOTSUP,
				"%s: no namelist given, and the dump's VMCOREINFO has no SYMBOL(%s) (kernel %.*s; the kallsyms tables are listed there since Linux 6.0); "
				PASS_NAMELIST, kd->core.path, need[i],
				rel ? (int)(rlen < 64 ? rlen : 64) : 7,
				rel ? rel : "unknown");
			return -1;
		}
	}
	k->have_addrs = ks_symbol(k, "kallsyms_addresses", &k->addrs_va);
	k->have_offsets = ks_symbol(k, "kallsyms_offsets", &k->offsets_va);
	k->have_base = ks_symbol(k, "kallsyms_relative_base", &k->base_va);
	if (!k->have_addrs && !k->have_offsets) {
		kvm_err(kd, ENOTSUP,
			"%s: no namelist given, and the dump's VMCOREINFO has neither SYMBOL(kallsyms_offsets) nor SYMBOL(kallsyms_addresses); "
			PASS_NAMELIST, kd->core.path);
		return -1;
	}
	k->ptrsize = kd->elfclass == 32 ? 4 : 8;
	k->ptrmask = k->ptrsize == 4 ? 0xffffffffULL : ~0ULL;
	return 0;
}

/* Names since 6.1 may carry a two-byte token count. */
static int ks_long_names_first(const kvm_t *kd)
{
	size_t len, i = 0;
	const char *v = kvm_vmcoreinfo_get(kd, "OSRELEASE", &len);
	unsigned major = 0, minor = 0;

	if (v == NULL)
		return 1;
	for (; i < len && v[i] >= '0' && v[i] <= '9' && major < 1000; i++)
		major = major * 10 + (unsigned)(v[i] - '0');
	if (i == 0 || i >= len || v[i] != '.')
		return 1;
	for (i++; i < len && v[i] >= '0' && v[i] <= '9' && minor < 1000; i++)
		minor = minor * 10 + (unsigned)(v[i] - '0');
	return major > 6 || (major == 6 && minor >= 1);
}

static int ks_read_tokens(struct ks *k)
{
	unsigned char raw[512];
	size_t i, maxoff = 0, want, limit;

	if (ks_read_all(k, "kallsyms_num_syms", k->num_va, raw, 4) != 0)
		return -1;
	k->num = kvm_get32(k->kd, raw);
	if (k->num == 0 || k->num > KS_MAX_SYMS) {
		ks_err(k, EINVAL, "kallsyms_num_syms is %u (expected 1 to %u)",
		       k->num, KS_MAX_SYMS);
		return -1;
	}
	if (ks_read_all(k, "kallsyms_token_index", k->tidx_va, raw, sizeof(raw)) != 0)
		return -1;
	/* The table's size is not recorded: it ends with the NUL closing the
	 * token that starts last.  It cannot run into token_index when that
	 * follows it (as the kernel lays them out). */
	limit = (size_t)ks_extent(k, k->ttab_va, KS_MAX_TOKENS);
	for (i = 0; i < 256; i++) {
		k->tidx[i] = kvm_get16(k->kd, raw + 2 * i);
		if (k->tidx[i] >= limit) {
			ks_err(k, EINVAL,
			       "kallsyms_token_index[%zu] is %u, past the end of kallsyms_token_table (%zu bytes)",
			       i, k->tidx[i], limit);
			return -1;
		}
		if (k->tidx[i] > maxoff)
			maxoff = k->tidx[i];
	}
	/* Read a little past the start of the last token. */
	want = maxoff + KS_TOKEN_SLACK < limit ? maxoff + KS_TOKEN_SLACK : limit;
	for (;;) {
		ssize_t r;
		unsigned char *p = realloc(k->ttab, want);
		if (p == NULL) {
			ks_err(k, ENOMEM, "out of memory for the token table");
			return -1;
		}
		k->ttab = p;
		r = ks_read(k, k->ttab_va, k->ttab, want);
		if (r > (ssize_t)maxoff &&
		    memchr(k->ttab + maxoff, '\0', (size_t)r - maxoff) != NULL) {
			k->ttab_len = (size_t)r;
			break;
		}
		if (r < (ssize_t)want || want >= limit) {
			if (r < (ssize_t)want && r <= (ssize_t)maxoff) {
				char inner[KVM_ERRBUF_SIZE];
				snprintf(inner, sizeof(inner), "%s", k->kd->errbuf);
				ks_err(k, k->kd->errnum ? k->kd->errnum : EIO,
				       "cannot read kallsyms_token_table at 0x%llx: %s",
				       (unsigned long long)k->ttab_va, inner);
			} else {
				ks_err(k, EINVAL,
				       "kallsyms_token_table: the token at offset %zu has no end within %zd bytes",
				       maxoff, r);
			}
			return -1;
		}
		want = want * 2 < limit ? want * 2 : limit;
	}
	/* Every token now ends inside what was read. */
	for (i = 0; i < 256; i++) {
		const unsigned char *t = k->ttab + k->tidx[i];
		size_t n = strlen((const char *)t), j;
		k->toklen[i] = (uint16_t)(n < 0xffff ? n : 0xffff);
		k->tokbad[i] = n == 0 || n > KSYM_NAME_LEN;
		for (j = 0; j < n && !k->tokbad[i]; j++)
			if (t[j] <= ' ' || t[j] == 0x7f)
				k->tokbad[i] = 1;
	}
	return 0;
}

/* The address table must fit before the next table: num is only the dump's word. */
static int ks_check_count(struct ks *k)
{
	size_t esz = k->have_addrs ? (size_t)k->ptrsize : 4;
	uint64_t va = k->have_addrs ? k->addrs_va : k->offsets_va;
	uint64_t need = (uint64_t)k->num * esz, room = ks_extent(k, va, need);

	if (room < need) {
		ks_err(k, EINVAL,
		       "kallsyms_num_syms %u needs %llu bytes of %s at 0x%llx, but the next table starts %llu bytes after it",
		       k->num, (unsigned long long)need,
		       k->have_addrs ? "kallsyms_addresses" : "kallsyms_offsets",
		       (unsigned long long)va, (unsigned long long)room);
		return -1;
	}
	return 0;
}

/* Make names[0, end) present. */
static int ks_names_need(struct ks *k, size_t end)
{
	while (k->names_len < end) {
		size_t want, room;
		ssize_t r;

		if (end > k->names_max) {
			ks_err(k, EINVAL,
			       "kallsyms_names runs past %zu bytes (%u symbols)",
			       k->names_max, k->num);
			return -1;
		}
		if (k->names_short) {
			char inner[KVM_ERRBUF_SIZE];
			snprintf(inner, sizeof(inner), "%s", k->kd->errbuf);
			ks_err(k, k->kd->errnum ? k->kd->errnum : EIO,
			       "cannot read kallsyms_names at 0x%llx: %s",
			       (unsigned long long)(k->names_va + k->names_len),
			       inner);
			return -1;
		}
		want = end - k->names_len;
		if (want < KS_NAMES_CHUNK)
			want = KS_NAMES_CHUNK;
		if (want > k->names_max - k->names_len)
			want = k->names_max - k->names_len;
		if (k->names_len + want > k->names_cap) {
			size_t cap = k->names_cap ? k->names_cap : KS_NAMES_CHUNK;
			unsigned char *p;
			while (cap < k->names_len + want)
				cap *= 2;
			p = realloc(k->names, cap);
			if (p == NULL) {
				ks_err(k, ENOMEM, "out of memory for kallsyms_names");
				return -1;
			}
			k->names = p;
			k->names_cap = cap;
		}
		room = want;
		r = ks_read(k, k->names_va + k->names_len, k->names + k->names_len,
			    room);
		if (r < (ssize_t)room)
			k->names_short = 1;
		if (r > 0)
			k->names_len += (size_t)r;
	}
	return 0;
}

/*
 * Decode every name into kd->syms (values filled in later); *stext gets
 * the index of _stext.  long_names: a set high bit in the count means a
 * second count byte.  With pool != NULL nothing is added: the pass only
 * checks the names and sums the bytes they expand to (in *pool), so that
 * the symbol table is sized once, after that sum is known to be sane.
 */
static int ks_decode(struct ks *k, int long_names, uint32_t *stext, uint64_t *pool)
{
	kvm_t *kd = k->kd;
	char out[KS_MAX_NAME];
	size_t pos = 0;
	uint32_t i;
	int found = 0;

	for (i = 0; i < k->num; i++) {
		size_t ntok, hdr = 1, olen = 0, j;
		const unsigned char *p;
		char letter;

		if (pos + 2 > k->names_len && ks_names_need(k, pos + 1) != 0)
			return -1;
		ntok = k->names[pos];
		if ((ntok & 0x80) && long_names) {
			if (ks_names_need(k, pos + 2) != 0)
				return -1;
			if (k->names[pos + 1] & 0x80) {
				ks_err(k, EINVAL,
				       "symbol %u at kallsyms_names+%zu: token count longer than two bytes",
				       i, pos);
				return -1;
			}
			ntok = (ntok & 0x7f) | (size_t)k->names[pos + 1] << 7;
			hdr = 2;
		}
		if (ntok == 0) {
			ks_err(k, EINVAL, "symbol %u at kallsyms_names+%zu has no name",
			       i, pos);
			return -1;
		}
		if (pos + hdr + ntok > k->names_len &&
		    ks_names_need(k, pos + hdr + ntok) != 0)
			return -1;
		p = k->names + pos + hdr;
		for (j = 0; j < ntok; j++) {
			unsigned t = p[j];
			if (k->tokbad[t]) {
				ks_err(k, EINVAL,
				       "symbol %u at kallsyms_names+%zu uses token %u, which is %s",
				       i, pos, t,
				       k->toklen[t] > KSYM_NAME_LEN ? "longer than a symbol name"
				       : k->toklen[t] ? "not a symbol name's text" : "empty");
				return -1;
			}
			if (olen + k->toklen[t] > sizeof(out)) {
				ks_err(k, EINVAL,
				       "symbol %u at kallsyms_names+%zu is longer than %d bytes",
				       i, pos, KS_MAX_NAME);
				return -1;
			}
			{ /* tokens are a few bytes: a call to memcpy costs more */
				const unsigned char *src = k->ttab + k->tidx[t];
				size_t m = k->toklen[t];
				while (m-- > 0)
					out[olen++] = (char)*src++;
			}
		}
		if (olen < 2) {
			ks_err(k, EINVAL,
			       "symbol %u at kallsyms_names+%zu has a type letter but no name",
			       i, pos);
			return -1;
		}
		letter = out[0];
		if (olen == 7 && memcmp(out + 1, "_stext", 6) == 0 && !found) {
			*stext = i;
			found = 1;
		}
		if (pool != NULL) {
			*pool += olen;
			if (*pool > KS_MAX_POOL) {
				ks_err(k, EINVAL,
				       "the first %u of %u names expand to more than %u bytes",
				       i + 1, k->num, KS_MAX_POOL);
				return -1;
			}
		} else if (kvm_symtab_add(kd, &kd->syms, out + 1, olen - 1, 0,
					kvm_letter_type(letter), letter, NULL, 0) != 0)
			return -1;
		pos += hdr + ntok;
	}
	if (!found) {
		ks_err(k, EINVAL, "no _stext among the %u symbols", k->num);
		return -1;
	}
	return 0;
}

static uint64_t ks_value(const struct ks *k, enum ks_scheme s, uint32_t i,
			 uint64_t base)
{
	const unsigned char *v = k->vals;
	uint64_t a;
	int32_t off;

	if (s == KS_ABSOLUTE)
		return k->ptrsize == 4 ? kvm_get32(k->kd, v + 4 * (size_t)i)
				       : kvm_get64(k->kd, v + 8 * (size_t)i);
	off = (int32_t)kvm_get32(k->kd, v + 4 * (size_t)i);
	switch (s) {
	case KS_RELATIVE:
		a = base + (uint32_t)off;
		break;
	case KS_PERCPU:
		a = off >= 0 ? (uint64_t)off : base - 1 - (uint64_t)(int64_t)off;
		break;
	default: /* KS_PLACE */
		a = k->offsets_va + 4 * (uint64_t)i + (uint64_t)(int64_t)off;
		break;
	}
	return a & k->ptrmask;
}

/* Are the values non-decreasing (the order kallsyms sorts them in)? */
static int ks_sorted(const struct ks *k, enum ks_scheme s, uint64_t base)
{
	uint64_t prev = 0;
	uint32_t i;

	for (i = 0; i < k->num; i++) {
		uint64_t a = ks_value(k, s, i, base);
		if (a < prev)
			return 0;
		prev = a;
	}
	return 1;
}

/* Read the address table, pick its scheme and fill in the values. */
static int ks_addresses(struct ks *k, uint32_t stext, size_t first)
{
	kvm_t *kd = k->kd;
	uint64_t base = 0, dump_stext, got[KS_NSCHEMES];
	int have_stext, ok[KS_NSCHEMES] = { 0 }, pick = -1, s;
	size_t esz = k->have_addrs ? (size_t)k->ptrsize : 4;
	uint32_t i;
	char tried[512];
	size_t tl = 0;

	k->vals = malloc((size_t)k->num * esz);
	if (k->vals == NULL) {
		ks_err(k, ENOMEM, "out of memory for symbol addresses");
		return -1;
	}
	if (k->have_addrs) {
		if (ks_read_all(k, "kallsyms_addresses", k->addrs_va, k->vals,
				(size_t)k->num * esz) != 0)
			return -1;
		ok[KS_ABSOLUTE] = 1;
	} else {
		unsigned char raw[8];
		if (ks_read_all(k, "kallsyms_offsets", k->offsets_va, k->vals,
				(size_t)k->num * esz) != 0)
			return -1;
		if (k->have_base) {
			if (ks_read_all(k, "kallsyms_relative_base", k->base_va, raw,
					(size_t)k->ptrsize) != 0)
				return -1;
			base = k->ptrsize == 4 ? kvm_get32(kd, raw) : kvm_get64(kd, raw);
			ok[KS_RELATIVE] = ok[KS_PERCPU] = 1;
		}
		ok[KS_PLACE] = 1;
	}
	have_stext = kvm_vmcoreinfo_u64(kd, "SYMBOL(_stext)", 16, &dump_stext);
	for (s = 0; s < KS_NSCHEMES; s++) {
		if (!ok[s])
			continue;
		got[s] = ks_value(k, (enum ks_scheme)s, stext, base);
		if (pick < 0 && (have_stext ? got[s] == dump_stext
					    : ks_sorted(k, (enum ks_scheme)s, base)))
			pick = s;
		if (tl < sizeof(tried))
			tl += (size_t)snprintf(tried + tl, sizeof(tried) - tl,
					       "%s%s 0x%llx", tl ? ", " : "",
					       scheme_names[s],
					       (unsigned long long)got[s]);
	}
	if (pick < 0) {
		if (have_stext)
			ks_err(k, EINVAL,
			       "no address scheme gives _stext its VMCOREINFO address 0x%llx (%s)",
			       (unsigned long long)dump_stext, tried);
		else
			ks_err(k, EINVAL,
			       "no SYMBOL(_stext) in VMCOREINFO and no address scheme gives sorted addresses (_stext: %s)",
			       tried);
		return -1;
	}
	for (i = 0; i < k->num; i++)
		kd->syms.syms[first + i].value =
			ks_value(k, (enum ks_scheme)pick, i, base);
	return 0;
}

/* One attempt with one name encoding; on failure kd->syms is emptied. */
static int ks_load(struct ks *k, int long_names)
{
	kvm_t *kd = k->kd;
	uint32_t stext = 0;
	size_t first = kd->syms.n;
	uint64_t pool = 0;

	if (ks_decode(k, long_names, &stext, &pool) != 0)
		return -1;
	if (kvm_symtab_reserve(kd, &kd->syms, first + k->num,
			       kd->syms.pool_len + (size_t)pool + 1) != 0 ||
	    ks_decode(k, long_names, &stext, NULL) != 0 ||
	    ks_addresses(k, stext, first) != 0) {
		kvm_symtab_free(&kd->syms);
		free(k->vals);
		k->vals = NULL;
		return -1;
	}
	return 0;
}

static void ks_free(struct ks *k)
{
	free(k->ttab);
	free(k->names);
	free(k->vals);
}

static int ks_run(kvm_t *kd)
{
	struct ks k;
	int long_names, rc;
	char *desc;
	size_t dlen;

	memset(&k, 0, sizeof(k));
	k.kd = kd;
	if (ks_locate(&k) != 0)
		return -1;
	if (ks_read_tokens(&k) != 0 || ks_check_count(&k) != 0) {
		ks_free(&k);
		return -1;
	}
	/* The names cannot run into the token table when it follows them. */
	/* Each name is a count of one or two bytes and at most
	 * KSYM_NAME_LEN tokens; the table ends where the next one starts. */
	k.names_max = (size_t)ks_extent(&k, k.names_va, KS_MAX_NAMES);
	if ((uint64_t)k.num * (2 + KSYM_NAME_LEN) < k.names_max)
		k.names_max = (size_t)k.num * (2 + KSYM_NAME_LEN);
	long_names = ks_long_names_first(kd);
	rc = ks_load(&k, long_names);
	if (rc != 0 && kd->errnum == EINVAL) {
		/* Perhaps the other count encoding (6.0 vs 6.1); if that
		 * fails too, the first failure is the one to report. */
		char first[KVM_ERRBUF_SIZE];
		snprintf(first, sizeof(first), "%s", kd->errbuf);
		rc = ks_load(&k, !long_names);
		if (rc != 0)
			kvm_err(kd, EINVAL, "%s", first);
	}
	ks_free(&k);
	if (rc != 0)
		return -1;
	if (kvm_symtab_finish(kd, &kd->syms) != 0)
		return -1;
	dlen = strlen(kd->core.path) + sizeof(":kallsyms");
	desc = malloc(dlen);
	if (desc == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	snprintf(desc, dlen, "%s:kallsyms", kd->core.path);
	free(kd->namelist);
	kd->namelist = desc;
	kd->have_syms = 1;
	kd->symdisp = 0; /* runtime addresses */
	return 0;
}

int kvm_kallsyms_dump_load(kvm_t *kd)
{
	int rc;

	if (kd->archdata == NULL && kd->vsegs.n == 0) {
		/* The tables are at kernel virtual addresses we cannot reach. */
		kvm_err(kd, ENOTSUP,
			"%s: no namelist given, and the kernel's symbol table in the dump cannot be read: %s; pass a namelist (System.map, vmlinux or the guest's /proc/kallsyms)",
			kd->core.path,
			kd->notrans[0] ? kd->notrans : "no page tables for this architecture");
		return -1;
	}
	rc = ks_run(kd);

	if (rc != 0)
		kvm_symtab_free(&kd->syms);
	return rc;
}
