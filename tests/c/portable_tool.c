/*
 * portable_tool.c - a libkvm tool written the way illumos and FreeBSD tools
 * are, using only what both platforms' <kvm.h> declare: kvm_open with an
 * errstr (the library prints its errors), kvm_nlist with a static struct
 * nlist array and n_name / n_value, kvm_read, kvm_close.  It must compile
 * unchanged against illumos's kvm.h, FreeBSD's kvm.h and pykvm's.
 *
 * Portable habits, as in the tools of both systems:
 *   - a missing symbol is found by its zeroed n_value, not by kvm_nlist's
 *     return value (illumos returns 0 even when names are missing; FreeBSD
 *     returns how many are missing);
 *   - addresses go to kvm_read as they come out of n_value (a long on
 *     illumos, an unsigned long on FreeBSD).
 *
 * usage: portable_tool [-N namelist] [-M core] symbol nbytes
 *
 * Prints "<symbol> 0x<address>:" and then nbytes as lowercase hex pairs,
 * 16 per line.  Exit status 0, 1 on a libkvm failure, 2 on bad usage.
 */
#include <sys/types.h>

#include <fcntl.h>
#include <kvm.h>
#include <limits.h>
#include <nlist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct nlist nl[] = {
	{ "placeholder" },
#define	X_SYMBOL	0
	{ NULL },
};

static const char *progname = "portable_tool";

int
main(int argc, char **argv)
{
	char *namelist = NULL, *core = NULL, *symbol;
	unsigned char *buf;
	long nbytes, i;
	kvm_t *kd;
	int arg = 1;

	while (arg + 1 < argc && argv[arg][0] == '-') {
		if (strcmp(argv[arg], "-N") == 0)
			namelist = argv[arg + 1];
		else if (strcmp(argv[arg], "-M") == 0)
			core = argv[arg + 1];
		else
			break;
		arg += 2;
	}
	if (argc - arg != 2) {
		(void) fprintf(stderr, "usage: %s [-N namelist] [-M core] symbol nbytes\n",
		    progname);
		return (2);
	}
	symbol = argv[arg];
	nbytes = strtol(argv[arg + 1], NULL, 0);
	if (nbytes <= 0 || nbytes > 65536)
		return (2);

	/* errstr: on failure the library itself prints "portable_tool: ..." */
	if ((kd = kvm_open(namelist, core, NULL, O_RDONLY, progname)) == NULL)
		return (1);

	nl[X_SYMBOL].n_name = symbol;
	if (kvm_nlist(kd, nl) == -1) {
		(void) fprintf(stderr, "%s: kvm_nlist failed\n", progname);
		(void) kvm_close(kd);
		return (1);
	}
	if (nl[X_SYMBOL].n_value == 0) {
		(void) fprintf(stderr, "%s: %s: symbol not found\n", progname, symbol);
		(void) kvm_close(kd);
		return (1);
	}

	if ((buf = malloc((size_t)nbytes)) == NULL) {
		(void) kvm_close(kd);
		return (1);
	}
	if (kvm_read(kd, nl[X_SYMBOL].n_value, buf, (size_t)nbytes) != nbytes) {
		(void) fprintf(stderr, "%s: cannot read %ld bytes at 0x%lx\n",
		    progname, nbytes, (unsigned long)nl[X_SYMBOL].n_value);
		free(buf);
		(void) kvm_close(kd);
		return (1);
	}

	(void) printf("%s 0x%lx:", symbol, (unsigned long)nl[X_SYMBOL].n_value);
	for (i = 0; i < nbytes; i++)
		(void) printf("%s%02x", i % 16 == 0 ? "\n" : " ", buf[i]);
	(void) printf("\n");

	free(buf);
	(void) kvm_close(kd);
	return (0);
}
