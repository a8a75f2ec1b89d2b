"""Differential test of pub/sub: the same randomized single-client histories against a
real `redis-server`, a 1-node dynredis (N=R=W=1) and a 3-node dynredis (N=3 R=2 W=2).

On each server a subscriber connection S and a publisher connection P (both RESP2, both
on the server's node 0): S subscribes and unsubscribes (channels, patterns, shard
channels) and PINGs; P publishes, asks PUBSUB for its figures and writes keys, with
notify-keyspace-events set to KEA everywhere (S may subscribe to the notification
channels). After each step S is sent a PING as a fence and every message it received
before the fence's reply is part of the step's outcome, so a history compares replies,
counts and the messages and notifications of its own writes exactly, in order.

PUBSUB CHANNELS / SHARDCHANNELS list channels in hash-table order, which Redis does not
specify: compared sorted; so are the channels an UNSUBSCRIBE or SUNSUBSCRIBE of all
names (their counts in order), and the patterns of the pmessages one message gives. Examples: DYNREDIS_DIFF_EXAMPLES / 5 (100 by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from compat.test_differential import SETTINGS, Conn, Status
from tests.integration.conftest import ClusterFactory, resp_command, wait_until

EXAMPLES = max(20, int(os.environ.get("DYNREDIS_DIFF_EXAMPLES", "500")) // 5)
pytestmark = pytest.mark.timeout(600)

CHANNELS = [b"c1", b"c2", b"news.x", b"__keyevent@0__:set"]
PATTERNS = [b"c*", b"news.?", b"*", b"__key*__:*", b"__keyspace@0__:k1"]
SHARDS = [b"s1", b"s2"]
KEYS = [b"k1", b"k2"]


class Side:
    """S and P on one server."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.s = Conn(name + " S", port)
        self.p = Conn(name + " P", port)

    def close(self) -> None:
        self.s.close()
        self.p.close()

    def reset(self) -> None:
        assert self.s.call(b"RESET") == Status(b"RESET")
        assert self.p.call(b"FLUSHALL") == Status(b"OK")

    def fenced(self) -> list[Any]:
        """S's messages up to the reply to a PING sent now."""
        self.s.sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        got: list[Any] = []
        while True:
            item = self.s._read()
            if item in (Status(b"PONG"), [b"pong", b""]):
                return patterns_sorted(got)
            got.append(item)

    def step(self, who: str, args: tuple[bytes, ...], replies: int) -> tuple[Any, list[Any]]:
        conn = self.s if who == "S" else self.p
        conn.sock.sendall(resp_command(*args))
        reply = [conn._read() for _ in range(replies)]
        return _normal(args, reply), self.fenced()


def patterns_sorted(messages: list[Any]) -> list[Any]:
    """Each run of pmessages of one message (same channel and payload, several matching
    patterns) sorted by pattern: Redis goes through its patterns in hash-table order."""
    out: list[Any] = []
    run: list[Any] = []
    for m in [*messages, None]:
        if run and (m is None or m[0] != b"pmessage" or m[2:] != run[0][2:]):
            out.extend(sorted(run))
            run = []
        if isinstance(m, list) and m[0] == b"pmessage":
            run.append(m)
        elif m is not None:
            out.append(m)
    return out


def _normal(args: tuple[bytes, ...], reply: list[Any]) -> Any:
    if args[:2] in ((b"PUBSUB", b"CHANNELS"), (b"PUBSUB", b"SHARDCHANNELS")) and \
            isinstance(reply[0], list):
        return [sorted(reply[0])]
    if args in ((b"UNSUBSCRIBE",), (b"SUNSUBSCRIBE",)):
        # Redis goes through a client's channels in its dict's order (patterns: in the
        # order subscribed): the channels compared as a set, the counts in order.
        return (sorted(r[1] for r in reply if isinstance(r, list) and r[1] is not None),
                [r[2] if isinstance(r, list) else r for r in reply])
    return reply


@pytest.fixture(scope="module")
def sides(real_redis: Any, module_cluster_factory: ClusterFactory) -> Iterator[list[Side]]:
    one = module_cluster_factory("--n", "1", "--r", "1", "--w", "1", nodes=1)
    three = module_cluster_factory("--n", "3", "--r", "2", "--w", "2", nodes=3)
    made = [Side("redis-server", real_redis.port), Side("dynredis 1-node", one.ports[0]),
            Side("dynredis 3-node", three.ports[0])]
    for side in made:
        assert side.p.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA") == Status(b"OK")
    # The setting is the cluster's: every node has it before writes are handed to them.
    for i in range(3):
        wait_until(lambda i=i: three.client(i).config_get("notify-keyspace-events")
                   ["notify-keyspace-events"] == "AKE", 10, what="the setting everywhere")
    try:
        yield made
    finally:
        for side in made:
            try:
                side.p.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"")
            finally:
                side.close()


# --- the histories ----------------------------------------------------------------------

Step = tuple[str, tuple[bytes, ...]]


def names(pool: list[bytes], lo: int) -> st.SearchStrategy[tuple[bytes, ...]]:
    return st.lists(st.sampled_from(pool), min_size=lo, max_size=3, unique=True).map(tuple)


def _sub(word: bytes, pool: list[bytes], lo: int) -> st.SearchStrategy[Step]:
    return names(pool, lo).map(lambda ns: ("S", (word, *ns)))


def _p(*parts: st.SearchStrategy[bytes]) -> st.SearchStrategy[Step]:
    return st.tuples(*parts).map(lambda words: ("P", tuple(words)))


def _w(word: bytes) -> st.SearchStrategy[bytes]:
    return st.just(word)


val = st.sampled_from([b"1", b"v", b"-3"])
key = st.sampled_from(KEYS)
step = st.one_of(
    _sub(b"SUBSCRIBE", CHANNELS, 1), _sub(b"UNSUBSCRIBE", CHANNELS, 0),
    _sub(b"PSUBSCRIBE", PATTERNS, 1), _sub(b"PUNSUBSCRIBE", PATTERNS, 0),
    _sub(b"SSUBSCRIBE", SHARDS, 1), _sub(b"SUNSUBSCRIBE", SHARDS, 0),
    st.just(("S", (b"PING", b"hi"))), st.just(("S", (b"GET", b"k1"))),
    _p(_w(b"PUBLISH"), st.sampled_from(CHANNELS + [b"none"]), val),
    _p(_w(b"SPUBLISH"), st.sampled_from(SHARDS), val),
    names(CHANNELS, 0).map(lambda ns: ("P", (b"PUBSUB", b"NUMSUB", *ns))),
    names(SHARDS, 0).map(lambda ns: ("P", (b"PUBSUB", b"SHARDNUMSUB", *ns))),
    st.just(("P", (b"PUBSUB", b"NUMPAT"))), st.just(("P", (b"PUBSUB", b"CHANNELS"))),
    st.just(("P", (b"PUBSUB", b"CHANNELS", b"c*"))),
    st.just(("P", (b"PUBSUB", b"SHARDCHANNELS"))),
    _p(_w(b"SET"), key, val), _p(_w(b"DEL"), key), _p(_w(b"INCR"), key),
    _p(_w(b"EXPIRE"), key, st.sampled_from([b"100", b"-1"])), _p(_w(b"APPEND"), key, val),
    _p(_w(b"HSET"), key, val, val), _p(_w(b"SADD"), key, val), _p(_w(b"LPUSH"), key, val),
    _p(_w(b"RPOP"), key), _p(_w(b"GETDEL"), key), _p(_w(b"PERSIST"), key),
    _p(_w(b"SREM"), key, val), _p(_w(b"HDEL"), key, val), _p(_w(b"ZADD"), key, val, val),
    _p(_w(b"ZREM"), key, val), _p(_w(b"SMOVE"), key, key, val),
)


KIND = {b"SUBSCRIBE": "c", b"UNSUBSCRIBE": "c", b"PSUBSCRIBE": "p", b"PUNSUBSCRIBE": "p",
        b"SSUBSCRIBE": "s", b"SUNSUBSCRIBE": "s"}


def run_step(side: Side, who: str, args: tuple[bytes, ...], state: dict[str, set]) -> Any:
    """One step; `state` models S's subscriptions, for how many replies an UNSUBSCRIBE
    without arguments gets (one per subscription of its kind, at least one)."""
    kind = KIND.get(args[0])
    if kind is None:
        return side.step(who, args, 1)
    subs = state[kind]
    n = len(args) - 1 if len(args) > 1 else max(1, len(subs))
    out = side.step(who, args, n)
    if args[0] in (b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE"):
        subs.update(args[1:])
    else:
        subs.difference_update(args[1:] if len(args) > 1 else set(subs))
    return out


def history(side: Side, steps: list[Step]) -> list[Any]:
    side.reset()
    state: dict[str, set] = {"c": set(), "p": set(), "s": set()}
    return [(who, args, run_step(side, who, args, state)) for who, args in steps]


@pytest.mark.compat(client="differential", family="pubsub")
@settings(SETTINGS, max_examples=EXAMPLES)
@given(steps=st.lists(step, min_size=1, max_size=15))
# Found by a run: a ZADD that changes nothing (the same score again) published "zadd".
@example(steps=[("S", (b"PSUBSCRIBE", b"*")), ("P", (b"ZADD", b"k1", b"-3", b"1")),
                ("P", (b"ZADD", b"k1", b"-3", b"1")), ("P", (b"ZADD", b"k1", b"5", b"1"))])
# Found by a run: an SMOVE of a member to the set it is in (a no-op in Redis) published
# srem and sadd.
@example(steps=[("S", (b"PSUBSCRIBE", b"*")), ("P", (b"SADD", b"k1", b"1")),
                ("P", (b"SMOVE", b"k1", b"k1", b"1"))])
def test_pubsub_differential(sides: list[Side], steps: list[Step]) -> None:
    want = history(sides[0], steps)
    for side in sides[1:]:
        got = history(side, steps)
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            assert w == g, (f"{side.name} differs from redis-server at step {i}:\n"
                            f"  redis-server: {w!r}\n  {side.name}: {g!r}\n"
                            "history (redis-server):\n" + "\n".join(map(repr, want[:i + 1])))
