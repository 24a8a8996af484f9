/*
 * formats.c - the core file formats, in the order open tries them.
 *
 * A new format is one entry here: a probe that recognises its first bytes
 * and an open that reads it into the handle (segments or physops, notes,
 * kd->format).  The open option format= forces one by name.  A format
 * with no probe (raw: nothing marks it) is only opened when forced.
 */
#include <errno.h>
#include <string.h>

#include "elfread.h"
#include "physimage.h"

static int kdump_open(kvm_t *kd, const unsigned char *head, size_t n)
{
	(void)head;
	(void)n;
	return kvm_kdump_open(kd);
}

const struct kvm_core_format kvm_core_formats[] = {
	{ "elf", kvm_elf_is, kvm_core_elf_open, "ELF core" },
	/* The same reader, told what the core is when its notes do not say. */
	{ "elf-kernel", kvm_elf_is, kvm_core_elf_open, "ELF core" },
	{ "elf-process", kvm_elf_is, kvm_core_elf_open, "ELF core" },
	{ "kdump", kvm_kdump_probe, kdump_open, "kdump (plain or flattened)" },
	{ "lime", kvm_lime_probe, kvm_lime_open, "LiME memory image" },
	{ "avml", kvm_avml_probe, kvm_avml_open, "AVML memory image" },
	{ "raw", NULL, kvm_raw_open, "raw physical memory image" },
	{ NULL, NULL, NULL, NULL },
};

/* The valid names, ", "-separated, for messages. */
static void format_names(char *buf, size_t len)
{
	const struct kvm_core_format *f;
	size_t used = 0;

	buf[0] = '\0';
	for (f = kvm_core_formats; f->name != NULL && used < len; f++) {
		int w = snprintf(buf + used, len - used, "%s%s",
				 f == kvm_core_formats ? "" : ", ", f->name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static const struct kvm_core_format *format_find(const char *name)
{
	const struct kvm_core_format *f;

	for (f = kvm_core_formats; f->name != NULL; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* 0 when name is a format open knows; else EINVAL listing the valid ones. */
int kvm_core_format_check(kvm_t *kd, const char *name)
{
	char names[256];

	if (format_find(name) != NULL)
		return 0;
	format_names(names, sizeof(names));
	kvm_err(kd, EINVAL, "unknown core format \"%s\" (format= takes one of: %s)",
		name, names);
	return -1;
}

/* Open the core with the forced format, else the first whose probe agrees. */
int kvm_core_formats_open(kvm_t *kd, const unsigned char *head, size_t n)
{
	const struct kvm_core_format *f;

	if (kd->want_format != NULL) {
		if ((f = format_find(kd->want_format)) == NULL)
			return kvm_core_format_check(kd, kd->want_format);
		if (f->probe != NULL && !f->probe(head, n)) {
			kvm_err(kd, EINVAL, "%s is not a %s file (format=%s was asked for)",
				kd->core.path, f->what, f->name);
			return -1;
		}
		return f->open(kd, head, n);
	}
	for (f = kvm_core_formats; f->name != NULL; f++)
		if (f->probe != NULL && f->probe(head, n))
			return f->open(kd, head, n);
	kvm_err(kd, EINVAL,
		"%s is not a kernel core file (not ELF, kdump, flattened kdump, LiME or AVML; a raw memory image needs format=raw)",
		kd->core.path);
	return -1;
}
