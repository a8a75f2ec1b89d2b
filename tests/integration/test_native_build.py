"""Compiled and pure Python nodes are the same product: they serve together in one
cluster, and INFO server says which build each runs (the benchmark reports it)."""

from __future__ import annotations

import os

import pytest

from dynredis import native

from .conftest import Cluster, ClusterFactory


def build_of(cluster: Cluster, i: int) -> str:
    return cluster.client(i).info("server")["dynredis_build"]


def test_a_pure_node_and_compiled_nodes_serve_one_cluster(
    cluster_factory: ClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = cluster_factory(nodes=3)
    pure_build = f"pure ({native.PURE_ENV} set)"
    expected = pure_build if os.environ.get(native.PURE_ENV) == "1" else "compiled"
    assert build_of(cluster, 0) == expected
    # Restart one node as pure Python: its replies and its replicas' must not differ.
    monkeypatch.setenv(native.PURE_ENV, "1")
    cluster.kill_node(2)
    cluster.restart_node(2)
    assert build_of(cluster, 2) == pure_build
    pure, other = cluster.client(2), cluster.client(0)
    for i in range(50):
        assert pure.set(f"k{i}", f"v{i}") is True
    assert pure.incr("n", 5) == 5 and other.incr("n", 2) == 7
    for i in range(50):
        assert other.get(f"k{i}") == pure.get(f"k{i}") == f"v{i}"
    ctx, values = pure.execute_command("GETCTX", "k1")
    assert values == ["v1"]
    assert other.execute_command("SETCTX", "k1", ctx, "w1") in ("OK", True)
    assert pure.get("k1") == "w1"
