/*
 * live_probe.c - the shim against a live Linux kernel (/proc/kcore and
 * /proc/kallsyms).  Built static and run as root inside a QEMU guest by
 * tests/test_live_kernel.py (through fixtures/kernel/live_guest.py); the
 * host checks what it prints against the same boot's /proc/version,
 * `uname -r` and /proc/kallsyms.
 *
 * Output: one "key=value" line per fact.  Strings are escaped: \\ \n \r \t
 * and \xNN for other bytes outside printable ASCII.  Messages that kvm_open
 * prints itself (its errstr argument) go to stderr, which the guest
 * captures with stdout.
 *
 * Built with -DHAVE_BTF (and libbpf) it also asks the type questions
 * kvm_type_size / kvm_member_offset answer from the live kernel's own
 * /sys/kernel/btf/vmlinux and /sys/kernel/btf/<module>; the host checks
 * them against bpftool's reading of the same kernel's BTF.
 *
 * usage: live_probe [--kptr-restrict]
 *   Needs root and kptr_restrict <= 1.  --kptr-restrict also sets
 *   kernel.kptr_restrict to 2 for a while (then back to its value): only
 *   for a throw-away guest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvm.h"
#include "kvm_ext.h"

#define UTS_RELEASE_OFFSET 130 /* new_utsname: sysname[65], nodename[65], release[65] */
#define UTS_LEN 65
#define MODULE_NAME_OFFSET 24 /* struct module: state (4, padded to 8), list (16), name */
#define MODULE_NAME_LEN 56
#define UNMAPPED_ADDR 0x1000UL
#define KPTR_RESTRICT "/proc/sys/kernel/kptr_restrict"

static void put_str(const char *key, const char *s, size_t n)
{
	size_t i;

	printf("%s=", key);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\')
			fputs("\\\\", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c > 0x7e)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('\n');
}

/* A NUL-terminated string of at most max bytes in buf. */
static void put_cstr(const char *key, const char *buf, size_t max)
{
	const char *nul = memchr(buf, '\0', max);
	put_str(key, buf, nul ? (size_t)(nul - buf) : max);
}

static void put_err(const char *prefix, kvm_t *kd)
{
	char key[128];

	snprintf(key, sizeof(key), "%s.errno", prefix);
	printf("%s=%d\n", key, kvm_errno(kd));
	snprintf(key, sizeof(key), "%s.err", prefix);
	put_cstr(key, kvm_geterr(kd), strlen(kvm_geterr(kd)));
}

static void sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* The guest's own truth, not the shim's: physical _text from /proc/iomem. */
static void put_iomem_kernel_code(void)
{
	char line[256];
	FILE *f = fopen("/proc/iomem", "r");

	if (f == NULL) {
		printf("truth.kernel_code=unavailable\n");
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line;
		unsigned long long start;
		while (*p == ' ')
			p++;
		if (strstr(p, ": Kernel code") != NULL &&
		    sscanf(p, "%llx-", &start) == 1) {
			printf("truth.kernel_code=0x%llx\n", start);
			break;
		}
	}
	fclose(f);
}

static uint64_t le(const unsigned char *b, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | b[n];
	return v;
}

/* kcore's own program headers and notes, read without the shim. */
static void put_kcore_headers(void)
{
	unsigned char eh[64], ph[56];
	struct stat st;
	uint64_t phoff;
	unsigned i, phnum, phentsize;
	int fd = open("/proc/kcore", O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0 || pread(fd, eh, sizeof(eh), 0) != (ssize_t)sizeof(eh)) {
		printf("kcore.headers=unavailable errno=%d\n", errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	printf("kcore.size=0x%llx\n", (unsigned long long)st.st_size);
	phoff = le(eh + 32, 8);
	phentsize = (unsigned)le(eh + 54, 2);
	phnum = (unsigned)le(eh + 56, 2);
	printf("kcore.phnum=%u\n", phnum);
	for (i = 0; i < phnum && phentsize >= sizeof(ph); i++) {
		uint64_t off, filesz;
		if (pread(fd, ph, sizeof(ph), (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof(ph))
			break;
		off = le(ph + 8, 8);
		filesz = le(ph + 32, 8);
		printf("kcore.phdr=%u 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx\n",
		       (unsigned)le(ph, 4), (unsigned long long)le(ph + 16, 8),
		       (unsigned long long)le(ph + 24, 8), (unsigned long long)off,
		       (unsigned long long)filesz, (unsigned long long)le(ph + 40, 8));
		if (le(ph, 4) == 4 && filesz < (1u << 20)) { /* PT_NOTE: the names */
			unsigned char *notes = malloc((size_t)filesz), *q;
			if (notes != NULL && pread(fd, notes, (size_t)filesz, (off_t)off) == (ssize_t)filesz) {
				for (q = notes; q + 12 <= notes + filesz;) {
					uint32_t namesz = (uint32_t)le(q, 4), descsz = (uint32_t)le(q + 4, 4);
					if (namesz > filesz || descsz > filesz)
						break;
					printf("kcore.note=%.*s %u %u\n", namesz ? (int)namesz - 1 : 0,
					       (const char *)q + 12, (unsigned)le(q + 8, 4), descsz);
					q += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
				}
			}
			free(notes);
		}
	}
	close(fd);
}

/* Every check on one open handle; keys start with prefix. */
/* Type questions: "TYPE" for a size, "TYPE|MEMBER" for an offset. */
static const char *const type_questions[] = {
	"struct task_struct", "struct task_struct|pid", "struct task_struct|comm",
	"struct task_struct|tasks", "struct task_struct|se.vruntime",
	"struct module", "struct module|name", "struct module|list",
	"struct list_head", "struct new_utsname|release", "struct uts_namespace|name",
	"struct printk_ringbuffer", "struct prb_desc_ring|count_bits",
	/* qemu_fw_cfg's own type, only in /sys/kernel/btf/qemu_fw_cfg */
	"struct fw_cfg_sysfs_entry", "struct fw_cfg_sysfs_entry|name",
	"struct fw_cfg_sysfs_entry|list",
	"struct no_such_type_here", "struct task_struct|no_such_member",
	NULL,
};

/* Each question as p.btf.I.question=..., its answer p.btf.I.value=N
 * (and .errno / .err when it is -1). */
static void put_types(kvm_t *kd, const char *p)
{
	char q[128], key[64];
	size_t i;

	for (i = 0; type_questions[i] != NULL; i++) {
		char *bar;
		ssize_t v;
		snprintf(q, sizeof(q), "%s", type_questions[i]);
		bar = strchr(q, '|');
		if (bar != NULL) {
			*bar = '\0';
			v = kvm_member_offset(kd, q, bar + 1);
		} else {
			v = kvm_type_size(kd, q);
		}
		printf("%s.btf.%zu.question=%s\n", p, i, type_questions[i]);
		printf("%s.btf.%zu.value=%zd\n", p, i, v);
		if (v < 0) {
			snprintf(key, sizeof(key), "%s.btf.%zu", p, i);
			put_err(key, kd);
		}
	}
}

static void probe(kvm_t *kd, const char *p)
{
	struct nlist nl[] = {
		{ "linux_banner", 0, 0, 0, 0 },
		{ "init_uts_ns", 0, 0, 0, 0 },
		{ "jiffies_64", 0, 0, 0, 0 },
		{ "_stext", 0, 0, 0, 0 },
		{ "__this_module", 0, 0, 0, 0 },
		{ NULL, 0, 0, 0, 0 },
	};
	char info[1 << 14], key[128], buf[512];
	unsigned long banner, uts, jif, stext;
	uint64_t this_module = 0, j1 = 0, j2 = 0, pa_banner, pa_stext;
	size_t i, n, nthis = 0;
	ssize_t r;
	int rc;
	char *line, *save;

	/* What the shim made of the core (format=kcore, live=1, the segments). */
	kvm_info(kd, info, sizeof(info));
	for (line = strtok_r(info, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		printf("%s.info.%s\n", p, line);

	rc = kvm_nlist(kd, nl);
	printf("%s.nlist_rc=%d\n", p, rc);
	for (i = 0; nl[i].n_name != NULL; i++)
		printf("%s.sym.%s=0x%lx type=0x%x\n", p, nl[i].n_name, nl[i].n_value,
		       nl[i].n_type);
	banner = nl[0].n_value;
	uts = nl[1].n_value;
	jif = nl[2].n_value;
	stext = nl[3].n_value;

	/* __this_module is defined once per module: find qemu_fw_cfg's. */
	n = kvm_symcount(kd);
	printf("%s.symcount=%zu\n", p, n);
	for (i = 0; i < n; i++) {
		const char *name, *module;
		uint64_t value;
		unsigned char type;
		char letter;
		if (kvm_symbol(kd, i, &name, &value, &type, &letter, &module) != 0)
			continue;
		if (strcmp(name, "__this_module") != 0)
			continue;
		nthis++;
		if (module != NULL && strcmp(module, "qemu_fw_cfg") == 0) {
			this_module = value;
			printf("%s.fw_cfg.this_module=0x%llx letter=%c\n", p,
			       (unsigned long long)value, letter);
		}
	}
	printf("%s.this_module_count=%zu\n", p, nthis);

	memset(buf, 0, sizeof(buf));
	r = kvm_read(kd, banner, buf, sizeof(buf) - 1);
	printf("%s.banner_rc=%zd\n", p, r);
	snprintf(key, sizeof(key), "%s.banner", p);
	put_cstr(key, buf, r > 0 ? (size_t)r : 0);

	memset(buf, 0, sizeof(buf));
	r = kvm_read(kd, uts + UTS_RELEASE_OFFSET, buf, UTS_LEN);
	printf("%s.release_rc=%zd\n", p, r);
	snprintf(key, sizeof(key), "%s.release", p);
	put_cstr(key, buf, r > 0 ? (size_t)r : 0);

	if (this_module != 0) {
		uint32_t state = 0xffffffff;
		memset(buf, 0, sizeof(buf));
		r = kvm_read(kd, this_module + MODULE_NAME_OFFSET, buf, MODULE_NAME_LEN);
		printf("%s.module_name_rc=%zd\n", p, r);
		snprintf(key, sizeof(key), "%s.module_name", p);
		put_cstr(key, buf, r > 0 ? (size_t)r : 0);
		r = kvm_read(kd, this_module, &state, sizeof(state));
		printf("%s.module_state=%u rc=%zd\n", p, state, r); /* 0 = MODULE_STATE_LIVE */
	}

	/* A live kernel moves on: jiffies read 200 ms apart differ. */
	r = kvm_read(kd, jif, &j1, sizeof(j1));
	sleep_ms(200);
	if (r == (ssize_t)sizeof(j1))
		r = kvm_read(kd, jif, &j2, sizeof(j2));
	printf("%s.jiffies_rc=%zd\n", p, r);
	printf("%s.jiffies1=%llu\n", p, (unsigned long long)j1);
	printf("%s.jiffies2=%llu\n", p, (unsigned long long)j2);

	printf("%s.kerndisp=0x%llx\n", p, (unsigned long long)kvm_kerndisp(kd));
	printf("%s.native=%d\n", p, kvm_native(kd));

	/* kcore needs no translation for reads, but the physical side exists. */
	pa_stext = kvm_physaddr(kd, NULL, stext);
	printf("%s.physaddr._stext=0x%llx\n", p, (unsigned long long)pa_stext);
	if (pa_stext == (uint64_t)-1) {
		snprintf(key, sizeof(key), "%s.physaddr._stext", p);
		put_err(key, kd);
	}
	pa_banner = kvm_physaddr(kd, NULL, banner);
	printf("%s.physaddr.linux_banner=0x%llx\n", p, (unsigned long long)pa_banner);
	if (pa_banner != (uint64_t)-1) {
		memset(buf, 0, sizeof(buf));
		r = kvm_pread(kd, pa_banner, buf, sizeof(buf) - 1);
		printf("%s.banner_phys_rc=%zd\n", p, r);
		snprintf(key, sizeof(key), "%s.banner_phys", p);
		put_cstr(key, buf, r > 0 ? (size_t)r : 0);
		if (r < 0) {
			snprintf(key, sizeof(key), "%s.banner_phys", p);
			put_err(key, kd);
		}
	} else {
		snprintf(key, sizeof(key), "%s.physaddr.linux_banner", p);
		put_err(key, kd);
	}
	pa_banner = kvm_physaddr(kd, NULL, UNMAPPED_ADDR);
	printf("%s.physaddr.unmapped=0x%llx\n", p, (unsigned long long)pa_banner);
	snprintf(key, sizeof(key), "%s.physaddr.unmapped", p);
	put_err(key, kd);

	/* Errors: an unmapped address, and a write to a read-only handle. */
	r = kvm_read(kd, UNMAPPED_ADDR, buf, 8);
	printf("%s.unmapped.rc=%zd\n", p, r);
	snprintf(key, sizeof(key), "%s.unmapped", p);
	put_err(key, kd);
	printf("%s.unmapped.erraddr=0x%llx\n", p, (unsigned long long)kvm_erraddr(kd));

	/* The bytes already there: harmless even if the write went through. */
	r = kvm_read(kd, banner, buf, 16);
	if (r == 16)
		r = kvm_write(kd, banner, buf, 16);
	printf("%s.write.rc=%zd\n", p, r);
	snprintf(key, sizeof(key), "%s.write", p);
	put_err(key, kd);

	put_types(kd, p);
	printf("%s.close=%d\n", p, kvm_close(kd));
}

static kvm_t *open_and_report(const char *p, const char *nl, const char *core,
			      int flag, const char *errstr)
{
	kvm_t *kd;

	errno = 0;
	kd = kvm_open(nl, core, NULL, flag, errstr);
	if (kd == NULL) {
		int e = errno;
		printf("%s.open=fail\n", p);
		printf("%s.open.errno=%d\n", p, e);
		fflush(stdout);
	} else {
		printf("%s.open=ok\n", p);
	}
	return kd;
}

/* kvm_openfiles's errbuf, for a failure the caller expects. */
static void openfiles_fail(const char *p, const char *nl, const char *core,
			   int flag)
{
	char errbuf[KVM_ERRBUF_SIZE], key[128];
	kvm_t *kd;

	errbuf[0] = '\0';
	errno = 0;
	kd = kvm_openfiles(nl, core, NULL, flag, errbuf);
	printf("%s.openfiles=%s\n", p, kd == NULL ? "fail" : "ok");
	printf("%s.openfiles.errno=%d\n", p, kd == NULL ? errno : 0);
	snprintf(key, sizeof(key), "%s.openfiles.errbuf", p);
	put_cstr(key, errbuf, sizeof(errbuf));
	if (kd != NULL)
		kvm_close(kd);
}

/* kptr_restrict=2 hides kallsyms addresses even from root; a non-root
 * user cannot open /proc/kcore at all. */
static void probe_restricted(void)
{
	char old[32] = "";
	pid_t pid;
	int status = 0;
	FILE *f = fopen(KPTR_RESTRICT, "r");

	if (f == NULL || fgets(old, sizeof(old), f) == NULL) {
		printf("kptr2.set=fail errno=%d\n", errno);
		if (f != NULL)
			fclose(f);
		return;
	}
	fclose(f);
	if (write_text(KPTR_RESTRICT, "2\n") != 0) {
		printf("kptr2.set=fail errno=%d\n", errno);
		return;
	}
	printf("kptr2.set=ok\n");
	openfiles_fail("kptr2", NULL, NULL, O_RDONLY);
	fflush(stdout);

	pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0) {
			printf("nonroot.setuid=fail errno=%d\n", errno);
			fflush(stdout);
			_exit(1);
		}
		printf("nonroot.uid=%d\n", (int)getuid());
		openfiles_fail("nonroot", NULL, NULL, O_RDONLY);
		openfiles_fail("nonroot_syms", "/proc/kallsyms", "/proc/kcore", O_RDONLY);
		fflush(stdout);
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	printf("nonroot.status=%d\n", pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	printf("kptr2.restore=%s\n", write_text(KPTR_RESTRICT, old) == 0 ? "ok" : "fail");
}

int main(int argc, char **argv)
{
	int restrict_test = argc > 1 && strcmp(argv[1], "--kptr-restrict") == 0;
	kvm_t *kd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("probe.uid=%d\n", (int)getuid());
	put_iomem_kernel_code();
	put_kcore_headers();

	/* All defaults: /proc/kcore and /proc/kallsyms. */
	kd = open_and_report("default", NULL, NULL, O_RDONLY, "live");
	if (kd != NULL)
		probe(kd, "default");

	/* The same files named explicitly (the core then is tried with mmap). */
	kd = open_and_report("explicit", "/proc/kallsyms", "/proc/kcore", O_RDONLY,
			     "live-explicit");
	if (kd != NULL)
		probe(kd, "explicit");

	/* A flag kvm_open refuses: the errstr prints it, errno says EINVAL. */
	kd = open_and_report("wronly", NULL, NULL, O_WRONLY, "live-wronly");
	if (kd != NULL)
		kvm_close(kd);
	openfiles_fail("wronly", NULL, NULL, O_WRONLY);

	/* Read-write on the live kernel: reads work, kcore cannot be written. */
	kd = open_and_report("rdwr", NULL, NULL, O_RDWR, "live-rdwr");
	if (kd != NULL) {
		struct nlist nl[] = { { "linux_banner", 0, 0, 0, 0 }, { NULL, 0, 0, 0, 0 } };
		char buf[16];
		ssize_t r = -1;
		if (kvm_nlist(kd, nl) == 0)
			r = kvm_read(kd, nl[0].n_value, buf, sizeof(buf));
		printf("rdwr.read.rc=%zd\n", r);
		if (r == (ssize_t)sizeof(buf)) /* the bytes already there */
			r = kvm_write(kd, nl[0].n_value, buf, sizeof(buf));
		printf("rdwr.write.rc=%zd\n", r);
		put_err("rdwr.write", kd);
		kvm_close(kd);
	}

	if (restrict_test)
		probe_restricted();
	{
		struct rusage ru;
		if (getrusage(RUSAGE_SELF, &ru) == 0) /* what the guest must hold */
			printf("probe.maxrss_kb=%ld\n", ru.ru_maxrss);
	}
	printf("probe.done=1\n");
	return 0;
}
