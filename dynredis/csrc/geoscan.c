/* dynredis._geoscan: the inner loop of a GEO search, in C.
 *
 * What commands/geosearch.py's find does for each (score, member) of a score range,
 * with geohash.py's decode and within (which stay the fallback): decode the score to
 * its cell's centre and keep the member if it is inside the shape, with its distance.
 * In Python that is about 6-9 us a member: a search of the whole world over a set of
 * 16,000 members held a node 100-450 ms, 100,000 members 0.6-0.7 s (Redis: 18 ms for
 * 16,000). The arithmetic is Redis 7.0's (src/geohash.c, geohash_helper.c), operation
 * for operation, with the C library's sin, cos, asin and sqrt: the same bits as Redis
 * and as the Python fallback (tests/unit/test_geoscan.py checks the two agree).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LON_MIN -180.0
#define LON_MAX 180.0
#define LAT_MIN -85.05112878
#define LAT_MAX 85.05112878
#define EARTH_RADIUS_M 6372797.560856
#define TWO63 9223372036854775808.0

static const double D_R = M_PI / 180.0;
static const double LAT_SCALE = LAT_MAX - LAT_MIN;
static const double LON_SCALE = LON_MAX - LON_MIN;
static const double CELLS = (double)(1 << 26);

/* x86's double -> int64 truncation: out of range or NaN gives 0x8000000000000000. */
static uint64_t cvttsd2si(double x) {
    if (x != x || !(x >= -TWO63 && x < TWO63))
        return 1ull << 63;
    return (uint64_t)(int64_t)x;
}

/* C's (uint64_t)x as GCC compiles it for x86-64 (geohash.py's to_uint64). */
static uint64_t to_uint64(double x) {
    if (x >= TWO63)
        return cvttsd2si(x - TWO63) ^ (1ull << 63);
    return cvttsd2si(x);
}

static uint32_t squash(uint64_t v) {
    v &= 0x5555555555555555ull;
    v = (v | (v >> 1)) & 0x3333333333333333ull;
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0Full;
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FFull;
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFull;
    return (uint32_t)((v | (v >> 16)) & 0xFFFFFFFFull);
}

/* decodeGeohash: the clamped centre of the cell a score names. */
static void decode(double score, double *lon, double *lat) {
    uint64_t bits = to_uint64(score);
    uint32_t lat_bits = squash(bits), lon_bits = squash(bits >> 1);
    double x = (LON_MIN + (lon_bits * 1.0 / CELLS) * LON_SCALE +
                (LON_MIN + ((uint32_t)(lon_bits + 1) * 1.0 / CELLS) * LON_SCALE)) / 2;
    double y = (LAT_MIN + (lat_bits * 1.0 / CELLS) * LAT_SCALE +
                (LAT_MIN + ((uint32_t)(lat_bits + 1) * 1.0 / CELLS) * LAT_SCALE)) / 2;
    *lon = x > LON_MAX ? LON_MAX : x < LON_MIN ? LON_MIN : x;
    *lat = y > LAT_MAX ? LAT_MAX : y < LAT_MIN ? LAT_MIN : y;
}

/* geohashGetDistance. */
static double distance(double lon1, double lat1, double lon2, double lat2) {
    double lat1r = lat1 * D_R, lon1r = lon1 * D_R, lat2r = lat2 * D_R, lon2r = lon2 * D_R;
    double u = sin((lat2r - lat1r) / 2);
    double v = sin((lon2r - lon1r) / 2);
    return 2.0 * EARTH_RADIUS_M * asin(sqrt(u * u + cos(lat1r) * cos(lat2r) * v * v));
}

typedef struct {
    int box;
    double lon, lat, radius_m, half_w, half_h;
} shape_t;

/* geohashGetDistanceIfInRadius / ...IfInRectangle: 1 and the distance if inside. */
static int within(const shape_t *s, double lon, double lat, double *dist) {
    if (!s->box) {
        double d = distance(s->lon, s->lat, lon, lat);
        if (d > s->radius_m)
            return 0;
        *dist = d;
        return 1;
    }
    double lon_distance = distance(lon, lat, s->lon, lat);
    double lat_distance = distance(lon, lat, lon, s->lat);
    if (lon_distance > s->half_w || lat_distance > s->half_h)
        return 0;
    *dist = distance(s->lon, s->lat, lon, lat);
    return 1;
}

/* A `cls` (a tuple type, geosearch.Match) of (member, score, lon, lat, dist), made as
 * tuple's own constructor makes a subclass's instance. */
static PyObject *match_of(PyTypeObject *cls, PyObject *member, PyObject *score, double lon,
                          double lat, double dist) {
    PyObject *x = PyFloat_FromDouble(lon), *y = PyFloat_FromDouble(lat);
    PyObject *d = PyFloat_FromDouble(dist);
    PyObject *m = (x && y && d) ? cls->tp_alloc(cls, 5) : NULL;
    if (m == NULL) {
        Py_XDECREF(x);
        Py_XDECREF(y);
        Py_XDECREF(d);
        return NULL;
    }
    Py_INCREF(member);
    Py_INCREF(score);
    PyTuple_SET_ITEM(m, 0, member);
    PyTuple_SET_ITEM(m, 1, score);
    PyTuple_SET_ITEM(m, 2, x);
    PyTuple_SET_ITEM(m, 3, y);
    PyTuple_SET_ITEM(m, 4, d);
    /* Bytes and floats only (as a sorted set holds them): it can be in no reference
     * cycle, and the collector need not walk it (it untracks such exact tuples itself,
     * never a subclass's: 100,000 matches cost a whole-world search 130 ms of
     * collections). */
    if (PyBytes_CheckExact(member) && PyFloat_CheckExact(score))
        PyObject_GC_UnTrack(m);
    return m;
}

/* The shape of a scan's arguments 1-6 (box, lon, lat, radius_m, half_w, half_h); -1 on
 * an error. */
static int shape_of(PyObject *const *args, shape_t *s) {
    s->box = PyObject_IsTrue(args[1]);
    if (s->box < 0)
        return -1;
    s->lon = PyFloat_AsDouble(args[2]);
    s->lat = PyFloat_AsDouble(args[3]);
    s->radius_m = PyFloat_AsDouble(args[4]);
    s->half_w = PyFloat_AsDouble(args[5]);
    s->half_h = PyFloat_AsDouble(args[6]);
    return PyErr_Occurred() ? -1 : 0;
}

/* The next (score, member) pair of `it` inside the shape (a new reference), with its
 * (score, lon, lat, dist) in `q`; NULL at the end or on an error (PyErr_Occurred). */
static PyObject *next_inside(PyObject *it, const shape_t *s, double q[4]) {
    PyObject *pair;
    while ((pair = PyIter_Next(it)) != NULL) {
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_TypeError, "scan: pairs must be (score, member) tuples");
            return NULL;
        }
        q[0] = PyFloat_AsDouble(PyTuple_GET_ITEM(pair, 0));
        if (q[0] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(pair);
            return NULL;
        }
        decode(q[0], &q[1], &q[2]);
        if (within(s, q[1], q[2], &q[3]))
            return pair;
        Py_DECREF(pair);
    }
    return NULL;
}

/* scan(pairs, box, lon, lat, radius_m, half_w, half_h, limit, out, cls) -> None: append
 * cls(member, score, lon, lat, dist) to `out` for each (score, member) of `pairs` inside
 * the shape, stopping once `out` holds `limit` (0: no limit). */
static PyObject *scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 10 arguments");
        return NULL;
    }
    if (!PyType_Check(args[9]) ||
        !PyType_IsSubtype((PyTypeObject *)args[9], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "scan: cls must be a tuple type");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[9];
    shape_t s;
    if (shape_of(args, &s) < 0)
        return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[7]);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    PyObject *out = args[8];
    if (!PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "scan: out must be a list");
        return NULL;
    }
    if (limit > 0 && PyList_GET_SIZE(out) >= limit)
        Py_RETURN_NONE;
    PyObject *it = PyObject_GetIter(args[0]);
    if (it == NULL)
        return NULL;
    PyObject *pair;
    double q[4];
    while ((pair = next_inside(it, &s, q)) != NULL) {
        PyObject *match = match_of(cls, PyTuple_GET_ITEM(pair, 1), PyTuple_GET_ITEM(pair, 0),
                                   q[1], q[2], q[3]);
        Py_DECREF(pair);
        if (match == NULL || PyList_Append(out, match) < 0) {
            Py_XDECREF(match);
            break;
        }
        Py_DECREF(match);
        if (limit > 0 && PyList_GET_SIZE(out) >= limit)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* Appends the member of `pair`, a (score, member) tuple inside the shape, to `members`
   and its (score, lon, lat, dist) to quads[*n] (grown as needed). 0 if it was outside or
   kept, -1 on an error (set). */
static int keep_inside(PyObject *pair, const shape_t *s, PyObject *members, double **quads,
                       size_t *cap, size_t *n) {
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "scan: pairs must be (score, member) tuples");
        return -1;
    }
    double q[4];
    PyObject *score = PyTuple_GET_ITEM(pair, 0);
    q[0] = PyFloat_CheckExact(score) ? PyFloat_AS_DOUBLE(score) : PyFloat_AsDouble(score);
    if (q[0] == -1.0 && PyErr_Occurred())
        return -1;
    decode(q[0], &q[1], &q[2]);
    if (!within(s, q[1], q[2], &q[3]))
        return 0;
    if (*n == *cap) {
        double *more = PyMem_Realloc(*quads, *cap * 2 * 4 * sizeof(double));
        if (more == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        *quads = more;
        *cap *= 2;
    }
    if (PyList_Append(members, PyTuple_GET_ITEM(pair, 1)) < 0)
        return -1;
    memcpy(*quads + 4 * (*n)++, q, sizeof(q));
    return 0;
}

/* scan_flat(pairs, box, lon, lat, radius_m, half_w, half_h, members) -> bytes: as scan,
 * without objects per match: each member inside is appended to `members` and its
 * (score, lon, lat, dist) are four native doubles of the bytes returned. A search with
 * COUNT reads every match to keep the nearest few: an object per match made 100,000 of
 * them cost 100-200 ms where Redis took 40. */
static PyObject *scan_flat(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "scan_flat() takes 8 arguments");
        return NULL;
    }
    shape_t s;
    if (shape_of(args, &s) < 0)
        return NULL;
    PyObject *members = args[7];
    if (!PyList_Check(members)) {
        PyErr_SetString(PyExc_TypeError, "scan_flat: members must be a list");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(args[0]);
    if (it == NULL)
        return NULL;
    size_t cap = 1024, n = 0;
    double *quads = PyMem_Malloc(cap * 4 * sizeof(double));
    if (quads == NULL) {
        Py_DECREF(it);
        return PyErr_NoMemory();
    }
    PyObject *pair;
    while ((pair = PyIter_Next(it)) != NULL) {
        int kept = keep_inside(pair, &s, members, &quads, &cap, &n);
        Py_DECREF(pair);
        if (kept < 0)
            break;
    }
    Py_DECREF(it);
    PyObject *out = PyErr_Occurred()
        ? NULL
        : PyBytes_FromStringAndSize((const char *)quads, (Py_ssize_t)(n * 4 * sizeof(double)));
    PyMem_Free(quads);
    return out;
}

/* How far ahead scan_lists asks for a pair (then, half as far ahead, for its score): a
   search reads tens of thousands of pairs that lie scattered in memory, two cache
   misses each, which the loop otherwise waits for one after the other. */
#define AHEAD 16

/* scan_lists(segments, box, lon, lat, radius_m, half_w, half_h, members) -> bytes:
 * scan_flat over the pairs list[start:stop] of each (list, start, stop) of `segments`
 * (a SortedList's sublists), read in place, the pairs and their scores fetched ahead:
 * through an iterator a search near a pole (75,000 pairs read) took 30 ms where Redis
 * took 5.5. */
static PyObject *scan_lists(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "scan_lists() takes 8 arguments");
        return NULL;
    }
    shape_t s;
    if (shape_of(args, &s) < 0)
        return NULL;
    PyObject *segments = args[0], *members = args[7];
    if (!PyList_Check(segments) || !PyList_Check(members)) {
        PyErr_SetString(PyExc_TypeError, "scan_lists: segments and members must be lists");
        return NULL;
    }
    size_t cap = 1024, n = 0;
    double *quads = PyMem_Malloc(cap * 4 * sizeof(double));
    if (quads == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(segments); k++) {
        PyObject *seg = PyList_GET_ITEM(segments, k);
        if (!PyTuple_Check(seg) || PyTuple_GET_SIZE(seg) != 3 ||
            !PyList_Check(PyTuple_GET_ITEM(seg, 0))) {
            PyErr_SetString(PyExc_TypeError, "scan_lists: segments are (list, start, stop)");
            break;
        }
        PyObject *list = PyTuple_GET_ITEM(seg, 0);
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(seg, 1));
        Py_ssize_t stop = PyLong_AsSsize_t(PyTuple_GET_ITEM(seg, 2));
        if ((start == -1 || stop == -1) && PyErr_Occurred())
            break;
        if (start < 0)
            start = 0;
        /* (the size read again at each pair: nothing the loop calls runs Python code on
           floats, but a score of another type could) */
        for (Py_ssize_t i = start; i < stop && i < PyList_GET_SIZE(list); i++) {
            PyObject **items = ((PyListObject *)list)->ob_item;
            Py_ssize_t size = PyList_GET_SIZE(list);
            if (i + AHEAD < size)
                __builtin_prefetch(items[i + AHEAD]);
            if (i + AHEAD / 2 < size) {
                PyObject *later = items[i + AHEAD / 2];
                if (PyTuple_CheckExact(later) && PyTuple_GET_SIZE(later) == 2)
                    __builtin_prefetch(PyTuple_GET_ITEM(later, 0));
            }
            PyObject *pair = items[i];
            Py_INCREF(pair); /* (held while a score's __float__ might change the list) */
            int kept = keep_inside(pair, &s, members, &quads, &cap, &n);
            Py_DECREF(pair);
            if (kept < 0)
                break;
        }
        if (PyErr_Occurred())
            break;
    }
    PyObject *out = PyErr_Occurred()
        ? NULL
        : PyBytes_FromStringAndSize((const char *)quads, (Py_ssize_t)(n * 4 * sizeof(double)));
    PyMem_Free(quads);
    return out;
}

static PyMethodDef methods[] = {
    {"scan_flat", (PyCFunction)(void (*)(void))scan_flat, METH_FASTCALL,
     "scan_flat(pairs, box, lon, lat, radius_m, half_w, half_h, members) -> bytes"},
    {"scan_lists", (PyCFunction)(void (*)(void))scan_lists, METH_FASTCALL,
     "scan_lists(segments, box, lon, lat, radius_m, half_w, half_h, members) -> bytes"},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(pairs, box, lon, lat, radius_m, half_w, half_h, limit, out, cls) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_geoscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__geoscan(void) { return PyModule_Create(&module); }
