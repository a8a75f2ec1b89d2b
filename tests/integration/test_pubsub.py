"""Pub/sub on a real 3-node cluster: subscribers on every node receive what is published
through any node and PUBLISH counts them all; pattern and shard subscriptions; PUBSUB's
cluster-wide figures; RESP3 pushes between ordinary replies; keyspace notifications of
writes made through another node; a subscriber that stops reading is cut off at
client-output-buffer-limit pubsub; a node that is down misses what is published."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis

from .conftest import HOST, Cluster, resp_command, wait_until

pytestmark = pytest.mark.timeout(240)


def drain(ps: redis.client.PubSub, want: int, timeout: float = 10.0) -> list[dict]:
    """The next `want` messages (not subscribe confirmations) of `ps`, in order."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        m = ps.get_message(timeout=0.2)
        if m is not None and m["type"] in ("message", "pmessage", "smessage"):
            got.append(m)
    return got


def subscribed(ps: redis.client.PubSub, n: int) -> None:
    """Wait for `n` subscribe confirmations."""
    seen = 0
    deadline = time.monotonic() + 10
    while seen < n and time.monotonic() < deadline:
        m = ps.get_message(timeout=0.2)
        if m is not None and m["type"] in ("subscribe", "psubscribe", "ssubscribe"):
            seen += 1
    assert seen == n


@pytest.fixture
def pubsubs(cluster: Cluster) -> Iterator[list[redis.client.PubSub]]:
    made = [cluster.client(i).pubsub() for i in range(3)]
    yield made
    for ps in made:
        ps.close()


def test_a_message_published_through_any_node_reaches_subscribers_on_every_node(
        cluster: Cluster, pubsubs: list[redis.client.PubSub]) -> None:
    for ps in pubsubs:
        ps.subscribe("news")
        subscribed(ps, 1)
    for i, publisher in enumerate(cluster.clients):
        assert publisher.publish("news", f"from {i}") == 3
    for ps in pubsubs:
        got = drain(ps, 3)
        assert [(m["channel"], m["data"]) for m in got] == [
            ("news", "from 0"), ("news", "from 1"), ("news", "from 2")]
    assert cluster.clients[1].publish("nobody-listens", "x") == 0


def test_pattern_and_shard_subscriptions_across_nodes(
        cluster: Cluster, pubsubs: list[redis.client.PubSub]) -> None:
    a, b, c = pubsubs
    a.psubscribe("orders.*")
    subscribed(a, 1)
    b.subscribe("orders.eu")
    subscribed(b, 1)
    c.ssubscribe("{shard}.x")
    subscribed(c, 1)
    # A pattern subscriber and a channel subscriber on two other nodes: two receivers.
    assert cluster.clients[2].publish("orders.eu", "o1") == 2
    assert cluster.clients[2].publish("orders.us", "o2") == 1
    got = drain(a, 2)
    assert [(m["type"], m["pattern"], m["channel"], m["data"]) for m in got] == [
        ("pmessage", "orders.*", "orders.eu", "o1"), ("pmessage", "orders.*", "orders.us", "o2")]
    assert [m["data"] for m in drain(b, 1)] == ["o1"]
    # Shard channels are their own namespace: PUBLISH does not reach SSUBSCRIBE.
    assert cluster.clients[0].publish("{shard}.x", "plain") == 0
    assert cluster.clients[0].spublish("{shard}.x", "sharded") == 1
    assert [(m["type"], m["data"]) for m in drain(c, 1)] == [("smessage", "sharded")]


def test_pubsub_figures_are_the_clusters(
        cluster: Cluster, pubsubs: list[redis.client.PubSub]) -> None:
    a, b, c = pubsubs
    a.subscribe("fig.1", "fig.2")
    subscribed(a, 2)
    b.subscribe("fig.1")
    subscribed(b, 1)
    c.psubscribe("fig.*", "other.*")
    subscribed(c, 2)
    b.psubscribe("fig.*")
    subscribed(b, 1)
    c.ssubscribe("sfig")
    subscribed(c, 1)
    for client in cluster.clients:
        assert client.pubsub_numsub("fig.1", "fig.2", "fig.3") == [
            ("fig.1", 2), ("fig.2", 1), ("fig.3", 0)]
        assert sorted(client.pubsub_channels("fig.*")) == ["fig.1", "fig.2"]
        assert client.pubsub_numpat() == 2  # unique patterns, across nodes
        assert client.pubsub_shardchannels() == ["sfig"]
        assert client.pubsub_shardnumsub("sfig") == [("sfig", 1)]


def test_resp2_subscriber_mode_refuses_other_commands(cluster: Cluster) -> None:
    with socket.create_connection((HOST, cluster.ports[1]), timeout=10) as s:
        s.sendall(resp_command(b"SUBSCRIBE", b"m1") + resp_command(b"GET", b"k")
                  + resp_command(b"PING") + resp_command(b"UNSUBSCRIBE")
                  + resp_command(b"GET", b"never-set"))
        want = (b"*3\r\n$9\r\nsubscribe\r\n$2\r\nm1\r\n:1\r\n"
                b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                b"QUIT / RESET are allowed in this context\r\n"
                b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
                b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nm1\r\n:0\r\n"
                b"$-1\r\n")
        got = b""
        while len(got) < len(want):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        assert got == want


def read_exactly(s: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    return got


def test_resp3_pushes_come_between_ordinary_replies(cluster: Cluster) -> None:
    cluster.clients[2].set("r3key", "v")
    with socket.create_connection((HOST, cluster.ports[0]), timeout=10) as s:
        s.sendall(resp_command(b"HELLO", b"3"))
        hello = s.recv(65536)
        assert hello.startswith(b"%")
        s.sendall(resp_command(b"SUBSCRIBE", b"r3"))
        assert read_exactly(s, 26) == b">3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n"
        # The subscribed RESP3 connection runs ordinary commands between its pushes.
        assert cluster.clients[1].publish("r3", "one") == 1
        s.sendall(resp_command(b"GET", b"r3key"))
        want = b">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$3\r\none\r\n$1\r\nv\r\n"
        assert read_exactly(s, len(want)) == want
        # Its own PUBLISH: the push first, then the count, as from Redis.
        s.sendall(resp_command(b"PUBLISH", b"r3", b"two"))
        want = b">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$3\r\ntwo\r\n:1\r\n"
        assert read_exactly(s, len(want)) == want


def test_keyspace_notifications_of_writes_through_other_nodes(cluster: Cluster) -> None:
    a, b, c = cluster.clients
    a.config_set("notify-keyspace-events", "KEA")
    try:
        wait_until(lambda: c.config_get("notify-keyspace-events")["notify-keyspace-events"]
                   == "AKE", 10, what="the setting to reach every node")
        ps = b.pubsub()
        ps.psubscribe("__keyevent@0__:*")
        ps.subscribe("__keyspace@0__:kn:1")
        subscribed(ps, 2)
        c.set("kn:1", "v", ex=100)
        a.hset("kn:h", mapping={"f": "1"})
        c.delete("kn:1", "kn:none")
        got = [(m["channel"], m["data"]) for m in drain(ps, 7)]
        assert got == [
            ("__keyspace@0__:kn:1", "set"), ("__keyevent@0__:set", "kn:1"),
            ("__keyspace@0__:kn:1", "expire"), ("__keyevent@0__:expire", "kn:1"),
            ("__keyevent@0__:hset", "kn:h"),
            ("__keyspace@0__:kn:1", "del"), ("__keyevent@0__:del", "kn:1")]
        ps.close()
    finally:
        a.config_set("notify-keyspace-events", "")
    wait_until(lambda: all(x.config_get("notify-keyspace-events")["notify-keyspace-events"]
                           == "" for x in cluster.clients), 10, what="notifications off")


def test_a_subscriber_that_stops_reading_is_cut_off_at_the_pubsub_limit(
        cluster: Cluster) -> None:
    node = cluster.client(0)
    node.config_set("client-output-buffer-limit", "pubsub 256kb 0 0")
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((HOST, cluster.ports[0]))
        slow.sendall(resp_command(b"CLIENT", b"SETNAME", b"slowsub")
                     + resp_command(b"SUBSCRIBE", b"flood"))
        wait_until(lambda: cluster.clients[0].pubsub_numsub("flood") == [("flood", 1)], 10,
                   what="the slow subscriber")
        # Never read again: messages pile up in the node for it until it passes the
        # limit and is closed; PUBLISH then counts no receiver.
        big = "x" * 65536
        publisher = cluster.clients[1]
        counts = []
        for _ in range(2000):
            counts.append(publisher.publish("flood", big))
            if counts[-1] == 0:
                break
        assert counts[0] == 1 and counts[-1] == 0, counts[-5:]
        names = [c.get("name") for c in node.client_list()]
        assert "slowsub" not in names
        assert node.pubsub_numsub("flood") == [("flood", 0)]
        slow.close()
    finally:
        node.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")


def test_a_node_that_is_down_misses_messages_and_is_not_counted(cluster: Cluster) -> None:
    ps = cluster.client(2).pubsub()
    ps.subscribe("down")
    subscribed(ps, 1)
    ps0 = cluster.client(0).pubsub()
    ps0.subscribe("down")
    subscribed(ps0, 1)
    assert cluster.clients[1].publish("down", "before") == 2
    cluster.kill_node(2)
    try:
        wait_until(lambda: cluster.clients[1].publish("down", "probe") == 1, 30,
                   what="the publisher to stop counting the dead node")
        assert [m["data"] for m in drain(ps0, 1)] == ["before"]
    finally:
        ps.close()
        ps0.close()
        cluster.restart_node(2)


def test_an_expired_event_when_a_key_given_an_expiry_through_another_node_expires(
        cluster: Cluster) -> None:
    a, b, c = cluster.clients
    a.config_set("notify-keyspace-events", "Ex")
    try:
        wait_until(lambda: c.config_get("notify-keyspace-events")["notify-keyspace-events"]
                   == "xE", 10, what="the setting to reach every node")
        ps = b.pubsub()
        ps.subscribe("__keyevent@0__:expired")
        subscribed(ps, 1)
        c.set("kx:1", "v", px=300)
        c.set("kx:2", "v", px=300)
        c.persist("kx:2")  # no longer expires: no event
        c.set("kx:3", "v")
        a.pexpire("kx:3", 400)
        got = [(m["channel"], m["data"]) for m in drain(ps, 2)]
        assert sorted(got) == [("__keyevent@0__:expired", "kx:1"),
                               ("__keyevent@0__:expired", "kx:3")]
        assert drain(ps, 1, timeout=1.0) == []
        ps.close()
    finally:
        a.config_set("notify-keyspace-events", "")


NEW_AND_MISS = [("GET", "kn2:none"), ("SETNX", "kn2:s", "v"), ("SETNX", "kn2:s", "w"),
                ("APPEND", "kn2:a", "x"), ("APPEND", "kn2:a", "y"), ("HSET", "kn2:h", "f", "v"),
                ("HSET", "kn2:h", "g", "v"), ("HGET", "kn2:none", "f"), ("HGET", "kn2:h", "f"),
                ("LPUSH", "kn2:l", "x"), ("LPUSH", "kn2:l", "y"), ("GET", "kn2:s"),
                ("SADD", "kn2:set", "m"), ("SCARD", "kn2:none")]


def _events_of(writer: redis.Redis, setter: redis.Redis, subscriber: redis.Redis,
               flags: str) -> list[tuple[str, str]]:
    writer.delete(*{args[1] for args in NEW_AND_MISS})
    setter.config_set("notify-keyspace-events", flags)
    try:
        ps = subscriber.pubsub()
        ps.psubscribe("__keyevent@0__:*")
        ps.subscribe("kn2:end")  # a marker: what was published before it has arrived
        subscribed(ps, 2)
        for args in NEW_AND_MISS:
            writer.execute_command(*args)
        writer.publish("kn2:end", "end")
        got = []
        while True:
            m = drain(ps, 1)
            assert m, f"the marker did not arrive after {got}"
            if m[0]["channel"] == "kn2:end":
                break
            got.append((m[0]["channel"], m[0]["data"]))
        ps.close()
        return got
    finally:
        setter.config_set("notify-keyspace-events", "")


def test_new_and_keymiss_events_as_redis(cluster: Cluster, real_redis: redis.Redis) -> None:
    """n: a write that created its key (as its own read found it missing) publishes
    "new" before its own event; m: a read of a missing key publishes "keymiss"; A
    includes neither. The same events as redis-server's."""
    a, b, c = cluster.clients
    wait = "the setting to reach every node"
    for flags, shown in (("Enm$hls", "$lshnEm"), ("EA", "AE")):
        theirs = _events_of(real_redis, real_redis, real_redis, flags)
        a.config_set("notify-keyspace-events", flags)
        wait_until(lambda s=shown: c.config_get("notify-keyspace-events")
                   ["notify-keyspace-events"] == s, 10, what=wait)
        ours = _events_of(c, a, b, flags)
        assert ours == theirs
        if "n" in flags:
            assert ("__keyevent@0__:new", "kn2:h") in theirs
            assert ("__keyevent@0__:keymiss", "kn2:none") in theirs
        else:
            assert not [e for e in theirs if e[0].endswith(("new", "keymiss"))]
    wait_until(lambda: all(x.config_get("notify-keyspace-events")["notify-keyspace-events"]
                           == "" for x in cluster.clients), 10, what="notifications off")
