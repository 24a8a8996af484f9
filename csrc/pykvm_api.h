/*
 * pykvm_api.h - the one C interface the Python layer calls, the same over
 * every backend (the shim, FreeBSD libkvm, illumos libkvm).  It is also
 * the cffi cdef, so it holds only declarations cffi can parse: no
 * includes, no preprocessor conditionals.
 */

typedef struct __kvm kvm_t;

/* "shim" or "native", and the platform flavour of the native glue. */
const char *pykvm_backend(void);
const char *pykvm_platform(void);

/* Features this build has (1) or lacks (0). */
int pykvm_has(const char *feature);

/*
 * Open options: the shim's struct kvm_open_opts (kvm_ext.h) field for
 * field, without size (the glue sets it).  A native libkvm has none of
 * them: any field set fails the open with ENOTSUP.
 */
struct pykvm_open_opts {
	unsigned flags;      /* KVM_OPT_*: foreign 0x1, excluded_zero 0x2, pread 0x4 */
	size_t cache_pages;  /* 0 = default */
	const char *format;  /* force a core format, or NULL */
	const char *const *parts; /* a dump in parts (corefile NULL), or NULL */
	size_t nparts;
	size_t map_budget;   /* resident bound of the mapped core; 0 = default */
	const char *btf;     /* kernel types from this BTF file / ELF, or NULL */
};

/* Open: errstr prints as kvm_open does; errbuf (2048 bytes) gets the
 * message; o may be NULL. */
kvm_t *pykvm_open(const char *namelist, const char *corefile,
		  const char *swapfile, int flag, const char *errstr,
		  char *errbuf, const struct pykvm_open_opts *o);
int pykvm_close(kvm_t *kd);
const char *pykvm_geterr(kvm_t *kd);
int pykvm_errno(kvm_t *kd);
uint64_t pykvm_erraddr(kvm_t *kd);

/* Names in, values and types out; returns the number missing or -1. */
int pykvm_nlist(kvm_t *kd, const char **names, size_t n, uint64_t *values,
		unsigned char *types);

int64_t pykvm_read(kvm_t *kd, uint64_t addr, void *buf, size_t len);
int64_t pykvm_write(kvm_t *kd, uint64_t addr, const void *buf, size_t len);
int64_t pykvm_pread(kvm_t *kd, uint64_t addr, void *buf, size_t len);
int64_t pykvm_pwrite(kvm_t *kd, uint64_t addr, const void *buf, size_t len);
uint64_t pykvm_physaddr(kvm_t *kd, uint64_t addr);
int64_t pykvm_kerndisp(kvm_t *kd);

/* n reads of size bytes; results[i] = bytes or -errno; returns failures. */
size_t pykvm_read_many(kvm_t *kd, const uint64_t *addrs, size_t n,
		       size_t size, void *out, int64_t *results, int physical);
/* n reads of sizes[i] bytes, packed one after another into out. */
size_t pykvm_read_scatter(kvm_t *kd, const uint64_t *addrs,
			  const uint64_t *sizes, size_t n, void *out,
			  int64_t *results);

/* File offset of addr's page when stored whole in the mapped core, else -1. */
int64_t pykvm_page_offset(kvm_t *kd, uint64_t addr, int physical);
/* The core file's mapping (for those page reads), or NULL; *size its length. */
const void *pykvm_mapping(kvm_t *kd, uint64_t *size);

/* Pages in the decompressed-page cache now. */
size_t pykvm_cache_used(kvm_t *kd);

size_t pykvm_info(kvm_t *kd, char *buf, size_t len);
/* The VMCOREINFO text (NUL-terminated); its length + 1, 0 when none. */
size_t pykvm_vmcoreinfo(kvm_t *kd, char *buf, size_t len);
size_t pykvm_symcount(kvm_t *kd);
int pykvm_symbol(kvm_t *kd, size_t i, const char **name, uint64_t *value,
		 unsigned char *type, char *letter, const char **module);
/* pykvm_symbol's index of the definition pykvm_nlist gives name, or -1. */
int64_t pykvm_symbol_index(kvm_t *kd, const char *name);

/* Every ELF note area the core holds (PRSTATUS, QEMU CPU state...), raw,
 * copied into buf when it fits; returns the bytes needed (0: none). */
size_t pykvm_notes(kvm_t *kd, void *buf, size_t len);
/*
 * Kernel types (BTF): one type or member at a time by id (kvm_btf.h);
 * 0 = ok, -1 with the error set.  pykvm_btf_find returns the id, 0 when
 * there is no such type, -1 on error.
 */
struct pykvm_btf_type {
	int kind;
	const char *name;
	uint64_t size;
	unsigned type;
	unsigned vlen;
	int kflag;
	unsigned nelems;
	unsigned index_type;
	unsigned encoding;
	unsigned bits;
	unsigned bit_offset;
	unsigned linkage;
};
struct pykvm_btf_member {
	const char *name;
	unsigned type;
	uint64_t bit_offset;
	unsigned bit_size;
	int64_t value;
};
int pykvm_btf_count(kvm_t *kd, unsigned *n);
int pykvm_btf_find(kvm_t *kd, const char *name, int kind);
int pykvm_btf_type(kvm_t *kd, unsigned id, struct pykvm_btf_type *out);
int pykvm_btf_member(kvm_t *kd, unsigned id, unsigned i, struct pykvm_btf_member *out);
/* The module a type id is from: "" for vmlinux, NULL on error. */
const char *pykvm_btf_module(kvm_t *kd, unsigned id);
/* "name: why" per module whose BTF was left out; "" when none, NULL on error. */
const char *pykvm_btf_skipped(kvm_t *kd);
