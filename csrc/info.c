/* info.c - kvm_info: what the handle knows about its core, as key=value lines. */
#include <string.h>

#include "kvm_private.h"

struct out {
	char *buf;
	size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) KVM_PRINTF(2, 3);

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = o->used < o->len ? o->len - o->used : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

/* A VMCOREINFO value as an info line, when the dump has it. */
static void put_vmci(struct out *o, kvm_t *kd, const char *key, const char *name)
{
	size_t len;
	const char *v = kvm_vmcoreinfo_get(kd, key, &len);

	if (v != NULL)
		put(o, "%s=%.*s\n", name, (int)len, v);
}

static void put_segs(struct out *o, const char *space, const struct kvm_segs *s)
{
	size_t i;

	put(o, "%s_segments=%zu\n", space, s->n);
	for (i = 0; i < s->n; i++)
		put(o, "segment=%s 0x%llx 0x%llx 0x%llx 0x%llx\n", space,
		    (unsigned long long)s->v[i].start,
		    (unsigned long long)s->v[i].memsz,
		    (unsigned long long)s->v[i].filesz,
		    (unsigned long long)s->v[i].off);
}

size_t kvm_vmcoreinfo(kvm_t *kd, char *buf, size_t len)
{
	if (kd == NULL || kd->vmcoreinfo == NULL)
		return 0;
	if (len > 0)
		snprintf(buf, len, "%s", kd->vmcoreinfo);
	return kd->vmcoreinfo_len + 1;
}

size_t kvm_info(kvm_t *kd, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	struct kvm_kdump_facts kf;

	if (kd == NULL)
		return 0;
	put(&o, "format=%s\n", kd->format ? kd->format : "unknown");
	put(&o, "corefile=%s\n", kd->core.path);
	if (kd->namelist)
		put(&o, "namelist=%s\n", kd->namelist);
	put(&o, "word_size=%d\n", kd->elfclass);
	put(&o, "byte_order=%s\n", kd->bigendian ? "big" : "little");
	put(&o, "machine=%d\n", kd->machine);
	put(&o, "kernel=%d\n", kd->kernel);
	put(&o, "live=%d\n", kd->live);
	put(&o, "writable=%d\n", kd->flag == O_RDWR);
	put(&o, "mapped=%d\n", kd->core.map != NULL);
	if (kd->core.map != NULL)
		put(&o, "map_budget=%zu\n", kd->core.win != NULL ? kd->map_budget : (size_t)0);
	put(&o, "page_size=%llu\n", (unsigned long long)kd->pagesize);
	put(&o, "symbols=%zu\n", kd->have_syms ? kd->syms.n : (size_t)0);
	if (kd->arch)
		put(&o, "arch=%s\n", kd->arch->name);
	put(&o, "translation=%d\n", kd->archdata != NULL);
	if (kvm_x86_64_levels(kd) > 0)
		put(&o, "paging_levels=%d\n", kvm_x86_64_levels(kd));
	if (kd->have_kerndisp)
		put(&o, "kerndisp=%lld\n", (long long)kd->kerndisp);
	put(&o, "symbol_displacement=%lld\n", (long long)kd->symdisp);
	if (kd->have_phys_base)
		put(&o, "phys_base=%lld\n", (long long)kd->phys_base);
	if (kd->osrelease_hdr)
		put(&o, "header_release=%s\n", kd->osrelease_hdr);
	if (kd->have_crashtime)
		put(&o, "crash_time=%lld\n", (long long)kd->crashtime);
	if (kd->physops) {
		put(&o, "compression=%s\n", kd->physops->name);
		put(&o, "cache_pages=%zu\n", kd->cache_pages);
	}
	if (kd->truncated)
		put(&o, "truncated=%llu %s missing\n", (unsigned long long)kd->truncated,
		    kd->truncated_pages ? "pages" : "bytes");
	if (kd->extra_info)
		put(&o, "%s", kd->extra_info);
	if (kvm_kdump_facts(kd, &kf)) {
		put(&o, "kdump_version=%d\n", (int)kf.version);
		put(&o, "pages_total=%llu\n", (unsigned long long)kf.pages_total);
		put(&o, "pages_dumped=%llu\n", (unsigned long long)kf.pages_dumped);
		if (kf.have_dump_level)
			put(&o, "dump_level=%u\n", (unsigned)kf.dump_level);
	}
	if (kd->orient[0]) {
		put(&o, "orientation=%s\n", kd->orient);
		put(&o, "vmcoreinfo_scan_bytes=%llu\n", (unsigned long long)kd->scan_bytes);
		put(&o, "vmcoreinfo_scan_ns=%llu\n", (unsigned long long)kd->scan_ns);
	}
	put(&o, "vmcoreinfo=%d\n", kd->vmcoreinfo != NULL);
	put_vmci(&o, kd, "OSRELEASE", "osrelease");
	put_vmci(&o, kd, "BUILD-ID", "build_id");
	/* As parsed (hex, as VMCOREINFO writes it): a value that does not parse is
	 * not used, so not shown as if it were. */
	if (kd->have_kerndisp)
		put(&o, "kerneloffset=%llx\n", (unsigned long long)kd->kerndisp);
	put_vmci(&o, kd, "CRASHTIME", "vmcoreinfo_crashtime");
	put_segs(&o, "virtual", &kd->vsegs);
	put_segs(&o, "physical", &kd->psegs);
	if (len > 0)
		buf[o.used < len ? o.used : len - 1] = '\0';
	return o.used + 1;
}
