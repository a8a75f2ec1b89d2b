/* dynredis._weightorder: SORT's order of positions by weight, in C.
 *
 * What `index.sort(key=weights.__getitem__, reverse=desc)` gives (commands/sortcmd.py's
 * _by_weight, which stays the fallback): a stable order of the positions by weight,
 * descending with equal weights kept in position order as Python's reverse sort keeps
 * them. In Python a million weights took one loop turn of about 100 ms: a key call per
 * position, then comparisons of float objects spread over memory. Here each weight is
 * read once into a 64-bit key whose unsigned order is the doubles' order (-0.0 read as
 * 0.0: they are equal), and the keys are sorted by a stable radix sort, 11 bits a
 * pass (the passes where every key has the same digit skipped).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define DIGIT 11
#define BUCKETS (1 << DIGIT)
#define PASSES 6 /* 6 * 11 >= 64 */

static uint64_t key_of(double d, int desc) {
    uint64_t u;
    if (d == 0.0)
        d = 0.0; /* -0.0 == 0.0 */
    memcpy(&u, &d, 8);
    u = (u >> 63) ? ~u : (u | 0x8000000000000000ull);
    return desc ? ~u : u;
}

typedef struct {
    uint64_t key;
    uint32_t pos;
} item_t;

/* order(weights, desc) -> (bytes of uint32 positions in native order, any equal) */
static PyObject *order(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "order(weights, desc) takes 2 arguments");
        return NULL;
    }
    PyObject *weights = args[0];
    if (!PyList_Check(weights)) {
        PyErr_SetString(PyExc_TypeError, "order: weights must be a list of floats");
        return NULL;
    }
    int desc = PyObject_IsTrue(args[1]);
    if (desc < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(weights);
    if (n > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "order: too many weights");
        return NULL;
    }
    item_t *a = PyMem_Malloc(sizeof(item_t) * (size_t)(n ? n : 1));
    item_t *b = PyMem_Malloc(sizeof(item_t) * (size_t)(n ? n : 1));
    size_t(*counts)[BUCKETS] = PyMem_Calloc(PASSES, sizeof(*counts));
    if (a == NULL || b == NULL || counts == NULL) {
        PyMem_Free(a);
        PyMem_Free(b);
        PyMem_Free(counts);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(weights, i);
        double d = PyFloat_CheckExact(w) ? PyFloat_AS_DOUBLE(w) : 0.0;
        if (!PyFloat_CheckExact(w) || d != d) {
            PyMem_Free(a);
            PyMem_Free(b);
            PyMem_Free(counts);
            PyErr_SetString(PyExc_TypeError, "order: weights must be floats, no NaN");
            return NULL;
        }
        uint64_t k = key_of(d, desc);
        a[i].key = k;
        a[i].pos = (uint32_t)i;
        for (int p = 0; p < PASSES; p++)
            counts[p][(k >> (p * DIGIT)) & (BUCKETS - 1)]++;
    }
    int ties = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int p = 0; p < PASSES; p++) {
        size_t *c = counts[p];
        if (n && c[(a[0].key >> (p * DIGIT)) & (BUCKETS - 1)] == (size_t)n)
            continue; /* every key has this digit: the pass changes nothing */
        size_t at = 0;
        for (int d = 0; d < BUCKETS; d++) {
            size_t k = c[d];
            c[d] = at;
            at += k;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            b[c[(a[i].key >> (p * DIGIT)) & (BUCKETS - 1)]++] = a[i];
        item_t *t = a;
        a = b;
        b = t;
    }
    for (Py_ssize_t i = 1; i < n && !ties; i++)
        ties = a[i].key == a[i - 1].key;
    Py_END_ALLOW_THREADS
    PyMem_Free(counts);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(uint32_t)));
    if (out != NULL) {
        uint32_t *pos = (uint32_t *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < n; i++)
            pos[i] = a[i].pos;
    }
    PyMem_Free(a);
    PyMem_Free(b);
    if (out == NULL)
        return NULL;
    PyObject *result = Py_BuildValue("(NO)", out, ties ? Py_True : Py_False);
    return result;
}

static PyMethodDef methods[] = {
    {"order", (PyCFunction)(void (*)(void))order, METH_FASTCALL,
     "order(weights, desc) -> (uint32 positions as bytes, whether two weights are equal)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_weightorder", NULL, -1,
                                    methods};

PyMODINIT_FUNC PyInit__weightorder(void) { return PyModule_Create(&module); }
