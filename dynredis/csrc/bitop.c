/* dynredis._bitop: BITOP AND/OR/XOR/NOT over buffers, in C.
 *
 * The same result as commands/bitops.py's bitop_pure, which stays the reference and
 * the fallback: the longest source's length, shorter sources read as zero-padded. In
 * Python each source became an int (int.from_bytes of a zero-padded copy) and the
 * result was turned back into bytes: AND of two 100 MiB values held the coordinator's
 * loop about 180 ms. Here the sources are read where they are (bytes, or memoryviews
 * of values pinned in the store) and the result is written once, a word at a time,
 * into the bytes object returned (no copy of it either).
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

static void release_all(Py_buffer *views, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
}

/* bitop(op, sources) -> bytes: op 0 AND, 1 OR, 2 XOR, 3 NOT (one source). */
static PyObject *bitop(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "bitop(op, sources) takes 2 arguments");
        return NULL;
    }
    long op = PyLong_AsLong(args[0]);
    if (op == -1 && PyErr_Occurred())
        return NULL;
    if (op < OP_AND || op > OP_NOT) {
        PyErr_SetString(PyExc_ValueError, "bitop: op is 0 (AND) to 3 (NOT)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[1], "bitop: sources must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    if (count < 1 || (op == OP_NOT && count != 1)) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "bitop: one source or more (NOT: one)");
        return NULL;
    }
    Py_buffer *views = PyMem_Calloc((size_t)count, sizeof(Py_buffer));
    if (views == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    PyObject *const *items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyObject_GetBuffer(items[i], &views[i], PyBUF_CONTIG_RO) < 0) {
            release_all(views, i);
            PyMem_Free(views);
            Py_DECREF(seq);
            return NULL;
        }
        if (views[i].len > size)
            size = views[i].len;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, size);
    if (result != NULL && size > 0) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        Py_BEGIN_ALLOW_THREADS
        if (op == OP_NOT) {
            invert(out, views[0].buf, size);
        } else {
            /* One pass over the first two sources where both have bytes (the result
             * written once: no copy of the first then a pass over it), the rest of the
             * longer one copied (OR, XOR) or zeros (AND); then each other source. */
            const unsigned char *a = views[0].buf, *b = a;
            Py_ssize_t na = views[0].len, nb = 0;
            if (count > 1) {
                b = views[1].buf;
                nb = views[1].len;
            }
            Py_ssize_t both = na < nb ? na : nb;
            if (count > 1)
                combine(out, a, b, both, (int)op);
            else
                memcpy(out, a, (size_t)both);
            const unsigned char *longer = na > nb ? a : b;
            Py_ssize_t nl = na > nb ? na : nb;
            if (op == OP_AND && count > 1)
                memset(out + both, 0, (size_t)(size - both));
            else {
                memcpy(out + both, longer + both, (size_t)(nl - both));
                memset(out + nl, 0, (size_t)(size - nl));
            }
            for (Py_ssize_t i = 2; i < count; i++) {
                Py_ssize_t m = views[i].len;
                combine(out, out, views[i].buf, m, (int)op);
                if (op == OP_AND)  /* past its end the source reads as zeros */
                    memset(out + m, 0, (size_t)(size - m));
            }
        }
        Py_END_ALLOW_THREADS
    }
    release_all(views, count);
    PyMem_Free(views);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"bitop", (PyCFunction)(void (*)(void))bitop, METH_FASTCALL,
     "bitop(op, sources) -> bytes: BITOP of buffers (op 0 AND, 1 OR, 2 XOR, 3 NOT)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bitop", NULL, -1, methods};

PyMODINIT_FUNC PyInit__bitop(void) { return PyModule_Create(&module); }
