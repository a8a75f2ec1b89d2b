/* dynredis._randpick: distinct random positions of range(n), in C.
 *
 * What commands/sets.py's distinct_indexes gives (it stays the fallback): k distinct
 * positions of range(n) (0 <= k <= n), drawn uniformly with repeats and each kept at its
 * first draw, in the order drawn (a uniform sample in random order); past half of n, the
 * n - k left out are drawn so and the others given in position order (as Redis, which
 * removes random elements from a copy there). In Python, dict.fromkeys over half a
 * million draws held HRANDFIELD's or SRANDMEMBER's loop turn ~110 ms; here a bitmap of
 * n bits tells a position already drawn.
 *
 * The generator is xoshiro256** seeded (through splitmix64) from a 64-bit seed the caller
 * draws from Python's random module, so a seeded run of Python repeats its picks; each
 * draw is bounded to n by Lemire's multiply-and-reject (no modulo bias).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next64(rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* A uniform draw of range(n), n >= 1 (Lemire: the high word of a 128-bit product,
 * rejecting the few low words that would bias it). */
static uint64_t below(rng_t *r, uint64_t n) {
    unsigned __int128 m = (unsigned __int128)next64(r) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t floor = -n % n;
        while (low < floor) {
            m = (unsigned __int128)next64(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Draw until `k` distinct positions are marked in `seen`; each new one written to `out`
 * (if not NULL) in the order drawn. */
static void draw_distinct(rng_t *r, uint64_t n, uint64_t k, uint64_t *seen, uint64_t *out) {
    for (uint64_t got = 0; got < k;) {
        uint64_t i = below(r, n);
        uint64_t bit = 1ull << (i & 63);
        if (seen[i >> 6] & bit)
            continue;
        seen[i >> 6] |= bit;
        if (out != NULL)
            out[got] = i;
        got++;
    }
}

/* distinct(n, k, seed) -> bytes of k native uint64 positions */
static PyObject *distinct(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "distinct(n, k, seed) takes 3 arguments");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[0]);
    Py_ssize_t k = PyLong_AsSsize_t(args[1]);
    if ((n == -1 || k == -1) && PyErr_Occurred())
        return NULL;
    uint64_t seed = PyLong_AsUnsignedLongLongMask(args[2]);
    if (seed == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    if (n < 0 || k < 0 || k > n || (size_t)k > PY_SSIZE_T_MAX / sizeof(uint64_t)) {
        PyErr_SetString(PyExc_ValueError, "distinct: needs 0 <= k <= n");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, k * (Py_ssize_t)sizeof(uint64_t));
    if (out == NULL)
        return NULL;
    if (k == 0)
        return out;
    uint64_t *seen = PyMem_Calloc(((size_t)n + 63) / 64, sizeof(uint64_t));
    if (seen == NULL) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    uint64_t *pos = (uint64_t *)PyBytes_AS_STRING(out);
    rng_t r;
    for (int i = 0; i < 4; i++)
        r.s[i] = splitmix64(&seed);
    uint64_t un = (uint64_t)n, uk = (uint64_t)k;
    Py_BEGIN_ALLOW_THREADS
    if (uk * 2 <= un) {
        draw_distinct(&r, un, uk, seen, pos);
    } else {
        draw_distinct(&r, un, un - uk, seen, NULL); /* the left-out ones */
        uint64_t at = 0;
        for (uint64_t i = 0; i < un; i++)
            if (!(seen[i >> 6] & (1ull << (i & 63))))
                pos[at++] = i;
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(seen);
    return out;
}

static PyMethodDef methods[] = {
    {"distinct", (PyCFunction)(void (*)(void))distinct, METH_FASTCALL,
     "distinct(n, k, seed) -> k distinct positions of range(n) as native uint64 bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_randpick", NULL, -1, methods};

PyMODINIT_FUNC PyInit__randpick(void) { return PyModule_Create(&module); }
