/* dynredis._plainvalue: a plain GET's value read from its object's bytes, in C.
 *
 * What core/obj.py's plain_value reads (it stays the fallback and the reference the
 * tests hold this to): the object every plain write makes, msgpack
 * [[[actor, counter, [[ts, expiry, data]]]], []], gives (ts, expiry, data), None for a
 * tombstone or an expired value, and the caller's `not_plain` for any other object
 * (the caller decodes it). Every GET of a string runs it; compiled Python walked the
 * bytes with a call per field, about 1,100 instructions a read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Where the msgpack unsigned integer at i ends; -1 if there is none there. */
static Py_ssize_t uint_end(const unsigned char *b, Py_ssize_t n, Py_ssize_t i) {
    if (i >= n)
        return -1;
    unsigned char c = b[i];
    Py_ssize_t end;
    if (c < 0x80)
        end = i + 1;
    else if (c == 0xCC)
        end = i + 2;
    else if (c == 0xCD)
        end = i + 3;
    else if (c == 0xCE)
        end = i + 5;
    else if (c == 0xCF)
        end = i + 9;
    else
        return -1;
    return end <= n ? end : -1;
}

/* The msgpack unsigned integer at [i, j) (uint_end found j). */
static uint64_t uint_at(const unsigned char *b, Py_ssize_t i, Py_ssize_t j) {
    unsigned char c = b[i];
    if (c < 0x80)
        return c;
    uint64_t v = 0;
    for (Py_ssize_t k = i + 1; k < j; k++)
        v = (v << 8) | b[k];
    return v;
}

/* Where the msgpack bin at i ends (*data: where its bytes start); -1 if none there. */
static Py_ssize_t bin_end(const unsigned char *b, Py_ssize_t n, Py_ssize_t i,
                          Py_ssize_t *data) {
    if (i + 2 > n)
        return -1;
    unsigned char c = b[i];
    Py_ssize_t start, len;
    if (c == 0xC4) {
        start = i + 2;
        len = b[i + 1];
    } else if (c == 0xC5 && i + 3 <= n) {
        start = i + 3;
        len = ((Py_ssize_t)b[i + 1] << 8) | b[i + 2];
    } else if (c == 0xC6 && i + 5 <= n) {
        start = i + 5;
        len = ((Py_ssize_t)b[i + 1] << 24) | ((Py_ssize_t)b[i + 2] << 16) |
              ((Py_ssize_t)b[i + 3] << 8) | b[i + 4];
    } else {
        return -1;
    }
    if (start + len > n)
        return -1;
    *data = start;
    return start + len;
}

/* plain_value(b: bytes, now_ms: int, not_plain: object) -> tuple | None | not_plain */
static PyObject *plain_value(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "plain_value(b, now_ms, not_plain)");
        return NULL;
    }
    PyObject *obj = args[0], *not_plain = args[2];
    if (!PyBytes_CheckExact(obj)) {
        PyErr_SetString(PyExc_TypeError, "plain_value: b must be bytes");
        return NULL;
    }
    /* now_ms as an unsigned 64-bit bound: a negative one expires nothing, one past
     * 2**64-1 everything (what Python's comparison of ints gives). */
    int overflow = 0, expire_all = 0, expire_none = 0;
    uint64_t now = 0;
    long long signed_now = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (signed_now == -1 && PyErr_Occurred())
        return NULL;
    if (overflow < 0 || (!overflow && signed_now < 0)) {
        expire_none = 1;
    } else if (overflow > 0) {
        now = PyLong_AsUnsignedLongLong(args[1]);
        if (now == (uint64_t)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                return NULL;
            PyErr_Clear();
            expire_all = 1;
        }
    } else {
        now = (uint64_t)signed_now;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(obj);
    Py_ssize_t n = PyBytes_GET_SIZE(obj), skip, data = 0;
    if (n < 8 || b[0] != 0x92 || b[1] != 0x91 || b[2] != 0x93)
        goto other;
    Py_ssize_t t = bin_end(b, n, 3, &skip); /* actor */
    if (t < 0)
        goto other;
    t = uint_end(b, n, t); /* counter */
    if (t < 0 || t + 2 > n || b[t] != 0x91 || b[t + 1] != 0x93)
        goto other;
    t += 2;
    Py_ssize_t i = uint_end(b, n, t); /* timestamp */
    if (i < 0)
        goto other;
    Py_ssize_t j = uint_end(b, n, i); /* expiry */
    if (j < 0)
        goto other;
    int tombstone = b[j] == 0xC0;
    Py_ssize_t end = tombstone ? j + 1 : bin_end(b, n, j, &data);
    if (end < 0 || end + 1 != n || b[end] != 0x90)
        goto other;
    if (tombstone)
        Py_RETURN_NONE;
    uint64_t expiry = uint_at(b, i, j);
    if (expiry && !expire_none && (expire_all || expiry <= now))
        Py_RETURN_NONE;
    PyObject *ts = PyLong_FromUnsignedLongLong(uint_at(b, t, i));
    PyObject *exp = ts ? PyLong_FromUnsignedLongLong(expiry) : NULL;
    PyObject *value = exp ? PyBytes_FromStringAndSize((const char *)b + data, end - data) : NULL;
    if (value == NULL) {
        Py_XDECREF(ts);
        Py_XDECREF(exp);
        return NULL;
    }
    PyObject *out = PyTuple_New(3);
    if (out == NULL) {
        Py_DECREF(ts);
        Py_DECREF(exp);
        Py_DECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, ts);
    PyTuple_SET_ITEM(out, 1, exp);
    PyTuple_SET_ITEM(out, 2, value);
    return out;
other:
    Py_INCREF(not_plain);
    return not_plain;
}

static PyMethodDef methods[] = {
    {"plain_value", (PyCFunction)(void (*)(void))plain_value, METH_FASTCALL,
     "(ts, expiry, data) of a plain write's object, None if deleted or expired, else "
     "not_plain."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_plainvalue", NULL, -1, methods};

PyMODINIT_FUNC PyInit__plainvalue(void) { return PyModule_Create(&module); }
