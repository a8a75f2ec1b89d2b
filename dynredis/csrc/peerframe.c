/* dynredis._peerframe: the msgpack of peer frames (server/wire.py), in C.
 *
 * `decode(body)` is msgpack.unpackb(body, use_list=False) and `encode(obj)` is
 * msgspec's msgpack encoding, for what peer messages hold: None, bools, ints of 64 bits,
 * floats, str, bytes, tuples and lists, dicts. Either answers None for anything else
 * (an ext type, a map key other than str or bytes, input that is not exactly one
 * msgpack object, a type it does not know, nesting past MAX_DEPTH): wire.py then asks
 * msgpack or msgspec, whose answer (or error) stands. Those libraries stay the
 * reference and the fallback. Through them every frame paid their set-up (keyword
 * arguments, buffer, unpacker) besides its messages; here short strings (message kinds,
 * node names) are also decoded once and kept (`strs`), not made anew in every message:
 * about 500 instructions less a frame (bench/callgrind.py --engine lmdb --pipeline 1
 * --server: SET 88,288 -> 86,313, GET 38,396 -> 36,430, eight frames a request).
 * `plain_value(b, now_ms, not_plain)` reads a plain GET's value from its stored object's
 * bytes (core/obj.py's plain_value).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 32
#define STR_KEEP 32 /* str of up to this many bytes are kept in `strs` */
#define STR_BITS 9
#define STR_SLOTS (1 << STR_BITS)

static PyObject *strs[STR_SLOTS]; /* recent short str, by a hash of their bytes */

/* ------------------------------------------------------------------ decode */

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    int unhandled; /* set with a NULL return when msgpack must decide */
} Reader;

static PyObject *unhandled(Reader *r) {
    r->unhandled = 1;
    return NULL;
}

static int need(Reader *r, Py_ssize_t n) { return r->end - r->p >= n; }

static uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

#define INLINE static inline __attribute__((always_inline))

/* The slot of a short str's bytes: from its first and last 8 (or 4) bytes and its
 * length, a few instructions where a byte-at-a-time hash took 4 a byte. Strings that
 * share them only take each other's slot (the bytes are compared before a reuse). */
INLINE PyObject **str_slot(const char *s, Py_ssize_t n) {
    uint64_t a, b;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        a = x;
        b = y;
    } else {
        a = n ? (unsigned char)s[0] | (unsigned char)s[n / 2] << 8 | (unsigned char)s[n - 1] << 16
              : 0;
        b = 0;
    }
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)n;
    h *= 0x94D049BB133111EBull;
    return &strs[h >> (64 - STR_BITS)];
}

static PyObject *short_str(Reader *r, const char *s, Py_ssize_t n) {
    PyObject **slot = str_slot(s, n);
    PyObject *kept = *slot;
    if (kept != NULL && PyUnicode_GET_LENGTH(kept) == n
            && memcmp(PyUnicode_DATA(kept), s, n) == 0) {
        Py_INCREF(kept);
        return kept;
    }
    PyObject *str = PyUnicode_DecodeUTF8(s, n, NULL);
    if (str == NULL) {
        PyErr_Clear();
        return unhandled(r);
    }
    if (PyUnicode_IS_COMPACT_ASCII(str)) { /* (only these are kept) */
        Py_XSETREF(*slot, str);
        Py_INCREF(str);
    }
    return str;
}

static PyObject *read_str(Reader *r, Py_ssize_t n) {
    if (!need(r, n))
        return unhandled(r);
    const char *s = (const char *)r->p;
    r->p += n;
    if (n <= STR_KEEP)
        return short_str(r, s, n);
    PyObject *str = PyUnicode_DecodeUTF8(s, n, NULL);
    if (str == NULL) {
        PyErr_Clear();
        return unhandled(r);
    }
    return str;
}

static PyObject *read_bin(Reader *r, Py_ssize_t n) {
    if (!need(r, n))
        return unhandled(r);
    PyObject *b = PyBytes_FromStringAndSize((const char *)r->p, n);
    r->p += n;
    return b;
}

static PyObject *read_array(Reader *r, Py_ssize_t n, int depth);
static PyObject *read_map(Reader *r, Py_ssize_t n, int depth);

static PyObject *read_other(Reader *r, int depth);

/* The items most messages hold (a small int, a short str, a short bin, None, a uint32
 * or uint64) read inline, in their tuple's loop; the rest in read_other. */
INLINE PyObject *read_obj(Reader *r, int depth) {
    const unsigned char *p = r->p;
    if (p < r->end) {
        unsigned char b = *p;
        if (b <= 0x7f) {
            r->p = p + 1;
            return PyLong_FromLong(b);
        }
        if (b >= 0xa0 && b <= 0xbf) {
            r->p = p + 1;
            return read_str(r, b & 0x1f);
        }
        if (b == 0xc4 && p + 1 < r->end) {
            r->p = p + 2;
            return read_bin(r, p[1]);
        }
        if (b == 0xc0) {
            r->p = p + 1;
            Py_RETURN_NONE;
        }
        if (b == 0xce && r->end - p >= 5) {
            r->p = p + 5;
            return PyLong_FromUnsignedLong((unsigned long)p[1] << 24 | (unsigned long)p[2] << 16
                                           | (unsigned long)p[3] << 8 | p[4]);
        }
        if (b == 0xcf && r->end - p >= 9) {
            /* A request id (40 bits from a random start: core/node.py), in every put,
             * get, acknowledgement and answer: one load, not read_other's byte loop. */
            uint64_t v = (uint64_t)p[1] << 56 | (uint64_t)p[2] << 48 | (uint64_t)p[3] << 40
                         | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 24 | (uint64_t)p[6] << 16
                         | (uint64_t)p[7] << 8 | p[8];
            r->p = p + 9;
            return PyLong_FromUnsignedLongLong(v);
        }
    }
    return read_other(r, depth);
}

static PyObject *read_array(Reader *r, Py_ssize_t n, int depth) {
    if (n > r->end - r->p) /* every item takes a byte at least */
        return unhandled(r);
    if (depth >= MAX_DEPTH)
        return unhandled(r);
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = read_obj(r, depth + 1);
        if (item == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, item);
    }
    return t;
}

static PyObject *read_map(Reader *r, Py_ssize_t n, int depth) {
    if (n > (r->end - r->p) / 2 || depth >= MAX_DEPTH)
        return unhandled(r);
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = read_obj(r, depth + 1);
        if (k == NULL) {
            Py_DECREF(d);
            return NULL;
        }
        if (!PyUnicode_CheckExact(k) && !PyBytes_CheckExact(k)) {
            Py_DECREF(k);
            Py_DECREF(d);
            return unhandled(r); /* msgpack's strict_map_key refuses it */
        }
        PyObject *v = read_obj(r, depth + 1);
        if (v == NULL || PyDict_SetItem(d, k, v) < 0) {
            Py_DECREF(k);
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return d;
}

static PyObject *read_other(Reader *r, int depth) {
    if (!need(r, 1))
        return unhandled(r);
    unsigned char b = *r->p++;
    if (b <= 0x7f)
        return PyLong_FromLong(b);
    if (b >= 0xe0)
        return PyLong_FromLong((signed char)b);
    if (b <= 0x8f)
        return read_map(r, b & 0x0f, depth);
    if (b <= 0x9f)
        return read_array(r, b & 0x0f, depth);
    if (b <= 0xbf)
        return read_str(r, b & 0x1f);
    static const int widths[] = {
        /* c4 bin8 */ 1, 2, 4, /* c7 ext */ -1, -1, -1, /* ca float32 */ 4, 8,
        /* cc uint */ 1, 2, 4, 8, /* d0 int */ 1, 2, 4, 8, /* d4 fixext */ -1, -1, -1, -1, -1,
        /* d9 str */ 1, 2, 4, /* dc array */ 2, 4, /* de map */ 2, 4};
    switch (b) {
    case 0xc0:
        Py_RETURN_NONE;
    case 0xc2:
        Py_RETURN_FALSE;
    case 0xc3:
        Py_RETURN_TRUE;
    case 0xc1:
        return unhandled(r);
    default:
        break;
    }
    int w = widths[b - 0xc4];
    if (w < 0 || !need(r, w))
        return unhandled(r);
    uint64_t v = be(r->p, w);
    r->p += w;
    switch (b) {
    case 0xc4: case 0xc5: case 0xc6:
        return read_bin(r, (Py_ssize_t)v);
    case 0xca: {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, 4);
        return PyFloat_FromDouble(f);
    }
    case 0xcb: {
        double d;
        memcpy(&d, &v, 8);
        return PyFloat_FromDouble(d);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        return PyLong_FromUnsignedLongLong(v);
    case 0xd0:
        return PyLong_FromLong((int8_t)v);
    case 0xd1:
        return PyLong_FromLong((int16_t)v);
    case 0xd2:
        return PyLong_FromLong((int32_t)v);
    case 0xd3:
        return PyLong_FromLongLong((int64_t)v);
    case 0xd9: case 0xda: case 0xdb:
        return read_str(r, (Py_ssize_t)v);
    case 0xdc: case 0xdd:
        return read_array(r, (Py_ssize_t)v, depth);
    default: /* 0xde, 0xdf */
        return read_map(r, (Py_ssize_t)v, depth);
    }
}

static PyObject *decode(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Reader r = {(const unsigned char *)view.buf, (const unsigned char *)view.buf + view.len, 0};
    PyObject *out = read_obj(&r, 0);
    if (out != NULL && r.p != r.end) { /* extra data: msgpack's error */
        Py_DECREF(out);
        out = NULL;
        r.unhandled = 1;
    }
    PyBuffer_Release(&view);
    if (out == NULL && r.unhandled && !PyErr_Occurred())
        Py_RETURN_NONE;
    return out;
}

/* ------------------------------------------------------------------ plain_value */

/* What core/obj.py's plain_value reads (plain_value_in_python stays the fallback and
 * the reference the tests hold this to): the object every plain write makes, msgpack
 * [[[actor, counter, [[ts, expiry, data]]]], []], gives (ts, expiry, data), None for a
 * tombstone or an expired value, and the caller's `not_plain` for any other object
 * (the caller decodes it). Every GET of a string runs it; compiled Python walked the
 * bytes with a call per field, about 1,250 instructions a read, ~600 here with the
 * objects it makes. */

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
    return b[i] < 0x80 ? b[i] : be(b + i + 1, (int)(j - i - 1));
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
        len = (Py_ssize_t)be(b + i + 1, 2);
    } else if (c == 0xC6 && i + 5 <= n) {
        start = i + 5;
        len = (Py_ssize_t)be(b + i + 1, 4);
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

/* ------------------------------------------------------------------ encode */

/* The output is written into `scratch`, kept from call to call (up to SCRATCH_KEEP
 * bytes), and copied once into the bytes returned: no buffer made, grown and shrunk per
 * frame (msgspec's starts at 512 bytes and is resized at the end of every encode). The
 * GIL is held throughout and nothing here runs Python code, so one buffer serves. Each
 * item reserves its room once (its head and payload), then writes with plain stores:
 * about 40 instructions an item, where calls per head byte took three times that. */
#define SCRATCH_KEEP (1 << 20)

static unsigned char *scratch;
static Py_ssize_t scratch_cap;

typedef struct {
    Py_ssize_t len;
    Py_ssize_t most; /* past this many bytes: not handled here (1; the values' payloads
                      * are checked before they are copied, the whole at the end) */
} Writer;

/* Room for `n` more bytes at OUT(w): 0, or -1 out of memory. */
static int grow(Writer *w, Py_ssize_t n) {
    Py_ssize_t cap = scratch_cap * 2;
    if (cap < w->len + n)
        cap = w->len + n;
    if (cap < 4096)
        cap = 4096;
    unsigned char *grown = PyMem_Realloc(scratch, (size_t)cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    scratch = grown;
    scratch_cap = cap;
    return 0;
}

#define RESERVE(w, n)                                                                  \
    do {                                                                               \
        Py_ssize_t need_ = (n);                                                        \
        if ((w)->len + need_ > scratch_cap) {                                          \
            int rc_ = grow((w), need_);                                                \
            if (rc_ != 0)                                                              \
                return rc_;                                                            \
        }                                                                              \
    } while (0)

static void scratch_done(void) {
    if (scratch_cap > SCRATCH_KEEP) {
        PyMem_Free(scratch);
        scratch = NULL;
        scratch_cap = 0;
    }
}

#define OUT(w) (scratch + (w)->len)

static inline unsigned char *be16(unsigned char *o, uint64_t v) {
    o[0] = (unsigned char)(v >> 8);
    o[1] = (unsigned char)v;
    return o + 2;
}

static inline unsigned char *be32(unsigned char *o, uint64_t v) {
    o[0] = (unsigned char)(v >> 24);
    o[1] = (unsigned char)(v >> 16);
    o[2] = (unsigned char)(v >> 8);
    o[3] = (unsigned char)v;
    return o + 4;
}

static inline unsigned char *be64(unsigned char *o, uint64_t v) {
    return be32(be32(o, v >> 32), v & 0xffffffffu);
}

/* A length's head at `o`: the fix form (n <= fixmax; fixmax < 0: none), else 8 (c8 0:
 * none), 16 or 32 bits; NULL past 32 bits. Where the payload goes. */
static inline unsigned char *len_head(unsigned char *o, Py_ssize_t n, unsigned char fix,
                                      int fixmax, unsigned char c8, unsigned char c16,
                                      unsigned char c32) {
    if (n <= fixmax) {
        *o = fix | (unsigned char)n;
        return o + 1;
    }
    if (c8 && n < 256) {
        o[0] = c8;
        o[1] = (unsigned char)n;
        return o + 2;
    }
    if (n < 65536) {
        *o = c16;
        return be16(o + 1, (uint64_t)n);
    }
    if ((uint64_t)n <= 0xffffffffu) {
        *o = c32;
        return be32(o + 1, (uint64_t)n);
    }
    return NULL;
}

/* A head and payload of `n` bytes (bin or str). */
INLINE int put_sized(Writer *w, const char *s, Py_ssize_t n, unsigned char fix, int fixmax,
                     unsigned char c8, unsigned char c16, unsigned char c32) {
    if (w->len + n > w->most)
        return 1; /* (not copied: the whole is past `most`) */
    RESERVE(w, 5 + n);
    unsigned char *o = len_head(OUT(w), n, fix, fixmax, c8, c16, c32);
    if (o == NULL)
        return 1;
    memcpy(o, s, (size_t)n);
    w->len = o + n - scratch;
    return 0;
}

/* An int in its smallest msgpack form (msgspec's choice). */
INLINE int put_int(Writer *w, long long x) {
    RESERVE(w, 9);
    unsigned char *o = OUT(w);
    if (x >= 0) {
        if (x < 128) {
            *o++ = (unsigned char)x;
        } else if (x < 256) {
            o[0] = 0xcc;
            o[1] = (unsigned char)x;
            o += 2;
        } else if (x < 65536) {
            *o = 0xcd;
            o = be16(o + 1, (uint64_t)x);
        } else if (x <= 0xffffffffLL) {
            *o = 0xce;
            o = be32(o + 1, (uint64_t)x);
        } else {
            *o = 0xcf;
            o = be64(o + 1, (uint64_t)x);
        }
    } else if (x >= -32) {
        *o++ = (unsigned char)(x & 0xff);
    } else if (x >= -128) {
        o[0] = 0xd0;
        o[1] = (unsigned char)(x & 0xff);
        o += 2;
    } else if (x >= -32768) {
        *o = 0xd1;
        o = be16(o + 1, (uint64_t)x & 0xffff);
    } else if (x >= -2147483648LL) {
        *o = 0xd2;
        o = be32(o + 1, (uint64_t)x & 0xffffffffu);
    } else {
        *o = 0xd3;
        o = be64(o + 1, (uint64_t)x);
    }
    w->len = o - scratch;
    return 0;
}

static int write_long(Writer *w, PyObject *obj) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        RESERVE(w, 9);
        unsigned char *o = OUT(w);
        *o = 0xcf;
        w->len = be64(o + 1, u) - scratch;
        return 0;
    }
    if (overflow < 0)
        return 1;
    if (x == -1 && PyErr_Occurred())
        return -1;
    return put_int(w, x);
}

/* The items most messages hold (bytes, str, a small int, None) written inline in their
 * tuple's loop; NOT_ATOM for anything else (write_obj). */
#define NOT_ATOM 2

INLINE int write_atom(Writer *w, PyObject *obj, PyTypeObject *t) {
    if (t == &PyBytes_Type)
        return put_sized(w, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj), 0, -1, 0xc4,
                         0xc5, 0xc6);
    if (t == &PyUnicode_Type && PyUnicode_IS_COMPACT_ASCII(obj))
        return put_sized(w, (const char *)PyUnicode_DATA(obj), PyUnicode_GET_LENGTH(obj),
                         0xa0, 31, 0xd9, 0xda, 0xdb);
#if PY_VERSION_HEX < 0x030C0000
    if (t == &PyLong_Type) {
        /* One digit (under 2**30) or none, as most ints here are: read as it is. */
        Py_ssize_t size = Py_SIZE(obj);
        if (size >= -1 && size <= 1) {
            long long d = size ? (long long)((PyLongObject *)obj)->ob_digit[0] : 0;
            return put_int(w, size < 0 ? -d : d);
        }
        return write_long(w, obj);
    }
#endif
    if (obj == Py_None) {
        RESERVE(w, 1);
        scratch[w->len++] = 0xc0;
        return 0;
    }
    return NOT_ATOM;
}

static int write_obj(Writer *w, PyObject *obj, int depth);

static int write_items(Writer *w, PyObject **items, Py_ssize_t n, int depth) {
    if (depth >= MAX_DEPTH)
        return 1;
    RESERVE(w, 5);
    unsigned char *o = len_head(OUT(w), n, 0x90, 15, 0, 0xdc, 0xdd);
    if (o == NULL)
        return 1;
    w->len = o - scratch;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        int rc = write_atom(w, item, Py_TYPE(item));
        if (rc == NOT_ATOM)
            rc = write_obj(w, item, depth + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int write_obj(Writer *w, PyObject *obj, int depth) {
    PyTypeObject *t = Py_TYPE(obj);
    int rc = write_atom(w, obj, t);
    if (rc != NOT_ATOM)
        return rc;
    if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
        if (s == NULL) {
            PyErr_Clear();
            return 1;
        }
        return put_sized(w, s, n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    }
    if (t == &PyLong_Type)
        return write_long(w, obj);
    if (t == &PyTuple_Type)
        return write_items(w, &PyTuple_GET_ITEM(obj, 0), PyTuple_GET_SIZE(obj), depth);
    if (t == &PyList_Type) {
        /* A list's items are read as they are: nothing here can change it meanwhile. */
        return write_items(w, PySequence_Fast_ITEMS(obj), PyList_GET_SIZE(obj), depth);
    }
    if (obj == Py_True || obj == Py_False) {
        RESERVE(w, 1);
        scratch[w->len++] = obj == Py_True ? 0xc3 : 0xc2;
        return 0;
    }
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(obj);
        uint64_t v;
        memcpy(&v, &d, 8);
        RESERVE(w, 9);
        unsigned char *o = OUT(w);
        *o = 0xcb;
        w->len = be64(o + 1, v) - scratch;
        return 0;
    }
    if (t == &PyDict_Type) {
        if (depth >= MAX_DEPTH)
            return 1;
        RESERVE(w, 5);
        unsigned char *o = len_head(OUT(w), PyDict_GET_SIZE(obj), 0x80, 15, 0, 0xde, 0xdf);
        if (o == NULL)
            return 1;
        w->len = o - scratch;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(obj, &pos, &k, &v)) {
            int rc = write_obj(w, k, depth + 1);
            if (rc == 0)
                rc = write_obj(w, v, depth + 1);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    return 1;
}

static PyObject *encode(PyObject *self, PyObject *obj) {
    Writer w = {0, PY_SSIZE_T_MAX};
    int rc = write_obj(&w, obj, 0);
    PyObject *out = NULL;
    if (rc == 0)
        out = PyBytes_FromStringAndSize((const char *)scratch, w.len);
    else if (rc > 0)
        out = Py_NewRef(Py_None);
    scratch_done();
    return out;
}

/* frame(msgs, most): the whole RESP frame of a batch, b"$<n>\r\n" + encode(msgs) +
 * b"\r\n", made at once when the body is under `most` bytes (wire.py's small frames);
 * None when it is not, or where msgspec must decide. */
static PyObject *frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "frame(msgs, most)");
        return NULL;
    }
    Py_ssize_t most = PyLong_AsSsize_t(args[1]);
    if (most == -1 && PyErr_Occurred())
        return NULL;
    Writer w = {0, most - 1};
    int rc = write_obj(&w, args[0], 0);
    if (rc == 0 && w.len > w.most)
        rc = 1;
    PyObject *out = NULL;
    if (rc == 0) {
        char digits[24];
        int d = 0;
        Py_ssize_t v = w.len;
        do {
            digits[d++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        out = PyBytes_FromStringAndSize(NULL, 1 + d + 2 + w.len + 2);
        if (out != NULL) {
            char *o = PyBytes_AS_STRING(out);
            *o++ = '$';
            while (d)
                *o++ = digits[--d];
            *o++ = '\r';
            *o++ = '\n';
            memcpy(o, scratch, (size_t)w.len);
            o[w.len] = '\r';
            o[w.len + 1] = '\n';
        }
    } else if (rc > 0) {
        out = Py_NewRef(Py_None);
    }
    scratch_done();
    return out;
}

/* ------------------------------------------------------------------ frames */

/* A peer link's input, read into frames: what hiredis' Reader and wire.unframe did for
 * PeerInbound (server/peers.py), in one call per read. `read(data)` answers the frames
 * complete so far, in order: a small frame's messages as decoded (a tuple), or its body
 * (bytes) where the codec leaves it to msgpack; a part of a bulk batch as hiredis gives
 * it, [more, bytes]. Peers send nothing else: anything else is a ValueError, as
 * hiredis' ProtocolError was. A read that holds whole frames is decoded where it lies;
 * only the unfinished end of it is kept for the next. */

#define FRAME_MOST ((Py_ssize_t)1 << 30) /* a length past this is no peer's frame */

typedef struct {
    PyObject_HEAD
    unsigned char *buf; /* the unfinished frame kept from earlier reads */
    Py_ssize_t len;
    Py_ssize_t cap;
} Frames;

static PyObject *decode_span(const unsigned char *p, Py_ssize_t n) {
    Reader r = {p, p + n, 0};
    PyObject *out = read_obj(&r, 0);
    if (out != NULL && r.p != r.end) {
        Py_DECREF(out);
        out = NULL;
        r.unhandled = 1;
    }
    if (out == NULL && r.unhandled && !PyErr_Occurred())
        return Py_NewRef(Py_None);
    return out;
}

/* The number of a RESP line at `*at` (after its type byte) up to its \r\n: 1 and `*at`
 * past it, 0 if the line is not all there yet, -1 if it is no number. */
static int line_number(const unsigned char **at, const unsigned char *end, long long *out) {
    const unsigned char *p = *at;
    int neg = 0;
    long long v = 0;
    int digits = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 18)
            return -1;
        v = v * 10 + (*p++ - '0');
    }
    if (p + 1 >= end)
        return 0;
    if (digits == 0 || p[0] != '\r' || p[1] != '\n')
        return -1;
    *at = p + 2;
    *out = neg ? -v : v;
    return 1;
}

/* A bulk string's length at `*at` ('$' expected there) and its bytes' start: 1, 0 if
 * not all there yet (the bytes and their \r\n), -1 if malformed. */
static int bulk(const unsigned char **at, const unsigned char *end, Py_ssize_t *n) {
    const unsigned char *p = *at;
    if (p >= end)
        return 0;
    if (*p != '$')
        return -1;
    p++;
    long long v;
    int rc = line_number(&p, end, &v);
    if (rc <= 0)
        return rc;
    if (v < 0 || v > FRAME_MOST)
        return -1;
    if (end - p < v + 2)
        return 0;
    if (p[v] != '\r' || p[v + 1] != '\n')
        return -1;
    *at = p;
    *n = (Py_ssize_t)v;
    return 1;
}

/* The frames complete in [p, end) appended to `out`; where the unfinished rest starts
 * (NULL on error, ValueError set for a protocol error). */
static const unsigned char *parse(const unsigned char *p, const unsigned char *end,
                                  PyObject *out) {
    while (p < end) {
        const unsigned char *at = p;
        Py_ssize_t n;
        PyObject *item;
        if (*at == '$') {
            int rc = bulk(&at, end, &n);
            if (rc == 0)
                break;
            if (rc < 0)
                goto bad;
            item = decode_span(at, n);
            if (item == Py_None || (item != NULL && !PyTuple_CheckExact(item))) {
                Py_DECREF(item); /* msgpack decides (wire.unframe) */
                item = PyBytes_FromStringAndSize((const char *)at, n);
            }
        } else if (*at == '*') {
            at++;
            long long count, more;
            int rc = line_number(&at, end, &count);
            if (rc == 0)
                break;
            if (rc < 0 || count != 2)
                goto bad;
            if (at >= end)
                break;
            if (*at != ':')
                goto bad;
            at++;
            rc = line_number(&at, end, &more);
            if (rc == 0)
                break;
            if (rc < 0)
                goto bad;
            rc = bulk(&at, end, &n);
            if (rc == 0)
                break;
            if (rc < 0)
                goto bad;
            item = Py_BuildValue("[Ly#]", more, (const char *)at, n);
        } else {
            goto bad;
        }
        if (item == NULL)
            return NULL;
        int failed = PyList_Append(out, item);
        Py_DECREF(item);
        if (failed)
            return NULL;
        p = at + n + 2;
    }
    return p;
bad:
    PyErr_SetString(PyExc_ValueError, "protocol error in a peer's frames");
    return NULL;
}

#define FRAMES_KEEP (1 << 20) /* an empty buffer bigger than this is let go */

static int keep(Frames *f, const unsigned char *p, Py_ssize_t n) {
    if (n == 0) {
        f->len = 0;
        if (f->cap > FRAMES_KEEP) {
            PyMem_Free(f->buf);
            f->buf = NULL;
            f->cap = 0;
        }
        return 0;
    }
    if (n > f->cap) {
        Py_ssize_t cap = f->cap * 2 > n ? f->cap * 2 : n;
        unsigned char *grown = PyMem_Realloc(f->buf, (size_t)cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        f->buf = grown;
        f->cap = cap;
    }
    memmove(f->buf, p, (size_t)n);
    f->len = n;
    return 0;
}

static PyObject *frames_read(Frames *f, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        goto done;
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len;
    if (f->len == 0) {
        /* Nothing kept: the read's frames are decoded where they lie, its rest kept. */
        const unsigned char *rest = parse(data, data + n, out);
        if (rest == NULL || keep(f, rest, data + n - rest) < 0)
            Py_CLEAR(out);
        goto done;
    }
    if (f->len + n > f->cap) {
        Py_ssize_t cap = f->cap * 2 > f->len + n ? f->cap * 2 : f->len + n;
        unsigned char *grown = PyMem_Realloc(f->buf, (size_t)cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            Py_CLEAR(out);
            goto done;
        }
        f->buf = grown;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += n;
    const unsigned char *rest = parse(f->buf, f->buf + f->len, out);
    if (rest == NULL || keep(f, rest, f->buf + f->len - rest) < 0)
        Py_CLEAR(out);
done:
    PyBuffer_Release(&view);
    return out;
}

static void frames_dealloc(Frames *f) {
    PyMem_Free(f->buf);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static PyMethodDef frames_methods[] = {
    {"read", (PyCFunction)frames_read, METH_O,
     "the frames complete so far: a tuple of messages, a body (bytes) for msgpack, or a "
     "part [more, bytes]"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FramesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dynredis._peerframe.Frames",
    .tp_basicsize = sizeof(Frames),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)frames_dealloc,
    .tp_methods = frames_methods,
    .tp_doc = "a peer link's input, read into frames (decoded where the codec can)",
};

static PyMethodDef methods[] = {
    {"decode", decode, METH_O,
     "msgpack.unpackb(body, use_list=False), or None where msgpack must decide"},
    {"encode", encode, METH_O,
     "msgspec's msgpack encoding of obj, or None where msgspec must decide"},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "the RESP frame of encode(msgs) if under `most` bytes, else None"},
    {"plain_value", (PyCFunction)(void (*)(void))plain_value, METH_FASTCALL,
     "(ts, expiry, data) of a plain write's object, None if deleted or expired, else "
     "not_plain"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_peerframe", NULL, -1, methods};

PyMODINIT_FUNC PyInit__peerframe(void) {
    if (PyType_Ready(&FramesType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Frames", (PyObject *)&FramesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
