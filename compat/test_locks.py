"""Locks built on Lua scripts, through different nodes of a 3-node cluster: redis-py's
`Lock` (acquire, extend, reacquire, release, expiry, blocking acquire) and dogpile.cache's
distributed lock (one creator for many concurrent readers on different nodes).

redis-py's Lock releases with a compare-and-delete script (GET, then DEL only if the
token is the caller's) and extends with GET + PEXPIRE: each script runs at the node that
received it, its commands as the cluster's quorum operations."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from dogpile.cache import make_region
from redis.exceptions import LockError, LockNotOwnedError

from tests.integration.conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(120)

lock_mark = pytest.mark.compat(client="redis-py", family="lua-lock")


@lock_mark
def test_a_lock_taken_through_one_node_excludes_the_others(cluster: Cluster) -> None:
    a, b, c = cluster.clients
    mine = a.lock("lock:one", timeout=10)
    theirs = b.lock("lock:one", timeout=10)
    assert mine.acquire(blocking=False)
    assert not theirs.acquire(blocking=False)
    assert mine.owned() and mine.locked()
    assert theirs.locked() and not theirs.owned()
    assert c.get("lock:one") == mine.local.token.decode()
    # extend and reacquire, seen through a third node
    assert mine.extend(20)
    assert 20_000 < c.pttl("lock:one") <= 30_000
    assert mine.reacquire()
    assert 5_000 < c.pttl("lock:one") <= 10_000
    # a release with someone else's token deletes nothing
    theirs.local.token = b"not-the-owner"
    with pytest.raises(LockNotOwnedError):
        theirs.release()
    theirs.local.token = b"not-the-owner"  # (release forgets the token it was given)
    with pytest.raises(LockNotOwnedError):
        theirs.extend(5)
    assert c.get("lock:one") == mine.local.token.decode()
    mine.release()
    assert c.get("lock:one") is None
    with pytest.raises(LockError):
        mine.release()
    theirs.local.token = None
    assert theirs.acquire(blocking=False)
    theirs.release()


@lock_mark
def test_the_owner_releases_through_another_node(cluster: Cluster) -> None:
    a, b, _ = cluster.clients
    held = a.lock("lock:handover", timeout=10)
    assert held.acquire(blocking=False)
    other_node = b.lock("lock:handover", timeout=10)
    other_node.local.token = held.local.token
    other_node.release()
    assert a.get("lock:handover") is None


@lock_mark
def test_a_blocked_acquire_through_another_node_gets_the_lock_when_it_is_released(
        cluster: Cluster) -> None:
    a, b, _ = cluster.clients
    held = a.lock("lock:wait", timeout=20)
    assert held.acquire(blocking=False)
    got: list[bool] = []

    def wait_for_it() -> None:
        lock = b.lock("lock:wait", timeout=20, sleep=0.05)
        got.append(lock.acquire(blocking=True, blocking_timeout=15))
        if got[-1]:
            lock.release()

    t = threading.Thread(target=wait_for_it)
    t.start()
    time.sleep(0.5)
    assert t.is_alive() and not got  # still waiting: the lock is held
    held.release()
    t.join(20)
    assert got == [True]


@lock_mark
def test_an_expired_lock_goes_to_the_next_and_its_old_owner_cannot_touch_it(
        cluster: Cluster) -> None:
    a, b, c = cluster.clients
    old = a.lock("lock:expire", timeout=0.5)
    assert old.acquire(blocking=False)
    new = b.lock("lock:expire", timeout=10, sleep=0.05)
    assert new.acquire(blocking=True, blocking_timeout=10)
    token = old.local.token
    with pytest.raises(LockNotOwnedError):
        old.release()
    old.local.token = token
    with pytest.raises(LockNotOwnedError):
        old.extend(10)
    assert c.get("lock:expire") == new.local.token.decode()
    new.release()


@lock_mark
def test_with_statement_locks_serialise_increments_from_every_node(cluster: Cluster) -> None:
    a = cluster.client(0)
    a.set("lock:counter", "0")
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        client = redis.Redis(host=HOST, port=cluster.ports[i % 3], decode_responses=True,
                             socket_timeout=10)
        try:
            for _ in range(5):
                with client.lock("lock:guard", timeout=10, sleep=0.02, blocking_timeout=30):
                    value = int(client.get("lock:counter"))
                    client.set("lock:counter", str(value + 1))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert a.get("lock:counter") == "30"


@pytest.mark.compat(client="dogpile.cache", family="lua-lock")
def test_dogpile_distributed_lock_lets_one_creator_run(cluster: Cluster) -> None:
    regions = []
    for port in cluster.ports:
        region = make_region().configure(
            "dogpile.cache.redis", expiration_time=60,
            arguments={"host": HOST, "port": port, "distributed_lock": True,
                       "thread_local_lock": False, "lock_timeout": 10,
                       "redis_expiration_time": 120, "socket_timeout": 10})
        regions.append(region)
    created: list[int] = []
    results: list[str] = []
    lock = threading.Lock()

    def create() -> str:
        with lock:
            created.append(1)
        time.sleep(0.5)  # slow: the others must wait, not create too
        return "expensive value"

    def reader(i: int) -> None:
        value = regions[i % 3].get_or_create("dogpile:key", create)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["expensive value"] * 9
    assert len(created) == 1
    # the value is the cache's for every node, and invalidation goes through one
    assert regions[2].get("dogpile:key") == "expensive value"
    regions[0].delete("dogpile:key")
    assert regions[1].get_or_create("dogpile:key", lambda: "fresh") == "fresh"
