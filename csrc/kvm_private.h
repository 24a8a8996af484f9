/*
 * kvm_private.h - what the shim's files share: the handle, the file and
 * segment helpers, the symbol table, and the small interfaces that core
 * formats and architectures implement.
 */
#ifndef PYKVM_KVM_PRIVATE_H
#define PYKVM_KVM_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "kvm.h"
#include "kvm_ext.h"

#if defined(__GNUC__)
#define KVM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KVM_PRINTF(a, b)
#endif

/* Outcome of one access; each maps to an errno and a message in kvm.c. */
enum kvm_status {
	KVM_OK = 0,
	KVM_UNMAPPED, /* no translation, or outside every segment: EFAULT */
	KVM_EXCLUDED, /* a page the dump's filter left out: ENODATA */
	KVM_IOERR,    /* the file could not be read or is corrupt: EIO */
	KVM_IOERR_MSG, /* EIO, and the reader already set the message */
	KVM_RDONLY,   /* write to something that cannot be written: EROFS */
	KVM_NOTRANS,  /* a kernel core we cannot translate for (kd->notrans): EFAULT */
	KVM_FAULT_MSG, /* EFAULT, and the reader already set the message (no data here) */
};

/* An open file: mapped when the kernel lets us, else read with pread. */
struct kvm_file {
	char *path;
	int fd;
	uint64_t size;        /* bytes in the file (st_size) */
	unsigned char *map;   /* whole-file mapping, or NULL */
	int writable;
	/*
	 * The mapping's resident bound (file.c), in 2 MiB windows of the
	 * address space (the largest page-cache folio): per window 0 = not
	 * mapped by us, 1 = read since the last sweep, 2 = read before it.
	 */
	unsigned char *win;
	size_t nwin, win_used, win_max, hand;
	uintptr_t win_base;   /* first window's number (address >> 16) */
	pthread_mutex_t win_lock;
};

/* A range of an address space stored in the core file. */
struct kvm_seg {
	uint64_t start;  /* first address */
	uint64_t memsz;  /* length of the range */
	uint64_t filesz; /* bytes present in the file; the rest reads as zeros */
	uint64_t off;    /* file offset of the first byte */
	uint64_t cut;    /* bytes after filesz the header promised but a
			  * truncated file lacks (0 unless truncated) */
};

struct kvm_segs {
	struct kvm_seg *v; /* sorted by start, no overlaps */
	size_t n;
	/* Past filesz is "not saved" (a process core: gcore, the kernel's),
	 * not zeros (a kdump vmcore's excluded ranges). */
	int unsaved_faults;
};

/* One symbol; names and module names live in the table's string pool. */
struct kvm_sym {
	uint64_t value;
	uint32_t name;   /* offset into pool */
	uint32_t module; /* offset into pool; 0 = the kernel itself */
	unsigned char type; /* N_* | N_EXT */
	char letter;        /* nm-style type letter */
};

struct kvm_symtab {
	struct kvm_sym *syms; /* in load order until kvm_symtab_finish sorts */
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t *byname; /* hash index by name: symbol index + 1, 0 = empty */
	size_t nbyname;  /* slots, a power of two */
};

/*
 * A decoded page a compressed format holds in its page cache, for reading
 * the same 4 KiB again without the format or a lock (access.c,
 * kvm_pagecache_reread): good while the slot's generation is still seq.
 */
struct kvm_pageref {
	const void *slot; /* NULL: none */
	uint64_t seq;
	size_t base; /* where the 4 KiB page holding pa starts in the slot's buffer */
};

/*
 * Compressed-dump and other non-ELF physical memory sources.  read may
 * fill ref (when not NULL) if the whole 4 KiB page holding pa lies in one
 * page-cache slot; else it leaves ref->slot NULL.
 */
struct kvm_physops {
	const char *name;
	enum kvm_status (*read)(kvm_t *kd, uint64_t pa, void *buf, size_t len,
				struct kvm_pageref *ref);
	void (*close)(kvm_t *kd);
};

/*
 * An architecture: how to find the page-table root and translate.
 * One file per architecture plus one entry in kvm_arches[] (arch.c).
 */
struct kvm_arch {
	const char *name;
	int machine; /* ELF e_machine */
	int (*init)(kvm_t *kd); /* 0 = ready to translate, -1 with error set */
	enum kvm_status (*translate)(kvm_t *kd, uint64_t va, uint64_t *pa,
				     uint64_t *pagesize);
	int (*shift_symbol)(kvm_t *kd, uint64_t value, char letter);
	void (*close)(kvm_t *kd);
};

/* A direct-mapped translation cache; entries are checked, not locked. */
#define KVM_TLB_SIZE 8192
struct kvm_tlb_entry {
	uint64_t vpage; /* virtual page number + 1 (0 = empty) */
	uint64_t ppage; /* physical page address */
	uint64_t fpage; /* file offset + 1 of the page stored whole in the mapped core, or 0 */
	uint64_t check; /* vpage ^ ppage ^ fpage: a torn entry fails this test */
};

/*
 * For compressed formats: virtual page -> the page-cache slot that holds
 * it decoded, so a small read of a warm page is one look here and one
 * copy (access.c).  Each entry is a seqlock of its own (seq odd while it
 * is written), so a reader never uses a half-written entry.
 */
struct kvm_ref_entry {
	uint64_t seq;
	uint64_t vpage; /* virtual page number + 1 (0 = empty) */
	struct kvm_pageref ref;
};

struct __kvm {
	struct kvm_file core;
	char *namelist; /* path used for symbols, or NULL */
	char *program;  /* errstr given to kvm_open: print errors with it */
	int flag;       /* O_RDONLY or O_RDWR */
	unsigned opts;  /* KVM_OPT_* */

	/* The last error: message, errno, and the address it concerns. */
	char errbuf[KVM_ERRBUF_SIZE];
	int errnum;
	uint64_t erraddr;

	/* The core. */
	const char *format; /* "elf-process", "elf-kernel", "kcore", "kdump" ... */
	int elfclass;       /* 32 or 64 */
	int bigendian;
	int machine; /* ELF e_machine */
	int kernel;  /* a kernel image (dump or live), not a process core */
	int live;
	struct kvm_segs vsegs; /* virtual ranges in the file */
	struct kvm_segs psegs; /* physical ranges in the file */
	const struct kvm_physops *physops; /* physical reads when not psegs */
	void *physdata;

	/* Kernel facts (VMCOREINFO etc.). */
	char *vmcoreinfo;
	size_t vmcoreinfo_len;
	char *osrelease_hdr; /* release from a dump header, if any */
	int64_t crashtime; /* seconds since the epoch; 32-bit headers sign-extend */
	int have_crashtime;
	uint64_t pagesize;
	int64_t kerndisp;
	int have_kerndisp;
	int64_t phys_base;
	int have_phys_base;
	int64_t symdisp; /* added to namelist values: 0 for runtime namelists */
	uint64_t cpu_cr3, cpu_cr4; /* first CPU's registers (QEMU notes) */
	int have_cpu_cr;
	uint64_t at_entry; /* a process core's AT_ENTRY (NT_AUXV) */
	int have_at_entry;
	char nl_build_id[129]; /* the ELF namelist's GNU build-id, hex, or "" */
	uint64_t nl_entry; /* the namelist's e_entry, when it is a PIE */
	int nl_pie;

	const struct kvm_arch *arch;
	void *archdata;
	char notrans[320]; /* why there is no translation, when there is none */
	struct kvm_tlb_entry *tlb; /* KVM_TLB_SIZE entries (kvm_caches_new) */
	int fastmap; /* virtual reads may copy from the mapping through the tlb (access.c) */
	struct kvm_ref_entry *reftlb; /* KVM_TLB_SIZE entries, or NULL (access.c) */
	void *caches_map; /* the mapping both live in, and its length */
	size_t caches_len;

	struct kvm_symtab syms;
	int have_syms;
	size_t cache_pages; /* bound of the decompressed-page cache */
	char *want_format;  /* the open option format=: a kvm_core_formats[] name, or NULL */
	char *extra_info;   /* format-specific kvm_info lines ("key=value\n"...), or NULL */
	uint64_t truncated; /* bytes (or pages: truncated_pages) the file is short of */
	int truncated_pages;
	/* ELF notes seen: per-CPU or per-thread NT_PRSTATUS, and notes only a
	 * process core has (NT_PRPSINFO, NT_AUXV, NT_FILE, NT_SIGINFO). */
	unsigned note_prstatus, note_process;
	size_t map_budget;  /* resident bound of the core's mapping, bytes (SIZE_MAX: none) */
	unsigned char *notes; /* every note area of the core, as read (PRSTATUS, QEMU CPUs) */
	size_t notes_len;
	struct kvm_btf *btf; /* kernel types (btf.c), loaded on first use */
	char *btf_path;      /* the open option btf=: a BTF file or ELF with .BTF, or NULL */

	/* Images with no metadata (physimage.h): how the kernel was found. */
	char orient[240];       /* info's orientation=, or "" */
	uint64_t orient_banners[8]; /* where linux_banner may be (page-table scan) */
	int orient_nbanners;
	uint64_t scan_bytes, scan_ns; /* the VMCOREINFO scan: bytes searched, time */
};

/* errors.c: errors and the handle. */
void kvm_err(kvm_t *kd, int errnum, const char *fmt, ...) KVM_PRINTF(3, 4);
void kvm_syserr(kvm_t *kd, const char *path, const char *what);
int kvm_report(kvm_t *kd);
int kvm_status_err(kvm_t *kd, enum kvm_status st, uint64_t addr,
		   const char *space);
void kvm_handle_free(kvm_t *kd);

/*
 * formats.c: the core formats open tries in order.  probe looks at the
 * first bytes of the file (n of them, up to 512); open reads the rest.
 * One entry per format; the open option format= names one to force.
 */
struct kvm_core_format {
	const char *name;
	int (*probe)(const unsigned char *head, size_t n);
	int (*open)(kvm_t *kd, const unsigned char *head, size_t n);
	const char *what; /* for messages: "ELF core", ... */
};
extern const struct kvm_core_format kvm_core_formats[];
int kvm_core_formats_open(kvm_t *kd, const unsigned char *head, size_t n);
int kvm_core_format_check(kvm_t *kd, const char *name);

/* file.c */
int kvm_file_open(kvm_t *kd, struct kvm_file *f, const char *path, int flag,
		  int want_map);
void kvm_file_close(struct kvm_file *f);
int kvm_file_pread(kvm_t *kd, struct kvm_file *f, uint64_t off, void *buf,
		   size_t len);
enum kvm_status kvm_file_copy(struct kvm_file *f, uint64_t off, void *buf,
			      size_t len, int write);
void kvm_file_bound(struct kvm_file *f, size_t budget);
void kvm_file_touch_slow(struct kvm_file *f, uint64_t off, size_t len);
#define KVM_WIN_SHIFT 21 /* the bound's windows: 2 MiB (file.c) */
/* Note that [off, off+len) of the mapping is about to be read or written. */
static inline void kvm_file_touch(struct kvm_file *f, uint64_t off, size_t len)
{
	uintptr_t a;
	size_t w;

	if (f->win == NULL)
		return;
	/* Most reads stay in one window already marked: nothing to do. */
	a = (uintptr_t)f->map + (size_t)off;
	w = (a >> KVM_WIN_SHIFT) - f->win_base;
	if (len > 0 && ((a + len - 1) >> KVM_WIN_SHIFT) - f->win_base == w && w < f->nwin &&
#if defined(__GNUC__)
	    __atomic_load_n(&f->win[w], __ATOMIC_RELAXED) == 1
#else
	    f->win[w] == 1
#endif
	)
		return;
	kvm_file_touch_slow(f, off, len);
}

/* segs.c */
int kvm_segs_finish(kvm_t *kd, struct kvm_segs *s, const char *what,
		    int alias);
const struct kvm_seg *kvm_segs_find(const struct kvm_segs *s, uint64_t addr);
enum kvm_status kvm_segs_access(kvm_t *kd, const struct kvm_segs *s,
				uint64_t addr, void *buf, size_t len,
				int write, size_t *done);

/* byteorder.c */
uint16_t kvm_get16(const kvm_t *kd, const void *p);
uint32_t kvm_get32(const kvm_t *kd, const void *p);
uint64_t kvm_get64(const kvm_t *kd, const void *p);
uint16_t kvm_ld16(int big, const void *p);
uint32_t kvm_ld32(int big, const void *p);
uint64_t kvm_ld64(int big, const void *p);

/* kvm.c: kvm_symbol's index of kvm_nlist's definition of name, or -1. */
int64_t kvm_symbol_index(kvm_t *kd, const char *name);

/* symtab.c */
int kvm_symtab_reserve(kvm_t *kd, struct kvm_symtab *t, size_t nsyms,
		       size_t pool_bytes);
int kvm_symtab_add(kvm_t *kd, struct kvm_symtab *t, const char *name,
		   size_t namelen, uint64_t value, unsigned char type,
		   char letter, const char *module, size_t modlen);
int kvm_symtab_finish(kvm_t *kd, struct kvm_symtab *t);
const struct kvm_sym *kvm_symtab_lookup(const struct kvm_symtab *t,
					const char *name);
void kvm_symtab_free(struct kvm_symtab *t);
unsigned char kvm_letter_type(char letter);

/* namelist readers */
int kvm_nlist_elf_probe(const unsigned char *head, size_t n);
int kvm_nlist_elf_load(kvm_t *kd, struct kvm_file *f);
int kvm_nlist_text_load(kvm_t *kd, struct kvm_file *f);
int kvm_kallsyms_dump_load(kvm_t *kd);

/* core readers */
int kvm_core_elf_open(kvm_t *kd, const unsigned char *head, size_t n);
int kvm_kdump_probe(const unsigned char *head, size_t n);
int kvm_kdump_open(kvm_t *kd);
/* kdump_split.c: the parts of a makedumpfile --split dump as one core. */
int kvm_kdump_open_parts(kvm_t *kd, const char *const *paths, size_t n);
size_t kvm_kdump_split_cache_used(kvm_t *kd);

/* notes.c: VMCOREINFO, QEMU CPU state, a process's AT_ENTRY. */
int kvm_notes_parse(kvm_t *kd, const unsigned char *buf, size_t len, int big,
		    size_t word, uint64_t file_off, int *qemu);

/* vmcoreinfo.c */
int kvm_vmcoreinfo_set(kvm_t *kd, const char *text, size_t len);
const char *kvm_vmcoreinfo_get(const kvm_t *kd, const char *key, size_t *len);
int kvm_vmcoreinfo_u64(const kvm_t *kd, const char *key, int base,
		       uint64_t *out);
int kvm_vmcoreinfo_s64(const kvm_t *kd, const char *key, int64_t *out);
int kvm_kernel_setup(kvm_t *kd);
int kvm_kernel_match(kvm_t *kd);

/* arch.c */
const struct kvm_arch *kvm_arch_find(int machine);

/* access.c: the read and write paths. */
enum kvm_status kvm_phys_access(kvm_t *kd, uint64_t pa, void *buf,
				size_t len, int write, size_t *done);
/* The translation caches of a new handle (access.c): 0, or -1 when out
 * of memory; kvm_caches_free undoes it. */
int kvm_caches_new(kvm_t *kd);
void kvm_caches_free(kvm_t *kd);
/* Turn on the page-ref cache of a compressed kernel dump (access.c). */
void kvm_reftlb_init(kvm_t *kd);
enum kvm_status kvm_translate(kvm_t *kd, uint64_t va, uint64_t *pa,
			      uint64_t *pagesize);
ssize_t kvm_access(kvm_t *kd, uint64_t addr, void *buf, size_t len,
		   int write, int physical);

/* kvm_info's facts of a kdump file (core_kdump.c): 1 and f filled, or 0. */
struct kvm_kdump_facts {
	int32_t version;       /* disk_dump_header.header_version */
	uint64_t pages_total;  /* max_mapnr: page frames the dump covers */
	uint64_t pages_dumped; /* pages stored in the file (bitmap 2) */
	uint32_t dump_level;   /* the sub-header's makedumpfile -d level */
	int have_dump_level;
};
int kvm_kdump_facts(kvm_t *kd, struct kvm_kdump_facts *f);
/* Page-table levels the x86-64 translation walks (4 or 5), else 0. */
int kvm_x86_64_levels(kvm_t *kd);

#endif /* PYKVM_KVM_PRIVATE_H */
