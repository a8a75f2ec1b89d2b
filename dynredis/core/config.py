"""A node's settings and its counters (what INFO reports)."""

from __future__ import annotations

from dataclasses import dataclass

from .filled import COPY_SLICE
from .ring import DEFAULT_Q


@dataclass
class Config:
    """Per-node settings; R and W may be overridden per request."""

    n: int = 3
    r: int = 2
    w: int = 2
    q: int = DEFAULT_Q
    timeout_ms: int = 2000
    # A request that moves a large value may take longer: timeout_ms plus this many ms
    # per MB of the value (20: as if the value crossed at 50 MB/s; a 512 MB value gets
    # about 10 s more). A timeout is for noticing a replica that does not answer, and
    # no replica answers about a value before all of it has crossed.
    ms_per_mb: int = 20
    # Likewise a collection write of many element records (RENAME or SUNIONSTORE of a
    # big collection): this many ms more per 1,000 records, about what a replica takes
    # to merge them (a 200,000-record write took each replica ~3 s and failed with
    # NOQUORUM at 2 s although every replica stored it).
    ms_per_1000_records: int = 20
    gossip_interval_ms: int = 1000
    heartbeat_interval_ms: int = 500
    phi_threshold: float = 8.0
    # A peer that answered nothing sent it for this long (no heartbeat either) is silent:
    # requests do not wait on it while their quorum can come without it (membership.py).
    # Far above an answer's time under load (tens of ms), well below the detector's verdict.
    silent_ms: int = 500
    startup_grace_ms: int = 3000  # a member never heard from by then counts as down
    handoff_interval_ms: int = 1000
    handoff_batch: int = 500
    # Hint bytes sent to one owner and not acknowledged past which no other is sent:
    # big hints go one at a time (a peer link is cut past 256 MB unsent,
    # client-output-buffer-limit's replica class).
    handoff_window_bytes: int = 64 << 20
    # An object this big that a write is bringing a replica is not queued to it a second
    # time by anti-entropy or read repair meanwhile (a write whose message was lost
    # brings it as a hint instead, after the request timeout).
    no_second_copy_from: int = 16 << 20
    # A write's large version is encoded this many bytes a loop turn (bigencode.py) when
    # it is bigger (a 100 MB one at once held the coordinator's loop 60-70 ms).
    encode_slice: int = COPY_SLICE
    transfer_limit: int = 4  # ownership transfers a node sends at once
    transfer_batch: int = 200  # keys per transfer batch
    drop_delay_ms: int = 10_000  # a partition no longer replicated here goes this late
    tombstone_grace_ms: int = 600_000  # deleted/expired objects are reaped after this
    ae_interval_ms: int = 200  # one anti-entropy partition exchange per interval
    sweep_interval_ms: int = 1000
    sweep_batch: int = 200
    cache_size: int = 100_000  # objects cached (the last ones written or read) ...
    cache_max_memory: int = 64 << 20  # ... taking at most this many bytes (0: no bound)
    zone: str = ""  # this node's zone (rack, data center): replicas spread across zones

    def validate(self) -> None:
        if not 1 <= self.n <= 16:
            raise ValueError("n must be between 1 and 16")
        if not 1 <= self.r <= self.n or not 1 <= self.w <= self.n:
            raise ValueError("r and w must be between 1 and n")


@dataclass
class Stats:
    gets: int = 0
    puts: int = 0
    replica_gets: int = 0
    replica_puts: int = 0
    forwarded: int = 0
    read_repairs: int = 0
    reads_unasked: int = 0  # replicas a read did not ask: silent (Config.silent_ms)
    writes_unsent: int = 0  # replicas a write was not sent to (silent): a hint instead
    noquorum: int = 0
    timeouts: int = 0
    sibling_warnings: int = 0
    sibling_refusals: int = 0  # writes refused: too many siblings (writes.py)
    large_rewrites: int = 0  # large versions made again: the key changed meanwhile (writes.py)
    hints_created: int = 0
    hints_delivered: int = 0
    handoffs_sent: int = 0
    reaped: int = 0
    ae_exchanges: int = 0
    ae_keys_compared: int = 0
    ae_keys_repaired: int = 0
    refused: int = 0  # replica requests this node could not do (answered "nak")
    # Keys read by the commands this node coordinates (Redis' lookupKeyRead): found or not.
    keyspace_hits: int = 0
    keyspace_misses: int = 0
