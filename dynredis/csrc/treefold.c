/* dynredis._treefold: a keyed hash tree's fold of written keys, in C.
 *
 * The same work as MerkleTree.fold's pure-Python loop (core/merkle.py), which stays the
 * reference and the fallback: for each (key, fingerprint) written since the last fold,
 * the entry digest XXH3-128(key || fingerprint, seed len(key)) as an int,
 * the key's bucket crc32(key) % segments, the bucket's sum mod 2**128 adjusted in place
 * by the change, and the bucket marked dirty (its byte in a bytearray set to 1); a None
 * fingerprint removes the key. Every write of every replica pays this.
 *
 * The sums are fixed-width, as an exchange sends them: one bytearray of 16 big-endian
 * bytes per bucket, added to with two 64-bit words and a carry. As exact Python ints
 * every write made a difference and a new sum as ints, and a dirty set's insert an int
 * of the bucket's index.
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

/* xxhash.xxh3_128_digest(key + fp, len(key)) into out: the digest big-endian, as an
   exchange sends it. -1 (MemoryError set) if a long input's buffer could not be had. */
static int entry_digest(const char *key, Py_ssize_t klen, const char *fp, Py_ssize_t flen,
                        unsigned char out[16]) {
    char stack[512];
    char *buf = stack;
    Py_ssize_t n = klen + flen;
    if (n > (Py_ssize_t)sizeof(stack)) {
        buf = PyMem_Malloc(n);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    memcpy(buf, key, klen);
    memcpy(buf + klen, fp, flen);
    XXH128_hash_t h = XXH3_128bits_withSeed(buf, (size_t)n, (XXH64_hash_t)klen);
    if (buf != stack)
        PyMem_Free(buf);
    XXH128_canonicalFromHash((XXH128_canonical_t *)out, h);
    return 0;
}

/* 64 bits big-endian at p (a byte swap on a little-endian host, not a loop of shifts) */
static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void store64(unsigned char *p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

/* The 16-byte big-endian sum at `sum` (mod 2**128): plus `add` unless NULL, minus `sub`
   unless NULL (each a 16-byte big-endian digest). */
static inline void adjust_sum(unsigned char *sum, const unsigned char *add, const unsigned char *sub) {
    uint64_t hi = load64(sum), lo = load64(sum + 8);
    if (add != NULL) {
        uint64_t a = load64(add + 8);
        uint64_t l = lo + a;
        hi += load64(add) + (l < lo);
        lo = l;
    }
    if (sub != NULL) {
        uint64_t s = load64(sub + 8);
        hi -= load64(sub) + (lo < s);
        lo -= s;
    }
    store64(sum, hi);
    store64(sum + 8, lo);
}

static int all_dicts(PyObject *list) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++)
        if (!PyDict_CheckExact(PyList_GET_ITEM(list, i)))
            return 0;
    return 1;
}

/* Entry digests are ints (48 bytes each; 16 bytes as a bytes object take 64), made
   from and read into 16 big-endian bytes. On CPython 3.11, whose ints are 30-bit digits
   after a size, directly: _PyLong_FromByteArray's general loop cost as much again as
   the rest of a key's fold. Elsewhere through the general calls. */
#if PY_VERSION_HEX < 0x030C0000 && PYLONG_BITS_IN_DIGIT == 30
#define DIGITS_30 1
#define D30 ((uint64_t)0x3FFFFFFF)
#endif

/* the int below 2**128 whose big-endian bytes are d */
static PyObject *int_of(const unsigned char d[16]) {
    uint64_t hi = load64(d), lo = load64(d + 8);
    if (hi == 0)
        return PyLong_FromUnsignedLongLong(lo);
#ifdef DIGITS_30
    digit ds[5] = {(digit)(lo & D30), (digit)((lo >> 30) & D30),
                   (digit)(((lo >> 60) | (hi << 4)) & D30), (digit)((hi >> 26) & D30),
                   (digit)(hi >> 56)};
    Py_ssize_t n = ds[4] ? 5 : ds[3] ? 4 : 3; /* (hi != 0: at least 61 bits) */
    PyLongObject *v = _PyLong_New(n);
    if (v == NULL)
        return NULL;
    memcpy(v->ob_digit, ds, (size_t)n * sizeof(digit));
    return (PyObject *)v;
#else
    return _PyLong_FromByteArray(d, 16, 0, 0);
#endif
}

/* v, an int in [0, 2**128), as 16 big-endian bytes; -1 (TypeError) if it is not one */
static int bytes_of(PyObject *v, unsigned char out[16]) {
    if (!PyLong_CheckExact(v))
        goto bad;
#ifdef DIGITS_30
    Py_ssize_t n = Py_SIZE(v);
    if (n < 0 || n > 5)
        goto bad;
    uint64_t ds[5] = {0, 0, 0, 0, 0};
    for (Py_ssize_t i = 0; i < n; i++)
        ds[i] = ((PyLongObject *)v)->ob_digit[i];
    if (ds[4] >> 8)
        goto bad;
    store64(out, (ds[2] >> 4) | (ds[3] << 26) | (ds[4] << 56));
    store64(out + 8, ds[0] | (ds[1] << 30) | (ds[2] << 60));
    return 0;
#else
    if (_PyLong_Sign(v) < 0)
        goto bad;
#if PY_VERSION_HEX >= 0x030D0000
    if (_PyLong_AsByteArray((PyLongObject *)v, out, 16, 0, 0, 1) < 0)
#else
    if (_PyLong_AsByteArray((PyLongObject *)v, out, 16, 0, 0) < 0)
#endif
    {
        PyErr_Clear();
        goto bad;
    }
    return 0;
#endif
bad:
    PyErr_SetString(PyExc_TypeError, "fold: entry digests are ints in [0, 2**128)");
    return -1;
}

static PyObject *fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fold(entries, sums, dirty, segments, keys)");
        return NULL;
    }
    PyObject *shards = args[0], *sums = args[1], *dirty = args[2], *keys = args[4];
    if (!PyList_CheckExact(shards) || !PyByteArray_CheckExact(sums) ||
        !PyByteArray_CheckExact(dirty) || !PyDict_CheckExact(keys)) {
        PyErr_SetString(PyExc_TypeError,
                        "fold: entries list of dicts, sums and dirty bytearrays, keys dict");
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
    if (segments <= 0 || PyByteArray_GET_SIZE(sums) != 16 * segments ||
        PyByteArray_GET_SIZE(dirty) != segments) {
        PyErr_SetString(PyExc_ValueError,
                        "fold: sums hold 16 bytes per segment, dirty a byte per segment");
        return NULL;
    }
    int changed = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *fp;
    unsigned char d[16];
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
        unsigned char was[16];
        if (old != NULL && bytes_of(old, was) < 0)
            return NULL;
        /* (the buffers are read after the dict calls: nothing they run resizes them) */
        if (fp == Py_None) {
            if (old == NULL)
                continue;
            if (PyDict_DelItem(entries, key) < 0)
                return NULL;
            adjust_sum((unsigned char *)PyByteArray_AS_STRING(sums) + 16 * b, NULL, was);
            PyByteArray_AS_STRING(dirty)[b] = 1;
            changed = 1;
            continue;
        }
        if (entry_digest(k, klen, PyBytes_AS_STRING(fp), PyBytes_GET_SIZE(fp), d) < 0)
            return NULL;
        if (old != NULL) {
            if (memcmp(was, d, 16) == 0)
                continue;
        } else {
            changed = 1;
        }
        PyObject *digest = int_of(d);
        if (digest == NULL)
            return NULL;
        int bad = PyDict_SetItem(entries, key, digest);
        Py_DECREF(digest);
        if (bad < 0)
            return NULL;
        adjust_sum((unsigned char *)PyByteArray_AS_STRING(sums) + 16 * b, d,
                   old != NULL ? was : NULL);
        PyByteArray_AS_STRING(dirty)[b] = 1;
    }
    return PyBool_FromLong(changed);
}

static PyObject *digest(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "keyed_digest(key: bytes, value: bytes)");
        return NULL;
    }
    unsigned char d[16];
    if (entry_digest(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                     PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]), d) < 0)
        return NULL;
    return int_of(d);
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
