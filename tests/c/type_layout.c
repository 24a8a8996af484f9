/*
 * type_layout.c - sizes and member offsets from kvm_type_size and
 * kvm_member_offset, as a C tool asks for them.  Usage:
 *   type_layout COREFILE [BTF] QUERY...
 * where QUERY is "TYPE" (its size) or "TYPE:MEMBER.PATH" (an offset), and
 * BTF is "-" or a file for the btf= open option.  One line per query: the
 * number, or "error: <kvm_geterr>".
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm.h"
#include "kvm_ext.h"

int main(int argc, char **argv)
{
	struct kvm_open_opts o;
	char errbuf[KVM_ERRBUF_SIZE];
	kvm_t *kd;
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: type_layout COREFILE BTF|- QUERY...\n");
		return 2;
	}
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.btf = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	kd = kvm_open_opts(NULL, argv[1], NULL, O_RDONLY, NULL, errbuf, &o);
	if (kd == NULL) {
		fprintf(stderr, "type_layout: %s\n", errbuf);
		return 1;
	}
	for (i = 3; i < argc; i++) {
		char type[512];
		const char *colon = strchr(argv[i], ':');
		ssize_t r;

		if (colon != NULL) {
			snprintf(type, sizeof(type), "%.*s", (int)(colon - argv[i]), argv[i]);
			r = kvm_member_offset(kd, type, colon + 1);
		} else {
			r = kvm_type_size(kd, argv[i]);
		}
		if (r < 0)
			printf("error: %s\n", kvm_geterr(kd));
		else
			printf("%lld\n", (long long)r);
	}
	kvm_close(kd);
	return 0;
}
