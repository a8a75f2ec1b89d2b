"""Differential test of the collection families on a real 3-node cluster.

The collection semantics tests (tests/integration/test_collection_semantics*.py) compare
hashes, sets, sorted sets, lists and geo with a real redis-server through one replica's
view in-process; here the same generated histories and the same comparisons (replies
exact, unordered ones sorted, random ones by their rules; RENAME, COPY and SORT across
every type) run against a real 1-node dynredis and a real 3-node dynredis (N=3 R=2
W=2), on the latter each command through the next node in turn: every command is
coordinated by another node than the one before, after a quorum sync of the key, and
its writes replicate before the reply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collharness import ClusterRunner
from tests.integration import test_collection_semantics as hashes
from tests.integration import test_collection_semantics_geo as geo
from tests.integration import test_collection_semantics_keys as keys
from tests.integration import test_collection_semantics_lists as lists
from tests.integration import test_collection_semantics_sets as sets
from tests.integration import test_collection_semantics_zsets as zsets
from tests.integration.conftest import ClusterFactory

EXAMPLES = int(os.environ.get("DYNREDIS_DIFF_EXAMPLES", "100"))

pytestmark = pytest.mark.timeout(600)
CLUSTER_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture,
                                                   HealthCheck.data_too_large])
MODULES = (hashes, sets, zsets, lists, geo, keys)


@pytest.fixture(scope="module", params=["3-node", "1-node"])
def runner(request: pytest.FixtureRequest,
           module_cluster_factory: ClusterFactory) -> Iterator[ClusterRunner]:
    """A 3-node cluster (N=3 R=2 W=2), commands through its nodes in turn; a 1-node
    cluster (N=R=W=1)."""
    if request.param == "3-node":
        c = module_cluster_factory("--n", "3", "--r", "2", "--w", "2", nodes=3)
    else:
        c = module_cluster_factory("--n", "1", "--r", "1", "--w", "1", nodes=1)
    r = ClusterRunner(c.ports)
    yield r
    r.close()


@contextmanager
def on_cluster(runner: ClusterRunner, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The semantics modules' checks, with the cluster where they made a LocalRunner."""

    def fresh() -> ClusterRunner:
        runner.flushall()
        return runner

    before = runner.turn
    with monkeypatch.context() as m:
        for mod in MODULES:
            m.setattr(mod, "LocalRunner", fresh)
        yield
    assert runner.turn > before, "the check ran no command on the cluster"


@pytest.fixture(scope="module")
def real(real_redis: redis.Redis) -> hashes.Real:
    return hashes.Real(real_redis.port)


@pytest.fixture(scope="module")
def raw_real(real_redis: redis.Redis) -> Iterator[lists.RawReal]:
    conn = lists.RawReal(real_redis.port, 2)
    yield conn
    conn.close()


@pytest.mark.compat(client="differential", family="hashes")
@CLUSTER_SETTINGS
@given(st.lists(hashes.hash_cmd, min_size=1, max_size=25))
def test_hashes_on_a_cluster(real, runner, monkeypatch, seq):
    with on_cluster(runner, monkeypatch):
        hashes.check(real, seq)


@pytest.mark.compat(client="differential", family="sets")
@CLUSTER_SETTINGS
@given(sets.setup, st.lists(st.one_of(sets.set_cmd, sets.algebra_cmd), min_size=5,
                            max_size=30))
def test_sets_on_a_cluster(real, runner, monkeypatch, start, seq):
    with on_cluster(runner, monkeypatch):
        sets.check(real, start + seq)


@pytest.mark.compat(client="differential", family="sorted-sets")
@CLUSTER_SETTINGS
@given(st.lists(zsets.any_cmd, min_size=1, max_size=25))
def test_sorted_sets_on_a_cluster(real, runner, monkeypatch, seq):
    with on_cluster(runner, monkeypatch):
        zsets.check(real, seq)


@pytest.mark.compat(client="differential", family="lists")
@CLUSTER_SETTINGS
@given(lists.history)
def test_lists_on_a_cluster(raw_real, runner, monkeypatch, seq):
    with on_cluster(runner, monkeypatch):
        lists.check(raw_real, seq)


@pytest.mark.compat(client="differential", family="geo")
@CLUSTER_SETTINGS
@given(geo.fills, st.lists(geo.any_cmd, min_size=3, max_size=20))
def test_geo_on_a_cluster(real, runner, monkeypatch, fill, seq):
    with on_cluster(runner, monkeypatch):
        geo.check(real, fill + seq)


@pytest.mark.compat(client="differential", family="keys-across-types")
@CLUSTER_SETTINGS
@given(keys.setup, keys.history)
def test_key_commands_across_types_on_a_cluster(real, runner, monkeypatch, start, seq):
    with on_cluster(runner, monkeypatch):
        keys.check(real, start + seq)


@pytest.mark.compat(client="differential", family="keys-across-types")
@CLUSTER_SETTINGS
@given(keys.setup, keys.sort_history)
def test_sort_on_a_cluster(real, runner, monkeypatch, start, seq):
    with on_cluster(runner, monkeypatch):
        keys.check(real, start + seq)


@pytest.mark.compat(client="differential", family="keys-across-types")
def test_sort_weights_and_orders_on_a_cluster(real, runner, monkeypatch):
    with on_cluster(runner, monkeypatch):
        keys.test_sort_weights_and_orders(real)
        keys.test_key_command_errors(real)
        keys.test_rename_and_copy_of_every_type_keep_value_and_ttl(real)
