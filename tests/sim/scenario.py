"""Fault profiles, seeded fault schedules and the run-then-check driver.

A run has three phases:

1. fault phase (`fault_ms`): clients issue operations while the schedule injects
   faults (partitions, crashes) over a network with the seed's loss, duplication,
   slow tail and reordering, on nodes with skewed and drifting clocks;
2. heal: clients stop issuing (operations in flight finish or time out), every cut is
   healed, crashed nodes restart, the network stops losing and duplicating;
3. quiet phase (`quiet_ms`): no client traffic at all: only the cluster's own
   mechanisms (gossip, heartbeats, hinted handoff, anti-entropy) run;

then `checker.check` reads the replicas' stores directly.

A `FaultProfile` says which faults a sweep may use and their ranges; `plan(seed,
profile)` draws one concrete `Plan` from `random.Random(seed)`, and the same RNG then
drives the network, the nodes and the clients, so a seed reproduces a run exactly.
In mixed profiles each fault family is switched on per seed with probability
`family_p`, so some seeds have a single kind of fault and others combine several.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields, replace
from typing import Any

from dynredis.core.node import Config

from .checker import Finding, assert_ok, check
from .harness import T0, NetConfig, SimCluster
from .workload import DEFAULT_MIX, Workload


@dataclass(frozen=True)
class FaultProfile:
    name: str
    nodes: tuple[int, int] = (3, 7)  # cluster size range (inclusive)
    clients: tuple[int, int] = (2, 4)
    keys: tuple[int, int] = (3, 6)
    mix: tuple[tuple[str, float], ...] = tuple(DEFAULT_MIX.items())
    fault_ms: float = 5000.0
    quiet_ms: float = 20000.0
    tick_ms: float = 50.0  # as the server's TICK_S
    config: tuple[tuple[str, Any], ...] = (("q", 16),)  # Config overrides (small ring)
    family_p: float = 0.6  # chance each allowed fault family is on for a seed
    # network (each seed draws up to these)
    latency_ms: tuple[float, float] = (0.5, 5.0)
    slow_p: float = 0.05
    reorder_p: float = 0.2
    dup_p: float = 0.0
    loss_p: float = 0.0
    # partitions
    partitions: int = 0  # at most this many episodes
    symmetric: bool = True
    one_way: bool = True
    partition_ms: tuple[float, float] = (300.0, 3000.0)
    # crashes
    crashes: int = 0  # at most this many crash-restarts
    durability: tuple[str, ...] = ("fsync",)  # modes a node may run with
    crash_down_ms: tuple[float, float] = (100.0, 3000.0)
    quiesce_crashes: bool = False  # crash only when no client op or data message is in flight
    # clocks
    skew_ms: float = 0.0  # per-node offset drawn in [-skew_ms, skew_ms]
    drift_ppm: float = 0.0


# Every fault the cluster must survive, with tombstones reaped 1 s after the delete.
ALL_FAULTS = FaultProfile(
    name="all-faults",
    dup_p=0.05,
    loss_p=0.05,
    partitions=2,
    crashes=2,
    durability=("fsync", "buffered", "none"),
    skew_ms=2000.0,
    drift_ppm=200.0,
    # Reap after 1 s, so deletes are reaped (and must stay deleted) within a run.
    config=(("q", 16), ("tombstone_grace_ms", 1000)),
)

# Only faults after which every replica still receives every write: delays, slow
# tails, reordering and duplication (no loss), skewed and drifting clocks, and
# crash-restarts with fsync durability taken at a moment when no client operation or
# data message is in flight (so a crash loses nothing and no replica misses a write
# while down).
NO_REPLICA_LOSS = FaultProfile(
    name="no-replica-loss",
    dup_p=0.05,
    crashes=2,
    durability=("fsync",),
    quiesce_crashes=True,
    crash_down_ms=(100.0, 1500.0),
    skew_ms=2000.0,
    drift_ppm=200.0,
)


@dataclass
class Plan:
    seed: int
    profile: FaultProfile
    n_nodes: int
    clients: int
    keys: int
    net: NetConfig
    durability: list[str]
    skew_ms: list[float]
    drift_ppm: list[float]
    # (start ms from T0, kind, args): ("cut", (pairs, duration)), ("crash", (node idx, down ms))
    faults: list[tuple[float, str, tuple]] = field(default_factory=list)

    def describe(self) -> str:
        net = self.net
        parts = [f"{self.profile.name}, {self.n_nodes} nodes, {self.clients} clients, "
                 f"{self.keys} keys",
                 f"net latency {net.latency_ms[0]:.1f}-{net.latency_ms[1]:.1f} ms slow "
                 f"{net.slow_p:.2f} reorder {net.reorder_p:.2f} dup {net.dup_p:.3f} "
                 f"loss {net.loss_p:.3f}"]
        if any(m != "fsync" for m in self.durability):
            parts.append("durability " + " ".join(
                f"n{i + 1}={m}" for i, m in enumerate(self.durability)))
        if any(self.skew_ms):
            parts.append("skew " + " ".join(f"{s:+.0f}" for s in self.skew_ms) + " ms")
        for t, kind, args in self.faults:
            if kind == "cut":
                pairs, dur = args
                parts.append(f"@{t:.0f} cut {_pairs(pairs)} for {dur:.0f} ms")
            else:
                idx, down = args
                parts.append(f"@{t:.0f} crash n{idx + 1} for {down:.0f} ms")
        return "; ".join(parts)


def _pairs(pairs: list[tuple[int, int]]) -> str:
    s = set(pairs)
    out = []
    for a, b in pairs:
        if (b, a) in s:
            if a < b:
                out.append(f"n{a + 1}<->n{b + 1}")
        else:
            out.append(f"n{a + 1}->n{b + 1}")
    return " ".join(out)


def _uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo + (hi - lo) * rng.random()


def plan(seed: int, profile: FaultProfile, rng: random.Random) -> Plan:
    """Draw a concrete run from the profile (uses `rng`, seeded with `seed`)."""
    pr = profile
    n = rng.randint(*pr.nodes)
    on = {fam: rng.random() < pr.family_p
          for fam in ("slow", "reorder", "dup", "loss", "partitions", "crashes", "skew")}
    lat_hi = _uniform(rng, pr.latency_ms[0] + 0.5, pr.latency_ms[1])
    net = NetConfig(
        latency_ms=(pr.latency_ms[0], lat_hi),
        slow_p=_uniform(rng, 0, pr.slow_p) if on["slow"] else 0.0,
        reorder_p=_uniform(rng, 0, pr.reorder_p) if on["reorder"] else 0.0,
        dup_p=_uniform(rng, 0, pr.dup_p) if on["dup"] else 0.0,
        loss_p=_uniform(rng, 0, pr.loss_p) if on["loss"] else 0.0,
    )
    durability = [rng.choice(pr.durability) for _ in range(n)]
    skew = [_uniform(rng, -pr.skew_ms, pr.skew_ms) if on["skew"] else 0.0 for _ in range(n)]
    drift = [_uniform(rng, -pr.drift_ppm, pr.drift_ppm) if on["skew"] else 0.0
             for _ in range(n)]
    p = Plan(seed, pr, n, rng.randint(*pr.clients), rng.randint(*pr.keys), net, durability,
             skew, drift)
    horizon = pr.fault_ms
    if pr.partitions and on["partitions"]:
        kinds = [k for k, ok in (("split", pr.symmetric), ("isolate", pr.symmetric),
                                 ("oneway", pr.one_way), ("deaf", pr.one_way)) if ok]
        for _ in range(rng.randint(1, pr.partitions)):
            dur = _uniform(rng, *pr.partition_ms)
            start = _uniform(rng, 0, max(0.0, horizon - dur))
            kind = rng.choice(kinds)
            idx = list(range(n))
            if kind == "split":
                rng.shuffle(idx)
                k = rng.randint(1, n // 2)
                side_a, side_b = idx[:k], idx[k:]
                pairs = [(a, b) for a in side_a for b in side_b]
                pairs += [(b, a) for a, b in pairs]
            elif kind == "isolate":
                a = rng.randrange(n)
                pairs = [(a, b) for b in idx if b != a] + [(b, a) for b in idx if b != a]
            elif kind == "oneway":
                a, b = rng.sample(idx, 2)
                pairs = [(a, b)]
            else:  # one node hears nobody but everyone hears it
                a = rng.randrange(n)
                pairs = [(b, a) for b in idx if b != a]
            p.faults.append((start, "cut", (pairs, dur)))
    if pr.crashes and on["crashes"]:
        count = rng.randint(1, pr.crashes)
        if pr.quiesce_crashes:
            # one after another, spread over the fault phase
            slot = horizon / count
            for i in range(count):
                down = _uniform(rng, *pr.crash_down_ms)
                start = i * slot + _uniform(rng, 0, max(0.0, slot - down - 500))
                p.faults.append((start, "crash", (rng.randrange(n), down)))
        else:
            for _ in range(count):
                down = _uniform(rng, *pr.crash_down_ms)
                start = _uniform(rng, 0, max(0.0, horizon - down))
                p.faults.append((start, "crash", (rng.randrange(n), down)))
    p.faults.sort(key=lambda f: f[0])
    return p


_DATA_MSGS = frozenset(("ps", "pas", "g", "gas", "rp", "hp", "hpa", "fg", "fp", "fa"))


class SimRun:
    """One seeded run: a cluster, its clients and its fault plan (or hand-made faults)."""

    def __init__(self, seed: int, profile: FaultProfile, *, plan_faults: bool = True,
                 **overrides: Any) -> None:
        self.seed = seed
        self.profile = profile
        self.rng = random.Random(seed)
        self.plan = plan(seed, profile, self.rng)
        for k, v in overrides.items():  # e.g. n_nodes=3, net=NetConfig(...)
            setattr(self.plan, k, v)
        if not plan_faults:
            self.plan.faults = []
        p = self.plan
        n = p.n_nodes
        p.durability = (p.durability + ["fsync"] * n)[:n]
        p.skew_ms = (p.skew_ms + [0.0] * n)[:n]
        p.drift_ppm = (p.drift_ppm + [0.0] * n)[:n]
        cfg = Config(**dict(profile.config))
        self.sim = SimCluster(n, seed, cfg, rng=self.rng, net=p.net, tick_ms=profile.tick_ms,
                              durability=p.durability, skew_ms=p.skew_ms,
                              drift_ppm=p.drift_ppm, strict=False)
        self.wl = Workload(self.sim, self.rng, clients=p.clients,
                           keys=[b"key%d" % i for i in range(p.keys)], mix=dict(profile.mix),
                           client_timeout_ms=cfg.timeout_ms * 2 + 1000)
        self.cuts: dict[int, set[tuple[str, str]]] = {}
        self._quiesce_wait = 0

    # --- faults ---------------------------------------------------------------------------

    def name(self, idx: int) -> str:
        return self.sim.names[idx]

    def cut(self, pairs: list[tuple[int, int]], duration: float | None = None) -> int:
        """Cut the directed links `pairs` (node indexes) now; heal them after `duration`."""
        cid = len(self.cuts) + 1
        self.cuts[cid] = {(self.name(a), self.name(b)) for a, b in pairs}
        self._apply_cuts()
        self.sim.note(f"cut #{cid}: {_pairs(pairs)}")
        if duration is not None:
            self.sim.after(duration, self.uncut, cid)
        return cid

    def uncut(self, cid: int) -> None:
        if self.cuts.pop(cid, None) is not None:
            self.sim.note(f"heal cut #{cid}")
            self._apply_cuts()

    def _apply_cuts(self) -> None:
        self.sim.cut = set().union(*self.cuts.values()) if self.cuts else set()

    def crash(self, idx: int, down: float | None = None) -> None:
        name = self.name(idx)
        if not self.sim.sn[name].up:
            return
        self.sim.crash(name)
        if down is not None:
            self.sim.after(down, self.sim.restart, name)

    def _quiesced_crash(self, idx: int, down: float) -> None:
        """Pause the clients, wait until nothing but heartbeats and gossip is in flight,
        crash, restart after `down`, resume the clients a little later."""
        self.wl.pause()
        if self.wl.in_flight() or self._data_in_flight():
            self._quiesce_wait += 1
            self.sim.after(10, self._quiesced_crash_step, idx, down)
            return
        self.crash(idx)
        self.sim.after(down, self._restart_and_resume, idx)

    def _quiesced_crash_step(self, idx: int, down: float) -> None:
        self._quiesced_crash(idx, down)

    def _restart_and_resume(self, idx: int) -> None:
        self.sim.restart(self.name(idx))
        self.sim.after(300, self.wl.resume)

    def _data_in_flight(self) -> bool:
        """A message of a client operation (or a repair) is on the wire."""
        return any(e[2] == 0 and e[5][0] in _DATA_MSGS for e in self.sim.queue)

    def schedule(self) -> None:
        for start, kind, args in self.plan.faults:
            when = T0 + start
            if kind == "cut":
                pairs, dur = args
                self.sim.at(when, self.cut, pairs, dur)
            elif self.profile.quiesce_crashes:
                self.sim.at(when, self._quiesced_crash, *args)
            else:
                self.sim.at(when, self.crash, *args)

    # --- phases ---------------------------------------------------------------------------

    def fault_phase(self, ms: float | None = None) -> None:
        self.schedule()
        self.wl.start()
        self.sim.run(ms if ms is not None else self.profile.fault_ms)

    def heal_all(self, reliable: bool = True) -> None:
        """Stop the clients, heal every cut, restart crashed nodes and (unless told
        otherwise) stop losing and duplicating messages."""
        self.wl.stop()
        self.cuts.clear()
        self._apply_cuts()
        self.sim.heal()
        for name in self.sim.names:
            self.sim.start(name)
            self.sim.restart(name)
        if reliable:
            self.sim.net = self.sim.net.reliable()

    def quiet_phase(self, ms: float | None = None) -> None:
        self.sim.note("quiet phase: no client traffic")
        self.sim.run(ms if ms is not None else self.profile.quiet_ms)

    def findings(self) -> list[Finding]:
        return check(self.sim, self.wl)

    def check(self, replay: str = "") -> None:
        assert_ok(self.sim, self.wl, seed=self.seed, label=self.profile.name,
                  plan=self.plan.describe(), replay=replay)

    def run(self) -> SimRun:
        """Fault phase, heal, quiet phase (then call `check`)."""
        self.fault_phase()
        self.heal_all()
        self.quiet_phase()
        return self


def replay_command(path: str, test: str, seed: int | None = None) -> str:
    """The command that reruns one simulation test (one seed of a sweep)."""
    return f"python -m pytest '{path}::{test}'" + (f" --seed {seed}" if seed is not None else "")


def run_seed(seed: int, profile: FaultProfile, replay: str = "", **overrides: Any) -> SimRun:
    """Run one seed of a profile and check it; raises `SimFailure` on a violation."""
    r = SimRun(seed, profile, **overrides).run()
    r.check(replay)
    return r


def with_(profile: FaultProfile, **changes: Any) -> FaultProfile:
    return replace(profile, **changes)


FAMILIES = ("slow", "reorder", "dup", "loss", "partitions", "crashes", "skew")


def restrict(profile: FaultProfile, families: list[str] | None = None,
             durability: list[str] | None = None,
             config: dict[str, Any] | None = None) -> FaultProfile:
    """The profile with only `families` of faults (None: all it has), nodes drawing
    their durability from `durability` (None: the profile's) and node `Config` fields
    overridden by `config`."""
    changes: dict[str, Any] = {}
    if config:
        known = {f.name for f in fields(Config)}
        bad = set(config) - known
        if bad:
            raise ValueError(f"unknown Config fields {sorted(bad)}")
        changes["config"] = tuple({**dict(profile.config), **config}.items())
    if families is not None:
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown fault families {sorted(unknown)}; known: {FAMILIES}")
        off = set(FAMILIES) - set(families)
        zero = {"slow": {"slow_p": 0.0}, "reorder": {"reorder_p": 0.0}, "dup": {"dup_p": 0.0},
                "loss": {"loss_p": 0.0}, "partitions": {"partitions": 0},
                "crashes": {"crashes": 0}, "skew": {"skew_ms": 0.0, "drift_ppm": 0.0}}
        for fam in off:
            changes.update(zero[fam])
    if durability is not None:
        bad = set(durability) - {"fsync", "buffered", "none"}
        if bad or not durability:
            raise ValueError(f"durability modes are fsync, buffered, none; got {durability}")
        changes["durability"] = tuple(durability)
    return replace(profile, **changes) if changes else profile
