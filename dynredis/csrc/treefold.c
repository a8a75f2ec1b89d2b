/* dynredis._treefold: a keyed hash tree's fold of written keys, in C.
 *
 * The same work as MerkleTree.fold's pure-Python loop (core/merkle.py), which stays the
 * reference and the fallback: for each (key, fingerprint) written since the last fold,
 * the entry digest XXH3-128(key || fingerprint, seed len(key)) as an int, the key's
 * bucket crc32(key) % segments, the bucket's exact sum adjusted by the change, and the
 * bucket marked dirty; a None fingerprint removes the key. Every write of every replica
 * pays this; in Python it was two calls into C libraries with their argument parsing
 * and a 128-bit int built from pieces (about 3,300 instructions a key).
 *
 * The entries are a list of dicts, bucket b's keys in dict b % len(list) (MerkleTree's
 * shards: a map of millions of keys rehashes them all at once as it grows).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include "xxhash/xxhash.h"

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* zlib.crc32 (CRC-32/ISO-HDLC), from 0. */
static uint32_t crc32_of(const unsigned char *p, Py_ssize_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* xxhash.xxh3_128_intdigest(key + fp, len(key)) */
static PyObject *entry_digest(const char *key, Py_ssize_t klen, const char *fp,
                              Py_ssize_t flen) {
    char stack[512];
    char *buf = stack;
    Py_ssize_t n = klen + flen;
    if (n > (Py_ssize_t)sizeof(stack)) {
        buf = PyMem_Malloc(n);
        if (buf == NULL)
            return PyErr_NoMemory();
    }
    memcpy(buf, key, klen);
    memcpy(buf + klen, fp, flen);
    XXH128_hash_t h = XXH3_128bits_withSeed(buf, (size_t)n, (XXH64_hash_t)klen);
    if (buf != stack)
        PyMem_Free(buf);
    unsigned char le[16];
    for (int i = 0; i < 8; i++) {
        le[i] = (unsigned char)(h.low64 >> (8 * i));
        le[8 + i] = (unsigned char)(h.high64 >> (8 * i));
    }
    return _PyLong_FromByteArray(le, 16, 1, 0);
}

/* sums[b] += delta (sign -1: -= delta); dirty.add(b) */
static int adjust(PyObject *sums, PyObject *dirty, Py_ssize_t b, PyObject *delta,
                  int sign) {
    PyObject *old = PyList_GET_ITEM(sums, b);
    PyObject *now = sign > 0 ? PyNumber_Add(old, delta) : PyNumber_Subtract(old, delta);
    if (now == NULL)
        return -1;
    PyList_SET_ITEM(sums, b, now);
    Py_DECREF(old);
    PyObject *bi = PyLong_FromSsize_t(b);
    if (bi == NULL)
        return -1;
    int r = PySet_Add(dirty, bi);
    Py_DECREF(bi);
    return r;
}

static int all_dicts(PyObject *list) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++)
        if (!PyDict_CheckExact(PyList_GET_ITEM(list, i)))
            return 0;
    return 1;
}

static PyObject *fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fold(entries, sums, dirty, segments, keys)");
        return NULL;
    }
    PyObject *shards = args[0], *sums = args[1], *dirty = args[2], *keys = args[4];
    if (!PyList_CheckExact(shards) || !PyList_CheckExact(sums) ||
        !PySet_Check(dirty) || !PyDict_CheckExact(keys)) {
        PyErr_SetString(PyExc_TypeError,
                        "fold: entries list of dicts, sums list, dirty set, keys dict");
        return NULL;
    }
    Py_ssize_t nshards = PyList_GET_SIZE(shards);
    if (nshards == 0 || !all_dicts(shards)) {
        PyErr_SetString(PyExc_TypeError, "fold: entries is a non-empty list of dicts");
        return NULL;
    }
    Py_ssize_t segments = PyLong_AsSsize_t(args[3]);
    if (segments == -1 && PyErr_Occurred())
        return NULL;
    if (segments <= 0 || PyList_GET_SIZE(sums) != segments) {
        PyErr_SetString(PyExc_ValueError, "fold: sums must hold one sum per segment");
        return NULL;
    }
    int changed = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *fp;
    while (PyDict_Next(keys, &pos, &key, &fp)) {
        if (!PyBytes_CheckExact(key) || (fp != Py_None && !PyBytes_CheckExact(fp))) {
            PyErr_SetString(PyExc_TypeError, "fold: keys are bytes, fingerprints bytes or None");
            return NULL;
        }
        const char *k = PyBytes_AS_STRING(key);
        Py_ssize_t klen = PyBytes_GET_SIZE(key);
        Py_ssize_t b = (Py_ssize_t)(crc32_of((const unsigned char *)k, klen) % (uint64_t)segments);
        PyObject *entries = PyList_GET_ITEM(shards, b % nshards);
        PyObject *old = PyDict_GetItemWithError(entries, key); /* borrowed */
        if (old == NULL && PyErr_Occurred())
            return NULL;
        if (fp == Py_None) {
            if (old == NULL)
                continue;
            Py_INCREF(old);
            int bad = PyDict_DelItem(entries, key) < 0 || adjust(sums, dirty, b, old, -1) < 0;
            Py_DECREF(old);
            if (bad)
                return NULL;
            changed = 1;
            continue;
        }
        PyObject *digest = entry_digest(k, klen, PyBytes_AS_STRING(fp), PyBytes_GET_SIZE(fp));
        if (digest == NULL)
            return NULL;
        PyObject *delta;
        if (old == NULL) {
            delta = digest;
            Py_INCREF(delta);
            changed = 1;
        } else {
            int same = PyObject_RichCompareBool(old, digest, Py_EQ);
            if (same != 0) {
                Py_DECREF(digest);
                if (same < 0)
                    return NULL;
                continue;
            }
            delta = PyNumber_Subtract(digest, old);
            if (delta == NULL) {
                Py_DECREF(digest);
                return NULL;
            }
        }
        int bad = PyDict_SetItem(entries, key, digest) < 0 || adjust(sums, dirty, b, delta, 1) < 0;
        Py_DECREF(digest);
        Py_DECREF(delta);
        if (bad)
            return NULL;
    }
    return PyBool_FromLong(changed);
}

static PyObject *digest(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "keyed_digest(key: bytes, value: bytes)");
        return NULL;
    }
    return entry_digest(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                        PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]));
}

static PyObject *bucket(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "crc32(key: bytes)");
        return NULL;
    }
    return PyLong_FromUnsignedLong(
        crc32_of((const unsigned char *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0])));
}

/* index(entries, segments) -> {bucket: [keys]}: MerkleTree._bucket_index's build, one C
   loop (a million keys: ~120 ms in compiled Python, the first exchange of a partition
   holding a big collection's records). `entries`: the tree's list of dicts, walked in
   order. */
static PyObject *index_of(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !all_dicts(args[0])) {
        PyErr_SetString(PyExc_TypeError, "index(entries: list[dict], segments: int)");
        return NULL;
    }
    PyObject *shards = args[0];
    Py_ssize_t segments = PyLong_AsSsize_t(args[1]);
    if (segments == -1 && PyErr_Occurred())
        return NULL;
    if (segments <= 0) {
        PyErr_SetString(PyExc_ValueError, "index: segments must be positive");
        return NULL;
    }
    PyObject **lists = PyMem_Calloc((size_t)segments, sizeof(PyObject *));
    if (lists == NULL)
        return PyErr_NoMemory();
    PyObject *out = NULL;
    PyObject *key, *value;
    for (Py_ssize_t s = 0; s < PyList_GET_SIZE(shards); s++) {
        PyObject *entries = PyList_GET_ITEM(shards, s);
        Py_ssize_t pos = 0;
        while (PyDict_Next(entries, &pos, &key, &value)) {
            if (!PyBytes_CheckExact(key)) {
                PyErr_SetString(PyExc_TypeError, "index: keys are bytes");
                goto done;
            }
            Py_ssize_t b = (Py_ssize_t)(crc32_of((const unsigned char *)PyBytes_AS_STRING(key),
                                                 PyBytes_GET_SIZE(key)) % (uint64_t)segments);
            if (lists[b] == NULL && (lists[b] = PyList_New(0)) == NULL)
                goto done;
            if (PyList_Append(lists[b], key) < 0)
                goto done;
        }
    }
    out = PyDict_New();
    if (out == NULL)
        goto done;
    for (Py_ssize_t b = 0; b < segments; b++) {
        if (lists[b] == NULL)
            continue;
        PyObject *k = PyLong_FromSsize_t(b);
        if (k == NULL || PyDict_SetItem(out, k, lists[b]) < 0) {
            Py_XDECREF(k);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(k);
    }
done:
    for (Py_ssize_t b = 0; b < segments; b++)
        Py_XDECREF(lists[b]);
    PyMem_Free(lists);
    return out;
}

static PyMethodDef methods[] = {
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL,
     "fold(entries, sums, dirty, segments, keys) -> True if keys came or went"},
    {"keyed_digest", (PyCFunction)(void (*)(void))digest, METH_FASTCALL,
     "xxh3_128_intdigest(key + value, len(key))"},
    {"crc32", (PyCFunction)(void (*)(void))bucket, METH_FASTCALL, "zlib.crc32(key)"},
    {"index", (PyCFunction)(void (*)(void))index_of, METH_FASTCALL,
     "index(entries, segments) -> {bucket: [keys]}"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_treefold", NULL, -1, methods};

PyMODINIT_FUNC PyInit__treefold(void) {
    crc_init();
    return PyModule_Create(&module);
}
