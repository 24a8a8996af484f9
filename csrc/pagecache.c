/*
 * pagecache.c - the bounded, striped cache of decoded pages (pagecache.h).
 */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, madvise(MADV_HUGEPAGE) */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pagecache.h"

#define CACHE_WAYS 8 /* slots per cache set */
#define CACHE_STRIPES 64

enum { SLOT_EMPTY, SLOT_VALID, SLOT_FILLING };

/*
 * The page buffers come from one anonymous mapping of max_pages pages,
 * handed out in order as slots are first filled, so the memory touched
 * grows with the pages cached and never passes the bound.  A first fill
 * of a fresh buffer costs a page fault (about 3 us on a virtual machine,
 * as much as decoding an LZO page); with transparent huge pages the
 * kernel faults the mapping in 2 MiB at a time instead (one fault per
 * 512 buffers: cold reads of compressed dumps about 1.5 us faster).
 */
#define HUGE_BYTES ((size_t)2 << 20)

/*
 * A slot's seq is its generation, odd while the slot is being (re)filled:
 * a reader without the lock (kvm_pagecache_reread) copies the data and
 * keeps the copy only if seq was even and the same before and after.
 */
struct slot {
	uint64_t key;
	unsigned char *data; /* page_size bytes from the arena, on first fill */
	uint64_t seq;
	unsigned char state;
	unsigned char ref; /* CLOCK: used since the hand last passed */
};

#if defined(__GNUC__)
#define SEQ_LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define SEQ_RELOAD(x) (__atomic_thread_fence(__ATOMIC_ACQUIRE), __atomic_load_n(&(x), __ATOMIC_RELAXED))
#define SEQ_BEGIN(x) (__atomic_store_n(&(x), (x) + 1, __ATOMIC_RELAXED), __atomic_thread_fence(__ATOMIC_RELEASE))
#define SEQ_END(x) __atomic_store_n(&(x), (x) + 1, __ATOMIC_RELEASE)
#define REF_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define REF_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
/* No atomics: no lock-free re-reads (kvm_pagecache_reread says no). */
#define SEQ_BEGIN(x) ((x)++)
#define SEQ_END(x) ((x)++)
#define REF_LOAD(x) (x)
#define REF_STORE(x, v) ((x) = (v))
#endif

/* One lock and the cache sets it guards. */
struct stripe {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a slot being filled was published */
	struct slot *slots; /* nsets sets of ways slots */
	unsigned char *hands;
	size_t nsets;
	size_t used; /* valid slots */
	unsigned waiters;
	int ready;
	char pad[64]; /* keep the next stripe's lock off these cache lines */
};

struct kvm_pagecache {
	struct stripe *stripes;
	size_t nstripes;
	unsigned ways;
	size_t page_size;
	unsigned char *map;  /* the arena's mapping (MAP_FAILED: none) */
	size_t map_len;
	unsigned char *arena; /* first buffer (huge-page aligned when large) */
	size_t nbufs, next;   /* buffers in the arena, handed out so far */
	pthread_mutex_t arena_mu;
	int arena_ready;
};

/* A buffer for a slot's first fill: the arena's next (never runs out:
 * the arena has a buffer for every slot). */
static unsigned char *arena_take(struct kvm_pagecache *c)
{
	unsigned char *p = NULL;

	pthread_mutex_lock(&c->arena_mu);
	if (c->next < c->nbufs)
		p = c->arena + c->next++ * c->page_size;
	pthread_mutex_unlock(&c->arena_mu);
	return p;
}

void kvm_pagecache_free(struct kvm_pagecache *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->stripes != NULL) {
		for (i = 0; i < c->nstripes; i++) {
			struct stripe *s = &c->stripes[i];
			free(s->slots);
			free(s->hands);
			if (s->ready) {
				pthread_mutex_destroy(&s->mu);
				pthread_cond_destroy(&s->cv);
			}
		}
		free(c->stripes);
	}
	if (c->map != NULL && c->map != MAP_FAILED)
		munmap(c->map, c->map_len);
	if (c->arena_ready)
		pthread_mutex_destroy(&c->arena_mu);
	free(c);
}

/* The arena for nbufs buffers: reserved, not touched (no RSS until used). */
static int arena_new(struct kvm_pagecache *c, size_t nbufs)
{
	size_t bytes, len;
	uintptr_t a;

	if (nbufs > SIZE_MAX / c->page_size - 2 * HUGE_BYTES)
		return -1;
	bytes = nbufs * c->page_size;
	/* Large arenas get room to start on a huge-page boundary. */
	len = bytes >= HUGE_BYTES ? bytes + HUGE_BYTES : bytes;
	c->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->map == MAP_FAILED)
		return -1;
	c->map_len = len;
	a = (uintptr_t)c->map;
	if (bytes >= HUGE_BYTES)
		a = (a + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
	c->arena = (unsigned char *)a;
	c->nbufs = nbufs;
#ifdef MADV_HUGEPAGE
	/* Advice only: where huge pages are off, faults stay 4 KiB. */
	if (bytes >= HUGE_BYTES)
		(void)madvise(c->arena, bytes & ~(HUGE_BYTES - 1), MADV_HUGEPAGE);
#endif
	if (pthread_mutex_init(&c->arena_mu, NULL) != 0)
		return -2;
	c->arena_ready = 1;
	return 0;
}

/*
 * At most max_pages pages: sets of CACHE_WAYS slots, spread over up to
 * CACHE_STRIPES locks.  Page buffers are allocated when first filled.
 */
struct kvm_pagecache *kvm_pagecache_new(kvm_t *kd, size_t max_pages,
					size_t page_size)
{
	struct kvm_pagecache *c = calloc(1, sizeof(*c));
	size_t pages = max_pages ? max_pages : 1, total_sets, i;

	if (c == NULL)
		goto nomem;
	c->map = MAP_FAILED;
	c->page_size = page_size;
	c->ways = pages < CACHE_WAYS ? (unsigned)pages : CACHE_WAYS;
	total_sets = pages / c->ways;
	c->nstripes = total_sets < CACHE_STRIPES ? total_sets : CACHE_STRIPES;
	c->stripes = calloc(c->nstripes, sizeof(*c->stripes));
	if (c->stripes == NULL)
		goto nomem;
	for (i = 0; i < c->nstripes; i++) {
		struct stripe *s = &c->stripes[i];
		/* The sets shared out: some stripes get one more. */
		s->nsets = total_sets / c->nstripes + (i < total_sets % c->nstripes);
		s->slots = calloc(s->nsets * c->ways, sizeof(*s->slots));
		s->hands = calloc(s->nsets, 1);
		if (s->slots == NULL || s->hands == NULL)
			goto nomem;
		if (pthread_mutex_init(&s->mu, NULL) != 0)
			goto nolock;
		if (pthread_cond_init(&s->cv, NULL) != 0) {
			pthread_mutex_destroy(&s->mu);
			goto nolock;
		}
		s->ready = 1;
	}
	switch (arena_new(c, total_sets * c->ways)) {
	case -1:
		goto nomem;
	case -2:
		goto nolock;
	}
	return c;
nomem:
	kvm_pagecache_free(c);
	kvm_err(kd, ENOMEM, "%s: out of memory for the page cache", kd->core.path);
	return NULL;
nolock:
	kvm_pagecache_free(c);
	kvm_err(kd, EAGAIN, "%s: cannot create the page cache's locks", kd->core.path);
	return NULL;
}

/* The stripe and set a key lives in. */
static struct slot *set_of(struct kvm_pagecache *c, uint64_t key,
			   struct stripe **sp, unsigned char **hand)
{
	uint64_t h = (key * 0x9E3779B97F4A7C15ULL) >> 17;
	struct stripe *s = &c->stripes[h % c->nstripes];
	size_t set_no = (size_t)((h / c->nstripes) % s->nsets);

	*sp = s;
	*hand = &s->hands[set_no];
	return s->slots + set_no * c->ways;
}

static struct slot *cache_find(struct slot *set, unsigned ways, uint64_t key)
{
	unsigned i;

	for (i = 0; i < ways; i++)
		if (set[i].key == key && set[i].state != SLOT_EMPTY)
			return &set[i];
	return NULL;
}

/* CLOCK: an empty slot, else the first not used since the hand passed. */
static struct slot *cache_victim(struct slot *set, unsigned ways,
				 unsigned char *hand)
{
	unsigned i;

	for (i = 0; i < 2 * ways; i++) {
		struct slot *c = &set[*hand];
		*hand = (unsigned char)((*hand + 1) % ways);
		if (c->state == SLOT_EMPTY)
			return c;
		if (c->state == SLOT_FILLING)
			continue;
		if (REF_LOAD(c->ref)) {
			REF_STORE(c->ref, 0);
			continue;
		}
		return c;
	}
	return NULL; /* every slot is being filled: wait */
}

/* Mark a slot used (CLOCK) and, with the stripe locked, say where it is. */
static void hit(struct slot *e, struct kvm_pageref *ref)
{
	if (!REF_LOAD(e->ref))
		REF_STORE(e->ref, 1);
	if (ref != NULL) {
		ref->slot = e;
		ref->seq = e->seq;
	}
}

int kvm_pagecache_lookup(struct kvm_pagecache *c, uint64_t key, size_t off,
			 void *out, size_t n, struct kvm_pageref *ref)
{
	struct stripe *s;
	unsigned char *hand;
	struct slot *set = set_of(c, key, &s, &hand), *e;
	int found = 0;

	pthread_mutex_lock(&s->mu);
	e = cache_find(set, c->ways, key);
	if (e != NULL && e->state == SLOT_VALID) {
		memcpy(out, e->data + off, n);
		hit(e, ref);
		found = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

int kvm_pagecache_reread(const struct kvm_pageref *ref, size_t off, void *out,
			 size_t n)
{
#if defined(__GNUC__)
	struct slot *e = (struct slot *)(uintptr_t)ref->slot;

	if (e == NULL || SEQ_LOAD(e->seq) != ref->seq)
		return 0;
	/* May race a refill: the second look at seq tells, and then the
	 * bytes copied are thrown away. */
	memcpy(out, e->data + off, n);
	if (SEQ_RELOAD(e->seq) != ref->seq)
		return 0;
	if (!REF_LOAD(e->ref))
		REF_STORE(e->ref, 1);
	return 1;
#else
	(void)ref, (void)off, (void)out, (void)n;
	return 0;
#endif
}

/* The slot is to be rewritten: lock-free readers of it must miss. */
static void begin_fill(struct slot *e)
{
	SEQ_BEGIN(e->seq);
	e->state = SLOT_FILLING;
	REF_STORE(e->ref, 0);
}

/*
 * Claim a slot for key with the stripe locked: the valid slot holding it
 * (*valid = 1), or a victim marked SLOT_FILLING; waits while key is being
 * filled by another reader or every slot of the set is.
 */
static struct slot *claim(struct kvm_pagecache *c, struct stripe *s,
			  struct slot *set, unsigned char *hand, uint64_t key,
			  int *valid)
{
	struct slot *e;

	for (;;) {
		e = cache_find(set, c->ways, key);
		if (e != NULL && e->state == SLOT_VALID) {
			*valid = 1;
			return e;
		}
		if (e == NULL && (e = cache_victim(set, c->ways, hand)) != NULL)
			break;
		s->waiters++;
		pthread_cond_wait(&s->cv, &s->mu);
		s->waiters--;
	}
	*valid = 0;
	if (e->state == SLOT_VALID)
		s->used--;
	begin_fill(e);
	e->key = key;
	return e;
}

/* Publish a claimed slot (ok) or give it back, with the stripe locked. */
static void publish(struct stripe *s, struct slot *e, int ok)
{
	if (ok) {
		e->state = SLOT_VALID;
		REF_STORE(e->ref, 1);
		s->used++;
	} else {
		e->state = SLOT_EMPTY;
	}
	SEQ_END(e->seq);
	if (s->waiters)
		pthread_cond_broadcast(&s->cv);
}

enum kvm_status kvm_pagecache_read(kvm_t *kd, struct kvm_pagecache *c,
				   uint64_t key, size_t off, void *out,
				   size_t n, kvm_page_fill_fn fill, void *arg,
				   struct kvm_pageref *ref)
{
	struct stripe *s;
	unsigned char *hand;
	struct slot *set = set_of(c, key, &s, &hand), *e;
	enum kvm_status st;
	int valid;

	pthread_mutex_lock(&s->mu);
	e = claim(c, s, set, hand, key, &valid);
	if (valid) {
		memcpy(out, e->data + off, n);
		hit(e, ref);
		pthread_mutex_unlock(&s->mu);
		return KVM_OK;
	}
	pthread_mutex_unlock(&s->mu);

	/* The slot is ours until published: fill it without the lock. */
	if (e->data == NULL && (e->data = arena_take(c)) == NULL) {
		kvm_err(kd, ENOMEM, "%s: out of memory for the page cache", kd->core.path);
		st = KVM_IOERR_MSG;
	} else {
		st = fill(kd, arg, key, e->data);
	}

	pthread_mutex_lock(&s->mu);
	publish(s, e, st == KVM_OK);
	if (st == KVM_OK) {
		memcpy(out, e->data + off, n);
		hit(e, ref);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

int kvm_pagecache_insert(struct kvm_pagecache *c, uint64_t key,
			 const void *page)
{
	struct stripe *s;
	unsigned char *hand;
	struct slot *set = set_of(c, key, &s, &hand), *e;
	int valid, ok;

	pthread_mutex_lock(&s->mu);
	e = claim(c, s, set, hand, key, &valid);
	if (valid) {
		/* Replaced in place: readers wait while it is rewritten. */
		begin_fill(e);
		s->used--;
	}
	pthread_mutex_unlock(&s->mu);
	ok = e->data != NULL || (e->data = arena_take(c)) != NULL;
	if (ok)
		memcpy(e->data, page, c->page_size);
	pthread_mutex_lock(&s->mu);
	publish(s, e, ok);
	pthread_mutex_unlock(&s->mu);
	return ok ? 0 : -1;
}

size_t kvm_pagecache_used(struct kvm_pagecache *c)
{
	size_t i, n = 0;

	if (c == NULL)
		return 0;
	for (i = 0; i < c->nstripes; i++) {
		pthread_mutex_lock(&c->stripes[i].mu);
		n += c->stripes[i].used;
		pthread_mutex_unlock(&c->stripes[i].mu);
	}
	return n;
}
