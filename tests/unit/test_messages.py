"""The peer protocol table (core/messages.py) is what the code sends, handles and documents."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dynredis.cluster.affinity import Affinity
from dynredis.cluster.keyscan import KeyScan
from dynredis.cluster.ports import ClusterPorts
from dynredis.cluster.pubsub import ClusterPubSub
from dynredis.cluster.registry import Registry
from dynredis.core import messages as m
from dynredis.core.node import Node
from dynredis.server.wire import batch, unframe
from dynredis.storage.memory import MemoryEngine
from tests.sim.harness import SimCluster

ROOT = Path(__file__).resolve().parents[2]


def sample(i: int, spec: str) -> object:
    """A value for field number `i` of `spec` ("name:type"), distinct from the others."""
    name, _, typ = spec.partition(":")
    return {"int": 1000 + i, "bytes": name.encode(), "str": name, "bool": True,
            "seq": [name], "any": (name,)}[typ.rstrip("?")]


@pytest.mark.parametrize("kind", list(m.KINDS.values()), ids=list(m.KINDS))
def test_each_builder_makes_its_kind_with_the_fields_of_the_table_in_order(kind: m.Kind) -> None:
    values = {spec.split(":")[0]: sample(i, spec) for i, spec in enumerate(kind.fields)}
    msg = getattr(m, kind.builder)(**values)
    assert msg[0] == kind.kind
    assert list(msg[1:]) == [values[name] for name in kind.names]


def test_every_kind_has_one_tag_and_one_builder() -> None:
    assert len({k.builder for k in m.KINDS.values()}) == len(m.KINDS)
    assert all(k.answer in m.KINDS or k.answer == "" for k in m.KINDS.values())
    assert all(len(k.fields) == 1 for k in m.KINDS.values() if k.batch)


def test_a_node_with_the_redis_face_handles_exactly_the_kinds_of_the_table() -> None:
    node = Node("a:1", b"A", MemoryEngine())
    assert set(node.handlers) == set(m.KINDS) - m.FACE_KINDS
    KeyScan(node)
    ClusterPorts(node, 0)
    Registry(node)
    Affinity(node, lambda *args: None)
    ClusterPubSub(node, lambda *args: 0, lambda *args: None, lambda flags: None)
    assert set(node.handlers) == set(m.KINDS)
    with pytest.raises(ValueError):
        node.register("no-such-kind", lambda src, msg: None)


def test_the_node_docstring_table_is_the_protocol_table() -> None:
    # From the source: a compiled module keeps no docstring.
    doc = ast.get_docstring(ast.parse((ROOT / "dynredis" / "core" / "node.py").read_text()))
    assert doc is not None
    expected = "\n".join("  " + line for line in m.summary().splitlines())
    assert expected in doc


def test_architecture_md_carries_the_protocol_table() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    assert m.markdown() in text


def test_check_accepts_decoded_messages_and_names_what_is_wrong() -> None:
    good = [m.replica_puts([7, b"k", b"enc", "n2", 3, None]), m.put_acks([1, 2]),
            m.fwd_put(1, b"k", ((b"A", 1),), None, 0, 2), m.heartbeat(), m.reap_answer(1, True),
            m.keyspace_query(1, "keys", [1, 2], (b"*",))]
    body = batch(good)
    for msg in unframe(body[body.index(b"\r\n") + 2 : -2]):
        assert m.check(msg) is None, msg
    assert m.check(("g", 1, b"k")) == "g: 2 fields, expected 5"
    assert m.check(("g", 1, "k", 3, "n2", None)) == "g: key is str, expected bytes"
    assert m.check(("zz",)) == "unknown kind 'zz'"


def test_a_simulated_run_sends_only_messages_of_the_table() -> None:
    """The simulator checks every message it carries (a malformed one raises)."""
    sim = SimCluster(3, seed=4)
    a, b, _ = sim.names
    assert sim.put(a, b"k", b"v")[0] is None
    assert sim.get(b, b"k")[0] is None
    sim.run(3000)  # heartbeats, gossip, anti-entropy
    assert not sim.errors
