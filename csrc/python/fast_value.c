/*
 * fast_value.c - pykvm._fast.Value, the C base of pykvm.btf.Object (a kernel
 * type at an address), and MemberTable, a struct type's members for it.
 *
 * The two calls a kernel walk makes most are here: a struct member by
 * attribute (task.pid) and an integer's value (int(task.pid)).
 *
 * - The member comes from the type's MemberTable, which the Python layer
 *   makes once per struct type (Type._cmembers) from name -> (byte offset,
 *   member type, read code).  Its names are interned, like the attribute
 *   names in Python code, so a lookup compares pointers in a small open
 *   hash; other strings fall back to a dict.
 * - An object keeps the member objects it made (one slot per member), so
 *   task.pid in a loop makes one object, not one per iteration.  Objects
 *   are immutable (address and type), so sharing them changes nothing.
 * - The value is one read through the Reader, by the read code:
 *   size | signed << 4 | pointer << 5 (a pointer's size is the core's);
 *   0: no plain integer read, Python decides; -1: not known yet.
 *
 * Everything else (bitfields, members through pointers, arrays, errors) is
 * the Python subclass's: its _getattr_slow, _int_slow and _reader_code.
 */
#if !defined(Py_LIMITED_API) && defined(PYKVM_LIMITED_API)
#define Py_LIMITED_API PYKVM_LIMITED_API
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "fast.h"

/* Instances of heap types hold their type: visited here from 3.9 on (3.8's
 * subclass traversal visits it already). */
#if PY_VERSION_HEX >= 0x03090000
#define VISIT_TYPE(self) Py_VISIT((PyObject *)Py_TYPE(self))
#else
#define VISIT_TYPE(self) ((void)0)
#endif

#define CODE_SIZE 0x0f
#define CODE_SIGNED 0x10
#define CODE_POINTER 0x20

/* ---- MemberTable ---- */

struct member {
	PyObject *name; /* interned */
	PyObject *type;
	uint64_t off;
	int code;
};

typedef struct {
	PyObject_HEAD
	Py_ssize_t n;
	size_t mask;            /* hash slots - 1 */
	Py_ssize_t *slots;      /* index + 1 into members, 0: empty */
	struct member *members;
	PyObject *fallback;     /* name -> index, for names that are not interned */
} MemberTable;

static PyTypeObject *member_table_type;

static size_t name_hash(PyObject *name, size_t mask)
{
	uintptr_t p = (uintptr_t)name;
	return (size_t)((p >> 4) ^ (p >> 13)) & mask;
}

/* The index of name's member, or -1 (no exception) when it has none. */
static Py_ssize_t table_find(MemberTable *t, PyObject *name)
{
	size_t h = name_hash(name, t->mask);
	PyObject *i;

	for (;;) {
		Py_ssize_t s = t->slots[h];
		if (s == 0)
			break;
		if (t->members[s - 1].name == name)
			return s - 1;
		h = (h + 1) & t->mask;
	}
	if (t->fallback == NULL) /* cleared by the GC */
		return -1;
	i = PyDict_GetItemWithError(t->fallback, name);
	return i == NULL ? -1 : PyLong_AsSsize_t(i);
}

static void table_free(MemberTable *t)
{
	Py_ssize_t i;

	if (t->members != NULL)
		for (i = 0; i < t->n; i++) {
			Py_CLEAR(t->members[i].name);
			Py_CLEAR(t->members[i].type);
		}
	PyMem_Free(t->members);
	PyMem_Free(t->slots);
	t->members = NULL;
	t->slots = NULL;
	t->n = 0;
	Py_CLEAR(t->fallback);
}

/* MemberTable({name: (offset, type, code)}) */
static PyObject *MemberTable_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
	PyObject *d, *key, *value;
	Py_ssize_t pos = 0, n, i = 0;
	size_t slots = 8;
	MemberTable *t;

	if (kw != NULL && PyDict_Size(kw) != 0) {
		PyErr_SetString(PyExc_TypeError, "MemberTable takes no keyword arguments");
		return NULL;
	}
	if (!PyArg_ParseTuple(args, "O!:MemberTable", &PyDict_Type, &d))
		return NULL;
	n = PyDict_Size(d);
	while (slots < 2 * (size_t)n)
		slots *= 2;
	t = (MemberTable *)alloc(type, 0);
	if (t == NULL)
		return NULL;
	t->mask = slots - 1;
	t->slots = PyMem_Calloc(slots, sizeof(*t->slots));
	t->members = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*t->members));
	t->fallback = PyDict_New();
	if (t->slots == NULL || t->members == NULL || t->fallback == NULL) {
		Py_DECREF(t);
		return PyErr_NoMemory();
	}
	while (PyDict_Next(d, &pos, &key, &value)) {
		struct member *m = &t->members[i];
		PyObject *idx;
		size_t h;
		long code;
		if (!PyUnicode_Check(key) || !PyTuple_Check(value) || PyTuple_Size(value) != 3) {
			PyErr_SetString(PyExc_TypeError,
					"MemberTable: {name: (offset, type, code)} expected");
			goto fail;
		}
		m->off = PyLong_AsUnsignedLongLong(PyTuple_GetItem(value, 0));
		code = PyLong_AsLong(PyTuple_GetItem(value, 2));
		if (PyErr_Occurred())
			goto fail;
		Py_INCREF(key);
		PyUnicode_InternInPlace(&key);
		m->name = key;
		m->type = PyTuple_GetItem(value, 1);
		Py_INCREF(m->type);
		m->code = (int)code;
		t->n = ++i; /* what table_free releases */
		idx = PyLong_FromSsize_t(i - 1);
		if (idx == NULL || PyDict_SetItem(t->fallback, key, idx) != 0) {
			Py_XDECREF(idx);
			goto fail;
		}
		Py_DECREF(idx);
		for (h = name_hash(key, t->mask); t->slots[h] != 0; h = (h + 1) & t->mask)
			;
		t->slots[h] = i;
	}
	return (PyObject *)t; /* tracked by the GC since its allocation */
fail:
	Py_DECREF(t);
	return NULL;
}

static int MemberTable_traverse(PyObject *self, visitproc visit, void *arg)
{
	MemberTable *t = (MemberTable *)self;
	Py_ssize_t i;

	for (i = 0; i < t->n; i++)
		Py_VISIT(t->members[i].type);
	Py_VISIT(t->fallback);
	VISIT_TYPE(self);
	return 0;
}

/* The GC breaking a cycle: drop the references, keep the arrays (a Value
 * may still look a name up until it goes too). */
static int MemberTable_clear(PyObject *self)
{
	MemberTable *t = (MemberTable *)self;
	Py_ssize_t i;

	for (i = 0; i < t->n; i++)
		Py_CLEAR(t->members[i].type);
	Py_CLEAR(t->fallback);
	return 0;
}

static void MemberTable_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);

	PyObject_GC_UnTrack(self);
	table_free((MemberTable *)self);
	f(self);
	Py_DECREF(tp);
}

static Py_ssize_t MemberTable_len(PyObject *self)
{
	return ((MemberTable *)self)->n;
}

static PyType_Slot MemberTable_slots[] = {
	{Py_tp_new, (void *)MemberTable_new},
	{Py_tp_dealloc, (void *)MemberTable_dealloc},
	{Py_tp_traverse, (void *)MemberTable_traverse},
	{Py_tp_clear, (void *)MemberTable_clear},
	{Py_sq_length, (void *)MemberTable_len},
	{Py_tp_doc, (void *)"MemberTable({name: (offset, type, code)}): a struct's members for Value."},
	{0, NULL},
};

static PyType_Spec MemberTable_spec = {
	"pykvm._fast.MemberTable", sizeof(MemberTable), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, MemberTable_slots,
};

/* ---- Value ---- */

typedef struct {
	PyObject_HEAD
	PyObject *kvm;       /* the pykvm.Kvm (a Reader) */
	PyObject *type;      /* the pykvm.btf Type */
	PyObject *bits;      /* (bit offset, bit size) of a bitfield, or NULL */
	PyObject *addr_obj;  /* the address as given when it is no uint64, else NULL */
	PyObject *table;     /* the type's MemberTable once looked up, or NULL */
	PyObject **children; /* the member objects made, one slot per member */
	Py_ssize_t nchildren;
	uint64_t addr;
	int code;
	int looked;          /* the type was asked for its table */
} Value;

static PyObject *str_cmembers, *str_getattr_slow, *str_int_slow, *str_reader_code;

static PyObject *Value_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *names[] = {"kvm", "address", "type", "bits", NULL};
	allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
	PyObject *kvm, *address, *vtype, *bits = Py_None, *index;
	uint64_t addr;
	Value *v;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|O:Object", names, &kvm, &address,
					 &vtype, &bits))
		return NULL;
	index = PyNumber_Index(address);
	if (index == NULL)
		return NULL;
	addr = PyLong_AsUnsignedLongLong(index);
	if (addr == (uint64_t)-1 && PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
			Py_DECREF(index);
			return NULL;
		}
		/* Negative or past 2**64 - 1: kept as it is, for the reads to refuse. */
		PyErr_Clear();
	} else {
		Py_CLEAR(index);
	}
	v = (Value *)alloc(type, 0);
	if (v == NULL) {
		Py_XDECREF(index);
		return NULL;
	}
	Py_INCREF(kvm);
	Py_INCREF(vtype);
	v->kvm = kvm;
	v->type = vtype;
	v->addr = addr;
	v->addr_obj = index;
	v->code = -1;
	if (bits != Py_None) {
		Py_INCREF(bits);
		v->bits = bits;
	}
	return (PyObject *)v;
}

static void value_clear_children(Value *v)
{
	Py_ssize_t i, n;

	if (v->children == NULL)
		return;
	n = v->nchildren;
	for (i = 0; i < n; i++)
		Py_CLEAR(v->children[i]);
	PyMem_Free(v->children);
	v->children = NULL;
}

static int Value_clear(PyObject *self)
{
	Value *v = (Value *)self;

	value_clear_children(v);
	Py_CLEAR(v->kvm);
	Py_CLEAR(v->type);
	Py_CLEAR(v->bits);
	Py_CLEAR(v->addr_obj);
	Py_CLEAR(v->table);
	return 0;
}

static int Value_traverse(PyObject *self, visitproc visit, void *arg)
{
	Value *v = (Value *)self;
	Py_ssize_t i;

	if (v->children != NULL)
		for (i = 0; i < v->nchildren; i++)
			Py_VISIT(v->children[i]);
	Py_VISIT(v->kvm);
	Py_VISIT(v->type);
	Py_VISIT(v->bits);
	Py_VISIT(v->addr_obj);
	Py_VISIT(v->table);
	VISIT_TYPE(self);
	return 0;
}

static void Value_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);

	PyObject_GC_UnTrack(self);
	Value_clear(self);
	f(self);
	Py_DECREF(tp);
}

/* Member i of v's table, as an object of v's class (made once). */
static PyObject *child(Value *v, PyObject *name, Py_ssize_t i)
{
	MemberTable *t = (MemberTable *)v->table;
	struct member *m = &t->members[i];
	PyTypeObject *tp = Py_TYPE((PyObject *)v);
	allocfunc alloc;
	Value *c;

	if (v->children != NULL && i < v->nchildren && v->children[i] != NULL) {
		Py_INCREF(v->children[i]);
		return v->children[i];
	}
	if (m->type == NULL) { /* the table was cleared by the GC */
		PyErr_SetObject(PyExc_AttributeError, name);
		return NULL;
	}
	if (v->addr + m->off < v->addr) /* past 2**64 - 1: Python says how */
		return PyObject_CallMethodObjArgs((PyObject *)v, str_getattr_slow, name, NULL);
	if (v->children == NULL) {
		v->children = PyMem_Calloc((size_t)t->n, sizeof(*v->children));
		if (v->children == NULL)
			return PyErr_NoMemory();
		v->nchildren = t->n;
	}
	alloc = (allocfunc)PyType_GetSlot(tp, Py_tp_alloc);
	c = (Value *)alloc(tp, 0);
	if (c == NULL)
		return NULL;
	Py_INCREF(v->kvm);
	Py_INCREF(m->type);
	c->kvm = v->kvm;
	c->type = m->type;
	c->addr = v->addr + m->off;
	c->code = m->code;
	if (i < v->nchildren) {
		Py_INCREF((PyObject *)c);
		v->children[i] = (PyObject *)c;
	}
	return (PyObject *)c;
}

/*
 * obj.name: a member from the table first (the class's own attribute names
 * are never in it, so those keep their meaning), then the class's
 * attributes, then the Python layer's slow path.
 */
static PyObject *Value_getattro(PyObject *self, PyObject *name)
{
	Value *v = (Value *)self;
	PyObject *res;

	if (!v->looked && v->addr_obj == NULL && v->bits == NULL) {
		PyObject *t = PyObject_GetAttr(v->type, str_cmembers);
		if (t == NULL)
			PyErr_Clear();
		else if (Py_TYPE(t) == member_table_type)
			v->table = t, v->looked = 1; /* tables are made once per type */
		else
			Py_DECREF(t);
	}
	if (v->table != NULL && PyUnicode_Check(name)) {
		Py_ssize_t i = table_find((MemberTable *)v->table, name);
		if (i >= 0)
			return child(v, name, i);
		if (PyErr_Occurred())
			return NULL;
	}
	res = PyObject_GenericGetAttr(self, name);
	if (res != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
		return res;
	PyErr_Clear();
	return PyObject_CallMethodObjArgs(self, str_getattr_slow, name, NULL);
}

static int code_ok(int code)
{
	int size = code & CODE_SIZE;

	if (code <= 0 || code > (CODE_SIZE | CODE_SIGNED | CODE_POINTER))
		return 0;
	return (code & CODE_POINTER) || size == 1 || size == 2 || size == 4 || size == 8;
}

/* int(obj), operator.index(obj): a plain integer or pointer in one read. */
static PyObject *Value_int(PyObject *self)
{
	Value *v = (Value *)self;
	Reader *r;
	uint64_t x;
	int size;

	if (v->bits != NULL || v->addr_obj != NULL || !PyObject_TypeCheck(v->kvm, fast_reader_type))
		return PyObject_CallMethodObjArgs(self, str_int_slow, NULL);
	if (v->code < 0) {
		PyObject *c = PyObject_CallMethodObjArgs(self, str_reader_code, NULL);
		long code;
		if (c == NULL)
			return NULL;
		code = PyLong_AsLong(c);
		Py_DECREF(c);
		if (code == -1 && PyErr_Occurred())
			return NULL;
		v->code = code_ok((int)code) ? (int)code : 0;
	}
	if (!code_ok(v->code))
		return PyObject_CallMethodObjArgs(self, str_int_slow, NULL);
	r = (Reader *)v->kvm;
	size = (v->code & CODE_POINTER) ? r->ptrsize : (v->code & CODE_SIZE);
	if (read_uint(r, v->kvm, v->addr, size, 0, &x) != 0)
		return NULL;
	return from_uint(x, size, (v->code & CODE_SIGNED) != 0);
}

static PyObject *get_kvm(PyObject *self, void *unused)
{
	(void)unused;
	Py_INCREF(((Value *)self)->kvm);
	return ((Value *)self)->kvm;
}

static PyObject *get_type(PyObject *self, void *unused)
{
	(void)unused;
	Py_INCREF(((Value *)self)->type);
	return ((Value *)self)->type;
}

static PyObject *get_bits(PyObject *self, void *unused)
{
	PyObject *b = ((Value *)self)->bits;

	(void)unused;
	if (b == NULL)
		b = Py_None;
	Py_INCREF(b);
	return b;
}

static PyObject *get_address(PyObject *self, void *unused)
{
	Value *v = (Value *)self;

	(void)unused;
	if (v->addr_obj != NULL) {
		Py_INCREF(v->addr_obj);
		return v->addr_obj;
	}
	return PyLong_FromUnsignedLongLong(v->addr);
}

static PyGetSetDef Value_getset[] = {
	{"_kvm", get_kvm, NULL, "the pykvm.Kvm read through", NULL},
	{"address", get_address, NULL, "the object's kernel address", NULL},
	{"type", get_type, NULL, "the object's Type", NULL},
	{"_bits", get_bits, NULL, "(bit offset, bit size) of a bitfield, or None", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Value_slots[] = {
	{Py_tp_new, (void *)Value_new},
	{Py_tp_dealloc, (void *)Value_dealloc},
	{Py_tp_traverse, (void *)Value_traverse},
	{Py_tp_clear, (void *)Value_clear},
	{Py_tp_getattro, (void *)Value_getattro},
	{Py_tp_getset, Value_getset},
	{Py_nb_int, (void *)Value_int},
	{Py_nb_index, (void *)Value_int},
	{Py_tp_doc, (void *)"Value(kvm, address, type, bits=None): the C base of pykvm.btf.Object."},
	{0, NULL},
};

static PyType_Spec Value_spec = {
	"pykvm._fast.Value", sizeof(Value), 0,
	Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, Value_slots,
};

int fast_value_add(PyObject *module)
{
	PyObject *t;

	str_cmembers = PyUnicode_InternFromString("_cmembers");
	str_getattr_slow = PyUnicode_InternFromString("_getattr_slow");
	str_int_slow = PyUnicode_InternFromString("_int_slow");
	str_reader_code = PyUnicode_InternFromString("_reader_code");
	if (str_cmembers == NULL || str_getattr_slow == NULL || str_int_slow == NULL ||
	    str_reader_code == NULL)
		return -1;
	t = PyType_FromSpec(&MemberTable_spec);
	if (t == NULL || PyModule_AddObject(module, "MemberTable", t) != 0) {
		Py_XDECREF(t);
		return -1;
	}
	Py_INCREF(t);
	member_table_type = (PyTypeObject *)t;
	t = PyType_FromSpec(&Value_spec);
	if (t == NULL || PyModule_AddObject(module, "Value", t) != 0) {
		Py_XDECREF(t);
		return -1;
	}
	return 0;
}
