/*
 * split_parts.c - open the files of a makedumpfile --split dump as one
 * handle through kvm_open_opts (parts, nparts), as a C user would.
 *
 *   split_parts KALLSYMS PART... -- prints "ok"/"not ok" lines (TAP-like)
 *
 * Checks: the set opens and reads linux_banner ("Linux version ..."); each
 * part's first pages read the same through the set as through that part
 * alone; a page of another part fails in the part alone with EFAULT; parts
 * together with a corefile are refused (EINVAL).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm.h"
#include "kvm_ext.h"

static int failures, count;

static void check(int ok, const char *what)
{
	count++;
	if (!ok)
		failures++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what);
}

int main(int argc, char **argv)
{
	struct kvm_open_opts o;
	struct kvm_nlist nl[2];
	char errbuf[KVM_ERRBUF_SIZE], banner[32];
	const char *const *parts = (const char *const *)argv + 2;
	size_t nparts = (size_t)argc - 2, i;
	kvm_t *kd, *one;

	if (argc < 4) {
		fprintf(stderr, "usage: %s KALLSYMS PART...\n", argv[0]);
		return 2;
	}
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.parts = parts;
	o.nparts = nparts;
	kd = kvm_open_opts(argv[1], NULL, NULL, O_RDONLY, NULL, errbuf, &o);
	check(kd != NULL, "the parts open as one dump");
	if (kd == NULL) {
		printf("# %s\n", errbuf);
		return 1;
	}
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "linux_banner";
	check(kvm_nlist2(kd, nl) == 0 && nl[0].n_value != 0, "linux_banner is in the namelist");
	check(kvm_read2(kd, nl[0].n_value, banner, 14) == 14 &&
	      memcmp(banner, "Linux version ", 14) == 0, "linux_banner reads through the set");

	for (i = 0; i < nparts; i++) {
		char info[8192], *line, path[4096];
		unsigned long long start = 0, end = 0, pfn;
		int same = 1, found = 0, other = 0;

		one = kvm_open_opts(argv[1], parts[i], NULL, O_RDONLY, NULL, errbuf, NULL);
		check(one != NULL, "a part opens alone");
		if (one == NULL)
			continue;
		kvm_info(kd, info, sizeof(info));
		for (line = strstr(info, "part="); line != NULL; line = strstr(line + 1, "part=")) {
			if (sscanf(line, "part=%llx %llx %4095s", &start, &end, path) == 3 &&
			    strcmp(path, parts[i]) == 0) {
				found = 1;
				break;
			}
		}
		check(found && start < end, "kvm_info lists the part's pfn range");
		for (pfn = start; found && pfn < end && pfn < start + 512; pfn++) {
			unsigned char a[64], b[64];
			ssize_t ra = kvm_pread(kd, pfn * 4096, a, sizeof(a));
			ssize_t rb = kvm_pread(one, pfn * 4096, b, sizeof(b));
			if (ra != rb || (ra == (ssize_t)sizeof(a) && memcmp(a, b, sizeof(a)) != 0))
				same = 0;
		}
		check(same, "the part's pages read the same alone and in the set");
		for (pfn = 0; found && pfn < (1ULL << 20) && !other; pfn++) {
			unsigned char a[8];
			if (pfn >= start && pfn < end)
				continue;
			if (kvm_pread(kd, pfn * 4096, a, sizeof(a)) != (ssize_t)sizeof(a))
				continue; /* not a dumped page */
			other = kvm_pread(one, pfn * 4096, a, sizeof(a)) == -1 &&
				kvm_errno(one) == EFAULT &&
				strstr(kvm_geterr(one), "another part of a split dump") != NULL;
			if (!other) {
				printf("# pfn 0x%llx: %s\n", pfn, kvm_geterr(one));
				break;
			}
		}
		check(other, "a page of another part: EFAULT, in another part of a split dump");
		kvm_close(one);
	}
	kvm_close(kd);

	kd = kvm_open_opts(argv[1], parts[0], NULL, O_RDONLY, NULL, errbuf, &o);
	check(kd == NULL && errno == EINVAL, "parts and a corefile together are refused");
	printf("1..%d\n", count);
	return failures != 0;
}
