/* file.c - opening core and namelist files: mmap where possible, else pread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm_private.h"

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
		void *m = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED,
			       f->fd, 0);
		if (m != MAP_FAILED) {
			f->map = m;
			/* Kernel reads jump around; readahead would only waste I/O. */
			posix_madvise(m, (size_t)st.st_size, POSIX_MADV_RANDOM);
		}
	}
	return 0;
}

void kvm_file_close(struct kvm_file *f)
{
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
