/*
 * kdump_codec.c - decompressing kdump pages with the codec libraries
 * (zlib, liblzo2, snappy, zstd: whichever this build has), and the
 * per-reader decompression state they reuse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kdump.h"

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef HAVE_LZO
#include <lzo/lzo1x.h>
#endif
#ifdef HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

/* Decompression state reused across pages (one per concurrent reader). */
struct kdump_scratch {
	struct kdump_scratch *next;
	unsigned char *buf; /* compressed bytes the file cannot lend us */
#ifdef HAVE_ZLIB
	z_stream zs;
	int zs_ready;
#endif
#ifdef HAVE_ZSTD
	ZSTD_DCtx *zd;
#endif
};

static struct kdump_scratch *scratch_get(kvm_t *kd, struct kdump *k)
{
	struct kdump_scratch *sc;

	pthread_mutex_lock(&k->pool_mu);
	sc = k->pool;
	if (sc != NULL)
		k->pool = sc->next;
	pthread_mutex_unlock(&k->pool_mu);
	if (sc == NULL && (sc = calloc(1, sizeof(*sc))) == NULL)
		kvm_err(kd, ENOMEM, "%s: out of memory for decompression", kd->core.path);
	return sc;
}

static void scratch_put(struct kdump *k, struct kdump_scratch *sc)
{
	pthread_mutex_lock(&k->pool_mu);
	sc->next = k->pool;
	k->pool = sc;
	pthread_mutex_unlock(&k->pool_mu);
}

static void scratch_free(struct kdump_scratch *sc)
{
	free(sc->buf);
#ifdef HAVE_ZLIB
	if (sc->zs_ready)
		inflateEnd(&sc->zs);
#endif
#ifdef HAVE_ZSTD
	ZSTD_freeDCtx(sc->zd);
#endif
	free(sc);
}

unsigned kvm_kdump_codecs(void)
{
	return 0
#ifdef HAVE_ZLIB
	       | DH_ZLIB
#endif
#ifdef HAVE_LZO
	       | DH_LZO
#endif
#ifdef HAVE_SNAPPY
	       | DH_SNAPPY
#endif
#ifdef HAVE_ZSTD
	       | DH_ZSTD
#endif
		;
}

const char *kdump_codec_name(unsigned codec)
{
	switch (codec) {
	case DH_ZLIB:
		return "zlib";
	case DH_LZO:
		return "LZO";
	case DH_SNAPPY:
		return "snappy";
	default:
		return "zstd";
	}
}

static const char *codec_package(unsigned codec)
{
	switch (codec) {
	case DH_ZLIB:
		return "zlib1g-dev";
	case DH_LZO:
		return "liblzo2-dev";
	case DH_SNAPPY:
		return "libsnappy-dev";
	default:
		return "libzstd-dev";
	}
}

/*
 * Decompress one page into dst (block_size bytes).  Returns NULL, or why
 * not (in why).  Each codec must produce exactly one block.
 */
static const char *decode(struct kdump *k, struct kdump_scratch *sc, unsigned codec,
			  const unsigned char *src, uint32_t len,
			  unsigned char *dst, char *why, size_t wn)
{
	uint32_t bs = k->block_size;

	(void)sc;
	(void)src;
	(void)len;
	(void)dst;
	switch (codec) {
#ifdef HAVE_ZLIB
	case DH_ZLIB: {
		z_stream *z = &sc->zs;
		int rc;
		if (!sc->zs_ready) {
			memset(z, 0, sizeof(*z));
			if (inflateInit(z) != Z_OK)
				return "zlib cannot start (out of memory?)";
			sc->zs_ready = 1;
		} else if (inflateReset(z) != Z_OK) {
			return "zlib cannot reset";
		}
		z->next_in = (Bytef *)src;
		z->avail_in = len;
		z->next_out = dst;
		z->avail_out = bs;
		rc = inflate(z, Z_FINISH);
		if (rc != Z_STREAM_END) {
			snprintf(why, wn, "%s",
				 z->msg != NULL ? z->msg
				 : rc == Z_BUF_ERROR ? "data ends early or is longer than a block"
				 : "zlib error");
			return why;
		}
		if (z->total_out != bs)
			break;
		return NULL;
	}
#endif
#ifdef HAVE_LZO
	case DH_LZO: {
		lzo_uint out = bs;
		int rc = lzo1x_decompress_safe((lzo_bytep)src, len, dst, &out, NULL);
		if (rc != LZO_E_OK) {
			snprintf(why, wn, "LZO error %d", rc);
			return why;
		}
		if (out != bs)
			break;
		return NULL;
	}
#endif
#ifdef HAVE_SNAPPY
	case DH_SNAPPY: {
		size_t out;
		if (snappy_uncompressed_length((const char *)src, len, &out) != SNAPPY_OK)
			return "not snappy data";
		if (out != bs) {
			snprintf(why, wn, "snappy data of %zu bytes, not one block of %u",
				 out, bs);
			return why;
		}
		if (snappy_uncompress((const char *)src, len, (char *)dst, &out) !=
		    SNAPPY_OK)
			return "snappy data is corrupt";
		if (out != bs)
			break;
		return NULL;
	}
#endif
#ifdef HAVE_ZSTD
	case DH_ZSTD: {
		size_t out;
		if (sc->zd == NULL && (sc->zd = ZSTD_createDCtx()) == NULL)
			return "zstd cannot start (out of memory?)";
		out = ZSTD_decompressDCtx(sc->zd, dst, bs, src, len);
		if (ZSTD_isError(out)) {
			snprintf(why, wn, "%s", ZSTD_getErrorName(out));
			return why;
		}
		if (out != bs)
			break;
		return NULL;
	}
#endif
	default:
		return "codec not built in";
	}
	snprintf(why, wn, "decompressed to less than a block of %u bytes", bs);
	return why;
}

enum kvm_status kdump_decompress(kvm_t *kd, struct kdump *k, uint64_t pfn,
				 const struct pdesc *d, unsigned char *dst)
{
	unsigned codec = d->flags & DH_CODECS;
	const unsigned char *src;
	struct kdump_scratch *sc = NULL;
	const char *bad;
	char why[160];

	if (!(kvm_kdump_codecs() & codec)) {
		kvm_err(kd, ENOTSUP,
			"%s: pfn 0x%llx: page compressed with %s, but this build has no %s support: install %s and rebuild",
			kd->core.path, ull(pfn), kdump_codec_name(codec), kdump_codec_name(codec),
			codec_package(codec));
		return KD_IOERR;
	}
	src = kdump_ptr(kd, k, d->off, d->size);
	if (src == NULL || codec == DH_ZLIB || codec == DH_ZSTD) {
		if ((sc = scratch_get(kd, k)) == NULL)
			return KD_IOERR;
	}
	if (src == NULL) {
		/* Unmapped file, or the data straddles flattened records. */
		if (sc->buf == NULL && (sc->buf = malloc(k->block_size)) == NULL) {
			scratch_put(k, sc);
			kvm_err(kd, ENOMEM, "%s: out of memory for decompression",
				kd->core.path);
			return KD_IOERR;
		}
		if (kdump_copy(kd, k, d->off, sc->buf, d->size) != KVM_OK) {
			scratch_put(k, sc);
			kvm_err(kd, EIO, "%s: pfn 0x%llx: cannot read %u bytes at offset %llu",
				kd->core.path, ull(pfn), d->size, ull(d->off));
			return KD_IOERR;
		}
		src = sc->buf;
	}
	bad = decode(k, sc, codec, src, d->size, dst, why, sizeof(why));
	if (sc != NULL)
		scratch_put(k, sc);
	if (bad != NULL) {
		kvm_err(kd, EIO,
			"%s: pfn 0x%llx: %s page (%u bytes at offset %llu) does not decompress: %s",
			kd->core.path, ull(pfn), kdump_codec_name(codec), d->size,
			ull(d->off), bad);
		return KD_IOERR;
	}
	return KVM_OK;
}


/* The scratch pool's lock, and the libraries that need starting. */
int kdump_codec_init(kvm_t *kd, struct kdump *k)
{
#ifdef HAVE_LZO
	if (lzo_init() != LZO_E_OK) {
		kvm_err(kd, EINVAL, "%s: the LZO library does not initialise", kd->core.path);
		return -1;
	}
#endif
	if (pthread_mutex_init(&k->pool_mu, NULL) != 0) {
		kvm_err(kd, EAGAIN, "%s: cannot create the page cache's locks", kd->core.path);
		return -1;
	}
	k->pool_ready = 1;
	return 0;
}

void kdump_codec_free(struct kdump *k)
{
	while (k->pool != NULL) {
		struct kdump_scratch *sc = k->pool;
		k->pool = sc->next;
		scratch_free(sc);
	}
	if (k->pool_ready)
		pthread_mutex_destroy(&k->pool_mu);
	k->pool_ready = 0;
}
