"""A restarted node does not serve before it can (issue: hostile input, finding 12).

It used to accept clients about 2.5 s before its peers' links to it were up and answer
them NOQUORUM meanwhile (6,230 errors in one run). Now data commands get Redis'
`-LOADING` (clients that retry on LOADING retry) until the node has heard from every
other member or counts it as down."""

from __future__ import annotations

import collections
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .conftest import HOST, Cluster, ClusterFactory

CLIENTS = 8


class Loop(threading.Thread):
    """SET then GET of fresh keys against one port, reconnecting whenever the node is
    gone; counts every reply by its kind (ok, or the error's first word)."""

    def __init__(self, port: int, j: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.j = j
        self.stop = threading.Event()
        self.replies: collections.Counter[str] = collections.Counter()
        self.since_restart: collections.Counter[str] = collections.Counter()
        self.restarted = False
        self.wrong: list[str] = []

    def run(self) -> None:
        i = 0
        client = None
        while not self.stop.is_set():
            if client is None:
                # No retries inside redis-py (it retries LOADING by itself): every
                # reply is counted as the node gave it.
                client = redis.Redis(host=HOST, port=self.port, socket_timeout=10,
                                     socket_connect_timeout=1, decode_responses=True,
                                     retry=Retry(NoBackoff(), 0))
            i += 1
            try:
                client.set(f"loop:{self.j}:{i}", str(i))
                value = client.get(f"loop:{self.j}:{i}")
                if value != str(i):
                    self.wrong.append(f"loop:{i} read {value!r}")
                kind = "ok"
            except redis.ResponseError as exc:
                kind = str(exc).split()[0]
            except redis.BusyLoadingError:  # a ConnectionError to redis-py
                kind = "LOADING"
            except (redis.ConnectionError, redis.TimeoutError):
                client.close()
                client = None
                time.sleep(0.01)
                continue
            self.replies[kind] += 1
            if self.restarted:
                self.since_restart[kind] += 1


def test_a_restarted_node_answers_loading_until_linked_never_noquorum(
        cluster_factory: ClusterFactory) -> None:
    c: Cluster = cluster_factory()
    loops = [Loop(c.ports[1], j) for j in range(CLIENTS)]
    for loop in loops:
        loop.start()
    try:
        deadline = time.monotonic() + 30
        while sum(x.replies["ok"] for x in loops) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        c.kill_node(1)
        time.sleep(1.0)  # its peers notice it is gone
        for loop in loops:
            loop.restarted = True
        c.restart_node(1)  # the node's own command line; waits for a whole cluster
        deadline = time.monotonic() + 30
        while sum(x.since_restart["ok"] for x in loops) < 500 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for loop in loops:
            loop.stop.set()
        for loop in loops:
            loop.join(30)
    replies = sum((x.replies for x in loops), collections.Counter())
    since = sum((x.since_restart for x in loops), collections.Counter())
    assert since["ok"] >= 500, since
    assert set(replies) <= {"ok", "LOADING"}, replies
    assert not [w for x in loops for w in x.wrong]
