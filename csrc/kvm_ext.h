/*
 * kvm_ext.h - the shim's additions to the libkvm interface.
 *
 * Programs that must also build against a platform libkvm should not use
 * these; the Python layer uses them when the build is the shim.
 */
#ifndef PYKVM_KVM_EXT_H
#define PYKVM_KVM_EXT_H

#include "kvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options for kvm_open_ex. */
#define KVM_OPT_FOREIGN 0x1       /* accept a core or namelist of another data model */
#define KVM_OPT_EXCLUDED_ZERO 0x2 /* pages a dump filtered out read as zeros */
#define KVM_OPT_PREAD 0x4         /* never map the core file: read it with pread */

/* Default bound of the decompressed-page cache, in pages. */
#define KVM_DEFAULT_CACHE_PAGES 4096
/*
 * Default bound of the core file's mapping that stays resident (the file
 * pages a process has mapped count in its RSS): 48 MiB.  Past it, the
 * 2 MiB windows least recently read are unmapped (madvise MADV_DONTNEED;
 * the OS page cache keeps them).  Measured: 10,000 random pages of a
 * 256 MiB dump add 15.1 MiB of RSS in all (the bound the bench holds is
 * 40 MiB), and 32 MiB read over and over in 1 MiB chunks stays mapped
 * (at 32 MiB each pass faulted it in again, at a fifth of the speed).
 */
#define KVM_DEFAULT_MAP_BUDGET (48u << 20)

/*
 * Open options, extensible: set size = sizeof(struct kvm_open_opts) and
 * zero what you do not use (memset); fields past the size a caller was
 * built with read as unset.  New fields go at the end.
 */
struct kvm_open_opts {
	size_t size;        /* sizeof(struct kvm_open_opts) */
	unsigned flags;     /* KVM_OPT_* */
	size_t cache_pages; /* bound of the decompressed-page cache; 0 = default */
	const char *format; /* force a core format by name ("elf", "kdump"), or NULL */
	const char *const *parts; /* the files of a dump written in parts
				   * (makedumpfile --split), in any order, or NULL */
	size_t nparts;      /* how many; corefile must be NULL then.  The open
			     * fails (EINVAL) unless they are all the parts of
			     * one dump; a page outside every part cannot occur */
	size_t map_budget;  /* bytes of the mapped core kept resident; 0 = default
			     * (KVM_DEFAULT_MAP_BUDGET), SIZE_MAX = no bound */
	const char *btf;    /* kernel types from this file (raw BTF such as a
			     * copy of /sys/kernel/btf/vmlinux, or an ELF with
			     * a .BTF section) instead of the kernel's memory;
			     * NULL = the image's own BTF */
};

/*
 * kvm_open with options: errstr prints errors to stderr as kvm_open does;
 * errbuf (KVM_ERRBUF_SIZE bytes, may be NULL) receives an open failure's
 * message as kvm_openfiles does.  o may be NULL (no options).
 */
kvm_t *kvm_open_opts(const char *namelist, const char *corefile,
		     const char *swapfile, int flag, const char *errstr,
		     char *errbuf, const struct kvm_open_opts *o);

/*
 * kvm_open_opts with the first options as arguments: errstr prints errors to stderr as kvm_open does;
 * errbuf (KVM_ERRBUF_SIZE bytes, may be NULL) receives an open failure's
 * message as kvm_openfiles does.  cache_pages 0 means the default.
 */
kvm_t *kvm_open_ex(const char *namelist, const char *corefile,
		   const char *swapfile, int flag, const char *errstr,
		   char *errbuf, unsigned opts, size_t cache_pages);

/* errno of the last failure on this handle, and the address it concerned. */
int kvm_errno(kvm_t *kd);
uint64_t kvm_erraddr(kvm_t *kd);

/*
 * Facts about the open core as "key=value\n" lines.  Returns the length of
 * the whole text (which may exceed len; the text is truncated then).
 */
size_t kvm_info(kvm_t *kd, char *buf, size_t len);

/*
 * The kernel's VMCOREINFO text (from a note, a dump header, or found in an
 * image's memory), NUL-terminated in buf.  Returns its length plus one
 * (which may exceed len; truncated then), 0 when the core has none.
 */
size_t kvm_vmcoreinfo(kvm_t *kd, char *buf, size_t len);

/* Symbol table iteration; values are runtime addresses. */
size_t kvm_symcount(kvm_t *kd);
int kvm_symbol(kvm_t *kd, size_t i, const char **name, uint64_t *value,
	       unsigned char *type, char *letter, const char **module);

/*
 * Batch read: n reads of size bytes at addrs[i] into out + i * size.
 * results[i] is the byte count or -errno.  Returns the number that failed.
 */
size_t kvm_read_many(kvm_t *kd, const uint64_t *addrs, size_t n, size_t size,
		     void *out, int64_t *results, int physical);

/* Codecs this build decompresses kdump pages with: zlib 0x1, LZO 0x2,
 * snappy 0x4, zstd 0x20 (the dump format's own flag values). */
unsigned kvm_kdump_codecs(void);
/* Decompressed pages in the handle's page cache now (0 for other cores). */
size_t kvm_kdump_cache_used(kvm_t *kd);

/*
 * Where the 4 KiB page holding addr is stored whole in the mapped core
 * file: its file offset, or -1 (not mapped, not whole, compressed, or the
 * file is not mapped).  Lets a caller that maps the same file read that
 * page without a call per read.
 */
int64_t kvm_page_offset(kvm_t *kd, uint64_t addr, int physical);
/* The whole-file mapping of the core (read-only use), or NULL; *size its length. */
const void *kvm_mapping(kvm_t *kd, uint64_t *size);

/*
 * Kernel types, from the BTF the kernel carries (or the open option btf=),
 * loaded on the first call.  type is a C type name: "struct task_struct",
 * "union thread_union", "enum pid_type", "u64", "unsigned long",
 * "struct list_head *".  member_path names a member, nested members and
 * array elements: "se.vruntime", "pids[1].node", "comm[3]"; members of
 * anonymous structs and unions are found by their own names.  -1 with the
 * reason in kvm_geterr() (ENOENT: no such type or member; ENOTSUP: no BTF).
 */
ssize_t kvm_type_size(kvm_t *kd, const char *type);
ssize_t kvm_member_offset(kvm_t *kd, const char *type, const char *member_path);

#ifdef __cplusplus
}
#endif

#endif /* PYKVM_KVM_EXT_H */
