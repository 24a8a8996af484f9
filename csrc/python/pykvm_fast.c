/*
 * pykvm_fast.c - pykvm._fast: the hot reads of pykvm.Kvm, written against
 * the CPython C API (METH_FASTCALL: no argument tuples, no allocation but
 * the result).
 *
 * It holds no libkvm code of its own.  pykvm/kvm.py hands it, once, the
 * addresses of the cffi module's pykvm_read, pykvm_pread, pykvm_read_many
 * and pykvm_read_scatter (pykvm_api.h), and per handle the kvm_t pointer:
 * every read goes through the same shim instance (or the same native
 * libkvm glue) as the rest of pykvm.  Failures are turned into exceptions
 * by the Python layer (Kvm._error and friends), so both paths raise alike.
 *
 * Built with the limited API (abi3) on Python >= 3.11, whose stable ABI
 * has METH_FASTCALL and the buffer protocol; with the full API before.
 */
#if !defined(Py_LIMITED_API) && defined(PYKVM_LIMITED_API)
#define Py_LIMITED_API PYKVM_LIMITED_API
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "fast.h"

/* The cffi module's functions, as pykvm_api.h declares them. */
typedef int64_t (*read_fn)(void *kd, uint64_t addr, void *buf, size_t len);
typedef size_t (*read_many_fn)(void *kd, const uint64_t *addrs, size_t n,
			       size_t size, void *out, int64_t *results,
			       int physical);
typedef size_t (*read_scatter_fn)(void *kd, const uint64_t *addrs,
				  const uint64_t *sizes, size_t n, void *out,
				  int64_t *results);

typedef int (*errno_fn)(void *kd);
typedef const char *(*geterr_fn)(void *kd);
typedef uint64_t (*erraddr_fn)(void *kd);

static read_fn api_read, api_pread;
static read_many_fn api_read_many;
static read_scatter_fn api_read_scatter;
static errno_fn api_errno;
static geterr_fn api_geterr;
static erraddr_fn api_erraddr;

/* Reads of at least this many bytes release the GIL. */
#define NOGIL_BYTES 8192
/* Reads longer than this check every page before allocating the result. */
#define PROBE_BYTES (16u << 20)
/* Batch addresses converted (on the stack) per call into C. */
#define BATCH 512
#define PAGE 4096u

PyTypeObject *fast_reader_type;

/* ---- errors: made by the Python layer, raised here ---- */

static PyObject *raise_from(PyObject *exc)
{
	if (exc == NULL)
		return NULL;
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
	return NULL;
}

/*
 * Raise Kvm._error_at(errno, message, address): the handle's error state,
 * taken here at once, before any Python code runs (and lets another
 * thread's failing read replace it).
 */
static PyObject *fail(PyObject *self)
{
	void *kd = ((Reader *)self)->kd;
	int e = api_errno(kd);
	const char *m = api_geterr(kd);
	unsigned long long a = (unsigned long long)api_erraddr(kd);

	return raise_from(PyObject_CallMethod(self, "_error_at", "iyK", e, m != NULL ? m : "", a));
}

/* Raise what Kvm._handle() raises on a closed handle. */
static PyObject *closed(PyObject *self)
{
	PyObject *r = PyObject_CallMethod(self, "_handle", NULL);
	if (r != NULL) { /* not closed after all: should not happen */
		Py_DECREF(r);
		PyErr_SetString(PyExc_RuntimeError, "pykvm: handle state out of step");
	}
	return NULL;
}

static PyObject *no_pread(PyObject *self)
{
	PyObject *r = PyObject_CallMethod(self, "_require", "ss", "pread", "physical reads");
	if (r != NULL) {
		Py_DECREF(r);
		PyErr_SetString(PyExc_RuntimeError, "pykvm: pread state out of step");
	}
	return NULL;
}

/* ---- arguments ---- */

/*
 * Positional and keyword arguments into out[] (borrowed; NULL = absent).
 * names: every parameter's name; required: how many must be given.
 */
static int parse(const char *fname, PyObject *const *args, Py_ssize_t nargs,
		 PyObject *kwnames, const char *const *names, int nparams,
		 int required, PyObject **out)
{
	Py_ssize_t i, nkw = kwnames != NULL ? PyTuple_Size(kwnames) : 0;
	int j;

	if (nargs > nparams) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)",
			     fname, nparams, nargs);
		return -1;
	}
	for (j = 0; j < nparams; j++)
		out[j] = j < nargs ? args[j] : NULL;
	for (i = 0; i < nkw; i++) {
		PyObject *key = PyTuple_GetItem(kwnames, i);
		for (j = 0; j < nparams; j++)
			if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0)
				break;
		if (j == nparams) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
				     fname, key);
			return -1;
		}
		if (out[j] != NULL) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				     fname, names[j]);
			return -1;
		}
		out[j] = args[nargs + i];
	}
	for (j = 0; j < required; j++)
		if (out[j] == NULL) {
			PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'",
				     fname, names[j]);
			return -1;
		}
	return 0;
}

/*
 * The unsigned 64-bit value of an int.  Where unsigned long has 64 bits,
 * PyLong_AsUnsignedLong: it folds the digits in a loop, where CPython's
 * PyLong_AsUnsignedLongLong goes byte by byte through _PyLong_AsByteArray
 * for any value past one digit, as every kernel address is (about 200
 * instructions a call, a fifth of a whole small read).  Both raise
 * OverflowError for negative and too large values.
 */
#if ULONG_MAX >= 0xffffffffffffffffULL
#define as_u64(o) ((unsigned long long)PyLong_AsUnsignedLong(o))
#define U64_ERR ((unsigned long long)(unsigned long)-1)
#else
#define as_u64(o) PyLong_AsUnsignedLongLong(o)
#define U64_ERR ((unsigned long long)-1)
#endif

/* An address: any int (or __index__) in 0 .. 2**64-1, else Kvm._bad_address. */
static int get_addr(PyObject *self, PyObject *o, uint64_t *out)
{
	unsigned long long v;

	if (PyLong_Check(o)) {
		v = as_u64(o);
	} else {
		PyObject *i = PyNumber_Index(o);
		if (i == NULL)
			return -1;
		v = as_u64(i);
		Py_DECREF(i);
	}
	if (v == U64_ERR && PyErr_Occurred()) {
		if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
			PyErr_Clear();
			raise_from(PyObject_CallMethod(self, "_bad_address", "O", o));
		}
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

/* A byte count: an int >= 0. */
static int get_size(const char *what, PyObject *o, Py_ssize_t *out)
{
	Py_ssize_t v = PyNumber_AsSsize_t(o, PyExc_OverflowError);

	if (v == -1 && PyErr_Occurred()) {
		if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
			PyErr_Clear();
			PyErr_Format(PyExc_ValueError, "%s is too large", what);
		}
		return -1;
	}
	if (v < 0) {
		PyErr_Format(PyExc_ValueError, "%s must be >= 0, not %zd", what, v);
		return -1;
	}
	*out = v;
	return 0;
}

static int get_bool(PyObject *o, int *out)
{
	int v;

	if (o == NULL || o == Py_False) {
		*out = 0;
		return 0;
	}
	if (o == Py_True) {
		*out = 1;
		return 0;
	}
	v = PyObject_IsTrue(o);
	if (v < 0)
		return -1;
	*out = v;
	return 0;
}

/* A range wrapping past 2**64 - 1 is no range at all. */
static int check_span(PyObject *self, uint64_t addr, uint64_t len)
{
	if (len > 1 && addr + (len - 1) < addr) {
		PyObject *r = PyObject_CallMethod(self, "_bad_range", "KK",
						  (unsigned long long)addr,
						  (unsigned long long)len);
		raise_from(r);
		return -1;
	}
	return 0;
}

/* ---- the one read ---- */

/* len bytes at addr into buf through the cffi module's read; 0 or raise. */
static int do_read(Reader *r, PyObject *self, uint64_t addr, void *buf,
		   size_t len, int physical)
{
	void *kd = r->kd;
	int64_t got;

	if (kd == NULL) {
		closed(self);
		return -1;
	}
	if (physical && !r->has_pread) {
		no_pread(self);
		return -1;
	}
	if (len == 0)
		return 0;
	if (check_span(self, addr, len) != 0)
		return -1;
	if (len >= NOGIL_BYTES) {
		Py_BEGIN_ALLOW_THREADS
		got = (physical ? api_pread : api_read)(kd, addr, buf, len);
		Py_END_ALLOW_THREADS
		/* Failed without the GIL: again with it, for an error state no
		 * other Python thread can have replaced. */
		if (got != (int64_t)len)
			got = (physical ? api_pread : api_read)(kd, addr, buf, len);
	} else {
		got = (physical ? api_pread : api_read)(kd, addr, buf, len);
	}
	if (got != (int64_t)len) {
		fail(self);
		return -1;
	}
	return 0;
}

/*
 * Before allocating a large result: every page of the range must read,
 * so an absurd size fails at its first hole instead of allocating.
 */
static int probe(Reader *r, PyObject *self, uint64_t addr, uint64_t len,
		 int physical)
{
	uint64_t a = addr, last = addr + (len - 1);
	unsigned char byte;
	int64_t got;

	if (len <= PROBE_BYTES)
		return 0;
	Py_BEGIN_ALLOW_THREADS
	for (;;) {
		got = (physical ? api_pread : api_read)(r->kd, a, &byte, 1);
		if (got != 1 || (a | (PAGE - 1)) >= last)
			break;
		a = (a | (PAGE - 1)) + 1;
	}
	Py_END_ALLOW_THREADS
	if (got != 1 && (got = (physical ? api_pread : api_read)(r->kd, a, &byte, 1)) != 1) {
		fail(self);
		return -1;
	}
	return 0;
}

/* ---- Reader methods ---- */

static PyObject *Reader_read(PyObject *self, PyObject *const *args,
			     Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"addr", "size", "physical"};
	Reader *r = (Reader *)self;
	PyObject *a[3], *out;
	uint64_t addr;
	Py_ssize_t size;
	int physical;
	unsigned char small[64];

	if (kwnames == NULL && nargs == 2) {
		a[0] = args[0];
		a[1] = args[1];
		a[2] = NULL;
	} else if (parse("read", args, nargs, kwnames, names, 3, 2, a) != 0) {
		return NULL;
	}
	if (get_addr(self, a[0], &addr) != 0 || get_size("size", a[1], &size) != 0 ||
	    get_bool(a[2], &physical) != 0)
		return NULL;
	if (size <= (Py_ssize_t)sizeof(small)) {
		if (do_read(r, self, addr, small, (size_t)size, physical) != 0)
			return NULL;
		return PyBytes_FromStringAndSize((const char *)small, size);
	}
	if (r->kd == NULL)
		return closed(self);
	if (check_span(self, addr, (uint64_t)size) != 0 ||
	    probe(r, self, addr, (uint64_t)size, physical) != 0)
		return NULL;
	out = PyBytes_FromStringAndSize(NULL, size);
	if (out == NULL)
		return NULL;
	if (do_read(r, self, addr, PyBytes_AsString(out), (size_t)size, physical) != 0) {
		Py_DECREF(out);
		return NULL;
	}
	return out;
}

static PyObject *Reader_readinto(PyObject *self, PyObject *const *args,
				 Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"addr", "buffer", "physical"};
	Reader *r = (Reader *)self;
	PyObject *a[3];
	uint64_t addr;
	int physical, rc;
	Py_buffer view;

	if (kwnames == NULL && nargs == 2) {
		a[0] = args[0];
		a[1] = args[1];
		a[2] = NULL;
	} else if (parse("readinto", args, nargs, kwnames, names, 3, 2, a) != 0) {
		return NULL;
	}
	if (get_addr(self, a[0], &addr) != 0 || get_bool(a[2], &physical) != 0)
		return NULL;
	if (r->kd == NULL)
		return closed(self);
	if (PyObject_GetBuffer(a[1], &view, PyBUF_WRITABLE | PyBUF_SIMPLE) != 0)
		return NULL;
	rc = do_read(r, self, addr, view.buf, (size_t)view.len, physical);
	PyBuffer_Release(&view);
	if (rc != 0)
		return NULL;
	return PyLong_FromSsize_t(view.len);
}

/* An unsigned integer of size bytes (1..8) at addr, in the core's order. */
int read_uint(Reader *r, PyObject *self, uint64_t addr, int size,
	      int physical, uint64_t *out)
{
	unsigned char b[8];
	uint64_t v = 0;
	int i;

	if (do_read(r, self, addr, b, (size_t)size, physical) != 0)
		return -1;
	if (size == 8 && !r->swap) {
		memcpy(&v, b, 8);
	} else if (size == 4 && !r->swap) {
		uint32_t w;
		memcpy(&w, b, 4);
		v = w;
	} else {
		/* Assemble in the core's order. */
		static const union { uint16_t v; unsigned char b[2]; } host = { 1 };
		int little = host.b[0] == 1 ? !r->swap : r->swap;
		for (i = 0; i < size; i++)
			v |= (uint64_t)b[little ? i : size - 1 - i] << (8 * i);
	}
	*out = v;
	return 0;
}

PyObject *from_uint(uint64_t v, int size, int is_signed)
{
	if (is_signed) {
		if (size < 8 && (v >> (8 * size - 1)) & 1)
			v |= ~0ULL << (8 * size);
		return PyLong_FromLongLong((long long)v);
	}
	return PyLong_FromUnsignedLongLong(v);
}

/* read_u8 .. read_s64 and read_pointer: (addr, physical=False). */
static PyObject *typed(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
		       PyObject *kwnames, const char *fname, int size, int is_signed)
{
	static const char *const names[] = {"addr", "physical"};
	Reader *r = (Reader *)self;
	PyObject *a[2];
	uint64_t addr, v;
	int physical = 0;

	if (kwnames == NULL && nargs == 1) {
		a[0] = args[0];
		a[1] = NULL;
	} else if (parse(fname, args, nargs, kwnames, names, 2, 1, a) != 0) {
		return NULL;
	}
	if (get_addr(self, a[0], &addr) != 0 || get_bool(a[1], &physical) != 0)
		return NULL;
	if (size == 0)
		size = r->ptrsize;
	if (read_uint(r, self, addr, size, physical, &v) != 0)
		return NULL;
	return from_uint(v, size, is_signed);
}

#define TYPED(name, size, sgn)                                                   \
	static PyObject *Reader_##name(PyObject *self, PyObject *const *args,      \
				       Py_ssize_t nargs, PyObject *kwnames)       \
	{                                                                          \
		return typed(self, args, nargs, kwnames, #name, size, sgn);        \
	}
TYPED(read_u8, 1, 0)
TYPED(read_u16, 2, 0)
TYPED(read_u32, 4, 0)
TYPED(read_u64, 8, 0)
TYPED(read_s8, 1, 1)
TYPED(read_s16, 2, 1)
TYPED(read_s32, 4, 1)
TYPED(read_s64, 8, 1)
TYPED(read_pointer, 0, 0)

/*
 * read_member(addr, offset, size, signed=False): the integer member of
 * size bytes (1..8) at addr + offset, for typed objects; with bit_size,
 * the bitfield of bit_size bits starting bit_offset bits into it.
 */
static PyObject *Reader_read_member(PyObject *self, PyObject *const *args,
				    Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"addr", "offset", "size", "signed",
					    "bit_offset", "bit_size"};
	Reader *r = (Reader *)self;
	PyObject *a[6];
	uint64_t addr, off, v;
	Py_ssize_t size, bit_off = 0, bit_size = 0;
	int is_signed = 0;

	if (kwnames == NULL && nargs == 3) {
		a[0] = args[0];
		a[1] = args[1];
		a[2] = args[2];
		a[3] = a[4] = a[5] = NULL;
	} else if (parse("read_member", args, nargs, kwnames, names, 6, 3, a) != 0) {
		return NULL;
	}
	if (get_addr(self, a[0], &addr) != 0)
		return NULL;
	if (PyLong_Check(a[1]) && (off = PyLong_AsUnsignedLongLong(a[1]), !PyErr_Occurred())) {
		/* the usual case: a non-negative offset */
	} else {
		long long s;
		PyErr_Clear();
		s = PyLong_AsLongLong(a[1]);
		if (s == -1 && PyErr_Occurred())
			return NULL;
		off = (uint64_t)s; /* negative: container_of-style, wraps as C does */
	}
	if (get_size("size", a[2], &size) != 0 || get_bool(a[3], &is_signed) != 0 ||
	    (a[4] != NULL && get_size("bit_offset", a[4], &bit_off) != 0) ||
	    (a[5] != NULL && get_size("bit_size", a[5], &bit_size) != 0))
		return NULL;
	if (size < 1 || size > 8) {
		PyErr_Format(PyExc_ValueError, "read_member: size must be 1 to 8 bytes, not %zd", size);
		return NULL;
	}
	if (bit_size > 0 && bit_off + bit_size > 8 * size) {
		PyErr_Format(PyExc_ValueError,
			     "read_member: bits %zd..%zd do not fit in %zd bytes",
			     bit_off, bit_off + bit_size - 1, size);
		return NULL;
	}
	addr += off;
	if (read_uint(r, self, addr, (int)size, 0, &v) != 0)
		return NULL;
	if (bit_size > 0) {
		v >>= bit_off;
		if (bit_size < 64)
			v &= (1ULL << bit_size) - 1;
		if (is_signed && bit_size < 64 && (v >> (bit_size - 1)) & 1)
			v |= ~0ULL << bit_size;
		return is_signed ? PyLong_FromLongLong((long long)v) : PyLong_FromUnsignedLongLong(v);
	}
	return from_uint(v, (int)size, is_signed);
}

/* read_cstring(addr, maxlen=4096, physical=False, encoding="utf-8"). */
static PyObject *Reader_read_cstring(PyObject *self, PyObject *const *args,
				     Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"addr", "maxlen", "physical", "encoding"};
	Reader *r = (Reader *)self;
	PyObject *a[4], *res = NULL;
	uint64_t addr;
	Py_ssize_t maxlen = 4096, have = 0;
	int physical = 0;
	char stack[4096], *buf = stack;
	size_t cap = sizeof(stack);
	const char *encoding = "utf-8";

	if (parse("read_cstring", args, nargs, kwnames, names, 4, 1, a) != 0)
		return NULL;
	if (get_addr(self, a[0], &addr) != 0 ||
	    (a[1] != NULL && get_size("maxlen", a[1], &maxlen) != 0) ||
	    get_bool(a[2], &physical) != 0)
		return NULL;
	if (a[3] == Py_None) {
		encoding = NULL;
	} else if (a[3] != NULL) {
		encoding = PyUnicode_AsUTF8AndSize(a[3], NULL);
		if (encoding == NULL)
			return NULL;
	}
	while (have < maxlen) {
		uint64_t at = addr + (uint64_t)have;
		size_t chunk = PAGE - (size_t)(at & (PAGE - 1)), want;
		char *nul;
		if (have > 0 && at == 0) { /* past 2**64 - 1 before the NUL */
			check_span(self, addr, (uint64_t)maxlen);
			goto out;
		}
		if ((Py_ssize_t)chunk > maxlen - have)
			chunk = (size_t)(maxlen - have);
		want = (size_t)have + chunk;
		if (want > cap) {
			size_t ncap = cap * 2 > want ? cap * 2 : want;
			char *n = PyMem_Malloc(ncap);
			if (n == NULL) {
				PyErr_NoMemory();
				goto out;
			}
			memcpy(n, buf, (size_t)have);
			if (buf != stack)
				PyMem_Free(buf);
			buf = n;
			cap = ncap;
		}
		if (do_read(r, self, at, buf + have, chunk, physical) != 0)
			goto out;
		nul = memchr(buf + have, '\0', chunk);
		if (nul != NULL) {
			have = nul - buf;
			break;
		}
		have += (Py_ssize_t)chunk;
	}
	if (encoding == NULL)
		res = PyBytes_FromStringAndSize(buf, have);
	else if (strcmp(encoding, "utf-8") == 0 || strcmp(encoding, "utf8") == 0)
		res = PyUnicode_DecodeUTF8(buf, have, "replace");
	else
		res = PyUnicode_Decode(buf, have, encoding, "replace");
out:
	if (buf != stack)
		PyMem_Free(buf);
	return res;
}

/* ---- batches ---- */

/* A list of uint64s: a buffer of 8-byte unsigned items as it is, or ints. */
struct u64s {
	Py_buffer view;
	int have_view;
	PyObject *seq;   /* a list or tuple (new reference), when no view */
	Py_ssize_t n;
	const uint64_t *direct; /* the view's items */
};

static int u64s_open(PyObject *o, struct u64s *u)
{
	memset(u, 0, sizeof(*u));
	if (PyList_Check(o) || PyTuple_Check(o)) {
		Py_INCREF(o);
		u->seq = o;
		u->n = PyObject_Length(o);
		return u->n < 0 ? -1 : 0;
	}
	if (PyObject_CheckBuffer(o) &&
	    PyObject_GetBuffer(o, &u->view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0) {
		const char *f = u->view.format != NULL ? u->view.format : "B";
		static const union { uint16_t v; unsigned char b[2]; } host = { 1 };
		int little = host.b[0] == 1;
		if (u->view.itemsize == 8 &&
		    (strcmp(f, "Q") == 0 || strcmp(f, "L") == 0 || strcmp(f, "=Q") == 0 ||
		     strcmp(f, "@Q") == 0 || strcmp(f, "@L") == 0 ||
		     (little && strcmp(f, "<Q") == 0) || (!little && strcmp(f, ">Q") == 0))) {
			u->have_view = 1;
			u->n = u->view.len / 8;
			u->direct = u->view.buf;
			return 0;
		}
		PyBuffer_Release(&u->view);
	}
	PyErr_Clear();
	u->seq = PySequence_List(o);
	if (u->seq == NULL)
		return -1;
	u->n = PyObject_Length(u->seq);
	return u->n < 0 ? -1 : 0;
}

static void u64s_close(struct u64s *u)
{
	if (u->have_view)
		PyBuffer_Release(&u->view);
	Py_XDECREF(u->seq);
}

/* Items [i, i + n) as uint64 into tmp (or in place); NULL with an error. */
static const uint64_t *u64s_get(PyObject *self, struct u64s *u, Py_ssize_t i,
				Py_ssize_t n, uint64_t *tmp, int is_addr)
{
	Py_ssize_t k;

	if (u->direct != NULL)
		return u->direct + i;
	for (k = 0; k < n; k++) {
		PyObject *o = PyList_Check(u->seq) ? PyList_GetItem(u->seq, i + k)
						    : PyTuple_GetItem(u->seq, i + k);
		if (o == NULL)
			return NULL;
		if (is_addr) {
			if (get_addr(self, o, &tmp[k]) != 0)
				return NULL;
		} else {
			Py_ssize_t s;
			if (get_size("size", o, &s) != 0)
				return NULL;
			tmp[k] = (uint64_t)s;
		}
	}
	return tmp;
}

/* The output buffer: out (writable, at least need bytes) or a new bytearray. */
static PyObject *out_buffer(PyObject *out, Py_ssize_t need, Py_buffer *view)
{
	PyObject *o;

	if (out == NULL || out == Py_None) {
		o = PyByteArray_FromStringAndSize(NULL, need);
		if (o == NULL)
			return NULL;
	} else {
		Py_INCREF(out);
		o = out;
	}
	if (PyObject_GetBuffer(o, view, PyBUF_WRITABLE | PyBUF_SIMPLE) != 0) {
		Py_DECREF(o);
		return NULL;
	}
	if (view->len < need) {
		PyErr_Format(PyExc_ValueError, "out holds %zd bytes; %zd needed", view->len, need);
		PyBuffer_Release(view);
		Py_DECREF(o);
		return NULL;
	}
	return o;
}

/* memoryview(o)[:n] */
static PyObject *view_of(PyObject *o, Py_ssize_t n, Py_ssize_t have)
{
	PyObject *mv = PyMemoryView_FromObject(o), *s, *end, *res;

	if (mv == NULL || n == have)
		return mv;
	end = PyLong_FromSsize_t(n);
	s = end != NULL ? PySlice_New(NULL, end, NULL) : NULL;
	Py_XDECREF(end);
	if (s == NULL) {
		Py_DECREF(mv);
		return NULL;
	}
	res = PyObject_GetItem(mv, s);
	Py_DECREF(s);
	Py_DECREF(mv);
	return res;
}

static PyObject *batch_error(PyObject *self, int64_t result, uint64_t addr, int physical)
{
	return raise_from(PyObject_CallMethod(self, "_batch_error", "LKi",
						    (long long)-result,
						    (unsigned long long)addr, physical));
}

/* read_many(addrs, size, physical=False, out=None) -> memoryview */
static PyObject *Reader_read_many(PyObject *self, PyObject *const *args,
				  Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"addrs", "size", "physical", "out"};
	Reader *r = (Reader *)self;
	PyObject *a[4], *out = NULL, *res = NULL;
	struct u64s u;
	Py_ssize_t size, i;
	int physical, opened = 0, have_view = 0;
	Py_buffer view;
	uint64_t tmp[BATCH];
	int64_t results[BATCH];

	if (parse("read_many", args, nargs, kwnames, names, 4, 2, a) != 0)
		return NULL;
	if (get_size("size", a[1], &size) != 0 || get_bool(a[2], &physical) != 0)
		return NULL;
	if (r->kd == NULL)
		return closed(self);
	if (physical && !r->has_pread)
		return no_pread(self);
	if (u64s_open(a[0], &u) != 0)
		return NULL;
	opened = 1;
	if (size > 0 && u.n > PY_SSIZE_T_MAX / size) {
		PyErr_SetString(PyExc_ValueError, "read_many: len(addrs) * size is too large");
		goto out;
	}
	if ((a[3] == NULL || a[3] == Py_None) && u.n * size > (Py_ssize_t)PROBE_BYTES) {
		for (i = 0; i < u.n; i++) {
			const uint64_t *p = u64s_get(self, &u, i, 1, tmp, 1);
			if (p == NULL || check_span(self, p[0], (uint64_t)size) != 0 ||
			    probe(r, self, p[0], (uint64_t)size, physical) != 0)
				goto out;
		}
	}
	out = out_buffer(a[3], u.n * size, &view);
	if (out == NULL)
		goto out;
	have_view = 1;
	for (i = 0; i < u.n; i += BATCH) {
		Py_ssize_t n = u.n - i < BATCH ? u.n - i : BATCH, k;
		const uint64_t *p = u64s_get(self, &u, i, n, tmp, 1);
		size_t failed;
		unsigned char *dst = (unsigned char *)view.buf + i * size;
		if (p == NULL)
			goto out;
		if (size == 0)
			continue;
		for (k = 0; k < n; k++)
			if (check_span(self, p[k], (uint64_t)size) != 0)
				goto out;
		if (n * size >= NOGIL_BYTES || n >= 64) {
			Py_BEGIN_ALLOW_THREADS
			failed = api_read_many(r->kd, p, (size_t)n, (size_t)size, dst, results, physical);
			Py_END_ALLOW_THREADS
		} else {
			failed = api_read_many(r->kd, p, (size_t)n, (size_t)size, dst, results, physical);
		}
		if (failed) {
			for (k = 0; k < n; k++)
				if (results[k] < 0)
					break;
			batch_error(self, results[k], p[k], physical);
			goto out;
		}
	}
	res = view_of(out, u.n * size, view.len);
out:
	if (have_view)
		PyBuffer_Release(&view);
	Py_XDECREF(out);
	if (opened)
		u64s_close(&u);
	return res;
}

/* read_scatter(addrs, sizes, out=None) -> memoryview, packed */
static PyObject *Reader_read_scatter(PyObject *self, PyObject *const *args,
				     Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = {"addrs", "sizes", "out"};
	Reader *r = (Reader *)self;
	PyObject *a[3], *out = NULL, *res = NULL;
	struct u64s ua, us;
	int oa = 0, os_ = 0, have_view = 0;
	Py_buffer view;
	Py_ssize_t i, total = 0, pos = 0;
	uint64_t ta[BATCH], ts[BATCH];
	int64_t results[BATCH];

	if (parse("read_scatter", args, nargs, kwnames, names, 3, 2, a) != 0)
		return NULL;
	if (r->kd == NULL)
		return closed(self);
	if (u64s_open(a[0], &ua) != 0)
		return NULL;
	oa = 1;
	if (u64s_open(a[1], &us) != 0)
		goto out;
	os_ = 1;
	if (ua.n != us.n) {
		PyErr_Format(PyExc_ValueError, "%zd addresses but %zd sizes", ua.n, us.n);
		goto out;
	}
	/* Sizes first: their sum sizes the output; each range must not wrap. */
	for (i = 0; i < us.n; i += BATCH) {
		Py_ssize_t n = us.n - i < BATCH ? us.n - i : BATCH, k;
		const uint64_t *s = u64s_get(self, &us, i, n, ts, 0);
		const uint64_t *p;
		if (s == NULL)
			goto out;
		for (k = 0; k < n; k++) {
			if (s[k] > (uint64_t)(PY_SSIZE_T_MAX - total)) {
				PyErr_SetString(PyExc_ValueError, "read_scatter: sum(sizes) is too large");
				goto out;
			}
			total += (Py_ssize_t)s[k];
		}
		if ((p = u64s_get(self, &ua, i, n, ta, 1)) == NULL)
			goto out;
		for (k = 0; k < n; k++)
			if (check_span(self, p[k], s[k]) != 0)
				goto out;
	}
	if ((a[2] == NULL || a[2] == Py_None) && total > (Py_ssize_t)PROBE_BYTES) {
		for (i = 0; i < ua.n; i++) {
			const uint64_t *p = u64s_get(self, &ua, i, 1, ta, 1);
			const uint64_t *s = u64s_get(self, &us, i, 1, ts, 0);
			if (p == NULL || s == NULL || probe(r, self, p[0], s[0], 0) != 0)
				goto out;
		}
	}
	out = out_buffer(a[2], total, &view);
	if (out == NULL)
		goto out;
	have_view = 1;
	for (i = 0; i < ua.n; i += BATCH) {
		Py_ssize_t n = ua.n - i < BATCH ? ua.n - i : BATCH, k, bytes = 0;
		const uint64_t *p = u64s_get(self, &ua, i, n, ta, 1);
		const uint64_t *s = u64s_get(self, &us, i, n, ts, 0);
		unsigned char *dst = (unsigned char *)view.buf + pos;
		size_t failed;
		if (p == NULL || s == NULL)
			goto out;
		for (k = 0; k < n; k++)
			bytes += (Py_ssize_t)s[k];
		if (bytes >= NOGIL_BYTES || n >= 64) {
			Py_BEGIN_ALLOW_THREADS
			failed = api_read_scatter(r->kd, p, s, (size_t)n, dst, results);
			Py_END_ALLOW_THREADS
		} else {
			failed = api_read_scatter(r->kd, p, s, (size_t)n, dst, results);
		}
		if (failed) {
			for (k = 0; k < n; k++)
				if (results[k] < 0)
					break;
			batch_error(self, results[k], p[k], 0);
			goto out;
		}
		pos += bytes;
	}
	res = view_of(out, total, view.len);
out:
	if (have_view)
		PyBuffer_Release(&view);
	Py_XDECREF(out);
	if (os_)
		u64s_close(&us);
	if (oa)
		u64s_close(&ua);
	return res;
}

/* ---- binding ---- */

/* _bind(kd, swap, ptrsize, has_pread): attach a pykvm_api.h handle. */
static PyObject *Reader_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	Reader *r = (Reader *)self;
	void *kd;
	long ptrsize;

	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError, "_bind(kd, swap, ptrsize, has_pread)");
		return NULL;
	}
	if (api_read == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "pykvm._fast: setup() was not called");
		return NULL;
	}
	kd = PyLong_AsVoidPtr(args[0]);
	if (kd == NULL && PyErr_Occurred())
		return NULL;
	ptrsize = PyLong_AsLong(args[2]);
	if (ptrsize != 4 && ptrsize != 8) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "ptrsize must be 4 or 8");
		return NULL;
	}
	r->swap = PyObject_IsTrue(args[1]);
	r->has_pread = PyObject_IsTrue(args[3]);
	if (r->swap < 0 || r->has_pread < 0)
		return NULL;
	r->ptrsize = (int)ptrsize;
	r->kd = kd;
	Py_RETURN_NONE;
}

/* _unbind(): no more reads through this object (before pykvm_close). */
static PyObject *Reader_unbind(PyObject *self, PyObject *unused)
{
	(void)unused;
	((Reader *)self)->kd = NULL;
	Py_RETURN_NONE;
}

static PyObject *Reader_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
	Reader *r;

	(void)args, (void)kw;
	r = (Reader *)alloc(type, 0);
	if (r == NULL)
		return NULL;
	r->kd = NULL;
	r->ptrsize = (int)sizeof(void *);
	return (PyObject *)r;
}

static void Reader_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);

	f(self);
	Py_DECREF(tp);
}

#define FAST(name, doc) \
	{#name, (PyCFunction)(void (*)(void))Reader_##name, METH_FASTCALL | METH_KEYWORDS, doc}

static PyMethodDef Reader_methods[] = {
	FAST(read, "read(addr, size, physical=False) -> bytes\n\n"
		   "size bytes at addr (kernel virtual, or physical).  addr: an int or anything\n"
		   "with __index__ (a pykvm.Symbol)."
		   "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(readinto, "readinto(addr, buffer, physical=False) -> int\n\n"
		       "Read len(buffer) bytes at addr straight into buffer (any writable buffer);\n"
		       "returns the count."
		       "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_u8, "read_u8(addr, physical=False) -> int" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_u16, "read_u16(addr, physical=False) -> int (the core's byte order)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_u32, "read_u32(addr, physical=False) -> int (the core's byte order)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_u64, "read_u64(addr, physical=False) -> int (the core's byte order)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_s8, "read_s8(addr, physical=False) -> int" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_s16, "read_s16(addr, physical=False) -> int (the core's byte order)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_s32, "read_s32(addr, physical=False) -> int (the core's byte order)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_s64, "read_s64(addr, physical=False) -> int (the core's byte order)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_pointer, "read_pointer(addr, physical=False) -> int (the core's word size)" "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_member, "read_member(addr, offset, size, signed=False, bit_offset=0, bit_size=0) -> int\n\n"
			  "The integer of size bytes (1 to 8) at addr + offset in the core's byte\n"
			  "order; with bit_size, the bitfield of bit_size bits that starts\n"
			  "bit_offset bits into it.  The primitive typed objects read members with.\n"
			  "ValueError for a size outside 1..8 or bits that do not fit."
			  "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_cstring, "read_cstring(addr, maxlen=4096, physical=False, encoding='utf-8') -> str | bytes\n\n"
			   "The NUL-terminated string at addr (at most maxlen bytes), read page by\n"
			   "page so a string ending just before an unmapped page still reads.\n"
			   "encoding=None returns bytes; another encoding gives str in it (a\n"
			   "string that does not decode: UnicodeDecodeError)."
			   "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_many, "read_many(addrs, size, physical=False, out=None) -> memoryview\n\n"
			"Read size bytes at each address into one buffer (len(addrs) * size), in\n"
			"one call.  addrs: a sequence of ints, or a buffer of uint64 (array('Q'),\n"
			"a NumPy uint64 array) used without conversion.  Raises at the first\n"
			"failed address; try_read_many gives per-address results.\n"
			"ValueError: out too small.  UnsupportedError: physical reads without\n"
			"kvm_pread (a native libkvm)."
			"\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	FAST(read_scatter, "read_scatter(addrs, sizes, out=None) -> memoryview\n\n"
			   "Read sizes[i] bytes at addrs[i] for every i in one call, packed one\n"
			   "after another into one buffer (sum(sizes) bytes).  Both may be\n"
			   "sequences of ints or buffers of uint64.  ValueError: lengths differ, or out\n"
			   "is too small."
			   "\n\nRaises FaultError (no memory at an address), PageExcludedError (a page\n"
		   "the dump left out), BadAddressError (an address outside 0 .. 2**64 - 1\n"
		   "or a range past its top), ClosedError (a closed handle)."),
	{"_bind", (PyCFunction)(void (*)(void))Reader_bind, METH_FASTCALL, "attach a handle"},
	{"_unbind", Reader_unbind, METH_NOARGS, "detach the handle"},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot Reader_slots[] = {
	{Py_tp_new, (void *)Reader_new},
	{Py_tp_dealloc, (void *)Reader_dealloc},
	{Py_tp_methods, Reader_methods},
	{Py_tp_doc, (void *)"The C read path of pykvm.Kvm (pykvm._fast)."},
	{0, NULL},
};

static PyType_Spec Reader_spec = {
	"pykvm._fast.Reader", sizeof(Reader), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, Reader_slots,
};

/* setup(read, pread, read_many, read_scatter, errno, geterr, erraddr):
 * the cffi module's function addresses. */
static PyObject *fast_setup(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
	void *p[7];
	int i;

	(void)mod;
	if (nargs != 7) {
		PyErr_SetString(PyExc_TypeError,
				"setup(read, pread, read_many, read_scatter, errno, geterr, erraddr)");
		return NULL;
	}
	for (i = 0; i < 7; i++) {
		p[i] = PyLong_AsVoidPtr(args[i]);
		if (p[i] == NULL) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "setup: NULL function");
			return NULL;
		}
	}
	/* Function pointers travel as integers (uintptr_t) through Python. */
	memcpy(&api_read, &p[0], sizeof(p[0]));
	memcpy(&api_pread, &p[1], sizeof(p[1]));
	memcpy(&api_read_many, &p[2], sizeof(p[2]));
	memcpy(&api_read_scatter, &p[3], sizeof(p[3]));
	memcpy(&api_errno, &p[4], sizeof(p[4]));
	memcpy(&api_geterr, &p[5], sizeof(p[5]));
	memcpy(&api_erraddr, &p[6], sizeof(p[6]));
	Py_RETURN_NONE;
}

static PyMethodDef fast_methods[] = {
	{"setup", (PyCFunction)(void (*)(void))fast_setup, METH_FASTCALL,
	 "setup(read, pread, read_many, read_scatter, errno, geterr, erraddr):\n"
	 "addresses of the pykvm_api.h functions of pykvm._kvm"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef fast_module = {
	PyModuleDef_HEAD_INIT, "pykvm._fast",
	"The hot reads of pykvm.Kvm in C, over the cffi module's handle (no libkvm code here).",
	-1, fast_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void)
{
	PyObject *m = PyModule_Create(&fast_module), *t;

	if (m == NULL)
		return NULL;
	t = PyType_FromSpec(&Reader_spec);
	if (t == NULL || PyModule_AddObject(m, "Reader", t) != 0) {
		Py_XDECREF(t);
		Py_DECREF(m);
		return NULL;
	}
	Py_INCREF(t); /* kept for the Value type's checks */
	fast_reader_type = (PyTypeObject *)t;
	if (fast_value_add(m) != 0) {
		Py_DECREF(m);
		return NULL;
	}
	if (PyModule_AddIntConstant(m, "NOGIL_BYTES", NOGIL_BYTES) != 0 ||
	    PyModule_AddIntConstant(m, "PROBE_BYTES", PROBE_BYTES) != 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
