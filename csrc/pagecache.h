/*
 * pagecache.h - a bounded cache of decoded pages for compressed formats,
 * keyed by page number and safe for concurrent readers.
 *
 * Sets of a few slots each (CLOCK replacement within a set), spread over
 * up to 64 locks so readers of different pages rarely meet.  A miss is
 * filled by the caller's callback outside the lock; readers of the page
 * being filled wait for it instead of decoding it twice.  Pages may also
 * be put in directly (a format that decodes several pages at once).
 */
#ifndef PYKVM_PAGECACHE_H
#define PYKVM_PAGECACHE_H

#include "kvm_private.h"

struct kvm_pagecache;

/* Decode page key into dst (page_size bytes); KVM_OK or why not, error set. */
typedef enum kvm_status (*kvm_page_fill_fn)(kvm_t *kd, void *arg,
					     uint64_t key, unsigned char *dst);

/* At most max_pages pages of page_size bytes (buffers from one reserved
 * mapping, touched as they are first filled: huge pages where the kernel has them);
 * NULL with the error set (about path) when out of memory. */
struct kvm_pagecache *kvm_pagecache_new(kvm_t *kd, size_t max_pages,
					size_t page_size);
void kvm_pagecache_free(struct kvm_pagecache *c);

/* Copy n bytes at off of a cached page into out: 1, or 0 when it is not
 * cached.  ref (may be NULL) gets the slot and its generation on a hit. */
int kvm_pagecache_lookup(struct kvm_pagecache *c, uint64_t key, size_t off,
			 void *out, size_t n, struct kvm_pageref *ref);

/* Copy n bytes at off of page key into out, calling fill on a miss; ref
 * (may be NULL) as for kvm_pagecache_lookup when it succeeds. */
enum kvm_status kvm_pagecache_read(kvm_t *kd, struct kvm_pagecache *c,
				   uint64_t key, size_t off, void *out,
				   size_t n, kvm_page_fill_fn fill, void *arg,
				   struct kvm_pageref *ref);

/*
 * Copy n bytes at off of the slot ref names, without a lock: 1 when the
 * slot still holds what it held when ref was taken, else 0 (out may then
 * hold anything; read again the usual way).  Safe while the cache lives.
 */
int kvm_pagecache_reread(const struct kvm_pageref *ref, size_t off, void *out,
			 size_t n);

/* Put a decoded page (page_size bytes) in, replacing what it evicts.
 * 0, or -1 when out of memory (the cache stays as it was). */
int kvm_pagecache_insert(struct kvm_pagecache *c, uint64_t key,
			 const void *page);

/* Pages held now. */
size_t kvm_pagecache_used(struct kvm_pagecache *c);

#endif /* PYKVM_PAGECACHE_H */
