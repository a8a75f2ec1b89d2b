"""The sibling cap against real node processes (issue 12, finding 5): a key keeps every
acknowledged concurrent value. A write that would leave more than 100 is refused with
a clear error (Riak's max_siblings), never acknowledged and then dropped; a write whose
context covers them resolves them; a HyperLogLog under more concurrent PFADDs than the
cap still counts every element.
"""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from dynredis.commands import hll
from dynredis.commands.hll import Hll
from dynredis.core.obj import SIBLING_MAX

from .conftest import HOST, SOCKET_TIMEOUT_S, Cluster, parse_info, raw_command

pytestmark = pytest.mark.timeout(180)


def values_everywhere(cluster: Cluster, key: str) -> list[list[str]]:
    return [sorted(cluster.client(j).execute_command("GETCTX", key)[1])
            for j in range(cluster.nodes)]


def test_a_write_past_the_cap_is_refused_and_no_acknowledged_value_is_dropped(
        cluster: Cluster) -> None:
    k = "sib:cap"
    c = cluster.clients
    acknowledged = [f"v{i:03d}" for i in range(SIBLING_MAX)]
    for i, v in enumerate(acknowledged):  # each with the empty context: all concurrent
        assert c[i % 3].execute_command("SETCTX", k, "", v) == "OK"
    for j in range(cluster.nodes):
        with pytest.raises(redis.ResponseError, match=r"^TOOMANYSIBLINGS .*GETCTX"):
            c[j].execute_command("SETCTX", k, "", "one too many")
    assert values_everywhere(cluster, k) == [acknowledged] * cluster.nodes
    refusals = sum(int(parse_info(raw_command(c[j], "INFO", "stats"))["sibling_refusals"])
                   for j in range(cluster.nodes))
    assert refusals >= cluster.nodes

    # A write whose context covers the siblings resolves them, and writes go on.
    ctx, _ = c[1].execute_command("GETCTX", k)
    assert c[1].execute_command("SETCTX", k, ctx, "resolved") == "OK"
    assert values_everywhere(cluster, k) == [["resolved"]] * cluster.nodes
    assert c[2].execute_command("SETCTX", k, "", "again") == "OK"
    assert values_everywhere(cluster, k) == [["again", "resolved"]] * cluster.nodes


def test_a_plain_set_at_the_cap_overwrites_every_sibling(cluster: Cluster) -> None:
    k = "sib:plain"
    c = cluster.clients
    for i in range(SIBLING_MAX):
        assert c[0].execute_command("SETCTX", k, "", f"v{i}") == "OK"
    assert c[1].set(k, "plain") is True
    assert values_everywhere(cluster, k) == [["plain"]] * cluster.nodes


def test_more_concurrent_pfadds_than_the_cap_all_count(cluster: Cluster) -> None:
    """Each PFADD reads, joins the versions it read and writes with their context; with
    more of them in flight than the cap, a refused write is read and joined again
    (an HLL join is idempotent), so no element is lost and no client sees the cap.
    (Joining a hundred versions takes a node tens of milliseconds, so on a busy
    machine some PFADDs may time out: a client retries those, as it would.)"""
    concurrent = 2 * SIBLING_MAX
    reference = Hll(hll.empty())
    for i in range(concurrent):
        reference.add(f"e{i}".encode())

    async def pfadd(client: aioredis.Redis, element: str) -> None:
        while True:
            try:
                await client.pfadd("sib:hll", element)
                return
            except redis.ResponseError as exc:
                # A timeout, or a hand-over to the key's first replica that went
                # unanswered: PFADD is idempotent, so a client sends it again.
                if not str(exc).startswith("NOQUORUM") and "did not answer" not in str(exc):
                    raise

    async def main() -> list[int]:
        clients = [aioredis.Redis(host=HOST, port=p, socket_timeout=SOCKET_TIMEOUT_S,
                                  max_connections=concurrent) for p in cluster.ports]
        try:
            await asyncio.gather(*(pfadd(clients[i % 3], f"e{i}")
                                   for i in range(concurrent)))
            return list(await asyncio.gather(*(c.pfcount("sib:hll") for c in clients)))
        finally:
            for c in clients:
                await c.aclose()

    assert asyncio.run(main()) == [reference.count()] * 3
