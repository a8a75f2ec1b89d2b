"""Deterministic simulation of the cluster: named scenarios, the checker's own tests
(it must catch broken stores), and determinism. The seed sweeps are in
test_sim_all_faults.py and test_sim_no_loss.py (one file each, so each file stays
within a minute).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.node import Config

from .checker import (
    CONVERGENCE,
    INVENTED,
    KEY_COUNTS,
    LOST_WRITES,
    RESURRECTION,
    UNIQUE_DOTS,
    SimFailure,
    check,
)
from .harness import T0, NetConfig, SimCluster
from .scenario import ALL_FAULTS, NO_REPLICA_LOSS, SimRun, replay_command, run_seed, with_
from .workload import OK, Op, Workload

ROOT = Path(__file__).resolve().parents[2]
HERE = "tests/sim/test_sim.py"


def replay(test: str) -> str:
    return replay_command(HERE, test)


# --- named scenarios ----------------------------------------------------------------------

CALM = NetConfig(latency_ms=(0.5, 3.0))


def calm_run(seed: int, n: int, *, clients: int = 3, keys: int = 4,
             durability: list[str] | None = None, net: NetConfig = CALM,
             name: str = "scenario") -> SimRun:
    return SimRun(seed, with_(ALL_FAULTS, name=name), plan_faults=False, n_nodes=n,
                  clients=clients, keys=keys, net=net,
                  durability=durability or ["fsync"] * n, skew_ms=[0.0] * n,
                  drift_ppm=[0.0] * n)


def acked_through(r: SimRun, nodes: set[str], start: float, end: float) -> int:
    return sum(1 for op in r.wl.acked_writes()
               if op.node in nodes and start <= op.start and (op.end or 0) <= end)


def test_partition_with_writes_on_both_sides_then_heal() -> None:
    r = calm_run(101, 5, clients=4, name="split-brain")
    left, right = [0, 1], [2, 3, 4]
    pairs = [(a, b) for a in left for b in right] + [(b, a) for a in left for b in right]
    r.sim.at(T0 + 500, r.cut, pairs, 7000.0)
    r.fault_phase(9000)
    # Sloppy quorum keeps both sides writing once their detectors see the others down.
    names = r.sim.names
    assert acked_through(r, {names[i] for i in left}, T0 + 4000, T0 + 7500) > 0
    assert acked_through(r, {names[i] for i in right}, T0 + 4000, T0 + 7500) > 0
    r.heal_all()
    r.quiet_phase()
    r.check(replay("test_partition_with_writes_on_both_sides_then_heal"))


def test_crash_restart_during_writes() -> None:
    r = calm_run(102, 3, clients=4, name="crash-during-writes")
    r.sim.at(T0 + 1000, r.crash, 1, 2500.0)
    r.fault_phase(6000)
    assert acked_through(r, set(r.sim.names), T0 + 1100, T0 + 3400) > 0
    r.heal_all()
    r.quiet_phase()
    r.check(replay("test_crash_restart_during_writes"))


def test_one_way_partitions() -> None:
    r = calm_run(103, 3, clients=4, name="one-way")
    # n1 cannot send to anyone (others still reach it), then n2 cannot hear anyone.
    r.sim.at(T0 + 500, r.cut, [(0, 1), (0, 2)], 3000.0)
    r.sim.at(T0 + 4000, r.cut, [(0, 1), (2, 1)], 3000.0)
    r.fault_phase(8000)
    r.heal_all()
    r.quiet_phase()
    r.check(replay("test_one_way_partitions"))


def test_duplicated_and_reordered_messages() -> None:
    net = NetConfig(latency_ms=(0.5, 3.0), slow_p=0.1, slow_mean_ms=30.0, reorder_p=0.5,
                    reorder_ms=50.0, dup_p=0.2)
    r = calm_run(104, 4, clients=4, net=net, name="dup-reorder")
    r.fault_phase(6000)
    assert r.sim.msgs_delivered > r.sim.msgs_sent  # duplicates arrived
    r.heal_all(reliable=False)  # nothing to heal: duplicates and reordering go on
    r.quiet_phase()
    r.check(replay("test_duplicated_and_reordered_messages"))


def test_crash_losing_uncommitted_writes_never_reuses_a_dot() -> None:
    """A node running with durability `none` coordinates a write, crashes before its
    group commit, restarts and coordinates another write of the same key. Its other
    replicas hold the first version; the second must not get the first one's dot."""
    r = calm_run(105, 3, clients=1, keys=1, durability=["none", "fsync", "fsync"],
                 name="unsynced-crash")
    n1 = r.sim.names[0]
    r.wl.script(T0 + 10, 1, "SET", b"key0", n1)  # acknowledged before n1's commit at 100
    r.sim.at(T0 + 40, r.crash, 0, 20.0)
    r.wl.script(T0 + 400, 1, "SET", b"key0", n1)
    r.fault_phase(1000)
    assert [op.status for op in r.wl.ops] == [OK, OK]
    assert r.sim.sn[n1].engine.lost_on_crash >= 1
    r.heal_all()
    r.quiet_phase()
    r.check(replay("test_crash_losing_uncommitted_writes_never_reuses_a_dot"))


# --- the checker catches what it must -------------------------------------------------------


def _green_run(seed: int = 7) -> SimRun:
    r = SimRun(seed, NO_REPLICA_LOSS).run()
    assert not r.findings()
    return r


def _key_with_acked_value(r: SimRun) -> tuple[bytes, Op]:
    for op in reversed(r.wl.acked_writes()):
        if op.value is not None:
            p, prim = r.sim.primaries(op.key)
            enc = r.sim.sn[prim[0]].engine.get(p, op.key)
            if enc and any(s[2] == op.value for s in dvv.values(objmod.decode(enc))):
                return op.key, op
    raise AssertionError("no acknowledged value survives")


def _rules(findings: list) -> list[str]:
    """The rules findings name, but key counts: a store changed behind a node's back
    (as these tests break them) leaves the node's counts of it wrong too."""
    return [f.rule for f in findings if f.rule != KEY_COUNTS]


def test_checker_reports_key_counts_that_differ_from_a_walk() -> None:
    r = _green_run()
    key, op = _key_with_acked_value(r)
    p, prim = r.sim.primaries(key)
    assert check(r.sim, r.wl) == []
    r.sim.sn[prim[0]].engine.base.delete(p, key)  # behind the node's back
    findings = [f for f in check(r.sim, r.wl) if f.rule == KEY_COUNTS]
    assert len(findings) == 1 and "a walk" in findings[0].detail


def _rewrite_primaries(r: SimRun, key: bytes, fn) -> None:
    p, prim = r.sim.primaries(key)
    for name in prim:
        eng = r.sim.sn[name].engine
        enc = eng.get(p, key)
        new = fn(objmod.decode(enc) if enc else None)
        if new is None:
            eng.delete(p, key)
        else:
            eng.base.put(p, key, objmod.encode(new))  # behind the StoreLog's back


def _drop_value(obj, value: bytes):
    entries = tuple((a, n, tuple(s for s in vals if s[2] != value)) for a, n, vals in obj[0])
    return (entries, obj[1])


def test_checker_reports_a_value_removed_from_every_replica() -> None:
    r = _green_run()
    key, op = _key_with_acked_value(r)
    _rewrite_primaries(r, key, lambda obj: _drop_value(obj, op.value))
    findings = check(r.sim, r.wl)
    assert _rules(findings) == [LOST_WRITES]
    assert op.value.decode() in findings[0].detail
    assert "no write replaced it" in findings[0].detail


def test_checker_reports_an_object_gone_from_every_replica() -> None:
    r = _green_run()
    key, op = _key_with_acked_value(r)
    _rewrite_primaries(r, key, lambda obj: None)
    rules = set(_rules(check(r.sim, r.wl)))
    assert rules == {LOST_WRITES}


def test_checker_reports_diverged_replicas() -> None:
    r = _green_run()
    key, op = _key_with_acked_value(r)
    p, prim = r.sim.primaries(key)
    r.sim.sn[prim[1]].engine.base.delete(p, key)  # one replica lost the key
    findings = check(r.sim, r.wl)
    assert _rules(findings) == [CONVERGENCE]
    assert findings[0].key == key


def test_checker_reports_a_read_of_a_value_nobody_wrote() -> None:
    r = _green_run()
    op = r.wl.reads()[0]
    op.read = (op.read[0], [b"made-up"]) if op.kind == "GETCTX" else b"made-up"
    assert _rules(check(r.sim, r.wl)) == [INVENTED]


def test_checker_reports_a_dot_naming_two_versions() -> None:
    r = _green_run()
    key, op = _key_with_acked_value(r)
    p, prim = r.sim.primaries(key)
    actor, c = op.dot
    forged = (((actor, c, ((op.sibling[0], 0, b"forged"),)),), ())
    r.sim.sn[prim[0]].engine.put(p, key, objmod.encode(forged))
    rules = set(_rules(check(r.sim, r.wl)))
    assert UNIQUE_DOTS in rules


def test_a_superseded_write_is_not_lost() -> None:
    """SET a, GETCTX, SETCTX b with that context: a is gone and that is right."""
    sim = SimCluster(3, seed=9, config=Config(q=16), tick_ms=50)
    wl = Workload(sim, sim.rng, clients=1, keys=[b"k"])
    a, b, c = sim.names
    wl.script(T0 + 10, 1, "SET", b"k", a)
    wl.script(T0 + 100, 1, "GETCTX", b"k", b)
    wl.script(T0 + 200, 1, "SETCTX", b"k", c)
    sim.run(3000)
    assert [op.status for op in wl.ops] == [OK] * 3
    assert not check(sim, wl)
    enc = sim.stored(a, b"k")
    assert [s[2] for s in dvv.values(objmod.decode(enc))] == [wl.ops[2].value]


def test_checker_reports_a_sibling_dropped_without_a_write_replacing_it() -> None:
    """b is written blind (empty context) next to a: b's object covers a's dot but keeps
    a as a sibling, so b did not replace a; a vanishing later is a lost write."""
    sim = SimCluster(3, seed=10, config=Config(q=16), tick_ms=50)
    wl = Workload(sim, sim.rng, clients=1, keys=[b"k"])
    a, b, c = sim.names
    wl.script(T0 + 10, 1, "SET", b"k", a)
    wl.script(T0 + 100, 1, "SETCTX", b"k", b)  # no GETCTX before: the empty context
    sim.run(3000)
    first, second = wl.ops
    assert first.acked and second.acked and not check(sim, wl)
    p, prim = sim.primaries(b"k")
    for name in prim:
        eng = sim.sn[name].engine
        obj = objmod.decode(eng.get(p, b"k"))
        assert sorted(s[2] for s in dvv.values(obj)) == [first.value, second.value]
        eng.base.put(p, b"k", objmod.encode(_drop_value(obj, first.value)))
    findings = check(sim, wl)
    assert _rules(findings) == [LOST_WRITES]
    assert first.value.decode() in findings[0].detail


def test_checker_reports_a_replaced_value_coming_back() -> None:
    """SET a, GETCTX, SETCTX b: then the replicas go back to the object holding a (as a
    stale copy would bring it back after the key was reaped)."""
    sim = SimCluster(3, seed=11, config=Config(q=16), tick_ms=50)
    wl = Workload(sim, sim.rng, clients=1, keys=[b"k"])
    a, b, c = sim.names
    wl.script(T0 + 10, 1, "SET", b"k", a)
    sim.run(50)
    p, prim = sim.primaries(b"k")
    old = sim.sn[prim[0]].engine.get(p, b"k")
    wl.script(T0 + 100, 1, "GETCTX", b"k", b)
    wl.script(T0 + 200, 1, "SETCTX", b"k", c)
    sim.run(3000)
    assert [op.status for op in wl.ops] == [OK] * 3 and not check(sim, wl)
    for name in prim:
        sim.sn[name].engine.base.put(p, b"k", old)
    rules = _rules(check(sim, wl))
    assert rules == [LOST_WRITES, RESURRECTION]


def test_failure_message_names_seed_rule_key_and_trace() -> None:
    r = _green_run()
    key, op = _key_with_acked_value(r)
    _rewrite_primaries(r, key, lambda obj: _drop_value(obj, op.value))
    with pytest.raises(SimFailure) as info:
        r.check("replay-hint")
    text = str(info.value)
    assert text.startswith(f"seed 7 (no-replica-loss): rule '{LOST_WRITES}' violated "
                           f"for key {key.decode()}")
    assert "trace tail:" in text and "replay: replay-hint" in text


# --- determinism ------------------------------------------------------------------------------


def fingerprint(seed: int) -> str:
    r = SimRun(seed, ALL_FAULTS).run()
    h = hashlib.sha256()
    for op in r.wl.ops:
        h.update(op.describe().encode())
    h.update(r.sim.format_trace().encode())
    for name in r.sim.names:
        eng = r.sim.sn[name].engine.base
        for p in eng.partitions():
            for k, v in eng.scan(p):
                h.update(k + v)
    return h.hexdigest()


def test_a_seed_replays_exactly() -> None:
    assert fingerprint(3) == fingerprint(3)


def test_a_seed_replays_exactly_in_another_process() -> None:
    code = "from tests.sim.test_sim import fingerprint; print(fingerprint(3))"
    outs = set()
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.add(proc.stdout.strip())
    assert outs == {fingerprint(3)}


def test_reaping_does_not_revive_a_key_through_a_timed_out_reads_repair() -> None:
    """Seed 87 with a 1 s tombstone grace: a read that timed out 2 s after it started
    read-repaired its pre-delete answers into replicas that had reaped the key, and the
    next write reused an old dot. A timed-out read still repairs, but a key is not reaped
    while a read of it is in flight (its coordinator says no: core/reaper.py)."""
    from .scenario import ALL_FAULTS, restrict

    run_seed(87, restrict(ALL_FAULTS, config={"tombstone_grace_ms": 1000}))


def test_a_stale_context_after_a_reap_never_reuses_a_dot() -> None:
    """Seed 37 (1 s grace): an old-life context re-entered the clock after a reap."""
    from .scenario import ALL_FAULTS

    run_seed(37, ALL_FAULTS)


def test_a_late_hint_of_a_write_never_revives_a_reaped_delete() -> None:
    """Seed 29 (1 s grace): a write one replica never acknowledged became a hint its
    coordinator kept; the coordinator, owner of the key's partition, then proposed to reap
    the delete that superseded it without asking itself what it asks every other member
    (no hint of the key held), and the hint brought the deleted value back. The proposer
    now asks itself too, and no member lets a key go while it coordinates a write of it
    that may still become a hint (core/reaper.py)."""
    from .scenario import ALL_FAULTS

    run_seed(29, ALL_FAULTS)
