"""GEO commands: geo.py's parsing, search and replies over the replicated sorted sets.

A geo index is an ordinary sorted set whose scores are geohashes, as in Redis, so every
GEO command is a sorted-set command framed by geo.py's pure work:

- GEOADD is the ZADD Redis itself runs for it (ZADD's reply, ZADD's convergence);
- GEOPOS, GEOHASH and GEODIST read the named members' scores;
- a search reads at most nine score ranges of the source by bisection (zranges.py), so
  its cost depends on the area searched, not on the size of the set; it runs where the
  source lives and parses there, since Redis looks the named members up while parsing
  (its errors depend on that order).

GEORADIUS and GEORADIUSBYMEMBER (which may STORE) and GEOSEARCHSTORE are plans
(collection.py): the search is one step on the source, and the destination, possibly on
other nodes, is replaced by a second step (`dyn.store`: any type and TTL it held are
gone, as after Redis' SET; no match deletes it). They are not atomic across keys: a
write to the source between the steps is not seen, and members added to the destination
through another node during the second step stay (it removes only what it saw; README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..core.collview import KeyView
from ..core.quietlist import sublists
from ..core.records import ZSET
from ..resp import bulks
from ..resp import encode as resp
from . import geo
from .collection import (
    WRONGTYPE,
    Built,
    Op,
    Plan,
    collection_command,
    internal_step,
    plan_command,
    typed_op,
)
from .slicedwrite import store_steps
from .zranges import ScoreRange, score_span
from .zsets import build_zadd, zorder_of

GROUP = "geo"


def _spec(name: str) -> tuple[Any, ...]:
    """The registration arguments of `name` (Redis 7.0's arity, flags, keys, summary)."""
    s = geo.COMMANDS[name]
    return (name, s.arity, s.flags, s.first_key, s.last_key, s.step, GROUP, s.summary,
            s.since)


class SortedReader:
    """`read(min, max)` over a sorted set's (score, member) SortedList: its pairs with
    min <= score < max in set order, found by bisection and read lazily (a search with
    ANY stops reading as soon as it has enough); and `segments(min, max)`: the same
    pairs as the SortedList's own sublists and bounds, which the C scan reads in place
    (geosearch._flat)."""

    __slots__ = ("zl",)

    def __init__(self, zl: Any) -> None:
        self.zl = zl

    def __call__(self, lo: float, hi: float) -> Iterator[tuple[float, bytes]]:
        first, last = score_span(self.zl, ScoreRange(lo, hi, maxex=True))
        return self.zl.islice(first, last)  # type: ignore[no-any-return]

    def segments(self, lo: float, hi: float) -> list[tuple[list[Any], int, int]]:
        first, last = score_span(self.zl, ScoreRange(lo, hi, maxex=True))
        return sublists(self.zl, first, last)


# --- GEOADD, GEOPOS, GEOHASH, GEODIST ----------------------------------------------------


@collection_command(*_spec("geoadd"))
def build_geoadd(args: list[bytes], proto: int) -> Built | bytes:
    req = geo.parse_geoadd(args)
    if isinstance(req, bytes):
        return req  # argument errors come before the key's type, as in Redis
    # The options as ZADD reads them (GEOADD accepts "nx\0..." as NX, as strcasecmp does).
    options = [w for w, on in ((b"nx", req.nx), (b"xx", req.xx), (b"ch", req.ch)) if on]
    zadd = [b"zadd", req.key, *options]
    for score, member in req.items:
        zadd += [b"%d" % score, member]
    return build_zadd(zadd, proto)


Scores = list[float | None]


def _scores_op(members: list[bytes], answer: Callable[[Scores], bytes]) -> Op:
    """The op of a read of members' positions: `answer(their scores, None for one not
    there)`, or WRONGTYPE."""

    def body(v: KeyView) -> bytes:
        return answer([v.get(ZSET, m) for m in members])

    return typed_op("zset", body, answer([None] * len(members)))


@collection_command(*_spec("geopos"))
def build_geopos(args: list[bytes], proto: int) -> Built | bytes:
    return args[1], _scores_op(args[2:], lambda scores: geo.geopos_reply(scores, proto))


@collection_command(*_spec("geohash"))
def build_geohash(args: list[bytes], proto: int) -> Built | bytes:
    return args[1], _scores_op(args[2:], lambda scores: geo.geohash_reply(scores, proto))


@collection_command(*_spec("geodist"))
def build_geodist(args: list[bytes], proto: int) -> Built | bytes:
    req = geo.parse_geodist(args)
    if isinstance(req, bytes):
        return req  # the unit is checked before the key, as in Redis

    def answer(scores: Scores) -> bytes:
        return geo.geodist_reply(scores[0], scores[1], req.conversion, proto)

    return req.key, _scores_op([req.member1, req.member2], answer)


# --- searches ----------------------------------------------------------------------------


def source_key(args: list[bytes]) -> bytes:
    return args[2] if args[0].lower() == b"geosearchstore" else args[1]


def search(v: KeyView, args: list[bytes], proto: int
           ) -> tuple[bytes | bulks.SlicedReply, bytes | None, Sequence[Any]]:
    """Run any search command on its source's view: (reply, None, []) when it replies
    from here (matches, a long reply to be encoded over turns, or an error), or (b"",
    destination, entries) when it stores."""
    zl = zorder_of(v)
    if zl is WRONGTYPE:
        return WRONGTYPE, None, []
    req = geo.parse_search(args, zl is not None, lambda m: v.get(ZSET, m))
    if isinstance(req, bytes):
        return req, None, []
    matches = geo.run(req, SortedReader(v.zorder))  # no matches if the source does not exist
    if req.store is None:
        return geo.search_reply(req, matches, proto), None, []
    return b"", req.store, geo.store_entries(req, matches)


def _read_only_search(args: list[bytes], proto: int) -> Built:
    def op(v: KeyView) -> bytes | bulks.SlicedReply:
        return search(v, args, proto)[0]

    return source_key(args), op


@collection_command(*_spec("geosearch"))
def build_geosearch(args: list[bytes], proto: int) -> Built | bytes:
    return _read_only_search(args, proto)


@collection_command(*_spec("georadius_ro"))
def build_georadius_ro(args: list[bytes], proto: int) -> Built | bytes:
    return _read_only_search(args, proto)


@collection_command(*_spec("georadiusbymember_ro"))
def build_georadiusbymember_ro(args: list[bytes], proto: int) -> Built | bytes:
    return _read_only_search(args, proto)


@internal_step("dyn.geosearch")
def build_dyn_geosearch(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.geosearch, search command, its arguments...] -> [reply, destination or None,
    (member, score) entries to store]: the search step of a plan, on the source."""
    words = args[1:]

    def op(v: KeyView) -> Any:
        reply, store, entries = search(v, words, proto)
        return [bulks.whole(reply), store, entries]  # (a step's result may travel)

    return source_key(words), op


def _search_plan(args: list[bytes]) -> Plan:
    reply, store, entries = yield [b"dyn.geosearch", *args]
    if store is None:
        return reply
    n = yield from store_steps(store, "zset", entries)
    return resp.integer(n)


@plan_command(*_spec("georadius"))
def build_georadius(args: list[bytes], proto: int) -> Plan | bytes:
    return _search_plan(args)


@plan_command(*_spec("georadiusbymember"))
def build_georadiusbymember(args: list[bytes], proto: int) -> Plan | bytes:
    return _search_plan(args)


@plan_command(*_spec("geosearchstore"))
def build_geosearchstore(args: list[bytes], proto: int) -> Plan | bytes:
    return _search_plan(args)
