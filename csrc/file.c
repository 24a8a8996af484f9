/* file.c - opening core and namelist files: mmap where possible, else pread. */
#define _DEFAULT_SOURCE 1 /* madvise(MADV_DONTNEED): posix_madvise's is a no-op on Linux */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm_private.h"

/*
 * Map len bytes of fd at an address aligned to 2 MiB, so that the file's
 * offsets and the addresses agree modulo 2 MiB: a page-cache folio (at
 * most 2 MiB, aligned in the file) then lies in one window of the bound,
 * which the kernel may map whole on a read of any of its pages.
 */
#define MAP_ALIGN ((size_t)2 << 20)
static void *map_aligned(size_t len, int prot, int fd)
{
	void *r, *m;
	uintptr_t a, end, rend;

	if (len > SIZE_MAX - MAP_ALIGN)
		return mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	r = mmap(NULL, len + MAP_ALIGN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	a = ((uintptr_t)r + MAP_ALIGN - 1) & ~(uintptr_t)(MAP_ALIGN - 1);
	m = mmap((void *)a, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
	if (m == MAP_FAILED) {
		munmap(r, len + MAP_ALIGN);
		return mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	}
	/* Give back the reservation around the file's pages. */
	end = (a + len + 4095) & ~(uintptr_t)4095;
	rend = (uintptr_t)r + len + MAP_ALIGN;
	if (a > (uintptr_t)r)
		munmap(r, a - (uintptr_t)r);
	if (rend > end)
		munmap((void *)end, rend - end);
	return m;
}

int kvm_file_open(kvm_t *kd, struct kvm_file *f, const char *path, int flag,
		  int want_map)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->path = strdup(path);
	if (f->path == NULL) {
		kvm_err(kd, ENOMEM, "out of memory");
		return -1;
	}
	f->fd = open(path, (flag == O_RDWR ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (f->fd < 0) {
		kvm_syserr(kd, path, NULL);
		return -1;
	}
	if (fstat(f->fd, &st) != 0) {
		kvm_syserr(kd, path, "fstat");
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		kvm_err(kd, EISDIR, "%s: is a directory", path);
		return -1;
	}
	f->writable = flag == O_RDWR;
	f->size = (uint64_t)st.st_size;
	/* want_map 2: a size of 0 may mean "unsized" (/proc files), read to EOF. */
	if (S_ISREG(st.st_mode) && st.st_size == 0 && want_map != 2) {
		kvm_err(kd, EINVAL, "%s: empty file", path);
		return -1;
	}
	/*
	 * Map regular files whole: reads then cost a memcpy and no system
	 * call.  /proc/kcore reports a huge sparse size and refuses mmap;
	 * devices and 32-bit address spaces may refuse too: pread then.
	 */
	if (want_map && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= SIZE_MAX) {
		int prot = PROT_READ | (f->writable ? PROT_WRITE : 0);
		void *m = map_aligned((size_t)st.st_size, prot, f->fd);
		if (m != MAP_FAILED) {
			f->map = m;
			/* Kernel reads jump around; readahead would only waste I/O. */
			posix_madvise(m, (size_t)st.st_size, POSIX_MADV_RANDOM);
		}
	}
	return 0;
}

/* ---- the resident bound of a mapping ---- */

/*
 * 2 MiB windows, the largest page-cache folio: Linux 6.18 maps a whole
 * folio on a read fault of any page of it, and with 128 KiB windows a
 * window counted once was measured to hold up to 2 MiB (the mapping grew
 * to 60 MiB under a 48 MiB budget).  The mapping is 2 MiB-aligned
 * (map_aligned), so a folio never straddles two windows.
 */
#define WIN_SHIFT KVM_WIN_SHIFT

#if defined(__GNUC__)
#define LOAD8(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE8(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define XCHG8(x, v) __atomic_exchange_n(&(x), (v), __ATOMIC_RELAXED)
#define ADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)
#define SUB(x, v) __atomic_sub_fetch(&(x), (v), __ATOMIC_RELAXED)
#define LOADZ(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#else
#define LOAD8(x) (x)
#define STORE8(x, v) ((x) = (v))
static unsigned char xchg8(unsigned char *p, unsigned char v)
{
	unsigned char o = *p;
	*p = v;
	return o;
}
#define XCHG8(x, v) xchg8(&(x), (v))
#define ADD(x, v) ((x) += (v))
#define SUB(x, v) ((x) -= (v))
#define LOADZ(x) (x)
#endif

/*
 * Bound what stays mapped of f to budget bytes (SIZE_MAX: no bound).
 * Reads and writes through the mapping mark the 2 MiB windows they touch;
 * when more than the budget are marked, a clock sweep unmaps the windows
 * not read since the previous sweep (MADV_DONTNEED drops the mapping, not
 * the OS page cache: a later read maps them again).  Without the memory
 * for the marks, or without MADV_DONTNEED, the mapping is not bounded.
 */
void kvm_file_bound(struct kvm_file *f, size_t budget)
{
#ifdef MADV_DONTNEED
	uintptr_t first, last;

	if (f->map == NULL || budget == SIZE_MAX || f->size == 0)
		return;
	first = (uintptr_t)f->map >> WIN_SHIFT;
	last = ((uintptr_t)f->map + (size_t)f->size - 1) >> WIN_SHIFT;
	if (budget >> WIN_SHIFT >= last - first + 1)
		return; /* the whole file fits: nothing to bound */
	if (pthread_mutex_init(&f->win_lock, NULL) != 0)
		return;
	f->win = calloc(last - first + 1, 1);
	if (f->win == NULL) {
		pthread_mutex_destroy(&f->win_lock);
		return;
	}
#ifdef MADV_NOHUGEPAGE
	/* One fault could map a 2 MiB folio whole: keep to small pages. */
	(void)madvise(f->map, (size_t)f->size, MADV_NOHUGEPAGE);
#endif
	f->nwin = last - first + 1;
	f->win_base = first;
	f->win_max = budget >> WIN_SHIFT ? budget >> WIN_SHIFT : 1;
#else
	(void)f, (void)budget;
#endif
}

#ifdef MADV_DONTNEED
/* Unmap windows [w, w + n) of the mapping. */
static void drop(struct kvm_file *f, size_t w, size_t n)
{
	uintptr_t lo = (f->win_base + w) << WIN_SHIFT, hi = (f->win_base + w + n) << WIN_SHIFT;
	uintptr_t start = (uintptr_t)f->map, end = start + (size_t)f->size;

	if (lo < start)
		lo = start;
	if (hi > end)
		hi = end;
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/*
 * The clock sweep: unmap windows not read since the last pass until an
 * eighth of the budget is free.  Windows the hand passes that are not
 * marked are unmapped too: the kernel may have mapped parts of them
 * beside a marked one (fault-around, large page-cache folios).  One thread
 * sweeps; the others go on reading.
 */
static void sweep(struct kvm_file *f)
{
	size_t target = f->win_max - f->win_max / 8, scanned = 0, run = 0, run_at = 0;

	if (pthread_mutex_trylock(&f->win_lock) != 0)
		return;
	if (target >= f->win_max)
		target = f->win_max - 1;
	while (LOADZ(f->win_used) > target && scanned < 2 * f->nwin) {
		size_t w = f->hand;
		unsigned char v = LOAD8(f->win[w]);
		int drop_it = v == 0;
		if (v == 1) {
			STORE8(f->win[w], 2);
		} else if (v == 2 && XCHG8(f->win[w], 0) == 2) {
			SUB(f->win_used, 1);
			drop_it = 1;
		}
		/* Neighbouring windows go in one call. */
		if (drop_it && run > 0 && run_at + run == w) {
			run++;
		} else {
			if (run > 0)
				drop(f, run_at, run);
			run = (size_t)drop_it;
			run_at = w;
		}
		f->hand = w + 1 == f->nwin ? 0 : w + 1;
		if (f->hand == 0 && run > 0) {
			drop(f, run_at, run);
			run = 0;
		}
		scanned++;
	}
	if (run > 0)
		drop(f, run_at, run);
	pthread_mutex_unlock(&f->win_lock);
}
#endif

void kvm_file_touch_slow(struct kvm_file *f, uint64_t off, size_t len)
{
#ifdef MADV_DONTNEED
	uintptr_t a = (uintptr_t)f->map + (size_t)off;
	size_t w, last;

	if (len == 0)
		return;
	w = (a >> WIN_SHIFT) - f->win_base;
	last = ((a + len - 1) >> WIN_SHIFT) - f->win_base;
	for (; w <= last && w < f->nwin; w++) {
		if (LOAD8(f->win[w]) == 1)
			continue;
		if (XCHG8(f->win[w], 1) == 0 && ADD(f->win_used, 1) > f->win_max)
			sweep(f);
	}
#else
	(void)f, (void)off, (void)len;
#endif
}

void kvm_file_close(struct kvm_file *f)
{
	if (f->win != NULL) {
		free(f->win);
		pthread_mutex_destroy(&f->win_lock);
	}
	if (f->map != NULL)
		munmap(f->map, (size_t)f->size);
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

/* Read exactly len bytes at off, or fail with a message naming the file. */
int kvm_file_pread(kvm_t *kd, struct kvm_file *f, uint64_t off, void *buf,
		   size_t len)
{
	if (kvm_file_copy(f, off, buf, len, 0) == KVM_OK)
		return 0;
	if (off > f->size || len > f->size - off)
		kvm_err(kd, EINVAL,
			"%s: truncated: need %zu bytes at offset %llu, file has %llu",
			f->path, len, (unsigned long long)off,
			(unsigned long long)f->size);
	else
		kvm_syserr(kd, f->path, "read");
	return -1;
}

/*
 * Move len bytes between buf and the file at off.  The caller has checked
 * that the range is inside the file (pread may still come up short on
 * special files, which is an I/O error).
 */
enum kvm_status kvm_file_copy(struct kvm_file *f, uint64_t off, void *buf,
			      size_t len, int write)
{
	unsigned char *p = buf;

	if (f->map != NULL) {
		if (off > f->size || len > f->size - off)
			return KVM_IOERR;
		if (f->win != NULL && len > (1u << WIN_SHIFT)) {
			/* Window by window: a long copy marks what it maps as it goes. */
			while (len > 0) {
				size_t n = (1u << WIN_SHIFT) -
					   (size_t)(((uintptr_t)f->map + off) & ((1u << WIN_SHIFT) - 1));
				if (n > len)
					n = len;
				kvm_file_touch_slow(f, off, n);
				if (write)
					memcpy(f->map + off, p, n);
				else
					memcpy(p, f->map + off, n);
				off += n;
				p += n;
				len -= n;
			}
			return KVM_OK;
		}
		kvm_file_touch(f, off, len);
		if (write)
			memcpy(f->map + off, buf, len);
		else
			memcpy(buf, f->map + off, len);
		return KVM_OK;
	}
	while (len > 0) {
		ssize_t r = write ? pwrite(f->fd, p, len, (off_t)off)
				  : pread(f->fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return KVM_IOERR;
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return KVM_OK;
}
