/*
 * test_kvm.c - the libkvm contract through the C API, including the cases
 * of FreeBSD's own libkvm test suite that apply.  Prints TAP; exits 1 on
 * any failure.
 *
 * usage: test_kvm EXE CORE CORE32 TEXTFILE INT_VALUE STRING_VALUE
 *   INT_VALUE / STRING_VALUE: what the program printed for kvm_t_int and
 *   kvm_t_str before it was dumped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm.h"

static int failures, count;

static void check(int ok, const char *what)
{
	count++;
	printf("%sok %d - %s\n", ok ? "" : "not ", count, what);
	if (!ok)
		failures++;
}

int main(int argc, char **argv)
{
	const char *exe, *core, *core32, *text;
	char errbuf[KVM_ERRBUF_SIZE];
	struct nlist nl[4];
	struct kvm_nlist nl2[2];
	kvm_t *kd;
	int value = 0;
	char str[64];

	if (argc != 7) {
		fprintf(stderr, "usage: %s EXE CORE CORE32 TEXTFILE INT STRING\n", argv[0]);
		return 2;
	}
	exe = argv[1];
	core = argv[2];
	core32 = argv[3];
	text = argv[4];

	/* FreeBSD suite: NULL handles. */
	errno = 0;
	check(kvm_close(NULL) == -1 && errno == EINVAL, "kvm_close(NULL) is -1/EINVAL");
	check(strcmp(kvm_geterr(NULL), "") == 0, "kvm_geterr(NULL) is empty");

	/* FreeBSD suite: failures leave a message in errbuf and return NULL. */
	errbuf[0] = '\0';
	check(kvm_openfiles(exe, "/nonexistent/core", NULL, O_RDONLY, errbuf) == NULL &&
	      errbuf[0] != '\0', "nonexistent corefile: NULL and errbuf set");
	errbuf[0] = '\0';
	check(kvm_openfiles("/nonexistent/exe", core, NULL, O_RDONLY, errbuf) == NULL &&
	      strstr(errbuf, "/nonexistent/exe") != NULL, "nonexistent execfile: NULL and errbuf names it");
	errbuf[0] = '\0';
	check(kvm_openfiles(exe, text, NULL, O_RDONLY, errbuf) == NULL &&
	      strstr(errbuf, "is not a kernel core file") != NULL, "text file as corefile refused");
	errbuf[0] = '\0';
	check(kvm_openfiles(text, core, NULL, O_RDONLY, errbuf) == NULL &&
	      strstr(errbuf, "not a namelist") != NULL, "text file as execfile refused");
	errbuf[0] = '\0';
	check(kvm_openfiles(exe, core, NULL, O_WRONLY, errbuf) == NULL &&
	      strcmp(errbuf, "illegal flag 0x1 to kvm_open()") == 0, "O_WRONLY refused");

	/* Data model, as illumos words it. */
	errbuf[0] = '\0';
	snprintf(str, sizeof(str), "is a 32-bit core file - cannot examine with %d-bit libkvm",
		 (int)(sizeof(void *) * 8));
	check(kvm_openfiles(exe, core32, NULL, O_RDONLY, errbuf) == NULL &&
	      strstr(errbuf, str) != NULL, "32-bit core refused by a 64-bit libkvm");

	/* kvm_open with errstr NULL: no message printed (checked by the caller on stderr). */
	check(kvm_open(exe, "/nonexistent/quiet", NULL, O_RDONLY, NULL) == NULL,
	      "kvm_open(errstr NULL) fails quietly");
	/* kvm_open with errstr: "<errstr>: <message>\n" on stderr (checked by the caller). */
	check(kvm_open(exe, "/nonexistent/loud", NULL, O_RDONLY, "ctest") == NULL,
	      "kvm_open(errstr) fails and prints");

	/* A real core: errbuf untouched after success. */
	strcpy(errbuf, "untouched");
	kd = kvm_openfiles(exe, core, NULL, O_RDONLY, errbuf);
	check(kd != NULL && strcmp(errbuf, "untouched") == 0, "open succeeds; errbuf untouched");
	if (kd == NULL) {
		printf("# %s\n", errbuf);
		return 1;
	}
	check(strcmp(kvm_namelist(kd), exe) == 0, "kvm_namelist is the namelist path");

	/* kvm_nlist: the number of unresolved entries; missing entries zeroed. */
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "kvm_t_int";
	nl[1].n_name = "no_such_symbol";
	nl[1].n_value = 1234;
	nl[2].n_name = "kvm_t_str";
	check(kvm_nlist(kd, nl) == 1, "kvm_nlist returns the count of missing names");
	check(nl[1].n_value == 0 && nl[1].n_type == 0, "missing entry zeroed");
	check(nl[0].n_type == (N_DATA | N_EXT), "n_type of a global data symbol");
	memset(nl2, 0, sizeof(nl2));
	nl2[0].n_name = "kvm_t_int";
	check(kvm_nlist2(kd, nl2) == 0 && nl2[0].n_value == nl[0].n_value, "kvm_nlist2 agrees");

	/* Reads return the count. */
	check(kvm_read(kd, nl[0].n_value, &value, sizeof(value)) == (ssize_t)sizeof(value) &&
	      value == atoi(argv[5]), "kvm_read of kvm_t_int equals the program's value");
	memset(str, 0, sizeof(str));
	check(kvm_read(kd, nl[2].n_value, str, strlen(argv[6]) + 1) == (ssize_t)strlen(argv[6]) + 1 &&
	      strcmp(str, argv[6]) == 0, "kvm_read of kvm_t_str equals the program's string");
	check(kvm_read(kd, nl[0].n_value, &value, 0) == 0, "zero-length read returns 0");

	/* Failures return -1, and their message survives a later success. */
	check(kvm_read(kd, 0x10, &value, 4) == -1 && strstr(kvm_geterr(kd), "0x10") != NULL,
	      "unmapped read is -1 with a message naming the address");
	check(kvm_read(kd, nl[0].n_value, &value, 4) == 4 && strstr(kvm_geterr(kd), "0x10") != NULL,
	      "failed call's message survives a later successful read");

	/* FreeBSD suite: a read-only handle refuses writes, even empty ones. */
	check(kvm_write(kd, 0, NULL, 0) == -1 && kvm_geterr(kd)[0] != '\0',
	      "kvm_write on a read-only handle is -1 with a message");
	check(kvm_write(kd, nl[0].n_value, &value, 4) == -1, "kvm_write of data refused read-only");
	check(kvm_native(kd) == 1, "kvm_native for a native core");
	check(kvm_close(kd) == 0, "kvm_close returns 0");

	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
