"""The registry of scripts and function libraries (cluster/registry.py) between nodes
whose messages are handed over by hand; FUNCTION DUMP payloads (scripting/dump.py);
the key gate (commands/gate.py); untail (scripting/untail.py)."""

from __future__ import annotations

from typing import Any

import lupa.lua51 as lua51
import pytest

from dynredis.cluster.registry import Registry
from dynredis.commands.gate import KeyGate
from dynredis.core.node import Node
from dynredis.scripting import dump
from dynredis.scripting.untail import untail
from dynredis.storage.memory import MemoryEngine

NAMES = ("a:1", "b:1", "c:1")


def cluster() -> tuple[dict[str, Node], dict[str, Registry]]:
    nodes = {n: Node(n, n.encode(), MemoryEngine(), members=set(NAMES)) for n in NAMES}
    return nodes, {n: Registry(node) for n, node in nodes.items()}


def deliver(nodes: dict[str, Node], drop: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Hand every queued message to its peer until none is left (`drop`: down nodes)."""
    while True:
        moved = False
        for name, node in nodes.items():
            for peer, msgs in node.take_outbox().items():
                if peer in drop or name in drop:
                    continue
                for msg in msgs:
                    nodes[peer].on_message(name, msg)
                    moved = True
        if not moved:
            return


def run_done(node: Node) -> list[Any]:
    out = []
    for cb, result in node.done:
        out.append(cb(result))
    node.done = []
    return out


def test_a_put_reaches_every_node_and_its_callback_waits_for_their_acks() -> None:
    nodes, regs = cluster()
    nodes["a:1"].now = 1000
    called: list[Any] = []
    regs["a:1"].put("s:abc", b"return 1", called.append)
    assert called == [] and regs["a:1"].waits
    deliver(nodes)
    run_done(nodes["a:1"])
    assert called == [None]
    assert all(r.get("s:abc") == b"return 1" for r in regs.values())


def test_a_flush_mark_removes_older_entries_only() -> None:
    nodes, regs = cluster()
    a, b = regs["a:1"], regs["b:1"]
    nodes["a:1"].now = 1000
    a.put("s:old", b"x", lambda _: None)
    deliver(nodes)
    nodes["b:1"].now = 2000
    b.flush("s", lambda _: None)
    nodes["a:1"].now = 3000
    a.put("s:new", b"y", lambda _: None)
    deliver(nodes)
    for r in regs.values():
        assert r.live("s") == {"new": b"y"}


def test_a_node_that_missed_changes_catches_up_by_digest_and_keeps_them_on_restart() -> None:
    nodes, regs = cluster()
    nodes["a:1"].now = 1000
    regs["a:1"].put("f:lib", b"#!lua name=lib", lambda _: None)
    regs["a:1"].put("s:1", b"return 1", lambda _: None)
    deliver(nodes, drop={"c:1"})
    assert regs["c:1"].live("f") == {}
    # c has something a lacks, too
    nodes["c:1"].now = 5000
    regs["c:1"].put("s:2", b"return 2", lambda _: None)
    deliver(nodes, drop={"a:1", "b:1"})
    regs["a:1"].tell("c:1")
    deliver(nodes)
    for name in ("a:1", "c:1"):
        assert regs[name].live("s") == {"1": b"return 1", "2": b"return 2"}
        assert regs[name].live("f") == {"lib": b"#!lua name=lib"}
    assert regs["a:1"].digest() == regs["c:1"].digest()
    # kept in the node's metadata
    again = Registry(Node("c:1", b"c:1", nodes["c:1"].engine, members=set(NAMES)))
    assert again.live("s") == regs["c:1"].live("s")


def test_a_delete_is_a_tombstone_that_an_older_copy_cannot_undo() -> None:
    nodes, regs = cluster()
    nodes["a:1"].now = 1000
    regs["a:1"].put("f:lib", b"code", lambda _: None)
    deliver(nodes)
    old = list(regs["b:1"].entries.items())
    nodes["b:1"].now = 2000
    regs["b:1"].put("f:lib", None, lambda _: None)
    deliver(nodes)
    regs["a:1"]._merge([(n, *e) for n, e in old])  # an old copy arrives late
    assert regs["a:1"].live("f") == {}


def test_unacknowledged_puts_finish_at_the_timeout() -> None:
    nodes, regs = cluster()
    node = nodes["a:1"]
    node.now = 1000
    called: list[Any] = []
    regs["a:1"].put("s:x", b"1", called.append)
    node.take_outbox()  # lost
    node.now = 1000 + node.cfg.timeout_ms
    regs["a:1"].tick()
    run_done(node)
    assert called == [None]


# --- FUNCTION DUMP payloads ------------------------------------------------------------------

# FUNCTION DUMP of redis-server 7.0.15 holding one library (its code LZF-compressed)
REDIS_DUMP = (b"\xf5\xc3@\xbd@\xff\x1f#!lua name=mylib\nlocal function \x14f1(keys, args) "
              b"return \x06\x03dis. (\x08l('get', @$\x08[1]) end\n\x80\x1e\x08register_\xc0L"
              b"\x03('f1 *\x02f1)\xe0\x0f!\x00{\xc0*\x00_`\x91\x02'f2 /@f\x04back=\xc0\x1c\xe0"
              b"\x0b\x91@\x9e \x7f@~ a\x1alags={'no-writes'}, descrip@\xd5\x01='@\x0c\x032'}\n"
              b"\n\x00\x9eFB\xd8\xed\xa0\xd4\x8e")


def test_crc64_is_redis_crc64() -> None:
    assert dump.crc64(b"123456789") == 0xE9C6D914C4B8D9CA


def test_a_redis_server_dump_loads_and_ours_round_trips() -> None:
    assert dump.verify(REDIS_DUMP)
    (code,) = dump.load(REDIS_DUMP)
    assert code.startswith(b"#!lua name=mylib\nlocal function f1(keys, args) return "
                           b"redis.call('get', keys[1]) end\n")
    assert len(code) == 255
    ours = dump.dump([code, b"#!lua name=x\n" + b"y" * 20000])
    assert dump.verify(ours)
    assert dump.load(ours) == [code, b"#!lua name=x\n" + b"y" * 20000]
    assert not dump.verify(ours[:-1] + bytes([ours[-1] ^ 1]))
    assert not dump.verify(b"garbage")


# --- the key gate ----------------------------------------------------------------------------

def test_the_gate_runs_one_operation_per_key_at_a_time() -> None:
    gate = KeyGate()
    order: list[str] = []
    leaves: dict[str, Any] = {}

    def op(name: str) -> Any:
        def body(leave: Any) -> None:
            order.append(name)
            leaves[name] = leave
        return body

    gate.enter(b"k", None, op("first"))
    gate.enter(b"k", None, op("second"))
    gate.enter(b"other", None, op("other"))
    assert order == ["first", "other"]
    leaves["first"]()
    leaves["first"]()  # a second leave changes nothing
    assert order == ["first", "other", "second"]
    leaves["second"]()
    assert gate.busy() == 1


def test_a_script_holding_its_keys_passes_its_own_gates() -> None:
    gate = KeyGate()

    class Run:
        gated: list[bytes] | None = None

    run = Run()
    held: list[Any] = []
    gate.enter_all([b"b", b"a", b"a"], None, held.append)
    run.gated = [b"a", b"b"]
    inside: list[str] = []
    gate.enter(b"a", run, lambda leave: inside.append("script's own"))
    gate.enter(b"a", None, lambda leave: inside.append("another client"))
    assert inside == ["script's own"]
    held[0]()
    assert inside == ["script's own", "another client"]


# --- untail ----------------------------------------------------------------------------------

def test_untail_keeps_the_frames_tail_calls_would_drop() -> None:
    lua = lua51.LuaRuntime(encoding=None)
    source = (b"local function g() return debug.traceback() end "
              b"local function f() return g() end return f()")
    dump_of = lua.eval("function(s) return string.dump(loadstring(s, '@x')) end")
    load = lua.eval("function(s) return loadstring(s) end")
    plain = dump_of(source)
    assert b"(tail call)" in load(plain)()
    patched = untail(plain)
    assert len(patched) == len(plain)
    assert b"(tail call)" not in load(patched)()
    with pytest.raises(ValueError):
        untail(b"not a chunk")
