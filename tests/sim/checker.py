"""The properties a run must keep, checked on the replicas' own stores after the run.

The checker never reads through the cluster (no quorum reads, so no read repair of
its own): it reads each replica's engine directly, after the cluster has been healed
and left alone for a bounded quiet period, and it uses the client history
(`workload.Op`s) and the `harness.StoreLog` of everything any engine ever stored.

Rules, in the order failures are reported:

0. no node exceptions: a node that raises while handling a message or a tick (the
   server logs it and goes on, and so does the harness) is a bug.
1. no invented values: every value a GET or GETCTX returned was handed to a
   coordinator by some write (acknowledged or not) that had started before the read
   ended.
2. acknowledgements: an acknowledged write's result holds the version it created (the
   newest sibling, with the value written).
3. unique dots: no two different versions of a key were ever stored with the same dot
   (actor, counter). Dots are what causality is computed from: if one dot names two
   versions, a context that covers one silently discards the other. (This is what a
   node does that loses uncommitted writes in a crash and then reuses its counters.)
4. zero lost writes: take F, the sync of the objects held by the key's N primary
   replicas. An acknowledged write W (SET, SETCTX, DEL, DELCTX) with dot d = (a, c)
   is kept if F holds its version (for a value: a sibling with W's unique data; for a
   delete: a tombstone with dot d). Otherwise it was superseded, which is fine only if
   (i) F's version vector covers d (F[a] >= c: the cluster knows W happened) and
   (ii) some write other than W, acknowledged or merely attempted, replaced W: the
   `StoreLog` records, for every version, the object the coordinator created it in
   (the client's context merged with the coordinator's clock, plus the new version),
   and (ii) asks for one whose version vector covers d but whose siblings do not
   include d, i.e. W was in that write's causal past and the write discarded it.
   With unique dots (rule 3), a version vector can only cover d if it descends from
   an object that held W, so (ii) says someone saw W and wrote over it; a version
   dropped by anything other than a write (a merge, a restart, a store) is lost. If no primary
   If a primary removed the key from its store (the node does that only when it
   reaps a dead object) after W started, (i) is waived, and an acknowledged delete
   counts as kept (its tombstone was reaped). Unacknowledged writes may be lost or kept; they only count as superseders.
4b. no resurrection: no value held in F was replaced (in the sense of (ii)) by an
   acknowledged write created after it. Without reaping this only follows a lost
   write; with reaping it is how a value deleted, reaped and brought back by a stale
   copy shows. (Dots reused per rule 3 are skipped: they are reported there.)
5. sibling bound: no write made a stored object (replica or hint) grow past
   obj.SIBLING_MAX siblings (a merge may: it keeps every sibling), and none holds
   anonymous (undotted) values.
6. convergence: the N primary replicas of every key that was ever written hold
   byte-identical objects (or all hold nothing).
7. key counts: every up node's live-key counts (core/keycounts.py: DBSIZE and INFO
   keyspace) equal a walk of its store (cluster/keyscan.py's count_walk), however
   writes, merges, hints, transfers, reaping and restarts changed it.

A failed check raises `SimFailure` with the seed, the first violated rule, its key,
the history of that key and the tail of the trace; the other findings are summarised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dynredis.cluster.keyscan import KeyScan
from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.hints import HINT_PARTITION, parse_hint_key

from .harness import T0, SimCluster
from .workload import Op, Workload, fmt_dot, fmt_vv

NODE_ERRORS = "no node exceptions"
INVENTED = "no invented values"
ACKS = "acknowledgements"
UNIQUE_DOTS = "unique dots"
LOST_WRITES = "zero lost writes"
RESURRECTION = "no resurrection"
SIBLING_BOUND = "sibling bound"
CONVERGENCE = "convergence"
KEY_COUNTS = "key counts"
RULES = (NODE_ERRORS, INVENTED, ACKS, UNIQUE_DOTS, LOST_WRITES, RESURRECTION,
         SIBLING_BOUND, CONVERGENCE, KEY_COUNTS)


@dataclass
class Finding:
    rule: str
    key: bytes | None
    detail: str
    at: float | None = None  # sim time of the violation, when it happened during the run


class SimFailure(AssertionError):
    def __init__(self, message: str, seed: int, findings: list[Finding]) -> None:
        super().__init__(message)
        self.seed = seed
        self.findings = findings

    @property
    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}


def describe_obj(enc: bytes | None) -> str:
    if enc is None:
        return "nothing"
    obj = objmod.decode(enc)
    sibs = []
    for actor, n, k, sib in _dotted(obj):
        data = "TOMB" if sib[2] is None else sib[2].decode(errors="replace")
        sibs.append(f"{data}@{actor.decode(errors='replace')}:{n - k}")
    for sib in obj[1]:
        sibs.append(f"{sib[2]!r}@anon")
    return f"vv {fmt_vv(dvv.join(obj))} [{' '.join(sibs)}]"


def _dotted(obj: Any) -> list[tuple[bytes, int, int, tuple]]:
    return [(a, n, k, sib) for a, n, vals in obj[0] for k, sib in enumerate(vals)]


def check(sim: SimCluster, wl: Workload) -> list[Finding]:
    """Every violated rule of a finished run (empty when the run is correct)."""
    findings: list[Finding] = []
    log = sim.log
    assert log is not None, "the checker needs the cluster's StoreLog"
    short = sim.short

    # 0. no node exceptions (the server logs them and goes on; so does the harness)
    for t, _node, text, tail in sim.errors[:3]:
        findings.append(Finding(NODE_ERRORS, None, f"at {t - T0:.1f}: {text}\n"
                                f"    trace before it:\n{_indent(tail, 6)}", t))
    if len(sim.errors) > 3:
        findings.append(Finding(NODE_ERRORS, None, f"... {len(sim.errors) - 3} more"))

    # 1. no invented values
    written: dict[bytes, Op] = {}
    for op in wl.ops:
        if op.wrote and op.value is not None:
            written[op.value] = op
    for op in wl.reads():
        values = op.read[1] if op.kind == "GETCTX" else [op.read]
        for v in values:
            if v is None:
                continue
            w = written.get(v)
            if w is None:
                findings.append(Finding(INVENTED, op.key, f"{op.describe(short)}: "
                                        f"{v!r} was never written"))
            elif w.key != op.key:
                findings.append(Finding(INVENTED, op.key, f"{op.describe(short)}: "
                                        f"{v!r} was written to {w.key!r}"))
            elif op.end is not None and w.start > op.end:
                findings.append(Finding(INVENTED, op.key, f"{op.describe(short)}: "
                                        f"{v!r} was written only later, {w.describe(short)}"))

    # 2. acknowledgements
    for op in wl.ops:
        if op.anomaly:
            findings.append(Finding(ACKS, op.key, f"{op.describe(short)}: {op.anomaly}"))

    # 3. unique dots
    for t, node, key, dot, first, other, tail in log.reused:
        findings.append(Finding(UNIQUE_DOTS, key, (
            f"dot {fmt_dot(dot)} names two versions: {_sib(first)} (first seen) and "
            f"{_sib(other)} (stored by {short(node)} at {t - T0:.1f}){_restarts(sim, node)}"
            f"\n    trace before it:\n{_indent(tail, 6)}"), t))

    # replicas as they are now
    ring = sim.ring()
    n = next(iter(sim.sn.values())).config.n
    keys = set(wl.written_keys()) | set(log.created)
    replicas: dict[bytes, list[tuple[str, bytes | None]]] = {}
    for key in sorted(keys):
        p = ring.partition_of(key)
        replicas[key] = [(name, sim.sn[name].engine.get(p, key))
                         for name in ring.preference_list(p, n)]

    # 4. zero lost writes
    for op in wl.acked_writes():
        if op.dot is None:
            continue  # reported under acknowledgements
        key = op.key
        encs = [enc for _, enc in replicas[key] if enc is not None]
        final = dvv.sync_all([objmod.decode(e) for e in encs]) if encs else None
        actor, c = op.dot
        if final is not None:
            if op.value is not None:
                if any(sib[2] == op.value for sib in dvv.values(final)):
                    continue
            elif any(a == actor and m - k == c and sib[2] is None
                     for a, m, k, sib in _dotted(final)):
                continue
        prim = {nm for nm, _ in replicas[key]}
        reaped = any(t >= op.start and nm in prim for t, nm in log.deleted.get(key, ()))
        if reaped and op.value is None:
            continue  # a delete whose tombstone was reaped afterwards
        fvv = dict(dvv.join(final)) if final is not None else {}
        known = fvv.get(actor, 0) >= c or reaped
        # writes created in an object that had W in its causal past but not as a sibling
        covers = [e for e in log.created.get(key, ())
                  if e[0] != op.dot and e[2].get(actor, 0) >= c and op.dot not in e[3]]
        if known and covers:
            continue
        if not known:
            why = (f"final vv {fmt_vv(fvv)} does not cover its dot: the version vanished "
                   f"from every primary")
        else:
            why = ("the final vv covers its dot but no write replaced it (none was created "
                   "with W in its causal past and not among its siblings)")
        held = _held_elsewhere(sim, key, op)
        findings.append(Finding(LOST_WRITES, key, (
            f"{op.describe(short)}\n    {why}{held}\n    replicas: "
            + "; ".join(f"{short(nm)} {describe_obj(enc)}" for nm, enc in replicas[key])),
            op.start))

    # 4b. no resurrection: a value still held must not have been replaced by an
    # acknowledged write (with unique dots this can only follow a lost write or reaping)
    created_by_dot = {}
    for key, entries in log.created.items():
        for e in entries:
            created_by_dot.setdefault((key, e[0]), e)
    reused = {(key, dot) for _, _, key, dot, *_ in log.reused}
    acked_by_key: dict[bytes, list[Op]] = {}
    for op in wl.acked_writes():
        if op.dot is not None:
            acked_by_key.setdefault(op.key, []).append(op)
    for key, reps in replicas.items():
        encs = [enc for _, enc in reps if enc is not None]
        if not encs:
            continue
        final = dvv.sync_all([objmod.decode(e) for e in encs])
        for a, m, k, sib in _dotted(final):
            if sib[2] is None:
                continue
            # the very version that was created with this dot (not the same bytes written
            # again by a re-executed request, which gets a dot of its own)
            origin = created_by_dot.get((key, (a, m - k)))
            if origin is None or origin[1] != sib or (key, origin[0]) in reused:
                continue
            c = m - k
            for op in acked_by_key.get(key, ()):
                made = created_by_dot.get((key, op.dot))
                if (made is None or (key, op.dot) in reused or made[5] < origin[5]
                        or made[2].get(a, 0) < c or origin[0] in made[3]):
                    continue
                findings.append(Finding(RESURRECTION, key, (
                    f"{sib[2].decode(errors='replace')} (dot {fmt_dot(origin[0])}) is held "
                    f"again although {op.describe(short)} replaced it\n    replicas: "
                    + "; ".join(f"{short(nm)} {describe_obj(enc)}" for nm, enc in reps)),
                    op.start))
                break

    # 5. sibling bound
    for t, node, key, size in log.oversized[:5]:
        findings.append(Finding(SIBLING_BOUND, key, f"{short(node)} wrote {size} siblings at "
                                f"{t - T0:.1f} (max {objmod.SIBLING_MAX})"))
    for t, node, key in log.anonymous[:5]:
        findings.append(Finding(SIBLING_BOUND, key, f"{short(node)} stored anonymous values at "
                                f"{t - T0:.1f}"))

    # 6. convergence
    for key, reps in replicas.items():
        if len({enc for _, enc in reps}) > 1:
            findings.append(Finding(CONVERGENCE, key, "primaries differ: " + "; ".join(
                f"{short(nm)} {describe_obj(enc)}" for nm, enc in reps)))

    # 7. key counts
    findings.extend(Finding(KEY_COUNTS, None, f"{short(name)} {text}")
                    for name, text in count_mismatches(sim))
    return findings


def count_mismatches(sim: SimCluster) -> list[tuple[str, str]]:
    """(node, what differs) for each up node whose key counts differ from a walk."""
    out = []
    for name, sn in sim.sn.items():
        node = sn.node
        if node is None or not sn.up:
            continue
        parts = range(node.ring.q)
        kept = node.local.counts.figures(parts, node.now)
        walked: list[tuple[int, int, int, int]] = []
        KeyScan(node).count_walk(parts, walked.extend)
        if kept != walked:
            out.append((name, f"counts (database, keys, with a TTL, TTLs ms) {kept}, "
                              f"a walk {walked}"))
    return out


def _restarts(sim: SimCluster, node: str) -> str:
    sn = sim.sn[node]
    if not sn.crashes:
        return ""
    return (f"; {sim.short(node)} ({sn.durability} durability) crashed {sn.crashes}x, "
            f"losing {sn.engine.lost_on_crash} uncommitted writes")


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _sib(sib: tuple) -> str:
    return "TOMBSTONE" if sib[2] is None else repr(sib[2])


def _held_elsewhere(sim: SimCluster, key: bytes, op: Op) -> str:
    """Where the lost version still is, if anywhere (a hint, a non-primary)."""
    where = []
    for name, sn in sim.sn.items():
        for hk, enc in sn.engine.scan(HINT_PARTITION):
            if parse_hint_key(hk)[2] == key and _holds(enc, op):
                where.append(f"a hint on {sim.short(name)}")
    return f" (still in {', '.join(where)})" if where else ""


def _holds(enc: bytes, op: Op) -> bool:
    obj = objmod.decode(enc)
    if op.value is not None:
        return any(sib[2] == op.value for sib in dvv.values(obj))
    return any((a, m - k) == op.dot for a, m, k, _ in _dotted(obj))


def report(sim: SimCluster, wl: Workload, findings: list[Finding], *, seed: int,
           label: str = "", plan: str = "", replay: str = "") -> str:
    """A failure message: the first finding in rule order, the others summarised."""
    order = {r: i for i, r in enumerate(RULES)}
    findings = sorted(findings, key=lambda f: order.get(f.rule, 99))
    first = findings[0]
    key = first.key
    lines = [f"seed {seed}{f' ({label})' if label else ''}: rule '{first.rule}' violated"
             + (f" for key {key.decode(errors='replace')}" if key is not None else ""),
             f"  {first.detail}"]
    counts = Counter(f.rule for f in findings)
    lines.append("all findings: " + ", ".join(
        f"{rule} x{counts[rule]} ({_keys(findings, rule)})" for rule in RULES if counts[rule]))
    if plan:
        lines.append(f"plan: {plan}")
    lines.append(summary(sim, wl))
    if key is not None:
        ops = [op for op in wl.ops if op.key == key]
        shown = ops[-15:]
        when = "last operations"
        if first.at is not None:  # the operations around the moment it went wrong
            before = [i for i, op in enumerate(ops) if op.start <= first.at]
            end = before[-1] + 1 if before else 0
            shown = ops[max(0, end - 12):end + 3]
            when = f"operations around {first.at - T0:.1f}"
        lines.append(f"{when} on {key.decode(errors='replace')} ({len(ops)} in all):")
        lines.extend("  " + op.describe(sim.short) for op in shown)
        keyed = sim.format_trace(last=25, key=key)
        if keyed:
            lines.append(f"trace events mentioning {key.decode(errors='replace')} "
                         f"(of the last {sim.trace.maxlen}):")
            lines.append(keyed)
    lines.append("trace tail:")
    lines.append(sim.format_trace(last=40))
    if replay:
        lines.append(f"replay: {replay}")
    return "\n".join(lines)


def _keys(findings: list[Finding], rule: str) -> str:
    keys = sorted({f.key.decode(errors="replace") for f in findings
                   if f.rule == rule and f.key is not None})
    return " ".join(keys[:6]) + (" ..." if len(keys) > 6 else "")


def summary(sim: SimCluster, wl: Workload) -> str:
    ops = Counter(op.status for op in wl.ops)
    acked = len(wl.acked_writes())
    hints = {sim.short(k): v for k, v in sim.hints_held().items() if v}
    return (f"run: {len(sim.names)} nodes, {len(wl.ops)} ops ({dict(ops)}), {acked} acked "
            f"writes, {sim.msgs_sent} messages, sim time {sim.now - T0:.0f} ms, "
            f"hints left {hints or 0}, max siblings {sim.log.max_siblings if sim.log else '?'}")


def assert_ok(sim: SimCluster, wl: Workload, *, seed: int, label: str = "", plan: str = "",
              replay: str = "", check_fn: Callable[..., list[Finding]] = check) -> None:
    findings = check_fn(sim, wl)
    if findings:
        raise SimFailure(report(sim, wl, findings, seed=seed, label=label, plan=plan,
                                replay=replay), seed, findings)
