"""Pub/sub without sockets: the cluster mechanism (cluster/pubsub.py) in a simulated
cluster, the local subscription table (server/subscriptions.py), and keyspace
notifications' flags and events (commands/notify.py) against Redis 7.0's."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.cluster.pubsub import ClusterPubSub
from dynredis.commands import notify
from dynredis.core.node import Config
from dynredis.server.subscriptions import PubSub, Subscriptions, SubState
from tests.sim.harness import SimCluster


class Receiver:
    """A node's subscribers as the mechanism sees them: a count per channel."""

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self.got: list[tuple[bytes, bytes, bool]] = []
        self.events: list[str] = []

    def deliver(self, channel: bytes, message: bytes, shard: bool) -> int:
        n = self.counts.get(channel, 0)
        if n:
            self.got.append((channel, message, shard))
        return n

    def local(self, what: str, args: list[bytes]) -> Any:
        return [c for c in self.counts if self.counts[c]] if what == "channels" else None


def make(n_nodes: int = 3) -> tuple[SimCluster, dict[str, ClusterPubSub], dict[str, Receiver]]:
    sim = SimCluster(n_nodes, seed=3, config=Config(n=3, r=2, w=2, q=16))
    receivers = {name: Receiver() for name in sim.names}
    mechs = {name: ClusterPubSub(node, receivers[name].deliver, receivers[name].local,
                                 receivers[name].events.append)
             for name, node in sim.nodes.items()}
    sim.run(2000)  # every node sees every other up
    return sim, mechs, receivers


def publish(sim: SimCluster, mechs: dict[str, ClusterPubSub], via: str, channel: bytes,
            message: bytes, shard: bool = False, wait_ms: int = 10_000) -> int:
    box: list[int] = []
    assert sim.on_node(via, lambda node: mechs[via].publish(channel, message, shard,
                                                            box.append), catch=False)
    waited = 0
    while not box and waited < wait_ms:
        sim.run(10)
        sim.on_node(via, lambda node: mechs[via].tick())
        waited += 10
    assert box, "no count"
    return box[0]


def test_a_message_reaches_every_node_and_the_publisher_sums_their_receivers() -> None:
    sim, mechs, receivers = make()
    a, b, c = sim.names
    receivers[a].counts[b"ch"] = 1
    receivers[b].counts[b"ch"] = 2
    for via in sim.names:
        assert publish(sim, mechs, via, b"ch", b"m-" + via.encode()) == 3
    for name in (a, b):
        assert [m for _, m, _ in receivers[name].got] == [b"m-" + v.encode() for v in sim.names]
    assert receivers[c].got == []
    assert publish(sim, mechs, c, b"other", b"x") == 0


def test_a_crashed_node_misses_messages_and_is_not_waited_for() -> None:
    sim, mechs, receivers = make()
    a, b, c = sim.names
    receivers[c].counts[b"ch"] = 5
    receivers[b].counts[b"ch"] = 1
    sim.crash(c)
    sim.run(3000)
    assert publish(sim, mechs, a, b"ch", b"while-down") == 1


def test_a_silent_peer_counts_as_no_receiver_once_the_request_times_out() -> None:
    sim, mechs, receivers = make()
    a, b, c = sim.names
    receivers[b].counts[b"ch"] = 1
    receivers[c].counts[b"ch"] = 1
    sim.stop(c)  # frozen: still seen up for a while, never answers
    assert publish(sim, mechs, a, b"ch", b"m") == 1
    assert not mechs[a].pending


def test_a_peer_only_suspected_still_gets_the_message() -> None:
    """Heartbeats late under load make a peer suspect (phi past half the threshold),
    not down: its subscribers must still get what is published (the cluster's
    PUBLISH counted 2 of 3 subscribers in a loaded test run)."""
    sim, mechs, receivers = make()
    a, b, c = sim.names
    receivers[b].counts[b"ch"] = 1
    receivers[c].counts[b"ch"] = 1
    sim.stop(c)
    waited = 0
    while sim.nodes[a].member_status(c) == "up" and waited < 5000:
        sim.run(10)
        waited += 10
    assert sim.nodes[a].member_status(c) == "suspect"
    sim.start(c)
    assert publish(sim, mechs, a, b"ch", b"m") == 2
    assert receivers[c].got == [(b"ch", b"m", False)]


def test_publish_without_a_count_waits_for_nothing() -> None:
    sim, mechs, receivers = make()
    a, b, _ = sim.names
    receivers[b].counts[b"ev"] = 1
    sim.on_node(a, lambda node: mechs[a].publish(b"ev", b"k", False, None))
    sim.run(100)
    assert receivers[b].got == [(b"ev", b"k", False)]
    assert not mechs[a].pending


def test_a_query_gathers_every_up_nodes_answer() -> None:
    sim, mechs, receivers = make()
    a, b, c = sim.names
    receivers[b].counts[b"x"] = 1
    receivers[c].counts[b"y"] = 1
    box: list[Any] = []
    sim.on_node(a, lambda node: mechs[a].query("channels", [], box.append))
    sim.run(100)
    assert len(box) == 1
    assert box[0][0] == []  # this node's answer first
    assert sorted(x for answer in box[0][1:] for x in answer) == [b"x", b"y"]


def test_notify_keyspace_events_is_one_setting_the_latest_wins_and_a_restarted_node_learns_it(
        ) -> None:
    sim, mechs, receivers = make()
    a, b, c = sim.names
    sim.on_node(a, lambda node: mechs[a].set_events("KEA"))
    sim.run(100)
    assert {n: mechs[n].events for n in sim.names} == {a: "KEA", b: "KEA", c: "KEA"}
    assert receivers[c].events == ["KEA"]
    sim.run(10)
    sim.on_node(b, lambda node: mechs[b].set_events("Kx"))
    sim.run(100)
    assert {mechs[n].events for n in sim.names} == {"Kx"}
    # An older setting arriving late changes nothing.
    sim.on_node(c, lambda node: mechs[c]._on_events(a, ("pne", "KEA", 1)))
    assert mechs[c].events == "Kx"
    # A node that comes back knows nothing until a peer tells it (on its link coming up).
    sim.crash(c)
    sim.restart(c)
    fresh = Receiver()
    mechs[c] = ClusterPubSub(sim.nodes[c], fresh.deliver, fresh.local, fresh.events.append)
    sim.on_node(a, lambda node: mechs[a].tell(c))
    sim.run(100)
    assert mechs[c].events == "Kx" and fresh.events == ["Kx"]


# --- the local table ---------------------------------------------------------------------


class Conn:
    def __init__(self, cid: int, proto: int = 2) -> None:
        self.id = cid
        self.proto = proto
        self.subs = SubState()
        self.pushed: list[bytes] = []

    def push(self, data: bytes) -> None:
        self.pushed.append(data)


def test_deliver_pushes_redis_messages_to_channel_and_pattern_subscribers() -> None:
    t = Subscriptions()
    c2, c3 = Conn(1, 2), Conn(2, 3)
    t.add(c2, "channels", b"news")
    t.add(c3, "patterns", b"n*")
    t.add(c3, "shard", b"news")
    assert t.deliver(b"news", b"hi", False) == 2
    assert c2.pushed == [b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"]
    assert c3.pushed == [b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"]
    assert t.deliver(b"news", b"s", True) == 1
    assert c3.pushed[-1] == b">3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$1\r\ns\r\n"
    assert (c2.subs.count, c3.subs.count, len(c3.subs.shard)) == (1, 1, 1)
    assert t.local("numsub", [b"news", b"none"]) == [1, 0]
    assert t.local("numpat", []) == [b"n*"]
    assert t.local("shardchannels", [b"n*"]) == [b"news"]
    t.drop(c3)
    assert not c3.subs.any
    assert t.local("numpat", []) == [] and t.local("shardnumsub", [b"news"]) == [0]
    assert t.deliver(b"news", b"again", False) == 1


def test_a_message_reaches_each_matching_pattern_in_the_order_subscribed() -> None:
    """Among thousands of patterns (matched in C where built), the ones the channel
    matches, each once per subscriber, in the order they were subscribed."""
    t = Subscriptions()
    a, b = Conn(1, 2), Conn(2, 2)
    for i in range(5000):
        t.add(a, "patterns", b"p%d*" % i)
    t.add(b, "patterns", b"*")
    t.add(b, "patterns", b"p4?")
    t.add(a, "patterns", b"[p]4")
    assert t.deliver(b"p42", b"m", False) == 4
    got = [d.split(b"\r\n")[4] for d in a.pushed]
    assert got == [b"p4*", b"p42*"]
    assert [d.split(b"\r\n")[4] for d in b.pushed] == [b"*", b"p4?"]
    assert t.deliver(b"p4", b"m", False) == 3  # p4*, [p]4 and *


# --- keyspace notifications --------------------------------------------------------------


@pytest.mark.parametrize("given, shown", [
    # What redis-server 7.0 answers CONFIG GET with after CONFIG SET of `given`.
    ("KEA", "AKE"), ("Kg$lshzxetdnm", "AKm"), ("g", "g"), ("AKEmn", "AKEm"),
    ("g$lshzxet", "g$lshzxet"), ("g$lshzxetd", "A"), ("", ""), ("Elx", "lxE"),
    ("En", "nE"), ("Enm$hls", "$lshnEm"),
])
def test_events_flags_are_written_back_as_redis_writes_them(given: str, shown: str) -> None:
    flags = notify.parse_events(given)
    assert flags is not None
    assert notify.format_events(flags) == shown


def test_n_is_kept_in_effect_after_a_though_not_written_back() -> None:
    flags = notify.parse_events("AKEn")
    assert flags is not None
    assert notify.format_events(flags) == "AKE"
    assert notify.parse_events(notify.stored_events(flags)) == flags


def test_an_unknown_events_letter_is_refused() -> None:
    assert notify.parse_events("KQ") is None


class Ctx:
    """A command's context as notify uses it: the node's time and the pub/sub facility."""

    class _Node:
        now = 1_000_000

    def __init__(self, flags: str) -> None:
        self.node = self._Node()
        self.published: list[tuple[bytes, bytes]] = []
        outer = self

        class _PS:
            def __init__(self) -> None:
                self.flags = notify.parse_events(flags) or 0

            def publish(self, channel: bytes, message: bytes, shard: bool, cb: Any) -> None:
                outer.published.append((channel, message))

        self.pubsub = _PS()


@pytest.mark.parametrize("args, reply, events", [
    # What redis-server 7.0 publishes on __keyevent@0__:* for the command and its reply.
    ([b"set", b"k", b"v"], b"+OK\r\n", [b"set"]),
    ([b"set", b"k", b"v", b"EX", b"100"], b"+OK\r\n", [b"set", b"expire"]),
    ([b"set", b"k", b"v", b"NX"], b"$-1\r\n", []),
    ([b"set", b"k", b"w", b"XX", b"GET"], b"$1\r\nv\r\n", [b"set"]),
    ([b"setnx", b"k", b"x"], b":0\r\n", []),
    ([b"incrby", b"n", b"2"], b":3\r\n", [b"incrby"]),
    ([b"expire", b"k", b"100"], b":1\r\n", [b"expire"]),
    ([b"expire", b"k", b"-1"], b":1\r\n", [b"del"]),
    ([b"getdel", b"k"], b"$-1\r\n", []),
    ([b"getex", b"k", b"PERSIST"], b"$1\r\nv\r\n", [b"persist"]),
    ([b"hset", b"h", b"f", b"v"], b":0\r\n", [b"hset"]),
    ([b"hsetnx", b"h", b"f", b"v"], b":0\r\n", []),
    ([b"sadd", b"s", b"a"], b":0\r\n", []),
    ([b"zincrby", b"z", b"1", b"a"], b"$1\r\n2\r\n", [b"zincr"]),
    ([b"lpop", b"l"], b"$1\r\nx\r\n", [b"lpop"]),
    ([b"set", b"k", b"v"], b"-NOQUORUM write needed 2 of 3 replicas, got 1\r\n", []),
])
def test_a_command_and_its_reply_give_redis_events(args: list[bytes], reply: bytes,
                                                   events: list[bytes]) -> None:
    c = Ctx("E$ghlsz")
    notify.emit(c, args[0].decode(), args, reply)
    assert [ch.split(b":", 1)[1] for ch, _ in c.published] == events
    assert all(key == args[1] for _, key in c.published)


def test_keyspace_before_keyevent_and_only_the_classes_asked_for() -> None:
    c = Ctx("K$")
    notify.emit(c, "mset", [b"mset", b"a", b"1", b"b", b"2"], b"+OK\r\n")
    assert c.published == [(b"__keyspace@0__:a", b"set"), (b"__keyspace@0__:b", b"set")]
    c = Ctx("KEl")  # lists only: a string write says nothing
    notify.emit(c, "set", [b"set", b"k", b"v"], b"+OK\r\n")
    notify.emit(c, "rpoplpush", [b"rpoplpush", b"l", b"l2"], b"$1\r\na\r\n")
    assert c.published == [(b"__keyspace@0__:l2", b"lpush"), (b"__keyevent@0__:lpush", b"l2"),
                           (b"__keyspace@0__:l", b"rpop"), (b"__keyevent@0__:rpop", b"l")]
    c = Ctx("A")  # classes but neither K nor E: nothing, as Redis
    notify.emit(c, "set", [b"set", b"k", b"v"], b"+OK\r\n")
    assert c.published == []


def test_the_pubsub_facility_follows_the_clusters_setting() -> None:
    sim = SimCluster(1, seed=1, config=Config(n=1, r=1, w=1, q=8))
    ps = PubSub(sim.nodes[sim.names[0]])
    ps.set_events("KEA")
    assert ps.events == "KEA" and ps.flags == notify.parse_events("KEA")


@pytest.mark.parametrize("args, when", [
    ([b"set", b"k", b"v", b"EX", b"10"], 1_010_000), ([b"set", b"k", b"v", b"px", b"5"], 1_000_005),
    ([b"set", b"k", b"v", b"PXAT", b"2000000"], 2_000_000),
    ([b"setex", b"k", b"3", b"v"], 1_003_000), ([b"psetex", b"k", b"3", b"v"], 1_000_003),
    ([b"expire", b"k", b"2"], 1_002_000), ([b"pexpireat", b"k", b"1500000"], 1_500_000),
    ([b"expireat", b"k", b"1500"], 1_500_000), ([b"getex", b"k", b"EXAT", b"1001"], 1_001_000),
])
def test_the_expiry_a_write_gave_is_what_the_expired_watch_waits_for(
        args: list[bytes], when: int) -> None:
    assert notify.expiry_of(args[0].decode(), args, 1_000_000) == when


def test_del_follows_the_removal_that_emptied_the_key_in_redis_order() -> None:
    smove = notify.events_of(Ctx(""), "smove", [b"smove", b"s", b"t", b"m"], b":1\r\n")
    assert notify.with_del(smove, b"s") == [("s", b"srem", b"s"), ("g", b"del", b"s"),
                                            ("s", b"sadd", b"t")]
    lmove = notify.events_of(Ctx(""), "lmove", [b"lmove", b"a", b"b", b"LEFT", b"RIGHT"],
                             b"$1\r\nx\r\n")
    assert notify.with_del(lmove, b"a") == [("l", b"rpush", b"b"), ("l", b"lpop", b"a"),
                                            ("g", b"del", b"a")]
