"""Blocking pops in the simulated cluster: a client blocked through one node is woken by a
push through another (core/watches.py tells the watching node, core/blocking.py retries),
promptly in simulated time (notifications, not the once-a-second retry), and the safety
nets hold: lost notifications are caught by the periodic retry, a crashed watcher's
watches expire, and under loss, reordering and a crash no pushed item is lost or
invented (at-least-once: two clients may get the same item).

Commands run through the real builders of the Redis face (commands/blocking.py `start`,
the same call the connection makes), on real nodes.
"""

from __future__ import annotations

import random
from typing import Any

import hiredis
import pytest

from dynredis.commands import collection
from dynredis.commands.blocking import BLOCKERS, start
from dynredis.core.blocking import RETRY_MS
from dynredis.core.node import Config
from dynredis.core.watches import RENEW_MS, WATCH_TTL_MS

from .harness import NetConfig, SimCluster

CFG = Config(q=16, timeout_ms=500)


def parse(reply: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(reply)
    return reader.gets()


class Client:
    """One blocking command in flight through a node: its reply and when it came."""

    def __init__(self, sim: SimCluster, via: str, *args: bytes, proto: int = 2) -> None:
        self.sim = sim
        self.via = via
        self.reply: bytes | None = None
        self.at: float | None = None
        self.waiter: Any = None
        blocker = BLOCKERS[args[0].decode().lower()](list(args), proto)
        assert not isinstance(blocker, bytes), blocker

        def answer(reply: bytes) -> None:
            assert self.reply is None, "answered twice"
            self.reply, self.at = reply, sim.now

        def park(waiter: Any) -> bool:
            self.waiter = waiter
            return True

        assert sim.on_node(via, lambda node: start(node, blocker, proto, None, None, True,
                                                   answer, park), catch=False)

    @property
    def value(self) -> Any:
        assert self.reply is not None
        return parse(self.reply)

    def cancel(self) -> None:
        """The client disconnects (as the connection does when it is lost)."""
        waiter = self.waiter
        self.sim.on_node(self.via, lambda node: node.blocking.cancel(waiter))


def command(sim: SimCluster, via: str, *args: bytes, wait_ms: int = 2000) -> Any:
    """A non-blocking collection command through `via`, waited for; its parsed reply."""
    name = args[0].decode().lower()
    box: list[Any] = []
    if name in collection.PLANS:
        plan = collection.PLANS[name](list(args), 2)
        assert sim.on_node(via, lambda node: collection.drive(
            plan, lambda step, cb: collection.run_step(node, step, 2, cb, None, None),
            lambda reply: box.append((None, reply))))
    else:
        built = collection.BUILDERS[name](list(args), 2)
        assert not isinstance(built, bytes), built
        key, op = built
        assert sim.on_node(via, lambda node: node.coll.run(key, op, box.append,
                                                           (list(args), 2)))
    waited = 0
    while not box and waited < wait_ms:
        sim.run(1)
        waited += 1
    assert box, f"{args!r} through {via}: no answer"
    err, reply = box[0]
    assert err is None, err
    return parse(reply)


def run_until(sim: SimCluster, cond: Any, limit_ms: float) -> None:
    end = sim.now + limit_ms
    while not cond() and sim.now < end:
        sim.run(1)


def key_not_replicated_on(sim: SimCluster, name: str) -> bytes:
    for i in range(1000):
        key = b"q%d" % i
        if name not in sim.primaries(key)[1]:
            return key
    raise AssertionError("no such key")


@pytest.mark.parametrize("nodes", [3, 5])
def test_a_push_through_one_node_wakes_a_client_blocked_through_another_promptly(
        nodes: int) -> None:
    sim = SimCluster(nodes, seed=1, config=CFG)
    a, b = sim.names[0], sim.names[-1]
    # With 5 nodes, a key of which the blocked client's node holds no replica: it
    # watches the key on other nodes only, and its attempts are forwarded.
    key = key_not_replicated_on(sim, a) if nodes == 5 else b"queue"
    client = Client(sim, a, b"BLPOP", key, b"0")
    sim.run(300)
    assert client.reply is None
    pushed_at = sim.now
    assert command(sim, b, b"RPUSH", key, b"job") == 1
    run_until(sim, lambda: client.reply is not None, RETRY_MS)
    assert client.value == [key, b"job"]
    # Woken by the notification: a few message latencies (1-5 ms each), far from the
    # once-a-second retry.
    assert client.at - pushed_at < 50, client.at - pushed_at
    assert command(sim, a, b"LLEN", key) == 0


def test_a_push_wakes_bzpopmin_and_blmove_across_nodes() -> None:
    sim = SimCluster(3, seed=2, config=CFG)
    n0, n1, n2 = sim.names
    zclient = Client(sim, n0, b"BZPOPMIN", b"z1", b"z2", b"0")
    mclient = Client(sim, n1, b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0")
    sim.run(300)
    zadd_at = sim.now
    command(sim, n2, b"ZADD", b"z2", b"2.5", b"m")
    rpush_at = sim.now
    command(sim, n2, b"RPUSH", b"src", b"item")
    run_until(sim, lambda: zclient.reply is not None and mclient.reply is not None, RETRY_MS)
    assert zclient.value == [b"z2", b"m", b"2.5"]
    assert mclient.value == b"item"
    assert zclient.at - zadd_at < 50 and mclient.at - rpush_at < 50
    assert command(sim, n2, b"LRANGE", b"dst", b"0", b"-1") == [b"item"]
    assert command(sim, n2, b"LLEN", b"src") == 0


def test_clients_blocked_on_one_node_are_served_first_come_first_served() -> None:
    sim = SimCluster(3, seed=3, config=CFG)
    n0, _, n2 = sim.names
    first = Client(sim, n0, b"BRPOP", b"k", b"0")
    sim.run(50)
    second = Client(sim, n0, b"BRPOP", b"k", b"0")
    sim.run(300)
    command(sim, n2, b"RPUSH", b"k", b"one")
    run_until(sim, lambda: first.reply is not None, RETRY_MS)
    sim.run(300)
    assert first.value == [b"k", b"one"] and second.reply is None
    command(sim, n2, b"RPUSH", b"k", b"two")
    run_until(sim, lambda: second.reply is not None, RETRY_MS)
    assert second.value == [b"k", b"two"]


@pytest.mark.parametrize("seed", range(5))
def test_clients_blocked_on_different_nodes_get_different_items_while_the_cluster_is_healthy(
        seed: int) -> None:
    """Every push wakes the clients of every node at once; their attempts run at the
    key's first replica, one after the other, so each item goes to one client."""
    sim = SimCluster(3, seed=seed, config=CFG)
    rng = random.Random(seed)
    clients = [Client(sim, via, b"BLPOP", b"jobs", b"0") for via in sim.names
               for _ in range(3)]
    sim.run(300)
    pushed: list[bytes] = []
    for n in (1, 2, 3):  # a push of one item, then one of two, then one of three
        batch = [b"job%d" % (len(pushed) + i) for i in range(n)]
        command(sim, rng.choice(sim.names), b"RPUSH", b"jobs", *batch)
        pushed += batch
        sim.run(rng.uniform(0, 20))
    run_until(sim, lambda: sum(c.reply is not None for c in clients) == len(pushed),
              3 * RETRY_MS)
    sim.run(2 * RETRY_MS)  # time for a second delivery of any item
    got = [c.value[1] for c in clients if c.reply is not None]
    assert sorted(got) == sorted(pushed)
    assert sum(c.reply is None for c in clients) == len(clients) - len(pushed)


def test_lost_notifications_are_caught_by_the_retry_each_second() -> None:
    sim = SimCluster(3, seed=4, config=CFG)
    n0, _, n2 = sim.names
    sim.drop_kinds = {"bc"}  # every notification between nodes is lost
    client = Client(sim, n0, b"BLPOP", b"k", b"0")
    sim.run(300)
    pushed_at = sim.now
    command(sim, n2, b"RPUSH", b"k", b"late")
    run_until(sim, lambda: client.reply is not None, 3 * RETRY_MS)
    assert client.value == [b"k", b"late"]
    # Not woken by a notification but by the node's own retry (or by the push's delta
    # reaching the watcher, itself a replica here: its own write tells its clients).
    assert client.at - pushed_at <= RETRY_MS + 50


def test_a_timeout_answers_nil_and_a_deadline_in_flight_keeps_what_it_got() -> None:
    sim = SimCluster(3, seed=5, config=CFG)
    n0 = sim.names[0]
    started = sim.now
    client = Client(sim, n0, b"BLPOP", b"k", b"0.1")
    run_until(sim, lambda: client.reply is not None, 1000)
    assert client.reply == b"*-1\r\n"
    assert 100 <= client.at - started <= 100 + 2 * sim.tick_ms
    client3 = Client(sim, n0, b"BLMOVE", b"k", b"d", b"LEFT", b"LEFT", b"0.05", proto=3)
    run_until(sim, lambda: client3.reply is not None, 1000)
    assert client3.reply == b"_\r\n"
    assert not sim.nodes[n0].blocking.waiting


def test_a_client_that_goes_away_is_forgotten_and_takes_nothing() -> None:
    sim = SimCluster(3, seed=6, config=CFG)
    n0, _, n2 = sim.names
    gone = Client(sim, n0, b"BLPOP", b"k", b"0")
    sim.run(300)
    gone.cancel()
    sim.run(10)
    assert not sim.nodes[n0].blocking.waiting
    assert b"k" not in sim.nodes[n0].watches.listeners
    command(sim, n2, b"RPUSH", b"k", b"kept")
    sim.run(2 * RETRY_MS)
    assert gone.reply is None
    assert command(sim, n2, b"LRANGE", b"k", b"0", b"-1") == [b"kept"]


def test_watches_are_renewed_while_clients_wait_and_expire_when_the_watcher_crashes() -> None:
    sim = SimCluster(3, seed=7, config=CFG)
    n0, n1, n2 = sim.names
    Client(sim, n0, b"BLPOP", b"k", b"0")
    sim.run(100)
    for peer in (n1, n2):
        assert n0 in sim.nodes[peer].watches.watchers[b"k"]
    sim.run(3 * WATCH_TTL_MS)  # renewed all along
    for peer in (n1, n2):
        assert n0 in sim.nodes[peer].watches.watchers[b"k"]
    sim.crash(n0)
    sim.run(WATCH_TTL_MS + WATCH_TTL_MS + RENEW_MS)
    for peer in (n1, n2):
        assert b"k" not in sim.nodes[peer].watches.watchers


def test_the_last_client_leaving_a_key_unwatches_it_on_its_replicas() -> None:
    sim = SimCluster(3, seed=8, config=CFG)
    n0, n1, n2 = sim.names
    client = Client(sim, n0, b"BLPOP", b"k", b"0")
    sim.run(100)
    command(sim, n1, b"RPUSH", b"k", b"x")
    run_until(sim, lambda: client.reply is not None, RETRY_MS)
    sim.run(50)
    for peer in (n1, n2):
        assert b"k" not in sim.nodes[peer].watches.watchers


# --- under faults: nothing lost, nothing invented ------------------------------------------

SEEDS = range(30)


def run_queue(seed: int) -> None:
    """Consumers blocked through two nodes (each takes an item and blocks again a moment
    later, as a worker does), items pushed through any node, a third node crashes and
    restarts, messages are lost and reordered. (Not duplicated: a forwarded command
    delivered twice runs twice, and a pop's second item goes nowhere; peer links are
    TCP connections, which never duplicate.)"""
    rng = random.Random(seed)
    n_nodes = rng.randint(3, 5)
    net = NetConfig(loss_p=rng.choice([0.0, 0.02, 0.05]), reorder_p=rng.choice([0.0, 0.1]))
    sim = SimCluster(n_nodes, seed=seed, config=Config(q=16, timeout_ms=300,
                                                       ae_interval_ms=50),
                     net=net, strict=False)
    names = sim.names
    crashed = names[-1]
    keys = [b"jobs", b"other"]
    started: list[bytes] = []
    acked: list[bytes] = []
    got: list[bytes] = []
    errors: list[bytes] = []
    waiting: list[Client] = []
    reblock = [True]

    def consumer(via: str) -> None:
        c = Client(sim, via, b"BLPOP", *(keys if rng.random() < 0.5 else keys[::-1]), b"0")
        waiting.append(c)

    def served() -> None:
        for c in [c for c in waiting if c.reply is not None]:
            waiting.remove(c)
            value = c.value
            if isinstance(value, list):
                got.append(value[1])
            else:
                errors.append(c.reply)
            if reblock[0]:
                sim.after(rng.uniform(0.1, 5), consumer, c.via)

    def poll(ms: float) -> None:
        end = sim.now + ms
        while sim.now < end:
            sim.run(1)
            served()

    def push(via: str, key: bytes, item: bytes) -> bool:
        args = [b"RPUSH", key, item]
        built = collection.BUILDERS["rpush"](args, 2)
        assert not isinstance(built, bytes)

        def pushed(result: Any) -> None:
            if result[0] is None:
                acked.append(item)

        return sim.on_node(via, lambda node: node.coll.run(key, built[1], pushed, (args, 2)))

    for via in names[:2]:
        for _ in range(2):
            consumer(via)
    for i in range(40):
        poll(rng.uniform(0, 40))
        item, key, via = b"job%d" % i, rng.choice(keys), rng.choice(names)
        if push(via, key, item):
            started.append(item)
        if i == 15:
            sim.crash(crashed)
        if i == 30:
            sim.restart(crashed)
    sim.net = net.reliable()
    poll(3 * RETRY_MS)
    reblock[0] = False  # the workers stop; those still blocked find the queues empty
    poll(2 * RETRY_MS)
    assert sim.errors == [], sim.errors[:1]
    remaining: list[bytes] = []
    for key in keys:
        remaining += command(sim, names[0], b"LRANGE", key, b"0", b"-1")
    served()
    assert got, "no consumer was served"
    assert not remaining or not waiting, "items queued while a consumer waits"
    # Nothing invented; nothing both delivered and still queued; each item queued once.
    assert set(got) <= set(started), set(got) - set(started)
    assert set(remaining) <= set(started)
    assert not set(remaining) & set(got), set(remaining) & set(got)
    assert len(remaining) == len(set(remaining))
    # Every acknowledged push was delivered or is still queued, but for the items of
    # attempts that failed after popping (the client got the error instead, as an LPOP
    # would): at most one item per error reply.
    lost = set(acked) - set(got) - set(remaining)
    assert len(lost) <= len(errors), (lost, errors)
    # A client served twice the same item: at-least-once (README), allowed.


@pytest.mark.parametrize("seed", SEEDS)
def test_blocked_consumers_under_faults_get_only_pushed_items(seed: int) -> None:
    run_queue(seed)
