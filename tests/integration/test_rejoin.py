"""A node that comes back is brought up to date by hinted handoff, also in a cluster of
exactly N nodes, where no fallback node exists to keep its writes: each write's
coordinator keeps the missing replica's copy and hands it off on its return.

Anti-entropy is turned off here (an interval far beyond the test), so whatever the
returning node holds came by handoff: before the coordinator kept hints, nothing did.
The node's holdings are read from its cluster port, where KEYS covers the partitions it
owns from its own data (no quorum read, so no read repair helps it).
"""

from __future__ import annotations

import threading
import time

import redis

from dynredis.core.keyslot import key_slot

from .conftest import ClusterFactory, wait_until

NO_AE = str(10**12)
VICTIM = 2
WRITE_S = 4.0


def owned_slots(client: redis.Redis, cluster_port: int) -> set[int]:
    """The hash slots the node serving `cluster_port` owns (is master of)."""
    slots: set[int] = set()
    for lo, hi, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
        if int(master[1]) == cluster_port:
            slots.update(range(lo, hi + 1))
    return slots


def test_a_node_back_after_missing_writes_holds_every_acknowledged_one_by_handoff(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory("--ae-interval-ms", NO_AE)
    slots = owned_slots(c.client(0), c.cluster_ports[VICTIM])
    assert slots
    c.kill_node(VICTIM)

    acked: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + WRITE_S

    def writer(w: int) -> None:
        client = c.client(w % VICTIM, decode_responses=True)
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            key = f"w{w}:{i}"
            if key_slot(key.encode()) not in slots:
                continue
            try:
                client.set(key, key)
            except redis.RedisError:
                with lock:
                    refused.append(key)
                continue
            with lock:
                acked.append(key)
        client.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acked and not refused
    hints = sum(int(c.info(i)["hints_stored"]) for i in range(VICTIM))
    assert hints == len(acked), "each write's coordinator keeps one hint for the down node"

    c.restart_node(VICTIM)
    probe = c.cluster_client(VICTIM)
    wanted = set(acked)

    def missing() -> set[str]:
        return wanted - set(probe.keys("*"))

    try:
        wait_until(lambda: not missing(), 60, interval=0.5,
                   what=f"node {VICTIM} to hold all {len(wanted)} acknowledged writes")
    except AssertionError as exc:
        lacking = missing()
        raise AssertionError(
            f"{exc}: {len(lacking)} missing, e.g. {sorted(lacking)[:5]}; hints stored "
            f"{[c.info(i)['hints_stored'] for i in range(3)]}") from None
    finally:
        probe.close()
    assert all(c.client(VICTIM).get(k) == k for k in acked[:: max(1, len(acked) // 50)])
    wait_until(lambda: all(c.info(i)["hints_stored"] == "0" for i in range(3)), 30,
               what="every hint dropped once delivered")
