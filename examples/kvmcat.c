/*
 * kvmcat - resolve a kernel symbol and hex-dump the memory behind it, with
 * libkvm.  An example of the shim used as a C library:
 *
 *     make install-lib PREFIX=$HOME/.local
 *     export PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig
 *     cc -o kvmcat examples/kvmcat.c $(pkg-config --cflags --libs libkvm)
 *     LD_LIBRARY_PATH=$HOME/.local/lib ./kvmcat -N fixtures/demo/kallsyms-demo.txt \
 *         -M fixtures/demo/vmcore-demo.elf -n 64 linux_banner
 *
 * usage: kvmcat [-N namelist] [-M core] [-n bytes] symbol[+offset] | address
 *
 * Prints lines of "address  16 hex bytes  |ascii|", as `pykvm read` does.
 * Exit status: 0 success, 1 a libkvm failure (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

#define PROG "kvmcat"

static int usage(void)
{
	fprintf(stderr, "usage: %s [-N namelist] [-M core] [-n bytes] symbol[+offset] | address\n",
		PROG);
	return 2;
}

static int parse_number(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno == 0 && end != s && *end == '\0';
}

static void hexdump(uint64_t addr, const unsigned char *p, size_t len)
{
	size_t i, j;

	for (i = 0; i < len; i += 16) {
		size_t n = len - i < 16 ? len - i : 16;
		char hex[16 * 3 + 1] = "", text[17];
		for (j = 0; j < n; j++) {
			sprintf(hex + strlen(hex), j ? " %02x" : "%02x", p[i + j]);
			text[j] = p[i + j] >= 32 && p[i + j] < 127 ? (char)p[i + j] : '.';
		}
		text[n] = '\0';
		printf("%016" PRIx64 "  %-47s  |%s|\n", addr + i, hex, text);
	}
}

int main(int argc, char **argv)
{
	const char *namelist = NULL, *core = NULL;
	char errbuf[KVM_ERRBUF_SIZE], *where, *plus;
	struct kvm_nlist nl[2];
	uint64_t addr, offset = 0, size = 64;
	unsigned char *buf;
	kvm_t *kd;
	ssize_t r;
	int c;

	while ((c = getopt(argc, argv, "N:M:n:")) != -1) {
		switch (c) {
		case 'N':
			namelist = optarg;
			break;
		case 'M':
			core = optarg;
			break;
		case 'n':
			if (!parse_number(optarg, &size) || size == 0 || size > (1u << 24))
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1)
		return usage();
	where = argv[optind];

	kd = kvm_openfiles(namelist, core, NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "%s: %s\n", PROG, errbuf);
		return 1;
	}
	if (!parse_number(where, &addr)) {
		/* symbol[+offset]: kvm_nlist2 has 64-bit values on every host. */
		plus = strchr(where, '+');
		if (plus != NULL) {
			*plus = '\0';
			if (!parse_number(plus + 1, &offset)) {
				kvm_close(kd);
				return usage();
			}
		}
		memset(nl, 0, sizeof(nl));
		nl[0].n_name = where;
		r = kvm_nlist2(kd, nl);
		if (r != 0) {
			/* -1: no usable namelist (kvm_geterr says why); else not found */
			if (r < 0)
				fprintf(stderr, "%s: %s\n", PROG, kvm_geterr(kd));
			else
				fprintf(stderr, "%s: %s: no such symbol\n", PROG, where);
			kvm_close(kd);
			return 1;
		}
		addr = nl[0].n_value + offset;
	}
	buf = malloc((size_t)size);
	if (buf == NULL) {
		fprintf(stderr, "%s: out of memory\n", PROG);
		kvm_close(kd);
		return 1;
	}
	r = kvm_read2(kd, addr, buf, (size_t)size);
	if (r != (ssize_t)size) {
		fprintf(stderr, "%s: %s\n", PROG, kvm_geterr(kd));
		free(buf);
		kvm_close(kd);
		return 1;
	}
	hexdump(addr, buf, (size_t)size);
	free(buf);
	return kvm_close(kd) == 0 ? 0 : 1;
}
