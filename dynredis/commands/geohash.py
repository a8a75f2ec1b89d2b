"""Redis' geohash arithmetic, bit for bit (src/geohash.c, geohash_helper.c, geo.c of 7.0).

A geo member is a sorted-set member whose score is a 52-bit geohash: 26 bits of latitude
(over -85.05112878..85.05112878) interleaved with 26 of longitude (-180..180). A score
decodes to the centre of its cell, which is what GEOPOS shows. A radius or box search
scans at most nine score ranges (a cell and its eight neighbours, at a precision chosen
from the radius) and keeps the members that pass the exact distance test.

Every step is done in the same order and with the same double operations as the C code,
and the libm functions (sin, cos, asin, sqrt) are the C library's, so results are the same
bits. Where C yields NaN or infinity (an infinite radius, asin just past 1), so do these
functions; Python's math module would raise instead. Integers are masked to the widths the
C code uses (uint32/uint64), including its edge behaviours: a latitude of exactly 85.05112878
or a longitude of 180 encodes one past the last cell, as in Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import cos as _libm_cos
from math import sin as _libm_sin
from math import sqrt as _libm_sqrt

STEP_MAX = 26  # GEO_STEP_MAX: 26 bits per coordinate, 52 in a score
LON_MIN = -180.0
LON_MAX = 180.0
LAT_MIN = -85.05112878
LAT_MAX = 85.05112878
EARTH_RADIUS_M = 6372797.560856
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_ODD = 0xAAAAAAAAAAAAAAAA  # longitude bits of an interleaved hash
_EVEN = 0x5555555555555555  # latitude bits
_BASE32 = b"0123456789bcdefghjkmnpqrstuvwxyz"

Range = tuple[float, float]
GEO_RANGES: tuple[Range, Range] = ((LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX))
# GEOHASH strings use the standard geohash latitude range.
STANDARD_RANGES: tuple[Range, Range] = ((-180.0, 180.0), (-90.0, 90.0))


# --- C arithmetic where Python's differs ---------------------------------------------


def _cos(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


def _asin(x: float) -> float:
    # glibc answers a domain error with the default NaN, whose sign bit is set on x86.
    return math.asin(x) if -1.0 <= x <= 1.0 or x != x else -math.nan


def _div(a: float, b: float) -> float:
    """a / b with IEEE results for b == 0 (C divides, Python raises)."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _cvttsd2si(x: float) -> int:
    """x86's double -> int64 truncation: out of range or NaN gives the 'integer
    indefinite' 0x8000000000000000."""
    if x != x or not -(2.0**63) <= x < 2.0**63:
        return 1 << 63
    return int(x) & _U64


def to_uint64(x: float) -> int:
    """C's (uint64_t)x as GCC compiles it for x86-64: what Redis makes of any score
    (negative, fractional, huge) before decoding it."""
    if x >= 2.0**63:
        return _cvttsd2si(x - 2.0**63) ^ (1 << 63)
    return _cvttsd2si(x)


def to_int64(x: float) -> int:
    """C's (long long)x on x86-64: the WITHHASH integer of a score."""
    u = _cvttsd2si(x)
    return u - (1 << 64) if u >> 63 else u


# --- interleaving ----------------------------------------------------------------------


def _spread(v: int) -> int:
    v &= _U32
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & _EVEN


def interleave(lat_bits: int, lon_bits: int) -> int:
    """interleave64: latitude bits at even positions, longitude bits at odd ones."""
    return _spread(lat_bits) | (_spread(lon_bits) << 1)


def _squash(v: int) -> int:
    v &= _EVEN
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & _U32


def deinterleave(bits: int) -> tuple[int, int]:
    """deinterleave64, split: (latitude bits, longitude bits), 32 each."""
    bits &= _U64
    return _squash(bits), _squash(bits >> 1)


# --- cells -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A geohash cell: `step` bits per coordinate (GeoHashBits). step 0 means none."""

    bits: int
    step: int


NO_CELL = Cell(0, 0)


@dataclass(frozen=True)
class Area:
    """The extent of a cell (GeoHashArea)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float


def encode_cell(lon: float, lat: float, step: int,
                ranges: tuple[Range, Range] = GEO_RANGES) -> Cell | None:
    """geohashEncode: the cell holding (lon, lat) at `step`, or None where Redis fails."""
    (lon_lo, lon_hi), (lat_lo, lat_hi) = ranges
    if not 0 < step <= 32:
        return None
    if lon > LON_MAX or lon < LON_MIN or lat > LAT_MAX or lat < LAT_MIN:
        return None
    if lat < lat_lo or lat > lat_hi or lon < lon_lo or lon > lon_hi:
        return None
    lat_offset = (lat - lat_lo) / (lat_hi - lat_lo) * float(1 << step)
    lon_offset = (lon - lon_lo) / (lon_hi - lon_lo) * float(1 << step)
    return Cell(interleave(int(lat_offset), int(lon_offset)), step)


def decode_cell(cell: Cell, ranges: tuple[Range, Range] = GEO_RANGES) -> Area:
    """geohashDecode: the area of a cell."""
    (lon_lo, lon_hi), (lat_lo, lat_hi) = ranges
    lat_bits, lon_bits = deinterleave(cell.bits)
    size = float(1 << cell.step)
    lat_scale = lat_hi - lat_lo
    lon_scale = lon_hi - lon_lo
    return Area(lon_lo + (lon_bits * 1.0 / size) * lon_scale,
                lon_lo + (((lon_bits + 1) & _U32) * 1.0 / size) * lon_scale,
                lat_lo + (lat_bits * 1.0 / size) * lat_scale,
                lat_lo + (((lat_bits + 1) & _U32) * 1.0 / size) * lat_scale)


def _move_x(cell: Cell, d: int) -> Cell:
    x = cell.bits & _ODD
    y = cell.bits & _EVEN
    zz = _EVEN >> (64 - cell.step * 2)
    if d > 0:
        x = (x + (zz + 1)) & _U64
    else:
        x = ((x | zz) - (zz + 1)) & _U64
    x &= _ODD >> (64 - cell.step * 2)
    return Cell(x | y, cell.step)


def _move_y(cell: Cell, d: int) -> Cell:
    x = cell.bits & _ODD
    y = cell.bits & _EVEN
    zz = _ODD >> (64 - cell.step * 2)
    if d > 0:
        y = (y + (zz + 1)) & _U64
    else:
        y = ((y | zz) - (zz + 1)) & _U64
    y &= _EVEN >> (64 - cell.step * 2)
    return Cell(x | y, cell.step)


def _neighbour(cell: Cell, dx: int, dy: int) -> Cell:
    if dx:
        cell = _move_x(cell, dx)
    if dy:
        cell = _move_y(cell, dy)
    return cell


# --- scores ----------------------------------------------------------------------------


def align52(cell: Cell) -> int:
    """geohashAlign52Bits: a cell's bits as a 52-bit score prefix."""
    return (cell.bits << (52 - cell.step * 2)) & _U64


def valid(lon: float, lat: float) -> bool:
    """Whether GEOADD accepts the pair (extractLongLatOrReply)."""
    return not (lon < LON_MIN or lon > LON_MAX or lat < LAT_MIN or lat > LAT_MAX)


def encode(lon: float, lat: float) -> int:
    """The sorted-set score of a valid (lon, lat), as GEOADD computes it."""
    cell = encode_cell(lon, lat, STEP_MAX)
    if cell is None:
        raise ValueError(f"invalid longitude,latitude pair {lon!r},{lat!r}")
    return align52(cell)


_LAT_SCALE = LAT_MAX - LAT_MIN
_LON_SCALE = LON_MAX - LON_MIN
_CELLS = float(1 << STEP_MAX)


def decode(score: float) -> tuple[float, float]:
    """decodeGeohash: the (lon, lat) centre of the cell a score names, clamped to the
    valid range (what GEOPOS shows and what distances are measured from). Inlined
    decode_cell: searches decode every member they read."""
    bits = int(score) if 0.0 <= score < 9223372036854775808.0 else to_uint64(score)
    lat_bits = _squash(bits)
    lon_bits = _squash(bits >> 1)
    lon = (LON_MIN + (lon_bits * 1.0 / _CELLS) * _LON_SCALE
           + (LON_MIN + (((lon_bits + 1) & _U32) * 1.0 / _CELLS) * _LON_SCALE)) / 2
    lat = (LAT_MIN + (lat_bits * 1.0 / _CELLS) * _LAT_SCALE
           + (LAT_MIN + (((lat_bits + 1) & _U32) * 1.0 / _CELLS) * _LAT_SCALE)) / 2
    if lon > LON_MAX:
        lon = LON_MAX
    elif lon < LON_MIN:
        lon = LON_MIN
    if lat > LAT_MAX:
        lat = LAT_MAX
    elif lat < LAT_MIN:
        lat = LAT_MIN
    return lon, lat


def hash_string(score: float) -> bytes:
    """GEOHASH's 11 characters: the decoded position re-encoded over the standard
    latitude range -90..90; Redis has 52 bits, so the 11th character is always '0'."""
    lon, lat = decode(score)
    cell = encode_cell(lon, lat, STEP_MAX, STANDARD_RANGES)
    bits = cell.bits if cell is not None else 0
    return bytes(_BASE32[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)) + b"0"


# --- distances -------------------------------------------------------------------------


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: Redis' haversine distance in meters."""
    lat1r = lat1 * _D_R
    lon1r = lon1 * _D_R
    lat2r = lat2 * _D_R
    lon2r = lon2 * _D_R
    try:
        u = _libm_sin((lat2r - lat1r) / 2)
        v = _libm_sin((lon2r - lon1r) / 2)
        x = _libm_sqrt(u * u + _libm_cos(lat1r) * _libm_cos(lat2r) * v * v)
    except ValueError:  # an infinite coordinate, which C turns into NaN
        return math.nan
    return 2.0 * EARTH_RADIUS_M * _asin(x)


# --- search shapes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A search area (GeoShape): a circle of `radius`, or a `width` x `height` box, in a
    unit worth `conversion` meters, around (lon, lat)."""

    lon: float
    lat: float
    conversion: float
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0
    box: bool = False


def within(shape: Shape, lon: float, lat: float) -> float | None:
    """The distance in meters from the shape's centre to (lon, lat) when the point is
    inside the shape (geohashGetDistanceIfInRadius / ...IfInRectangle), else None."""
    if not shape.box:
        d = distance(shape.lon, shape.lat, lon, lat)
        return None if d > shape.radius * shape.conversion else d
    width_m = shape.width * shape.conversion
    height_m = shape.height * shape.conversion
    lon_distance = distance(lon, lat, shape.lon, lat)
    lat_distance = distance(lon, lat, lon, shape.lat)
    if lon_distance > width_m / 2 or lat_distance > height_m / 2:
        return None
    return distance(shape.lon, shape.lat, lon, lat)


def estimate_step(range_m: float, lat: float) -> int:
    """geohashEstimateStepsByRadius: the cell precision for a search radius."""
    if range_m == 0:
        return 26
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def bounding_box(shape: Shape) -> tuple[float, float, float, float]:
    """geohashBoundingBox: (min lon, min lat, max lon, max lat) around the shape."""
    half_h = shape.radius if not shape.box else shape.height / 2
    half_w = shape.radius if not shape.box else shape.width / 2
    height = shape.conversion * half_h
    width = shape.conversion * half_w
    lat_delta = height / EARTH_RADIUS_M / _D_R
    top = _div(width / EARTH_RADIUS_M, _cos((shape.lat + lat_delta) * _D_R)) / _D_R
    bottom = _div(width / EARTH_RADIUS_M, _cos((shape.lat - lat_delta) * _D_R)) / _D_R
    lon_delta = bottom if shape.lat < 0 else top
    return (shape.lon - lon_delta, shape.lat - lat_delta,
            shape.lon + lon_delta, shape.lat + lat_delta)


# The order in which Redis scans the centre cell and its neighbours (membersOfAllNeighbors).
_SCAN = ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


def search_cells(shape: Shape) -> list[Cell]:
    """geohashCalculateAreasByShapeWGS84: the centre cell and its eight neighbours, in
    scan order (centre, N, S, E, W, NE, NW, SE, SW); NO_CELL for a neighbour that
    cannot hold a match."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(shape)
    if shape.box:
        half_w, half_h = shape.width / 2, shape.height / 2
        radius_m = math.sqrt(half_w * half_w + half_h * half_h)
    else:
        radius_m = shape.radius
    radius_m *= shape.conversion
    steps = estimate_step(radius_m, shape.lat)

    def around(step: int) -> tuple[Cell, list[Cell]]:
        centre = encode_cell(shape.lon, shape.lat, step) or Cell(0, step)
        return centre, [_neighbour(centre, dx, dy) for dx, dy in _SCAN]

    centre, cells = around(steps)
    north, south, east, west = (decode_cell(c) for c in cells[1:5])
    if steps > 1 and (north.lat_max < max_lat or south.lat_min > min_lat
                      or east.lon_max < max_lon or west.lon_min > min_lon):
        steps -= 1
        centre, cells = around(steps)
    if steps >= 2:
        area = decode_cell(centre)
        drop = set()
        if area.lat_min < min_lat:
            drop |= {2, 7, 8}  # south, south-east, south-west
        if area.lat_max > max_lat:
            drop |= {1, 5, 6}  # north, north-east, north-west
        if area.lon_min < min_lon:
            drop |= {4, 6, 8}  # west, north-west, south-west
        if area.lon_max > max_lon:
            drop |= {3, 5, 7}  # east, north-east, south-east
        cells = [NO_CELL if i in drop else c for i, c in enumerate(cells)]
    return cells


def score_ranges(shape: Shape) -> list[tuple[int, int]]:
    """The sorted-set score ranges [min, max) a search of `shape` reads, in Redis' scan
    order: empty neighbours are skipped, and so is a neighbour equal to the last one
    scanned (large radii make neighbours coincide)."""
    cells = search_cells(shape)
    out = []
    last = 0
    for i, cell in enumerate(cells):
        if cell == NO_CELL:
            continue
        if last and cell == cells[last]:
            continue
        out.append((align52(cell), align52(Cell(cell.bits + 1, cell.step))))
        last = i
    return out
