/* dynredis._distsort: GEOSEARCH's sorts of distances, in C, step for step as Redis'.
 *
 * commands/csort.py reproduces over Python lists the two sorts redis-server runs on a
 * search's matches: glibc's merge sort (qsort, when every match is kept) and Redis'
 * partial quicksort (src/pqsort.c, when COUNT keeps fewer), with the three-way
 * comparator of geo.c (a NaN compares as "less" both ways). Members at one distance
 * come out in an order only the algorithm decides, so the steps must be the same. In
 * Python, 100,000 matches took one message handler 230-260 ms (a comparison is a
 * function call on two objects); here a match is a double and its position.
 *
 * Both take a buffer of doubles (array('d')) and the direction, and return the
 * positions in sorted order as native uint32 bytes. The partial sort's partitions are
 * disjoint, so the order they are sorted in does not change the result: the smaller
 * one is sorted by recursion, the larger by the loop (depth O(log n)).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    double d;
    uint32_t pos;
} item_t;

static int desc_order; /* set per call, under the GIL (no thread runs these at once) */

static inline int cmp(const item_t *a, const item_t *b) {
    int r = a->d > b->d ? 1 : a->d == b->d ? 0 : -1;
    return desc_order ? -r : r;
}

static inline void swap(item_t *a, Py_ssize_t i, Py_ssize_t j) {
    item_t t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void vecswap(item_t *a, Py_ssize_t i, Py_ssize_t j, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++)
        swap(a, i + k, j + k);
}

static Py_ssize_t med3(item_t *a, Py_ssize_t i, Py_ssize_t j, Py_ssize_t k) {
    if (cmp(&a[i], &a[j]) < 0)
        return cmp(&a[j], &a[k]) < 0 ? j : (cmp(&a[i], &a[k]) < 0 ? k : i);
    return cmp(&a[j], &a[k]) > 0 ? j : (cmp(&a[i], &a[k]) < 0 ? i : k);
}

/* C's pointer test of pqsort.c: whether first..last overlaps lrange..rrange. */
static inline int wanted(Py_ssize_t first, Py_ssize_t last, Py_ssize_t lrange,
                         Py_ssize_t rrange) {
    return !((lrange < first && rrange < first) || (lrange > last && rrange > last));
}

static void pqsort(item_t *a, Py_ssize_t base, Py_ssize_t n, Py_ssize_t lrange,
                   Py_ssize_t rrange) {
    for (;;) {
        if (n < 7) {
            for (Py_ssize_t pm = base + 1; pm < base + n; pm++)
                for (Py_ssize_t pl = pm; pl > base && cmp(&a[pl - 1], &a[pl]) > 0; pl--)
                    swap(a, pl, pl - 1);
            return;
        }
        Py_ssize_t pm = base + n / 2;
        if (n > 7) {
            Py_ssize_t pl = base, pn = base + n - 1;
            if (n > 40) {
                Py_ssize_t d = n / 8;
                pl = med3(a, pl, pl + d, pl + 2 * d);
                pm = med3(a, pm - d, pm, pm + d);
                pn = med3(a, pn - 2 * d, pn - d, pn);
            }
            pm = med3(a, pl, pm, pn);
        }
        swap(a, base, pm);
        Py_ssize_t pa = base + 1, pb = base + 1, pc = base + n - 1, pd = base + n - 1;
        for (;;) {
            int r;
            while (pb <= pc && (r = cmp(&a[pb], &a[base])) <= 0) {
                if (r == 0)
                    swap(a, pa++, pb);
                pb++;
            }
            while (pb <= pc && (r = cmp(&a[pc], &a[base])) >= 0) {
                if (r == 0)
                    swap(a, pc, pd--);
                pc--;
            }
            if (pb > pc)
                break;
            swap(a, pb++, pc--);
        }
        Py_ssize_t pn = base + n;
        Py_ssize_t r = pa - base < pb - pa ? pa - base : pb - pa;
        vecswap(a, base, pb - r, r);
        r = pd - pc < pn - pd - 1 ? pd - pc : pn - pd - 1;
        vecswap(a, pb, pn - r, r);
        Py_ssize_t left = pb - pa, right = pd - pc;
        int go_left = left > 1 && wanted(base, base + left - 1, lrange, rrange);
        int go_right = right > 1 && wanted(pn - right, pn - 1, lrange, rrange);
        if (go_left && go_right) {
            if (left <= right) {
                pqsort(a, base, left, lrange, rrange);
                base = pn - right;
                n = right;
            } else {
                pqsort(a, pn - right, right, lrange, rrange);
                n = left;
            }
        } else if (go_left) {
            n = left;
        } else if (go_right) {
            base = pn - right;
            n = right;
        } else {
            return;
        }
    }
}

/* glibc's msort_with_tmp: halves of n / 2 and the rest, merged taking the left element
 * unless it compares greater. */
static void msort(item_t *b, Py_ssize_t n, item_t *tmp) {
    if (n <= 1)
        return;
    Py_ssize_t n1 = n / 2, n2 = n - n1;
    item_t *b1 = b, *b2 = b + n1;
    msort(b1, n1, tmp);
    msort(b2, n2, tmp);
    item_t *out = tmp;
    while (n1 > 0 && n2 > 0) {
        if (cmp(b1, b2) <= 0) {
            *out++ = *b1++;
            n1--;
        } else {
            *out++ = *b2++;
            n2--;
        }
    }
    if (n1 > 0)
        memcpy(out, b1, (size_t)n1 * sizeof(item_t));
    memcpy(b, tmp, (size_t)(n - n2) * sizeof(item_t));
}

/* The items of a buffer of doubles, or NULL with an exception set. */
static item_t *items_of(PyObject *obj, Py_ssize_t *count) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (view.itemsize != sizeof(double) || view.format == NULL || strcmp(view.format, "d")) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "distances must be a buffer of doubles");
        return NULL;
    }
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(double);
    if (n > (Py_ssize_t)UINT32_MAX) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_OverflowError, "too many distances");
        return NULL;
    }
    item_t *a = PyMem_Malloc(sizeof(item_t) * (size_t)(n ? n : 1));
    if (a == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return NULL;
    }
    const double *d = view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        a[i].d = d[i];
        a[i].pos = (uint32_t)i;
    }
    PyBuffer_Release(&view);
    *count = n;
    return a;
}

static PyObject *positions_of(item_t *a, Py_ssize_t n) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(uint32_t)));
    if (out != NULL) {
        uint32_t *pos = (uint32_t *)PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; i < n; i++)
            pos[i] = a[i].pos;
    }
    PyMem_Free(a);
    return out;
}

/* qsort(dists, desc) -> positions in glibc's merge sort's order */
static PyObject *py_qsort(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "qsort(dists, desc) takes 2 arguments");
        return NULL;
    }
    int desc = PyObject_IsTrue(args[1]);
    if (desc < 0)
        return NULL;
    Py_ssize_t n;
    item_t *a = items_of(args[0], &n);
    if (a == NULL)
        return NULL;
    item_t *tmp = PyMem_Malloc(sizeof(item_t) * (size_t)(n ? n : 1));
    if (tmp == NULL) {
        PyMem_Free(a);
        return PyErr_NoMemory();
    }
    desc_order = desc;
    msort(a, n, tmp);
    PyMem_Free(tmp);
    return positions_of(a, n);
}

/* pqsort(dists, desc, lrange, rrange) -> positions in Redis' partial sort's order */
static PyObject *py_pqsort(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "pqsort(dists, desc, lrange, rrange) takes 4 "
                                         "arguments");
        return NULL;
    }
    int desc = PyObject_IsTrue(args[1]);
    if (desc < 0)
        return NULL;
    Py_ssize_t lrange = PyLong_AsSsize_t(args[2]);
    Py_ssize_t rrange = PyLong_AsSsize_t(args[3]);
    if ((lrange == -1 || rrange == -1) && PyErr_Occurred())
        return NULL;
    Py_ssize_t n;
    item_t *a = items_of(args[0], &n);
    if (a == NULL)
        return NULL;
    desc_order = desc;
    pqsort(a, 0, n, lrange, rrange);
    return positions_of(a, n);
}

static PyMethodDef methods[] = {
    {"qsort", (PyCFunction)(void (*)(void))py_qsort, METH_FASTCALL,
     "qsort(dists, desc) -> uint32 positions (bytes) in glibc's merge sort's order"},
    {"pqsort", (PyCFunction)(void (*)(void))py_pqsort, METH_FASTCALL,
     "pqsort(dists, desc, lrange, rrange) -> uint32 positions (bytes) in Redis' partial "
     "quicksort's order"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_distsort", NULL, -1, methods};

PyMODINIT_FUNC PyInit__distsort(void) { return PyModule_Create(&module); }
