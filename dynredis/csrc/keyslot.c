/* dynredis._keyslot: Redis Cluster's hash slot of a key, in C.
 *
 * What core/keyslot.py's key_slot computes (it stays the fallback and the reference the
 * tests hold this to): CRC16-XMODEM of the key, or of its first non-empty {hash tag},
 * modulo 16384, as Redis' keyHashSlot. Every request's key goes through it (its
 * partition); in compiled Python it was a test for '{', binascii.crc_hqx's call with
 * its argument parsing and buffer, and an int made: about 700 instructions a key.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint16_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int k = 0; k < 8; k++)
            c = (c & 0x8000) ? (uint16_t)((c << 1) ^ 0x1021) : (uint16_t)(c << 1);
        crc_table[i] = c;
    }
}

static uint16_t crc16(const unsigned char *p, Py_ssize_t n) {
    uint16_t c = 0;
    while (n--)
        c = (uint16_t)((c << 8) ^ crc_table[((c >> 8) ^ *p++) & 0xFF]);
    return c;
}

/* Redis' keyHashSlot: the first '{', then the first '}' after it; a non-empty section
 * between them is hashed, else the whole key. */
static long slot_of(const unsigned char *k, Py_ssize_t n) {
    const unsigned char *open = n > 0 ? memchr(k, '{', (size_t)n) : NULL;
    Py_ssize_t s = open ? open - k : n;
    if (s < n) {
        Py_ssize_t e = s + 1;
        while (e < n && k[e] != '}')
            e++;
        if (e < n && e > s + 1)
            return crc16(k + s + 1, e - s - 1) & 0x3FFF;
    }
    return crc16(k, n) & 0x3FFF;
}

/* slot(key: bytes-like) -> int */
static PyObject *slot(PyObject *self, PyObject *key) {
    if (PyBytes_CheckExact(key))
        return PyLong_FromLong(
            slot_of((const unsigned char *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)));
    Py_buffer view;
    if (PyObject_GetBuffer(key, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    long s = slot_of((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromLong(s);
}

/* partition(key: bytes, shift: int) -> int: slot(key) >> shift, a ring's partition
 * (core/ring.py's partition_of). Under 256 partitions the answer is one of Python's
 * shared small ints: a slot (up to 16383) was an int allocated and freed per request. */
static PyObject *partition(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "partition(key: bytes, shift: int)");
        return NULL;
    }
    long shift = PyLong_AsLong(args[1]);
    if (shift == -1 && PyErr_Occurred())
        return NULL;
    if (shift < 0 || shift > 14) {
        PyErr_SetString(PyExc_ValueError, "partition: shift must be 0..14");
        return NULL;
    }
    PyObject *key = args[0];
    long s = slot_of((const unsigned char *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
    return PyLong_FromLong(s >> shift);
}

static PyMethodDef methods[] = {
    {"slot", slot, METH_O, "Redis Cluster's hash slot of a key (hash tags honoured)."},
    {"partition", (PyCFunction)(void (*)(void))partition, METH_FASTCALL,
     "slot(key) >> shift: the ring partition of a key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_keyslot", NULL, -1, methods};

PyMODINIT_FUNC PyInit__keyslot(void) {
    crc_init();
    return PyModule_Create(&module);
}
