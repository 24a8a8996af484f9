/*
 * pykvm_native.c - pykvm_api.h over the platform's own libkvm.
 *
 * The Python layer calls one API whatever the backend; this file implements
 * it with only the functions the platform's libkvm has:
 *
 *   FreeBSD: kvm_openfiles (errors into an errbuf), kvm_geterr, kvm_nlist2,
 *            kvm_read2, kvm_write, kvm_close, kvm_kerndisp, kvm_native.
 *   illumos: kvm_open (errors only as "<errstr>: <message>" lines on
 *            stderr, captured here), kvm_nlist (struct nlist; returns 0
 *            even for missing names), kvm_kread, kvm_kwrite, kvm_pread,
 *            kvm_pwrite, kvm_physaddr, kvm_close.
 *
 * The branch is chosen by the platform (__FreeBSD__, __sun) or, to test
 * this file on another system against the shim built as a libkvm, by
 * PYKVM_NATIVE_FREEBSD / PYKVM_NATIVE_ILLUMOS.  Either way the code below
 * calls only that platform's functions.
 *
 * The handle Python holds is a small wrapper: the platform's kvm_t plus
 * the last failure (errno, address, message), because neither libkvm
 * reports errno or the failing address, and illumos keeps no message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * pykvm_api.h names its handle kvm_t, as the platform's <kvm.h> does (and
 * on illumos with another struct tag): read the API under another name so
 * both fit in this file and the compiler still checks every prototype.
 */
#define kvm_t pykvm_handle_t
#include "pykvm_api.h"
#undef kvm_t

#include <kvm.h>

#if defined(PYKVM_NATIVE_FREEBSD) || (defined(__FreeBSD__) && !defined(PYKVM_NATIVE_ILLUMOS))
#define NATIVE_FREEBSD 1
#define PLATFORM "freebsd"
#elif defined(PYKVM_NATIVE_ILLUMOS) || defined(__sun)
#define NATIVE_ILLUMOS 1
#define PLATFORM "illumos"
#include <poll.h>
#include <pthread.h>
#else
#error "pykvm_native.c: build on FreeBSD or illumos, or define PYKVM_NATIVE_FREEBSD or PYKVM_NATIVE_ILLUMOS"
#endif

/* What this platform's libkvm gives the Python layer (pykvm_has). */
#ifdef NATIVE_FREEBSD
#define HAS_GETERR 1   /* kvm_geterr */
#define HAS_KERNDISP 1 /* kvm_kerndisp */
#define HAS_PREAD 0    /* no physical reads or writes in FreeBSD's API */
#define HAS_PWRITE 0
#define HAS_PHYSADDR 0
#else
#define HAS_GETERR 0   /* illumos keeps no message: errors go to stderr */
#define HAS_KERNDISP 0
#define HAS_PREAD 1    /* kvm_pread */
#define HAS_PWRITE 1   /* kvm_pwrite */
#define HAS_PHYSADDR 1 /* kvm_physaddr */
#endif
#define HAS_READ_MANY 1  /* the glue's loop over the platform's read */
/* Shim extensions no platform libkvm has. */
#define HAS_INFO 0      /* kvm_info */
#define HAS_SYMBOLS 0   /* symbol iteration */
#define HAS_OPTIONS 0   /* kvm_open_ex options: foreign, excluded_zero, cache_pages */
#define HAS_PAGE_OFFSET 0
#define HAS_CACHE 0     /* the decompressed-page cache of kdump files */

#define MSG_SIZE 2048   /* = the errbuf pykvm_open is given (_POSIX2_LINE_MAX) */
#define PROBE_CHUNK 4096

struct native {
	kvm_t *kd;
	int flag;
	int err;          /* errno of the last failure, 0 if the library gave none */
	uint64_t erraddr; /* first address that failed, for read/write faults */
	char *corefile;   /* for messages */
#ifdef NATIVE_ILLUMOS
	int kas_state;    /* 0 not looked up, 1 found, -1 absent */
	uintptr_t kas;    /* the kernel's address space, for kvm_physaddr */
#endif
	char msg[MSG_SIZE];
};

static struct native *H(pykvm_handle_t *h)
{
	return (struct native *)(void *)h;
}

#if defined(__GNUC__)
static void set_msg(struct native *n, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#endif

static void set_msg(struct native *n, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(n->msg, sizeof(n->msg), fmt, ap);
	va_end(ap);
	n->err = err;
}

static const char *core_name(const struct native *n)
{
	return n->corefile != NULL ? n->corefile : "the running kernel";
}

/* ---- what this build has ---- */

const char *pykvm_backend(void)
{
	return "native";
}

const char *pykvm_platform(void)
{
	return PLATFORM;
}

int pykvm_has(const char *feature)
{
	static const struct {
		const char *name;
		int have;
	} table[] = {
		{"geterr", HAS_GETERR},     {"kerndisp", HAS_KERNDISP},
		{"pread", HAS_PREAD},       {"pwrite", HAS_PWRITE},
		{"physaddr", HAS_PHYSADDR}, {"info", HAS_INFO},
		{"symbols", HAS_SYMBOLS},   {"options", HAS_OPTIONS},
		{"read_many", HAS_READ_MANY}, {"page_offset", HAS_PAGE_OFFSET},
		{"cache", HAS_CACHE},
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, feature) == 0)
			return table[i].have;
	return 0; /* codecs and the like: the platform's business, not ours */
}

/* ---- open ---- */

#ifdef NATIVE_ILLUMOS
/*
 * illumos kvm_open reports a failure only by printing "<errstr>: <message>"
 * to stderr.  To hand the message to Python, fd 2 is pointed at a pipe for
 * the duration of the call (one call at a time: fd 2 is per process) and a
 * thread drains the pipe so a long message cannot block the writer.  Lines
 * with our prefix are the library's; anything else written to fd 2 in that
 * window (another thread's output) is passed on to the real stderr.
 */
#define CAPTURE_PREFIX "pykvm-native-capture"

struct capture {
	int rfd, stopfd;
	char *buf;
	size_t len, cap;
};

static void capture_take(struct capture *c)
{
	char chunk[4096];
	ssize_t r;

	while ((r = read(c->rfd, chunk, sizeof(chunk))) > 0) {
		if (c->len + (size_t)r > c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 8192;
			char *b;
			while (cap < c->len + (size_t)r)
				cap *= 2;
			if (cap > (16u << 20) || (b = realloc(c->buf, cap)) == NULL)
				continue; /* keep what fits; drop the rest */
			c->buf = b;
			c->cap = cap;
		}
		memcpy(c->buf + c->len, chunk, (size_t)r);
		c->len += (size_t)r;
	}
}

static void *capture_drain(void *arg)
{
	struct capture *c = arg;

	for (;;) {
		struct pollfd p[2];
		p[0].fd = c->rfd;
		p[0].events = POLLIN;
		p[1].fd = c->stopfd;
		p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & (POLLIN | POLLHUP))
			capture_take(c);
		if (p[1].revents & (POLLIN | POLLHUP)) {
			capture_take(c); /* whatever is left; the read end is non-blocking */
			break;
		}
		if ((p[0].revents & POLLHUP) && !(p[0].revents & POLLIN))
			break; /* every writer is gone */
	}
	return NULL;
}

static int cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);
	return f < 0 ? -1 : fcntl(fd, F_SETFD, f | FD_CLOEXEC);
}

/* Split captured text: our lines (prefix removed) into out, others to fd 2. */
static void capture_sort(const struct capture *c, char *out, size_t outlen)
{
	const char *p = c->buf, *end = c->buf + c->len;
	size_t plen = strlen(CAPTURE_PREFIX ": "), used = 0;

	if (outlen > 0)
		out[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl != NULL ? nl : end;
		size_t n = (size_t)(stop - p);
		if (n >= plen && memcmp(p, CAPTURE_PREFIX ": ", plen) == 0) {
			size_t m = n - plen;
			if (out != NULL && used + m + 2 <= outlen) {
				if (used > 0)
					out[used++] = '\n';
				memcpy(out + used, p + plen, m);
				used += m;
				out[used] = '\0';
			}
		} else {
			const char *q = p;
			size_t left = (size_t)(stop - p) + (nl != NULL);
			while (left > 0) {
				ssize_t w = write(2, q, left);
				if (w <= 0)
					break;
				q += w;
				left -= (size_t)w;
			}
		}
		p = nl != NULL ? nl + 1 : end;
	}
}

static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;

/* kvm_open with a prefix and fd 2 captured; messages into out. */
static kvm_t *open_captured(const char *namelist, const char *corefile,
			    const char *swapfile, int flag, char *out,
			    size_t outlen, int *errp)
{
	struct capture c;
	int data[2] = {-1, -1}, stop[2] = {-1, -1};
	int saved = -1, had_fd2, e;
	pthread_t thread;
	kvm_t *kd;

	memset(&c, 0, sizeof(c));
	pthread_mutex_lock(&capture_lock);
	fflush(stderr);
	had_fd2 = fcntl(2, F_GETFD) >= 0;
	if (pipe(data) != 0 || pipe(stop) != 0 || cloexec(data[0]) || cloexec(data[1]) ||
	    cloexec(stop[0]) || cloexec(stop[1]) ||
	    fcntl(data[0], F_SETFL, fcntl(data[0], F_GETFL) | O_NONBLOCK) < 0 ||
	    (had_fd2 && (saved = fcntl(2, F_DUPFD_CLOEXEC, 3)) < 0))
		goto uncaptured;
	c.rfd = data[0];
	c.stopfd = stop[0];
	if (pthread_create(&thread, NULL, capture_drain, &c) != 0)
		goto uncaptured;
	if (dup2(data[1], 2) < 0) {
		(void)write(stop[1], "", 1);
		pthread_join(thread, NULL);
		goto uncaptured;
	}
	close(data[1]);
	data[1] = -1;

	errno = 0;
	kd = kvm_open(namelist, corefile, swapfile, flag, CAPTURE_PREFIX);
	e = errno;

	/* Put fd 2 back before anything else can fail. */
	fflush(stderr);
	if (saved >= 0) {
		while (dup2(saved, 2) < 0 && errno == EINTR)
			;
		close(saved);
		saved = -1;
	} else {
		close(2);
	}
	(void)write(stop[1], "", 1);
	pthread_join(thread, NULL);
	close(data[0]);
	close(stop[0]);
	close(stop[1]);
	pthread_mutex_unlock(&capture_lock);
	capture_sort(&c, out, outlen);
	free(c.buf);
	*errp = e;
	return kd;

uncaptured:
	/* No pipe, fd or thread to spare: open without the message. */
	if (saved >= 0)
		close(saved);
	if (data[0] >= 0)
		close(data[0]);
	if (data[1] >= 0)
		close(data[1]);
	if (stop[0] >= 0)
		close(stop[0]);
	if (stop[1] >= 0)
		close(stop[1]);
	pthread_mutex_unlock(&capture_lock);
	errno = 0;
	kd = kvm_open(namelist, corefile, swapfile, flag, NULL);
	*errp = errno;
	if (kd == NULL && out != NULL && outlen > 0)
		snprintf(out, outlen, "kvm_open failed (its message could not be captured)");
	return kd;
}
#endif /* NATIVE_ILLUMOS */

pykvm_handle_t *pykvm_open(const char *namelist, const char *corefile,
			   const char *swapfile, int flag, const char *errstr,
			   char *errbuf, const struct pykvm_open_opts *o)
{
	char msg[MSG_SIZE];
	struct native *n;
	kvm_t *kd = NULL;
	int e = 0;

	/* Printing with errstr is the Python layer's job over a native libkvm. */
	(void)errstr;
	msg[0] = '\0';
	if (o != NULL && (o->flags != 0 || o->cache_pages != 0 || o->format != NULL ||
			  o->parts != NULL || o->nparts != 0 || o->map_budget != 0 ||
			  o->btf != NULL)) {
		snprintf(msg, sizeof(msg), "open options are not available with the native libkvm of %s",
			 PLATFORM);
		e = ENOTSUP;
		goto fail;
	}
	if (swapfile != NULL) {
		/* Both libkvms ignore it; pykvm's contract says it must open. */
		int fd = open(swapfile, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			e = errno;
			snprintf(msg, sizeof(msg), "%s: %s", swapfile, strerror(e));
			goto fail;
		}
		close(fd);
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL || (corefile != NULL && (n->corefile = strdup(corefile)) == NULL)) {
		free(n);
		e = ENOMEM;
		snprintf(msg, sizeof(msg), "out of memory");
		goto fail;
	}
	n->flag = flag;

#ifdef NATIVE_FREEBSD
	errno = 0;
	kd = kvm_openfiles(namelist, corefile, swapfile, flag, msg);
	e = errno;
	if (kd != NULL && !kvm_native(kd)) {
		snprintf(msg, sizeof(msg),
			 "%s: not a core of this machine's data model (kvm_native() is 0)",
			 corefile != NULL ? corefile : "kernel");
		kvm_close(kd);
		kd = NULL;
		e = EINVAL;
	}
#else
	/*
	 * Quietly first: a handle opened with a prefix would have later errors
	 * printed too by a libkvm that does so.  Only a failure is repeated
	 * with the prefix, under capture, to learn its message.
	 */
	errno = 0;
	kd = kvm_open(namelist, corefile, swapfile, flag, NULL);
	e = errno;
	if (kd == NULL)
		kd = open_captured(namelist, corefile, swapfile, flag, msg, sizeof(msg), &e);
#endif
	if (kd == NULL) {
		free(n->corefile);
		free(n);
		if (msg[0] == '\0')
			snprintf(msg, sizeof(msg), "%s", e ? strerror(e) : "kvm_open failed");
		goto fail;
	}
	n->kd = kd;
	return (pykvm_handle_t *)(void *)n;

fail:
	if (errbuf != NULL)
		snprintf(errbuf, MSG_SIZE, "%s", msg);
	errno = e ? e : EINVAL;
	return NULL;
}

int pykvm_close(pykvm_handle_t *h)
{
	struct native *n = H(h);
	int r;

	if (n == NULL) {
		errno = EINVAL;
		return -1;
	}
	r = kvm_close(n->kd); /* never NULL here: illumos would crash on it */
	free(n->corefile);
	free(n);
	return r;
}

const char *pykvm_geterr(pykvm_handle_t *h)
{
	return h == NULL ? "" : H(h)->msg;
}

int pykvm_errno(pykvm_handle_t *h)
{
	return h == NULL ? EINVAL : H(h)->err;
}

uint64_t pykvm_erraddr(pykvm_handle_t *h)
{
	return h == NULL ? 0 : H(h)->erraddr;
}

/* ---- symbols ---- */

#ifdef NATIVE_ILLUMOS
/*
 * n_type: an a.out <nlist.h> (FreeBSD's, the shim's) defines N_TEXT and
 * stores N_* types; illumos's SVR4 <nlist.h> does not, and nlist(3ELF)
 * stores the ELF symbol type there.  Give Python N_* types either way.
 */
#if defined(N_TEXT) && defined(N_EXT)
#define NTYPE(t) ((unsigned char)(t))
#else
static unsigned char elf_to_aout(unsigned t)
{
	switch (t) {
	case 1: /* STT_OBJECT */
	case 5: /* STT_COMMON */
	case 6: /* STT_TLS */
		return 0x06; /* N_DATA */
	case 2: /* STT_FUNC */
		return 0x04; /* N_TEXT */
	default:
		return 0x02; /* N_ABS: a value with no more said about it */
	}
}
#define NTYPE(t) elf_to_aout(t)
#endif

static const char *const *sort_names;

static int by_name(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(sort_names[i], sort_names[j]);
	return c != 0 ? c : (i > j) - (i < j);
}
#endif

int pykvm_nlist(pykvm_handle_t *h, const char **names, size_t n,
		uint64_t *values, unsigned char *types)
{
	struct native *k = H(h);
	size_t i, m = 0;
	int missing = 0, r;

	if (k == NULL) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++) {
		values[i] = 0;
		types[i] = 0;
		m += names[i][0] != '\0'; /* an empty name would end the array */
	}
	missing = (int)(n - m);
	if (m == 0)
		return missing;
#ifdef NATIVE_FREEBSD
	{
		struct kvm_nlist *nl = calloc(m + 1, sizeof(*nl));
		size_t j = 0;
		if (nl == NULL) {
			set_msg(k, ENOMEM, "out of memory");
			return -1;
		}
		for (i = 0; i < n; i++)
			if (names[i][0] != '\0')
				nl[j++].n_name = names[i];
		errno = 0;
		r = kvm_nlist2(k->kd, nl);
		if (r < 0) {
			k->err = errno;
			snprintf(k->msg, sizeof(k->msg), "%s", kvm_geterr(k->kd));
			if (k->msg[0] == '\0')
				set_msg(k, errno, "kvm_nlist2 failed");
			free(nl);
			return -1;
		}
		/* r counts the unresolved; each entry says which they are. */
		for (i = 0, j = 0; i < n; i++) {
			if (names[i][0] == '\0')
				continue;
			values[i] = nl[j].n_value;
			types[i] = nl[j].n_type;
			missing += nl[j].n_type == 0 && nl[j].n_value == 0;
			j++;
		}
		free(nl);
	}
#else
	{
		struct nlist *nl = calloc(m + 1, sizeof(*nl));
		size_t *idx = NULL, j = 0;
		if (nl == NULL) {
			set_msg(k, ENOMEM, "out of memory");
			return -1;
		}
		for (i = 0; i < n; i++)
			if (names[i][0] != '\0')
				nl[j++].n_name = (char *)(uintptr_t)names[i];
		errno = 0;
		r = kvm_nlist(k->kd, nl);
		if (r == -1) {
			int e = errno;
			set_msg(k, e ? e : EINVAL,
				"%s: kvm_nlist failed: no namelist, or not a usable one",
				core_name(k));
			free(nl);
			return -1;
		}
		/*
		 * illumos returns 0 even when names are missing: a missing entry
		 * is one whose fields were left zeroed.  (Whatever r says.)
		 */
		for (i = 0, j = 0; i < n; i++) {
			if (names[i][0] == '\0')
				continue;
			if (nl[j].n_value == 0 && nl[j].n_type == 0) {
				missing++;
			} else {
				values[i] = (uint64_t)(unsigned long)nl[j].n_value;
				types[i] = NTYPE(nl[j].n_type);
			}
			j++;
		}
		/*
		 * nlist(3ELF) fills only the first entry of a name given twice:
		 * copy the answer to the repeats.
		 */
		if (missing > (int)(n - m) && m > 1 &&
		    (idx = malloc(m * sizeof(*idx))) != NULL) {
			const char **packed = malloc(m * sizeof(*packed));
			size_t *where = malloc(m * sizeof(*where));
			if (packed != NULL && where != NULL) {
				for (i = 0, j = 0; i < n; i++)
					if (names[i][0] != '\0') {
						packed[j] = names[i];
						where[j] = i;
						idx[j] = j;
						j++;
					}
				sort_names = packed;
				qsort(idx, m, sizeof(*idx), by_name);
				for (j = 1; j < m; j++) {
					size_t a = where[idx[j - 1]], b = where[idx[j]];
					if (strcmp(names[a], names[b]) != 0)
						continue;
					if ((values[b] | types[b]) == 0 && (values[a] | types[a]) != 0) {
						values[b] = values[a];
						types[b] = types[a];
						missing--;
					}
				}
			}
			free(packed);
			free(where);
			free(idx);
		}
		free(nl);
	}
#endif
	return missing;
}

/* ---- reads and writes ---- */

enum op { OP_READ, OP_WRITE, OP_PREAD, OP_PWRITE };

static const char *const op_space[] = {"virtual", "virtual", "physical", "physical"};

/* One call into the platform library; returns its count or -1. */
static ssize_t raw(struct native *n, enum op op, uint64_t addr, void *buf, size_t len)
{
#ifdef NATIVE_FREEBSD
	switch (op) {
	case OP_READ:
		return kvm_read2(n->kd, addr, buf, len);
	case OP_WRITE:
		if (addr > (uint64_t)(unsigned long)-1)
			return -1;
		return kvm_write(n->kd, (unsigned long)addr, buf, len);
	default:
		return -1;
	}
#else
	if (addr > (uint64_t)UINTPTR_MAX && (op == OP_READ || op == OP_WRITE))
		return -1;
	switch (op) {
	case OP_READ:
		return kvm_kread(n->kd, (uintptr_t)addr, buf, len);
	case OP_WRITE:
		return kvm_kwrite(n->kd, (uintptr_t)addr, buf, len);
	case OP_PREAD:
		return kvm_pread(n->kd, addr, buf, len);
	default:
		return kvm_pwrite(n->kd, addr, buf, len);
	}
#endif
}

/*
 * The first address of [addr, addr+len) that does not read.  Neither library
 * says, and FreeBSD returns -1 even after partial progress: probe page by
 * page, then halve within the failing page.  The probes read into buf, the
 * caller's, whose contents a failed read leaves unspecified anyway.
 */
static uint64_t first_fault(struct native *n, enum op op, uint64_t addr,
			    unsigned char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		uint64_t a = addr + done;
		size_t chunk = PROBE_CHUNK - (size_t)(a & (PROBE_CHUNK - 1));
		if (chunk > len - done)
			chunk = len - done;
		if (raw(n, op, a, buf + done, chunk) != (ssize_t)chunk) {
			size_t lo = 0, hi = chunk; /* prefix lo reads; prefix hi does not */
			while (hi - lo > 1) {
				size_t mid = lo + (hi - lo) / 2;
				if (raw(n, op, a, buf + done, mid) == (ssize_t)mid)
					lo = mid;
				else
					hi = mid;
			}
			return a + lo;
		}
		done += chunk;
	}
	return addr; /* every piece read on its own: report the start */
}

static int64_t access_op(pykvm_handle_t *h, enum op op, uint64_t addr,
			 void *buf, size_t len)
{
	struct native *n = H(h);
	ssize_t r;
	int e;

	if (n == NULL) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	r = raw(n, op, addr, buf, len);
	if (r == (ssize_t)len)
		return r;
	e = errno;
#ifdef NATIVE_FREEBSD
	snprintf(n->msg, sizeof(n->msg), "%s", kvm_geterr(n->kd));
#else
	n->msg[0] = '\0'; /* illumos says nothing: the message is ours */
#endif
	if (op == OP_WRITE && n->flag != O_RDWR && e == 0)
		e = EBADF;
	n->err = e;
	if (op == OP_WRITE || op == OP_PWRITE)
		n->erraddr = r > 0 ? addr + (uint64_t)r : addr;
	else
		n->erraddr = r > 0 ? addr + (uint64_t)r : first_fault(n, op, addr, buf, len);
	if (n->msg[0] == '\0') {
		unsigned long long a = (unsigned long long)n->erraddr;
		if ((op == OP_WRITE || op == OP_PWRITE) && n->flag != O_RDWR)
			snprintf(n->msg, sizeof(n->msg), "%s: opened read-only: cannot write",
				 core_name(n));
		else if (op == OP_WRITE || op == OP_PWRITE)
			snprintf(n->msg, sizeof(n->msg), "%s address 0x%llx: cannot write %s there%s%s",
				 op_space[op], a, core_name(n), e ? ": " : "", e ? strerror(e) : "");
		else
			snprintf(n->msg, sizeof(n->msg), "%s address 0x%llx is not readable in %s%s%s",
				 op_space[op], a, core_name(n), e ? ": " : "", e ? strerror(e) : "");
	}
	return r < 0 ? -1 : r;
}

int64_t pykvm_read(pykvm_handle_t *h, uint64_t addr, void *buf, size_t len)
{
	return access_op(h, OP_READ, addr, buf, len);
}

int64_t pykvm_write(pykvm_handle_t *h, uint64_t addr, const void *buf, size_t len)
{
	return access_op(h, OP_WRITE, addr, (void *)(uintptr_t)buf, len);
}

static int64_t unsupported(pykvm_handle_t *h, const char *what)
{
	struct native *n = H(h);

	if (n != NULL)
		set_msg(n, ENOTSUP, "%s is not available with the native libkvm of %s", what, PLATFORM);
	errno = ENOTSUP;
	return -1;
}

int64_t pykvm_pread(pykvm_handle_t *h, uint64_t addr, void *buf, size_t len)
{
#if HAS_PREAD
	return access_op(h, OP_PREAD, addr, buf, len);
#else
	(void)addr, (void)buf, (void)len;
	return unsupported(h, "kvm_pread");
#endif
}

int64_t pykvm_pwrite(pykvm_handle_t *h, uint64_t addr, const void *buf, size_t len)
{
#if HAS_PWRITE
	return access_op(h, OP_PWRITE, addr, (void *)(uintptr_t)buf, len);
#else
	(void)addr, (void)buf, (void)len;
	return unsupported(h, "kvm_pwrite");
#endif
}

uint64_t pykvm_physaddr(pykvm_handle_t *h, uint64_t addr)
{
#if HAS_PHYSADDR
	struct native *n = H(h);
	uint64_t pa;

	if (n == NULL || addr > (uint64_t)UINTPTR_MAX)
		return (uint64_t)-1;
	if (n->kas_state == 0) {
		/* illumos: the kernel's address space is the symbol "kas". */
		struct nlist nl[2];
		memset(nl, 0, sizeof(nl));
		nl[0].n_name = (char *)(uintptr_t)"kas";
		n->kas_state = -1;
		if (kvm_nlist(n->kd, nl) != -1 && nl[0].n_value != 0) {
			n->kas = (uintptr_t)nl[0].n_value;
			n->kas_state = 1;
		}
	}
	errno = 0;
	pa = kvm_physaddr(n->kd, n->kas_state == 1 ? (struct as *)n->kas : NULL,
			  (uintptr_t)addr);
	if (pa == (uint64_t)-1) {
		set_msg(n, errno ? errno : EFAULT,
			"virtual address 0x%llx has no physical address in %s",
			(unsigned long long)addr, core_name(n));
		n->erraddr = addr;
	}
	return pa;
#else
	(void)addr;
	unsupported(h, "kvm_physaddr");
	return (uint64_t)-1;
#endif
}

int64_t pykvm_kerndisp(pykvm_handle_t *h)
{
#if HAS_KERNDISP
	return h == NULL ? 0 : (int64_t)kvm_kerndisp(H(h)->kd);
#else
	unsupported(h, "kvm_kerndisp");
	return 0;
#endif
}

/* ---- batches ---- */

/*
 * Batches are the glue's own loops over the platform's read: no libkvm has
 * a batch call, and one crossing from Python still saves the most.
 */
size_t pykvm_read_many(pykvm_handle_t *h, const uint64_t *addrs, size_t n,
		       size_t size, void *out, int64_t *results, int physical)
{
	unsigned char *o = out;
	enum op op = physical ? OP_PREAD : OP_READ;
	size_t i, failed = 0;

	for (i = 0; i < n; i++) {
		int64_t r;
#if !HAS_PREAD
		if (physical) {
			unsupported(h, "kvm_pread");
			r = -1;
		} else
#endif
			r = access_op(h, op, addrs[i], o + i * size, size);
		if (r == (int64_t)size) {
			results[i] = r;
		} else {
			int e = H(h) != NULL ? H(h)->err : EINVAL;
			results[i] = -(int64_t)(e ? e : EFAULT);
			failed++;
		}
	}
	return failed;
}

size_t pykvm_read_scatter(pykvm_handle_t *h, const uint64_t *addrs,
			  const uint64_t *sizes, size_t n, void *out,
			  int64_t *results)
{
	unsigned char *o = out;
	size_t i, failed = 0;

	for (i = 0; i < n; i++) {
		int64_t r = access_op(h, OP_READ, addrs[i], o, (size_t)sizes[i]);
		if (r == (int64_t)sizes[i]) {
			results[i] = r;
		} else {
			int e = H(h) != NULL ? H(h)->err : EINVAL;
			results[i] = -(int64_t)(e ? e : EFAULT);
			failed++;
		}
		o += sizes[i];
	}
	return failed;
}

int64_t pykvm_page_offset(pykvm_handle_t *h, uint64_t addr, int physical)
{
	(void)h, (void)addr, (void)physical;
	return -1; /* no mapped-core fast path over a native libkvm */
}

const void *pykvm_mapping(pykvm_handle_t *h, uint64_t *size)
{
	(void)h;
	*size = 0;
	return NULL;
}

/* ---- shim extensions: absent ---- */

size_t pykvm_cache_used(pykvm_handle_t *h)
{
	(void)h;
	return 0; /* the shim's decompressed-page cache; pykvm_has("cache") is 0 */
}

size_t pykvm_vmcoreinfo(pykvm_handle_t *h, char *buf, size_t len)
{
	(void)h;
	if (buf != NULL && len > 0)
		buf[0] = '\0';
	return 0; /* a platform libkvm keeps no VMCOREINFO; pykvm_has("vmcoreinfo") is 0 */
}

size_t pykvm_info(pykvm_handle_t *h, char *buf, size_t len)
{
	(void)h;
	if (buf != NULL && len > 0)
		buf[0] = '\0';
	return 0;
}

size_t pykvm_symcount(pykvm_handle_t *h)
{
	(void)h;
	return 0;
}

int pykvm_symbol(pykvm_handle_t *h, size_t i, const char **name, uint64_t *value,
		 unsigned char *type, char *letter, const char **module)
{
	(void)h, (void)i, (void)name, (void)value, (void)type, (void)letter, (void)module;
	return -1;
}

int64_t pykvm_symbol_index(pykvm_handle_t *h, const char *name)
{
	(void)h, (void)name;
	return -1;
}

size_t pykvm_notes(pykvm_handle_t *h, void *buf, size_t len)
{
	(void)h, (void)buf, (void)len;
	return 0; /* the platform libkvm does not hand out the core's notes */
}

/* ---- kernel types: the shim's BTF reader only ---- */

int pykvm_btf_count(pykvm_handle_t *h, unsigned *n)
{
	(void)n;
	return (int)unsupported(h, "kernel types (BTF)");
}

int pykvm_btf_find(pykvm_handle_t *h, const char *name, int kind)
{
	(void)name, (void)kind;
	return (int)unsupported(h, "kernel types (BTF)");
}

int pykvm_btf_type(pykvm_handle_t *h, unsigned id, struct pykvm_btf_type *out)
{
	(void)id, (void)out;
	return (int)unsupported(h, "kernel types (BTF)");
}

int pykvm_btf_member(pykvm_handle_t *h, unsigned id, unsigned i, struct pykvm_btf_member *out)
{
	(void)id, (void)i, (void)out;
	return (int)unsupported(h, "kernel types (BTF)");
}

const char *pykvm_btf_module(pykvm_handle_t *h, unsigned id)
{
	(void)id;
	(void)unsupported(h, "kernel types (BTF)");
	return NULL;
}

const char *pykvm_btf_skipped(pykvm_handle_t *h)
{
	(void)unsupported(h, "kernel types (BTF)");
	return NULL;
}
