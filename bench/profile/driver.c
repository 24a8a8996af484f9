/*
 * driver.c - the shim's read path with nothing around it, for callgrind
 * and for timing the C layer alone (built by bench/profile/profile.py
 * from csrc/*.c with the extension's flags).
 *
 *   driver CORE NAMELIST ADDRFILE SIZE PASSES [cold]
 *
 * ADDRFILE holds native uint64 addresses.  Opens once, reads every address
 * once untimed (warm-up: translation and page caches), then PASSES timed
 * passes in run_passes(), the one function callgrind is told to collect
 * (--toggle-collect=run_passes).  With "cold", the warm-up is skipped and
 * one pass over the list is the measurement.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvm_ext.h"

static unsigned char sink[1 << 20];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* noinline: callgrind collects inside this function only. */
__attribute__((noinline)) long run_passes(kvm_t *kd, const uint64_t *addrs,
					  size_t n, size_t size, int passes)
{
	long failed = 0;
	int p;
	size_t i;

	for (p = 0; p < passes; p++)
		for (i = 0; i < n; i++)
			failed += kvm_read2(kd, addrs[i], sink, size) != (ssize_t)size;
	return failed;
}

/* The same loop, under another name, so the warm-up is not collected. */
__attribute__((noinline)) long warm_up(kvm_t *kd, const uint64_t *addrs,
				       size_t n, size_t size)
{
	long failed = 0;
	size_t i;

	for (i = 0; i < n; i++)
		failed += kvm_read2(kd, addrs[i], sink, size) != (ssize_t)size;
	return failed;
}

int main(int argc, char **argv)
{
	char errbuf[2048];
	uint64_t *addrs;
	size_t n, size;
	long cap, failed;
	int passes, cold;
	FILE *f;
	kvm_t *kd;
	uint64_t t0, t1;

	if (argc < 6) {
		fprintf(stderr, "usage: %s CORE NAMELIST ADDRFILE SIZE PASSES [cold]\n", argv[0]);
		return 2;
	}
	size = strtoul(argv[4], NULL, 0);
	passes = atoi(argv[5]);
	cold = argc > 6 && strcmp(argv[6], "cold") == 0;
	if (size > sizeof(sink)) {
		fprintf(stderr, "size too large\n");
		return 2;
	}
	f = fopen(argv[3], "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (cap = ftell(f)) < 0) {
		perror(argv[3]);
		return 1;
	}
	rewind(f);
	n = (size_t)cap / sizeof(uint64_t);
	addrs = malloc(n * sizeof(uint64_t) + 1);
	if (addrs == NULL || fread(addrs, sizeof(uint64_t), n, f) != n) {
		perror("read addresses");
		return 1;
	}
	fclose(f);

	kd = kvm_open_ex(argv[2], argv[1], NULL, O_RDONLY, NULL, errbuf, 0, 0);
	if (kd == NULL) {
		fprintf(stderr, "open: %s\n", errbuf);
		return 1;
	}
	if (!cold)
		warm_up(kd, addrs, n, size);
	t0 = now_ns();
	failed = run_passes(kd, addrs, n, size, cold ? 1 : passes);
	t1 = now_ns();
	printf("%zu reads x %d passes of %zu bytes: %.1f ns/read, %ld failed\n", n,
	       cold ? 1 : passes, size, (double)(t1 - t0) / ((double)n * (cold ? 1 : passes)),
	       failed);
	kvm_close(kd);
	free(addrs);
	return 0;
}
