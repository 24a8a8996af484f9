/*
 * fast.h - what the parts of pykvm._fast share: the Reader (the C base of
 * pykvm.Kvm) and its integer read, used by the typed values too.
 */
#ifndef PYKVM_FAST_H
#define PYKVM_FAST_H

#include <stdint.h>

typedef struct {
	PyObject_HEAD
	void *kd;      /* the pykvm_api.h handle; NULL when closed */
	int swap;      /* the core's byte order is not this machine's */
	int ptrsize;   /* the core's pointer size: 4 or 8 */
	int has_pread; /* physical reads exist in this backend */
} Reader;

/* pykvm._fast.Reader, for type checks. */
extern PyTypeObject *fast_reader_type;

/* An unsigned integer of size bytes (1..8) at addr, in the core's order:
 * 0, or -1 with the exception set. */
int read_uint(Reader *r, PyObject *self, uint64_t addr, int size,
	      int physical, uint64_t *out);
/* v (size bytes) as a Python int, sign-extended when is_signed. */
PyObject *from_uint(uint64_t v, int size, int is_signed);

/* Adds pykvm._fast.Value (fast_value.c) to the module: 0 or -1. */
int fast_value_add(PyObject *module);

#endif /* PYKVM_FAST_H */
