/*
 * harness.c - libFuzzer targets driving the public C API end to end: the
 * input becomes a file (a memfd), kvm_open_opts opens it, and kvm_nlist,
 * kvm_read, kvm_pread, kvm_info and the rest read whatever it offers.
 * One source, one target per build (-DFUZZ_<NAME>, see fuzz/Makefile.inc):
 *
 *   elf       the input is an ELF core (kernel vmcore or process core)
 *   kdump     a kdump-compressed dump, plain or flattened
 *   images    a memory image: its first byte picks how it is opened (format
 *             probed, lime, avml or raw), the rest is the file
 *   namelist  a namelist (ELF or text) over a fixed small raw image
 *   kallsyms  an ELF vmcore opened without a namelist: its symbols come
 *             from the kallsyms tables in the dump, found by VMCOREINFO
 *   pgtable   an ELF vmcore opened with a fixed namelist: reads at every
 *             VMCOREINFO symbol and namelist symbol walk the page tables
 *   btf       kernel BTF: the input is placed in a synthetic kernel core at
 *             __start_BTF and every type and member is asked for
 *
 * Every path: a failure is fine, a crash, leak, hang or sanitizer report is
 * a finding.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm.h"
#include "kvm_btf.h"
#include "kvm_ext.h"

#define READ_MAX 8192

struct memfile {
	int fd;
	char path[64];
};

static struct memfile core_file;
static struct memfile names_file __attribute__((unused)); /* the targets given a namelist */

static void memfile_init(struct memfile *m, const char *name)
{
	if (m->fd > 0)
		return;
	m->fd = memfd_create(name, 0);
	if (m->fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(m->path, sizeof(m->path), "/proc/self/fd/%d", m->fd);
}

/* The file's contents become exactly data. */
static void memfile_put(struct memfile *m, const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(m->fd, 0) != 0)
		abort();
	while (done < size) {
		ssize_t w = pwrite(m->fd, data + done, size - done, (off_t)done);
		if (w <= 0)
			abort();
		done += (size_t)w;
	}
}

static kvm_t *open_core(const char *namelist, const char *format, unsigned flags)
{
	struct kvm_open_opts o;
	char errbuf[KVM_ERRBUF_SIZE];

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.flags = flags | KVM_OPT_FOREIGN;
	o.format = format;
	o.cache_pages = 16; /* evictions happen on small inputs too */
	return kvm_open_opts(namelist, core_file.path, NULL, O_RDONLY, NULL, errbuf, &o);
}

static unsigned char buf[READ_MAX];

/* Read around every "SYMBOL(name)=hex" of the dump's VMCOREINFO. */
static void read_vmcoreinfo_symbols(kvm_t *kd)
{
	static char text[1 << 16];
	size_t n = kvm_vmcoreinfo(kd, text, sizeof(text));
	char *p = text, *end;
	int count = 0;

	if (n == 0)
		return;
	text[sizeof(text) - 1] = '\0';
	while ((p = strstr(p, "SYMBOL(")) != NULL && count < 32) {
		char *eq = strchr(p, '=');
		unsigned long long va;
		if (eq == NULL)
			break;
		va = strtoull(eq + 1, &end, 16);
		(void)kvm_read(kd, (unsigned long)va, buf, 256);
		(void)kvm_physaddr(kd, NULL, (uintptr_t)va);
		p = end;
		count++;
	}
}

/* What every target does with a handle. */
static void exercise(kvm_t *kd)
{
	static const char *const names[] = {
		"jiffies", "jiffies_64", "init_task", "linux_banner", "init_uts_ns",
		"_mp_maxcpus", "main", "_start", "kvm_t_int", "_stext",
	};
	struct kvm_nlist nl[sizeof(names) / sizeof(names[0]) + 1];
	static const uint64_t pas[] = { 0, 0xff8, 0x1000, 0x9f000, 0x100000,
					0x1000000, 0x3fff000 };
	char text[4096];
	size_t i, nsyms;

	(void)kvm_info(kd, text, sizeof(text));
	memset(nl, 0, sizeof(nl));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		nl[i].n_name = names[i];
	if (kvm_nlist2(kd, nl) >= 0) {
		for (i = 0; nl[i].n_name != NULL; i++)
			if (nl[i].n_value != 0)
				(void)kvm_read2(kd, nl[i].n_value, buf, 512);
	}
	for (i = 0; i < sizeof(pas) / sizeof(pas[0]); i++)
		(void)kvm_pread(kd, pas[i], buf, i % 2 ? 16 : sizeof(buf));
	nsyms = kvm_symcount(kd);
	for (i = 0; i < nsyms && i < 16; i++) {
		const char *name, *module;
		uint64_t value;
		unsigned char type;
		char letter;
		size_t at = i < 8 ? i : nsyms - 1 - (i - 8);
		if (kvm_symbol(kd, at, &name, &value, &type, &letter, &module) == 0)
			(void)kvm_read(kd, (unsigned long)value, buf, 64);
	}
	read_vmcoreinfo_symbols(kd);
}

#if defined(FUZZ_PGTABLE) || defined(FUZZ_BTF)
/* A text namelist for the targets whose input is not the namelist. */
static void names_put(const char *text)
{
	memfile_init(&names_file, "namelist");
	memfile_put(&names_file, (const uint8_t *)text, strlen(text));
}
#endif

#if defined(FUZZ_BTF)
#define BTF_VA 0xffffffff82000000ULL
#define BTF_PA 0x2000000ULL

/* An x86-64 ELF kernel core: one PT_LOAD holding the input at BTF_VA. */
static void put_btf_core(const uint8_t *data, size_t size)
{
	static unsigned char *img;
	static size_t cap;
	size_t hdr = 64 + 56, total = hdr + size;
	unsigned char *e, *p;

	if (total > cap) {
		free(img);
		img = malloc(total);
		cap = total;
		if (img == NULL)
			abort();
	}
	memset(img, 0, hdr);
	e = img;
	memcpy(e, "\177ELF\2\1\1", 7);
	e[16] = 4;  /* ET_CORE */
	e[18] = 62; /* EM_X86_64 */
	e[20] = 1;
	e[32] = 64;  /* e_phoff */
	e[52] = 64;  /* e_ehsize */
	e[54] = 56;  /* e_phentsize */
	e[56] = 1;   /* e_phnum */
	p = img + 64;
	p[0] = 1; /* PT_LOAD */
	p[4] = 4; /* PF_R */
	{
		uint64_t off = hdr, va = BTF_VA, pa = BTF_PA, sz = size;
		memcpy(p + 8, &off, 8);
		memcpy(p + 16, &va, 8);
		memcpy(p + 24, &pa, 8);
		memcpy(p + 32, &sz, 8);
		memcpy(p + 40, &sz, 8);
	}
	memcpy(img + hdr, data, size);
	memfile_put(&core_file, img, total);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kvm_t *kd;

	memfile_init(&core_file, "core");
#if defined(FUZZ_ELF)
	memfile_put(&core_file, data, size);
	kd = open_core(NULL, "elf", size & 1 ? KVM_OPT_PREAD : 0);
#elif defined(FUZZ_KDUMP)
	memfile_put(&core_file, data, size);
	kd = open_core(NULL, "kdump", size & 1 ? KVM_OPT_PREAD : 0);
#elif defined(FUZZ_IMAGES)
	{
		static const char *const fmt[] = { NULL, "lime", "avml", "raw" };
		if (size < 1)
			return 0;
		memfile_put(&core_file, data + 1, size - 1);
		kd = open_core(NULL, fmt[data[0] & 3],
			       data[0] & 4 ? KVM_OPT_PREAD | KVM_OPT_EXCLUDED_ZERO : 0);
	}
#elif defined(FUZZ_NAMELIST)
	{
		static int ready;
		if (!ready) {
			static unsigned char zero[16384];
			memfile_put(&core_file, zero, sizeof(zero));
			memfile_init(&names_file, "namelist");
			ready = 1;
		}
		memfile_put(&names_file, data, size);
		kd = open_core(names_file.path, "raw", 0);
	}
#elif defined(FUZZ_KALLSYMS)
	memfile_put(&core_file, data, size);
	kd = open_core(NULL, "elf-kernel", 0);
#elif defined(FUZZ_PGTABLE)
	{
		static int ready;
		if (!ready) {
			/* Names only: their values are read, never trusted. */
			names_put("ffffffff81000000 T _stext\n"
				  "ffffffff82a10000 D init_top_pgt\n"
				  "ffffffff82a079c0 D jiffies_64\n"
				  "ffffffff82161900 D linux_banner\n"
				  "ffff888000000000 A page_offset_base_guess\n");
			ready = 1;
		}
		memfile_put(&core_file, data, size);
		kd = open_core(NULL, "elf-kernel", 0);
		if (kd != NULL) {
			exercise(kd);
			kvm_close(kd);
		}
		kd = open_core(names_file.path, "elf-kernel", KVM_OPT_PREAD);
	}
#elif defined(FUZZ_BTF)
	{
		static int ready;
		char text[256];
		if (!ready) {
			memfile_init(&names_file, "namelist");
			ready = 1;
		}
		snprintf(text, sizeof(text),
			 "%016llx R __start_BTF\n%016llx R __stop_BTF\n",
			 (unsigned long long)BTF_VA,
			 (unsigned long long)(BTF_VA + size));
		names_put(text);
		put_btf_core(data, size);
		kd = open_core(names_file.path, "elf-kernel", 0);
		if (kd != NULL) {
			unsigned n = 0, id, i;
			if (kvm_btf_count(kd, &n) == 0) {
				for (id = 0; id < n && id < 4096; id++) {
					struct kvm_btf_type t;
					struct kvm_btf_member m;
					if (kvm_btf_type(kd, id, &t) != 0)
						continue;
					for (i = 0; i < t.vlen && i < 64; i++)
						(void)kvm_btf_member(kd, id, i, &m);
				}
				(void)kvm_btf_find(kd, "list_head", 4);
				(void)kvm_btf_find(kd, "task_struct", 0);
			}
		}
	}
#else
#error "define one FUZZ_<TARGET>"
#endif
	if (kd != NULL) {
		exercise(kd);
		kvm_close(kd);
	}
	return 0;
}
