/* dynredis._bitop: BITOP AND/OR/XOR/NOT over buffers, in C.
 *
 * The same result as commands/bitops.py's bitop_pure, which stays the reference and
 * the fallback: the longest source's length, shorter sources read as zero-padded. In
 * Python each source became an int (int.from_bytes of a zero-padded copy) and the
 * result was turned back into bytes: AND of two 100 MiB values held the coordinator's
 * loop about 180 ms. Here the sources are read where they are (bytes, or memoryviews
 * of values pinned in the store) and the result is written once, a word at a time,
 * into the bytes object it is returned in (no copy of it either).
 *
 * `bitop` does it at once. A `Job` does it a range of bytes a call (`step`), so that a
 * loop turn holds a slice of the work: most of it is the kernel's page faults of the
 * new result (about 40 ms per 100 MiB), which a slice takes its share of. The job
 * holds the sources' buffers until it is done, and hands its result out only then: no
 * one sees the bytes object while it is written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { OP_AND = 0, OP_OR = 1, OP_XOR = 2, OP_NOT = 3 };

/* out[0:n] = a[0:n] OP b[0:n] (op AND, OR or XOR), eight bytes at a time; `out` may
 * be `a`. */
static void combine(unsigned char *out, const unsigned char *a, const unsigned char *b,
                    Py_ssize_t n, int op) {
    Py_ssize_t i = 0;
    uint64_t x, y;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        x = op == OP_AND ? (x & y) : op == OP_OR ? (x | y) : (x ^ y);
        memcpy(out + i, &x, 8);
    }
    for (; i < n; i++)
        out[i] = op == OP_AND ? (a[i] & b[i]) : op == OP_OR ? (a[i] | b[i]) : (a[i] ^ b[i]);
}

static void invert(unsigned char *out, const unsigned char *src, Py_ssize_t n) {
    Py_ssize_t i = 0;
    uint64_t a;
    for (; i + 8 <= n; i += 8) {
        memcpy(&a, src + i, 8);
        a = ~a;
        memcpy(out + i, &a, 8);
    }
    for (; i < n; i++)
        out[i] = (unsigned char)~src[i];
}

static Py_ssize_t min_of(Py_ssize_t a, Py_ssize_t b) { return a < b ? a : b; }
static Py_ssize_t max_of(Py_ssize_t a, Py_ssize_t b) { return a > b ? a : b; }

/* Bytes [lo, hi) of the result of `op` over the `count` sources into `out` (the
 * result's first byte). The first two sources are combined in one pass where both
 * have bytes (the result written once), then each other one over it. */
static void fill(int op, Py_buffer *views, Py_ssize_t count, unsigned char *out,
                 Py_ssize_t lo, Py_ssize_t hi) {
    const unsigned char *a = views[0].buf;
    Py_ssize_t a_end = max_of(lo, min_of(hi, views[0].len));
    if (op == OP_NOT) {
        invert(out + lo, a + lo, a_end - lo);
        return;
    }
    if (count == 1) {
        memcpy(out + lo, a + lo, (size_t)(a_end - lo));
        memset(out + a_end, 0, (size_t)(hi - a_end));
        return;
    }
    const unsigned char *b = views[1].buf;
    Py_ssize_t b_end = max_of(lo, min_of(hi, views[1].len));
    Py_ssize_t both = min_of(a_end, b_end);
    combine(out + lo, a + lo, b + lo, both - lo, op);
    if (op == OP_AND) {
        memset(out + both, 0, (size_t)(hi - both));
    } else { /* the rest of the longer one, then zeros */
        const unsigned char *longer = a_end > b_end ? a : b;
        Py_ssize_t end = max_of(a_end, b_end);
        memcpy(out + both, longer + both, (size_t)(end - both));
        memset(out + end, 0, (size_t)(hi - end));
    }
    for (Py_ssize_t i = 2; i < count; i++) {
        Py_ssize_t end = max_of(lo, min_of(hi, views[i].len));
        combine(out + lo, out + lo, (const unsigned char *)views[i].buf + lo, end - lo, op);
        if (op == OP_AND) /* past its end the source reads as zeros */
            memset(out + end, 0, (size_t)(hi - end));
    }
}

static void release_all(Py_buffer *views, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
}

/* The op and the sources' buffers of a call (op, sources); *size: the longest's
 * length. NULL with an exception set if they are not a BITOP. */
static Py_buffer *open_sources(PyObject *op_arg, PyObject *sources, int *op,
                               Py_ssize_t *count, Py_ssize_t *size) {
    long o = PyLong_AsLong(op_arg);
    if (o == -1 && PyErr_Occurred())
        return NULL;
    if (o < OP_AND || o > OP_NOT) {
        PyErr_SetString(PyExc_ValueError, "bitop: op is 0 (AND) to 3 (NOT)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(sources, "bitop: sources must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || (o == OP_NOT && n != 1)) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "bitop: one source or more (NOT: one)");
        return NULL;
    }
    Py_buffer *views = PyMem_Calloc((size_t)n, sizeof(Py_buffer));
    if (views == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *const *items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t longest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyObject_GetBuffer(items[i], &views[i], PyBUF_CONTIG_RO) < 0) {
            release_all(views, i);
            PyMem_Free(views);
            Py_DECREF(seq);
            return NULL;
        }
        longest = max_of(longest, views[i].len);
    }
    Py_DECREF(seq);
    *op = (int)o;
    *count = n;
    *size = longest;
    return views;
}

/* bitop(op, sources) -> bytes: op 0 AND, 1 OR, 2 XOR, 3 NOT (one source). */
static PyObject *bitop(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "bitop(op, sources) takes 2 arguments");
        return NULL;
    }
    int op;
    Py_ssize_t count, size;
    Py_buffer *views = open_sources(args[0], args[1], &op, &count, &size);
    if (views == NULL)
        return NULL;
    PyObject *result = PyBytes_FromStringAndSize(NULL, size);
    if (result != NULL && size > 0) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        Py_BEGIN_ALLOW_THREADS
        fill(op, views, count, out, 0, size);
        Py_END_ALLOW_THREADS
    }
    release_all(views, count);
    PyMem_Free(views);
    return result;
}

/* --- Job: the same, a range of bytes a step ------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int op;
    Py_ssize_t count; /* 0 once the sources are let go of */
    Py_buffer *views;
    PyObject *out; /* the result being written (NULL once handed out) */
    Py_ssize_t size, at;
} Job;

static void job_let_go(Job *job) {
    if (job->views != NULL) {
        release_all(job->views, job->count);
        PyMem_Free(job->views);
        job->views = NULL;
        job->count = 0;
    }
}

static PyObject *job_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *op_arg, *sources;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "Job(op, sources) takes no keywords");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Job", 2, 2, &op_arg, &sources))
        return NULL;
    Job *job = (Job *)type->tp_alloc(type, 0);
    if (job == NULL)
        return NULL;
    job->views = open_sources(op_arg, sources, &job->op, &job->count, &job->size);
    if (job->views == NULL) {
        Py_DECREF(job);
        return NULL;
    }
    job->out = PyBytes_FromStringAndSize(NULL, job->size);
    if (job->out == NULL) {
        Py_DECREF(job);
        return NULL;
    }
    return (PyObject *)job;
}

static void job_dealloc(Job *job) {
    job_let_go(job);
    Py_XDECREF(job->out);
    Py_TYPE(job)->tp_free((PyObject *)job);
}

/* step(n) -> bool: write the next n bytes of the result (at least one); whether it is
 * all written (then the sources are let go of). */
static PyObject *job_step(Job *job, PyObject *arg) {
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (job->views != NULL && job->at < job->size) {
        Py_ssize_t lo = job->at;
        Py_ssize_t hi = n >= job->size - lo ? job->size : lo + max_of(n, 1);
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(job->out);
        Py_BEGIN_ALLOW_THREADS
        fill(job->op, job->views, job->count, out, lo, hi);
        Py_END_ALLOW_THREADS
        job->at = hi;
    }
    if (job->at >= job->size)
        job_let_go(job);
    return PyBool_FromLong(job->at >= job->size);
}

/* result() -> bytes: the result, once all written (handed out once). */
static PyObject *job_result(Job *job, PyObject *unused) {
    if (job->at < job->size || job->out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Job.result: not all written, or handed out");
        return NULL;
    }
    PyObject *out = job->out;
    job->out = NULL;
    return out;
}

static PyMethodDef job_methods[] = {
    {"step", (PyCFunction)job_step, METH_O,
     "step(n) -> bool: write the next n bytes of the result; whether all are written."},
    {"result", (PyCFunction)job_result, METH_NOARGS,
     "result() -> bytes: the result, once all written (once)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject JobType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dynredis._bitop.Job",
    .tp_basicsize = sizeof(Job),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Job(op, sources): bitop's result, written a range of bytes a step.",
    .tp_new = job_new,
    .tp_dealloc = (destructor)job_dealloc,
    .tp_methods = job_methods,
};

static PyMethodDef methods[] = {
    {"bitop", (PyCFunction)(void (*)(void))bitop, METH_FASTCALL,
     "bitop(op, sources) -> bytes: BITOP of buffers (op 0 AND, 1 OR, 2 XOR, 3 NOT)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bitop", NULL, -1, methods};

PyMODINIT_FUNC PyInit__bitop(void) {
    if (PyType_Ready(&JobType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&JobType);
    if (PyModule_AddObject(m, "Job", (PyObject *)&JobType) < 0) {
        Py_DECREF(&JobType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
