/*
 * btf.c - kernel types from the BTF the kernel carries in its own memory
 * (__start_BTF..__stop_BTF), parsed by libbpf.  Loaded on the first type
 * question, never at open.  Without libbpf (HAVE_BTF undefined) every
 * call fails with ENOTSUP naming the package.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_private.h"
#include "kvm_btf.h"

#define BTF_MAX_BYTES (256u << 20) /* no kernel's BTF is near this */

#ifdef HAVE_BTF
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BTF_MAX_MODULES 4096 /* a longer btf_modules list is corrupt */
#define BTF_MODULE_NAME 56   /* MODULE_NAME_LEN on 64-bit kernels */

/*
 * One module's split BTF.  Ids are one space for the handle: vmlinux's own
 * (0 .. nvmlinux-1), then each module's types in turn from its base.  A
 * module's BTF numbers its own types from nvmlinux, so a local id L >=
 * nvmlinux is the handle's id base + (L - nvmlinux).
 */
struct kvm_btf_mod {
	char name[BTF_MODULE_NAME + 1];
	struct btf *btf;
	unsigned base;  /* the handle's id of its first own type */
	unsigned count; /* its own types */
};

struct kvm_btf {
	struct btf *vmlinux;
	unsigned nvmlinux; /* types in vmlinux, counting id 0 */
	unsigned total;    /* vmlinux and every module's */
	char *source;      /* where it came from, for messages */
	struct kvm_btf_mod *mods;
	size_t nmods;
	char *skipped;     /* "module: why\n" for each module left out, or NULL */
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

static int is_btf_magic(const unsigned char *p)
{
	return (p[0] == 0x9f && p[1] == 0xeb) || (p[0] == 0xeb && p[1] == 0x9f);
}

/*
 * Split BTF from bytes.  libbpf 1.1 (Debian 12) declares btf__new_split but
 * does not export it, so the bytes go through a private temporary file
 * that btf__parse_raw_split reads (and that is gone before this returns).
 */
static struct btf *new_split(const void *data, size_t len, struct btf *base)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	const unsigned char *p = data;
	struct btf *b = NULL;
	size_t done = 0;
	int fd, e;

	snprintf(path, sizeof(path), "%s/pykvm-btf-XXXXXX",
		 dir != NULL && *dir != '\0' && strlen(dir) < 400 ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (close(fd) == 0 && done == len)
		b = btf__parse_raw_split(path, base);
	e = errno;
	unlink(path);
	errno = e;
	return b;
}

/*
 * Every type id a type refers to must exist: libbpf checks some references
 * and not others (a function's return type, for one), and a wild id would
 * otherwise surface later as a confusing lookup failure.
 */
static int btf_check_ids(kvm_t *kd, const struct btf *b, const char *where)
{
	unsigned n = btf__type_cnt(b), id, i, first = 1;
	const struct btf *base = btf__base_btf(b);

	if (base != NULL)
		first = btf__type_cnt(base);
	for (id = first; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(b, id);
		unsigned bad = 0;

		if (t == NULL)
			bad = id;
		else {
			switch (btf_kind(t)) {
			case BTF_KIND_INT: case BTF_KIND_ENUM: case BTF_KIND_ENUM64:
			case BTF_KIND_FWD: case BTF_KIND_FLOAT:
				break;
			case BTF_KIND_ARRAY:
				if (btf_array(t)->type >= n)
					bad = btf_array(t)->type;
				else if (btf_array(t)->index_type >= n)
					bad = btf_array(t)->index_type;
				break;
			case BTF_KIND_STRUCT: case BTF_KIND_UNION:
				for (i = 0; i < btf_vlen(t) && !bad; i++)
					if (btf_members(t)[i].type >= n)
						bad = btf_members(t)[i].type;
				break;
			case BTF_KIND_FUNC_PROTO:
				if (t->type >= n)
					bad = t->type;
				for (i = 0; i < btf_vlen(t) && !bad; i++)
					if (btf_params(t)[i].type >= n)
						bad = btf_params(t)[i].type;
				break;
			case BTF_KIND_DATASEC:
				for (i = 0; i < btf_vlen(t) && !bad; i++)
					if (btf_var_secinfos(t)[i].type >= n)
						bad = btf_var_secinfos(t)[i].type;
				break;
			default: /* PTR, TYPEDEF, qualifiers, FUNC, VAR, tags */
				if (t->type >= n)
					bad = t->type;
				break;
			}
		}
		if (bad) {
			kvm_err(kd, EINVAL, "%s: corrupt BTF: type %u refers to type %u, "
				"past the last (%u)", where, id, bad, n - 1);
			return -1;
		}
	}
	return 0;
}

/* Parse BTF bytes (split on base when base is not NULL); where names the
 * source in messages. */
static int btf_from_bytes(kvm_t *kd, const void *data, size_t len,
			  const char *where, struct btf *base, struct btf **out)
{
	struct btf *b;
	const unsigned char *p = data;

	if (len < 24) {
		kvm_err(kd, EINVAL, "%s: BTF is %zu bytes, shorter than its header",
			where, len);
		return -1;
	}
	if (!is_btf_magic(p)) {
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
	errno = 0;
	b = base != NULL ? new_split(data, len, base)
			 : btf__new(data, (uint32_t)len);
	if (b == NULL) {
		int e = errno;
		kvm_err(kd, EINVAL, "%s: corrupt BTF (%zu bytes; a truncated "
			"section, a bad header or a type id out of range): "
			"libbpf: %s", where, len, strerror(e ? e : EINVAL));
		return -1;
	}
	if (btf_check_ids(kd, b, where) != 0) {
		btf__free(b);
		return -1;
	}
	*out = b;
	return 0;
}

/* A whole file into memory, at most BTF_MAX_BYTES.  The buffer starts at
 * the size fstat reports (sysfs gives the true size of a BTF file, or 4096)
 * and doubles as the file goes on: a small guest cannot allocate the bound
 * itself, and vmlinux BTF is a few MiB. */
static int read_file(kvm_t *kd, const char *path, unsigned char **out, size_t *len)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t got = 0, cap;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		kvm_syserr(kd, path, NULL);
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		kvm_syserr(kd, path, NULL);
		close(fd);
		return -1;
	}
	cap = st.st_size > 0 && (uint64_t)st.st_size < BTF_MAX_BYTES ? (size_t)st.st_size + 1 : 65536;
	for (;;) {
		ssize_t n;
		if (got == cap) {
			unsigned char *nb;
			if (cap >= BTF_MAX_BYTES) {
				kvm_err(kd, EINVAL, "%s: larger than %u MiB: not a BTF file",
					path, BTF_MAX_BYTES >> 20);
				goto fail;
			}
			cap = cap * 2 < BTF_MAX_BYTES ? cap * 2 : BTF_MAX_BYTES;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				kvm_err(kd, ENOMEM, "%s: out of memory (%zu bytes)", path, cap);
				goto fail;
			}
			buf = nb;
		} else if (buf == NULL && (buf = malloc(cap)) == NULL) {
			kvm_err(kd, ENOMEM, "%s: out of memory (%zu bytes)", path, cap);
			goto fail;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			kvm_syserr(kd, path, NULL);
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

/* The open option btf=PATH: raw BTF, or an ELF file's .BTF section. */
static int btf_load_file(kvm_t *kd, struct kvm_btf *kb, const char *path)
{
	unsigned char head[4];
	unsigned char *buf;
	size_t len;
	ssize_t n;
	int rc, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		kvm_syserr(kd, path, NULL);
		return -1;
	}
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n == 4 && memcmp(head, "\177ELF", 4) == 0) {
		libbpf_set_print(quiet_print);
		errno = 0;
		kb->vmlinux = btf__parse_elf(path, NULL);
		if (kb->vmlinux == NULL) {
			int e = errno;
			kvm_err(kd, EINVAL, "%s: no usable .BTF section (libbpf: %s)",
				path, strerror(e ? e : EINVAL));
			return -1;
		}
		if (btf_check_ids(kd, kb->vmlinux, path) != 0) {
			btf__free(kb->vmlinux);
			kb->vmlinux = NULL;
			return -1;
		}
		kb->source = strdup(path);
		return 0;
	}
	if (read_file(kd, path, &buf, &len) != 0)
		return -1;
	rc = btf_from_bytes(kd, buf, len, path, NULL, &kb->vmlinux);
	free(buf);
	if (rc == 0)
		kb->source = strdup(path);
	return rc;
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
	if (!is_btf_magic(buf)) {
		unsigned m0 = buf[0], m1 = buf[1];
		free(buf);
		kvm_err(kd, ENOTSUP, "no kernel BTF: the bytes at __start_BTF "
			"(0x%llx) are not BTF (magic %02x %02x); open with "
			"btf=PATH (a copy of /sys/kernel/btf/vmlinux or a "
			"vmlinux with .BTF)", (unsigned long long)start, m0, m1);
		return -1;
	}
	rc = btf_from_bytes(kd, buf, len, "kernel BTF (__start_BTF)", NULL,
			    &kb->vmlinux);
	free(buf); /* libbpf keeps its own copy */
	if (rc == 0)
		kb->source = strdup("__start_BTF");
	return rc;
}

/* ---- module BTF ---- */

/* Byte offset of a member of a struct in vmlinux's BTF, or -1. */
static long vmlinux_offset(const struct btf *b, const char *sname, const char *mname)
{
	int id = btf__find_by_name_kind(b, sname, BTF_KIND_STRUCT);
	const struct btf_type *t;
	unsigned i;

	if (id <= 0 || (t = btf__type_by_id(b, (uint32_t)id)) == NULL)
		return -1;
	for (i = 0; i < btf_vlen(t); i++) {
		const char *n = btf__name_by_offset(b, btf_members(t)[i].name_off);
		if (n != NULL && strcmp(n, mname) == 0)
			return (long)(btf_member_bit_offset(t, i) / 8);
	}
	return -1;
}

/* A module whose BTF is left out, and why (kd's error, or why given):
 * kept for kvm_btf_skipped and for the "no type" message. */
static void skip_module(kvm_t *kd, struct kvm_btf *kb, const char *name, const char *why)
{
	size_t have = kb->skipped != NULL ? strlen(kb->skipped) : 0;
	size_t add = strlen(name) + 2 + strlen(why) + 1;
	char *s;

	if (have + add > 64 * 1024) /* enough to say what went wrong */
		return;
	s = realloc(kb->skipped, have + add + 1);
	if (s == NULL)
		return;
	snprintf(s + have, add + 1, "%s: %s\n", name, why);
	kb->skipped = s;
	(void)kd;
}

static int add_module(kvm_t *kd, struct kvm_btf *kb, const char *name,
		      const void *data, size_t len)
{
	struct kvm_btf_mod *m;
	struct btf *b;
	char where[BTF_MODULE_NAME + 32];

	snprintf(where, sizeof(where), "BTF of module %s", name);
	if (btf_from_bytes(kd, data, len, where, kb->vmlinux, &b) != 0)
		return -1;
	m = realloc(kb->mods, (kb->nmods + 1) * sizeof(*m));
	if (m == NULL) {
		btf__free(b);
		kvm_err(kd, ENOMEM, "module BTF: out of memory");
		return -1;
	}
	kb->mods = m;
	m += kb->nmods++;
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->btf = b;
	m->base = kb->total;
	m->count = btf__type_cnt(b) - kb->nvmlinux;
	kb->total += m->count;
	return 0;
}

/*
 * The kernel's btf_modules list: struct btf_module { list; module *; btf *; }
 * and each struct btf { data; ...; data_size; ...; name[] }, located by
 * vmlinux's own BTF.  A module whose BTF does not read or parse is left
 * out (its types are then unknown); the walk is bounded and stops at a
 * loop or a NULL.
 */
static void btf_load_modules_memory(kvm_t *kd, struct kvm_btf *kb)
{
	struct kvm_nlist nl[2];
	long o_list, o_btf, o_data, o_size, o_name;
	uint64_t head, pos, prev = 0;
	unsigned n = 0;
	const struct btf *v = kb->vmlinux;

	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "btf_modules";
	if (kvm_nlist2(kd, nl) != 0 || nl[0].n_value == 0)
		return;
	head = nl[0].n_value;
	o_list = vmlinux_offset(v, "btf_module", "list");
	o_btf = vmlinux_offset(v, "btf_module", "btf");
	o_data = vmlinux_offset(v, "btf", "data");
	o_size = vmlinux_offset(v, "btf", "data_size");
	o_name = vmlinux_offset(v, "btf", "name");
	if (o_list < 0 || o_btf < 0 || o_data < 0 || o_size < 0 || o_name < 0)
		return;
	if (kvm_read(kd, (unsigned long)head, &pos, 8) != 8)
		return;
	while (pos != head && pos != 0 && pos != prev && n++ < BTF_MAX_MODULES) {
		uint64_t entry = pos - (uint64_t)o_list, btf, data;
		uint32_t size;
		char name[BTF_MODULE_NAME + 1];
		unsigned char *buf;

		prev = pos;
		if (kvm_read(kd, (unsigned long)(entry + o_btf), &btf, 8) != 8 || btf == 0 ||
		    kvm_read(kd, (unsigned long)(btf + o_data), &data, 8) != 8 ||
		    kvm_read(kd, (unsigned long)(btf + o_size), &size, 4) != 4 ||
		    kvm_read(kd, (unsigned long)(btf + o_name), name, BTF_MODULE_NAME) !=
			    BTF_MODULE_NAME) {
			char why[128];
			snprintf(why, sizeof(why), "its struct btf_module at 0x%llx does not read",
				 (unsigned long long)entry);
			skip_module(kd, kb, "(a module)", why);
			goto next;
		}
		name[BTF_MODULE_NAME] = '\0';
		if (size < 24 || size > BTF_MAX_BYTES) {
			char why[96];
			snprintf(why, sizeof(why), "its BTF size %u is not valid", size);
			skip_module(kd, kb, name, why);
			goto next;
		}
		if ((buf = malloc(size)) == NULL) {
			skip_module(kd, kb, name, "out of memory");
			goto next;
		}
		if (kvm_read(kd, (unsigned long)data, buf, size) != (ssize_t)size)
			skip_module(kd, kb, name, kd->errbuf);
		else if (add_module(kd, kb, name, buf, size) != 0)
			skip_module(kd, kb, name, kd->errbuf);
		free(buf);
	next:
		if (kvm_read(kd, (unsigned long)pos, &pos, 8) != 8)
			break;
	}
	kd->errbuf[0] = '\0'; /* a module left out is not the caller's error */
	kd->errnum = 0;
}

/* The live kernel: /sys/kernel/btf/<module> for each file but vmlinux. */
static void btf_load_modules_sys(kvm_t *kd, struct kvm_btf *kb)
{
	DIR *dir = opendir("/sys/kernel/btf");
	struct dirent *de;

	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL && kb->nmods < BTF_MAX_MODULES) {
		char path[300];
		unsigned char *buf;
		size_t len;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "vmlinux") == 0 ||
		    strlen(de->d_name) > BTF_MODULE_NAME)
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", de->d_name);
		if (read_file(kd, path, &buf, &len) != 0) {
			skip_module(kd, kb, de->d_name, kd->errbuf);
			continue;
		}
		if (add_module(kd, kb, de->d_name, buf, len) != 0)
			skip_module(kd, kb, de->d_name, kd->errbuf);
		free(buf);
	}
	closedir(dir);
	kd->errbuf[0] = '\0';
	kd->errnum = 0;
}

int kvm_btf_ensure(kvm_t *kd)
{
	struct kvm_btf *kb;
	int rc = 0, live_sys = 0;

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
	if (kd->btf_path != NULL) {
		rc = btf_load_file(kd, kb, kd->btf_path);
	} else if (kd->live && access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
		rc = btf_load_file(kd, kb, "/sys/kernel/btf/vmlinux");
		live_sys = 1;
	} else {
		rc = btf_load_memory(kd, kb);
	}
	if (rc != 0) {
		free(kb->source);
		free(kb);
		rc = -1;
		goto out;
	}
	kb->nvmlinux = btf__type_cnt(kb->vmlinux);
	kb->total = kb->nvmlinux;
	/* Module types: the running kernel's /sys files, else the image's list
	 * (a btf= file describes vmlinux only, but the image's modules still
	 * split on it when it is the same kernel's). */
	if (live_sys)
		btf_load_modules_sys(kd, kb);
	else if (kd->kernel)
		btf_load_modules_memory(kd, kb);
	kd->btf = kb;
out:
	pthread_mutex_unlock(&btf_lock);
	return rc;
}

void kvm_btf_free(kvm_t *kd)
{
	struct kvm_btf *kb = kd->btf;
	size_t i;

	if (kb == NULL)
		return;
	for (i = 0; i < kb->nmods; i++)
		btf__free(kb->mods[i].btf);
	free(kb->mods);
	btf__free(kb->vmlinux);
	free(kb->source);
	free(kb->skipped);
	free(kb);
	kd->btf = NULL;
}

const char *kvm_btf_skipped(kvm_t *kd)
{
	if (kvm_btf_ensure(kd) != 0)
		return NULL;
	return kd->btf->skipped != NULL ? kd->btf->skipped : "";
}

/* The BTF holding a handle id, that id in it, and its module (NULL: vmlinux). */
static const struct kvm_btf_mod *btf_locate(const struct kvm_btf *kb, unsigned id,
					    const struct btf **b, unsigned *local)
{
	size_t lo = 0, hi = kb->nmods;

	if (id < kb->nvmlinux) {
		*b = kb->vmlinux;
		*local = id;
		return NULL;
	}
	while (hi - lo > 1) { /* the last module whose base <= id */
		size_t mid = (lo + hi) / 2;
		if (kb->mods[mid].base <= id)
			lo = mid;
		else
			hi = mid;
	}
	*b = kb->mods[lo].btf;
	*local = id - kb->mods[lo].base + kb->nvmlinux;
	return &kb->mods[lo];
}

/* A module BTF's id as the handle's. */
static unsigned btf_global(const struct kvm_btf *kb, const struct kvm_btf_mod *m,
			   unsigned local)
{
	if (m == NULL || local < kb->nvmlinux)
		return local;
	return m->base + (local - kb->nvmlinux);
}

struct btf_ref {
	const struct btf *b;
	const struct kvm_btf_mod *mod;
	const struct btf_type *t;
};

static int btf_get(kvm_t *kd, unsigned id, struct btf_ref *r)
{
	unsigned local;

	if (kvm_btf_ensure(kd) != 0)
		return -1;
	if (id >= kd->btf->total) {
		kvm_err(kd, EINVAL, "BTF type id %u is out of range (%u types)", id,
			kd->btf->total);
		return -1;
	}
	r->mod = btf_locate(kd->btf, id, &r->b, &local);
	r->t = btf__type_by_id(r->b, local);
	if (r->t == NULL) {
		kvm_err(kd, EINVAL, "BTF type id %u is out of range", id);
		return -1;
	}
	return 0;
}

static const char *btf_str(const struct btf *b, uint32_t off)
{
	const char *s = btf__name_by_offset(b, off);
	return s != NULL ? s : "";
}

int kvm_btf_count(kvm_t *kd, unsigned *n)
{
	if (kvm_btf_ensure(kd) != 0)
		return -1;
	*n = kd->btf->total;
	return 0;
}

/* A module's own type of that name (and kind, unless kind < 0), or 0. */
static unsigned find_own(const struct kvm_btf *kb, const struct kvm_btf_mod *m,
			 const char *name, int kind)
{
	unsigned i;

	for (i = 0; i < m->count; i++) {
		const struct btf_type *t = btf__type_by_id(m->btf, kb->nvmlinux + i);
		if (t == NULL || (kind >= 0 && btf_kind(t) != kind))
			continue;
		if (strcmp(btf_str(m->btf, t->name_off), name) == 0)
			return m->base + i;
	}
	return 0;
}

int kvm_btf_find(kvm_t *kd, const char *name, int kind)
{
	int id;
	size_t i;

	if (kvm_btf_ensure(kd) != 0)
		return -1;
	if (kind < 0)
		id = btf__find_by_name(kd->btf->vmlinux, name);
	else
		id = btf__find_by_name_kind(kd->btf->vmlinux, name, (uint32_t)kind);
	if (id > 0)
		return id;
	for (i = 0; i < kd->btf->nmods; i++) {
		unsigned g = find_own(kd->btf, &kd->btf->mods[i], name, kind);
		if (g != 0)
			return (int)g;
	}
	return 0;
}

const char *kvm_btf_module(kvm_t *kd, unsigned id)
{
	const struct btf *b;
	unsigned local;
	const struct kvm_btf_mod *m;

	if (kvm_btf_ensure(kd) != 0 || id >= kd->btf->total)
		return NULL;
	m = btf_locate(kd->btf, id, &b, &local);
	return m != NULL ? m->name : "";
}

int kvm_btf_type(kvm_t *kd, unsigned id, struct kvm_btf_type *out)
{
	struct btf_ref r;
	const struct btf_type *t;

	if (btf_get(kd, id, &r) != 0)
		return -1;
	t = r.t;
	memset(out, 0, sizeof(*out));
	out->kind = btf_kind(t);
	out->name = btf_str(r.b, t->name_off);
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
		out->type = btf_global(kd->btf, r.mod, a->type);
		out->index_type = btf_global(kd->btf, r.mod, a->index_type);
		out->nelems = a->nelems;
		break;
	}
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64: case BTF_KIND_DATASEC: case BTF_KIND_FLOAT:
		out->size = t->size;
		break;
	case BTF_KIND_VAR:
		out->type = btf_global(kd->btf, r.mod, t->type);
		out->linkage = btf_var(t)->linkage;
		break;
	case BTF_KIND_FUNC:
		out->type = btf_global(kd->btf, r.mod, t->type);
		out->linkage = out->vlen;
		out->vlen = 0;
		break;
	case BTF_KIND_DECL_TAG:
		out->type = btf_global(kd->btf, r.mod, t->type);
		out->component_idx = btf_decl_tag(t)->component_idx;
		break;
	default: /* PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC_PROTO, TYPE_TAG, FWD */
		out->type = btf_global(kd->btf, r.mod, t->type);
		break;
	}
	return 0;
}

int kvm_btf_member(kvm_t *kd, unsigned id, unsigned i, struct kvm_btf_member *out)
{
	struct btf_ref r;
	const struct btf_type *t;

	if (btf_get(kd, id, &r) != 0)
		return -1;
	t = r.t;
	if (i >= btf_vlen(t)) {
		kvm_err(kd, EINVAL, "BTF type id %u has %u members, not %u", id,
			btf_vlen(t), i + 1);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	switch (btf_kind(t)) {
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: {
		const struct btf_member *m = btf_members(t) + i;
		out->name = btf_str(r.b, m->name_off);
		out->type = btf_global(kd->btf, r.mod, m->type);
		out->bit_offset = btf_member_bit_offset(t, i);
		out->bit_size = btf_member_bitfield_size(t, i);
		break;
	}
	case BTF_KIND_ENUM: {
		const struct btf_enum *e = btf_enum(t) + i;
		out->name = btf_str(r.b, e->name_off);
		out->value = btf_kflag(t) ? (int64_t)(int32_t)e->val : (int64_t)(uint32_t)e->val;
		break;
	}
	case BTF_KIND_ENUM64: {
		const struct btf_enum64 *e = btf_enum64(t) + i;
		out->name = btf_str(r.b, e->name_off);
		out->value = (int64_t)btf_enum64_value(e);
		break;
	}
	case BTF_KIND_FUNC_PROTO: {
		const struct btf_param *p = btf_params(t) + i;
		out->name = btf_str(r.b, p->name_off);
		out->type = btf_global(kd->btf, r.mod, p->type);
		break;
	}
	case BTF_KIND_DATASEC: {
		const struct btf_var_secinfo *v = btf_var_secinfos(t) + i;
		out->type = btf_global(kd->btf, r.mod, v->type);
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
const char *kvm_btf_module(kvm_t *kd, unsigned id)
{
	(void)id;
	no_btf(kd);
	return NULL;
}
const char *kvm_btf_skipped(kvm_t *kd)
{
	no_btf(kd);
	return NULL;
}
int kvm_btf_available(void) { return 0; }

#endif /* HAVE_BTF */
