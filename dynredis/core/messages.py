"""The peer protocol: every message kind nodes exchange, its fields by name, what answers it.

A message is a plain tuple, its kind first: `("g", reqid, key, p, owner, have)`;
a batch of them travels as one msgpack array (`server/wire.py`), decoded back into
tuples. Tuples, not named records, because the replica get and the batched puts and
answers are per request: a tuple literal is the cheapest thing to build, encode and
read (a NamedTuple per message cost a Python-level constructor call on every one). The
batches (puts, acknowledgements, answers) hold their requests' fields in one flat list:
no tuple per request to decode, dispatch and free.

`KINDS` below is the one description of the protocol, and everything else follows it:

- the builders (one function per kind, named in the row, parameters named as its
  fields) are how mechanisms make messages; a test calls each builder with its fields
  by name and checks the tuple against the row;
- the dispatcher (`Node.on_message`) routes by kind through a table filled by the
  mechanisms, which must cover exactly the kinds of this table (checked when a node is
  built, and by a test with the Redis face's kinds registered);
- `check` validates a decoded message against its row (the simulator checks every
  message it carries);
- `summary()` and `markdown()` render it for the documentation: the protocol tables
  of `core/node.py`'s docstring and of ARCHITECTURE.md are their output (a test
  compares).

Changing a kind or its fields changes the wire: bump `PEER_PROTOCOL` in server/wire.py.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

# --- kinds (the first element of every message) ------------------------------------------

REPLICA_PUTS: Final = "ps"
PUT_ACKS: Final = "pas"
REPLICA_GET: Final = "g"
GET_ANSWERS: Final = "gas"
REFUSED: Final = "nak"
READ_REPAIR: Final = "rp"
HEARTBEAT: Final = "hb"
GOSSIP: Final = "gs"
HINT: Final = "hp"
HINT_ACK: Final = "hpa"
AE_LEVEL: Final = "ael"
AE_LEVEL_REPLY: Final = "aelr"
AE_BUCKETS: Final = "aeb"
AE_BUCKETS_REPLY: Final = "aebr"
AE_WANT: Final = "aew"
REAP_QUERY: Final = "rq"
REAP_ANSWER: Final = "ra"
REAP: Final = "reap"
FWD_GET: Final = "fg"
FWD_PUT: Final = "fp"
FWD_INCR: Final = "fi"
FWD_ANSWER: Final = "fa"
FLUSH: Final = "fl"
FLUSH_ACK: Final = "fla"
HELD_QUERY: Final = "wq"
HELD_ANSWER: Final = "wa"
COLL_SYNC: Final = "cs"
COLL_SYNC_ANSWER: Final = "csa"
COLL_SYNC_PART: Final = "csp"
COLL_WRITE: Final = "cw"
COLL_WRITE_ACK: Final = "cwa"
COLL_REPAIR: Final = "cwr"
COLL_FORWARD: Final = "cf"
COLL_FORWARD_ANSWER: Final = "cfa"
BLOCK_WATCH: Final = "bw"
BLOCK_CHANGED: Final = "bc"
KEYSPACE_QUERY: Final = "kq"
KEYSPACE_ANSWER: Final = "kqr"
CLUSTER_PORT: Final = "cport"
ADMIN: Final = "adm"
ADMIN_ANSWER: Final = "ada"
TRANSFERS_DONE: Final = "xd"
TRANSFER_BATCH: Final = "xb"
TRANSFER_ACK: Final = "xba"
REGISTRY_PUT: Final = "rgp"
REGISTRY_ACK: Final = "rga"
REGISTRY_DIGEST: Final = "rgd"
REGISTRY_TABLE: Final = "rgt"
COMMAND_FORWARD: Final = "af"
COMMAND_ANSWER: Final = "afa"
COMMAND_PROGRESS: Final = "afp"
PUBSUB_PUBLISH: Final = "pp"
PUBSUB_COUNT: Final = "ppa"
PUBSUB_QUERY: Final = "pq"
PUBSUB_ANSWER: Final = "pqa"
PUBSUB_EVENTS: Final = "pne"


class Kind(NamedTuple):
    """One row of the protocol: a message kind.

    `fields` are "name:type" words; type is int, bytes, str, bool, seq (a list or
    tuple), any, with a trailing ? when the field may be None. `answer` is the kind
    that replies to it ("" for none), `batch` marks the kinds whose one field is a list
    of items that consecutive replies to one peer share, `builder` names the function
    below that makes it, `mechanism` the module that handles it."""

    kind: str
    fields: tuple[str, ...]
    answer: str
    builder: str
    mechanism: str
    doc: str
    batch: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.split(":")[0] for f in self.fields)


def _k(kind: str, fields: str, answer: str, builder: str, mechanism: str, doc: str,
       batch: bool = False) -> Kind:
    return Kind(kind, tuple(fields.split()), answer, builder, mechanism, doc, batch)


KINDS: Final[dict[str, Kind]] = {k.kind: k for k in (
    # request coordination and the replica side (reads.py, writes.py, replica.py)
    _k(REPLICA_PUTS, "puts:seq", PUT_ACKS, "replica_puts", "replica",
       "store these versions: reqid, key, enc, owner, p, base, reqid, ... (owner None: "
       "yours, else keep a hint for owner; base: obj.identity of the version the "
       "coordinator built on or None), each acknowledged or refused on its own",
       batch=True),
    _k(PUT_ACKS, "reqids:seq", "", "put_acks", "writes",
       "acknowledgements of replica puts", batch=True),
    _k(REPLICA_GET, "reqid:int key:bytes p:int owner:str have:bytes?", GET_ANSWERS,
       "replica_get", "replica", "what do you hold of key (for owner)? have: the digest "
       "of the coordinator's own copy when it is large"),
    _k(GET_ANSWERS, "answers:seq", "", "get_answers", "reads",
       "answers to replica gets: reqid, enc or None (or True: the same as `have`), reqid, "
       "...", batch=True),
    _k(REFUSED, "reqid:int", "", "refused", "node",
       "the replica could not do request reqid (put or get): it counts as failed"),
    _k(READ_REPAIR, "key:bytes enc:bytes p:int owner:str", "", "read_repair", "replica",
       "merge this version (read repair, anti-entropy); no reply"),
    # forwarding (forward.py)
    _k(FWD_GET, "reqid:int key:bytes r:int", FWD_ANSWER, "fwd_get", "forward",
       "coordinate this read for me"),
    _k(FWD_PUT, "reqid:int key:bytes ctx:seq? data:any? expire_at:int w:int", FWD_ANSWER,
       "fwd_put", "forward", "coordinate this write for me"),
    _k(FWD_INCR, "reqid:int key:bytes delta:int w:int", FWD_ANSWER, "fwd_incr", "forward",
       "coordinate this increment for me"),
    _k(FWD_ANSWER, "reqid:int err:str? enc:bytes?", "", "fwd_answer", "forward",
       "the result of a forwarded request"),
    # hinted handoff (handoff.py)
    _k(HINT, "hint:bytes key:bytes enc:bytes p:int", HINT_ACK, "hint", "handoff",
       "a write kept for you while you were down"),
    _k(HINT_ACK, "hint:bytes digest:bytes", "", "hint_ack", "handoff",
       "stored: drop the hint if it is still this"),
    # anti-entropy (antientropy.py)
    _k(AE_LEVEL, "reqid:int p:int depth:int indices:seq", AE_LEVEL_REPLY, "ae_level",
       "antientropy", "your hash-tree nodes at depth, these indices"),
    _k(AE_LEVEL_REPLY, "reqid:int depth:int hashes:seq", "", "ae_level_reply",
       "antientropy", "the hashes asked for"),
    _k(AE_BUCKETS, "reqid:int p:int buckets:seq", AE_BUCKETS_REPLY, "ae_buckets",
       "antientropy", "your (key, hash) items of these leaf buckets"),
    _k(AE_BUCKETS_REPLY, "reqid:int items:seq", "", "ae_buckets_reply", "antientropy",
       "the items asked for"),
    _k(AE_WANT, "p:int wanted:seq", READ_REPAIR, "ae_want", "antientropy",
       "keys that differ, with whether the sender holds each: send yours"),
    # reaping (reaper.py)
    _k(REAP_QUERY, "reqid:int key:bytes p:int digest:bytes", REAP_ANSWER, "reap_query",
       "reaper", "may this dead object be removed everywhere?"),
    _k(REAP_ANSWER, "reqid:int ok:bool", "", "reap_answer", "reaper", "yes or no"),
    _k(REAP, "key:bytes p:int digest:bytes", "", "reap", "reaper",
       "remove key if you hold exactly this"),
    # membership (membership.py)
    _k(HEARTBEAT, "", "", "heartbeat", "membership", "I am alive (failure detector)"),
    _k(GOSSIP, "members:seq ring:seq zones:seq", "", "gossip", "membership",
       "the members, ring and zones (member, zone) I know"),
    # membership changes (changes.py) and ownership transfers (transfers.py)
    _k(ADMIN, "reqid:int op:str args:seq", ADMIN_ANSWER, "admin", "changes",
       "stage, plan, commit or clear a membership change (sent to the claimant)"),
    _k(ADMIN_ANSWER, "reqid:int err:str? lines:seq", "", "admin_answer", "changes",
       "the claimant's answer"),
    _k(TRANSFERS_DONE, "transfers:seq", "", "transfers_done", "changes",
       "these (partition, target) transfers from me are confirmed (to the claimant)"),
    _k(TRANSFER_BATCH, "reqid:int p:int items:seq", TRANSFER_ACK, "transfer_batch",
       "transfers", "a batch of a partition you are taking over: part, key, enc, ... (part: p, "
       "its element partition, then its local one: collections' applied events)"),
    _k(TRANSFER_ACK, "reqid:int", "", "transfer_ack", "transfers", "batch stored"),
    # probes (probes.py)
    _k(HELD_QUERY, "reqid:int key:bytes p:int owner:str", HELD_ANSWER, "held_query",
       "probes", "WAIT: what do you hold of key (for owner)?"),
    _k(HELD_ANSWER, "reqid:int enc:bytes?", "", "held_answer", "probes", "this"),
    _k(FLUSH, "reqid:int", FLUSH_ACK, "flush", "probes", "FLUSHALL: wipe your data"),
    _k(FLUSH_ACK, "reqid:int", "", "flush_ack", "probes", "wiped"),
    # collections: hashes, sets, sorted sets, lists (collcoord.py)
    _k(COLL_SYNC, "reqid:int p:int key:bytes owner:str applied:seq have:bytes",
       COLL_SYNC_ANSWER, "coll_sync", "collections",
       "before a command on key: the records of events you applied and I did not (not my "
       "large header, whose digest `have` names, b\"\" if none)"),
    _k(COLL_SYNC_ANSWER, "reqid:int records:seq full:bool applied:seq parts:int", "",
       "coll_sync_answer", "collections",
       "records [(partition, record key, enc or None)] (full: the whole key) and my events, "
       "after `parts` parts"),
    _k(COLL_SYNC_PART, "reqid:int records:seq", "", "coll_sync_part", "collections",
       "a turn's records of a whole key, before its answer"),
    _k(COLL_WRITE, "reqid:int p:int key:bytes owner:str events:seq deltas:seq part:int",
       COLL_WRITE_ACK, "coll_write", "collections",
       "a command's new record versions and its events (reqid 0: no answer wanted); "
       "part: which of the command's messages (a big removal's are sent over turns)"),
    _k(COLL_WRITE_ACK, "reqid:int part:int", "", "coll_write_ack", "collections",
       "stored (that part)"),
    _k(COLL_REPAIR, "p:int key:bytes owner:str records:seq events:seq", "", "coll_repair",
       "collections", "records of events you lack (after a sync); no reply"),
    _k(COLL_FORWARD, "reqid:int key:bytes payload:any", COLL_FORWARD_ANSWER, "coll_forward",
       "collections", "coordinate this command on a collection key for me"),
    _k(COLL_FORWARD_ANSWER, "reqid:int err:str? reply:any", "", "coll_forward_answer",
       "collections", "its reply (or error)"),
    # key-change notifications for blocked clients (watches.py)
    _k(BLOCK_WATCH, "keys:seq ttl:int", "", "block_watch", "watches",
       "tell me when you write these keys, for ttl ms (0: forget them); renewed while "
       "clients wait"),
    _k(BLOCK_CHANGED, "keys:seq", "", "block_changed", "watches",
       "these keys you watch were written here", batch=True),
    # the Redis face (dynredis/cluster/)
    _k(KEYSPACE_QUERY, "reqid:int what:str partitions:seq args:seq", KEYSPACE_ANSWER,
       "keyspace_query", "cluster.keyscan", "SCAN/KEYS/DBSIZE/RANDOMKEY over partitions"),
    _k(KEYSPACE_ANSWER, "reqid:int result:any", "", "keyspace_answer", "cluster.keyscan",
       "its result"),
    _k(CLUSTER_PORT, "port:int", "", "cluster_port", "cluster.ports",
       "the port I serve cluster-aware clients on (0: none)"),
    _k(REGISTRY_PUT, "reqid:int entries:seq", REGISTRY_ACK, "registry_put", "cluster.registry",
       "store these scripts / function libraries (name, ms, node, value or None)"),
    _k(REGISTRY_ACK, "reqid:int", "", "registry_ack", "cluster.registry", "stored"),
    _k(REGISTRY_DIGEST, "digest:bytes", REGISTRY_TABLE, "registry_digest", "cluster.registry",
       "the digest of my scripts and libraries: answer with yours if it differs"),
    _k(REGISTRY_TABLE, "entries:seq reply:bool", REGISTRY_TABLE, "registry_table",
       "cluster.registry", "my whole table (reply: send yours back if you have more)"),
    _k(COMMAND_FORWARD, "reqid:int args:seq user:str proto:int r:int w:int db:int", COMMAND_ANSWER,
       "command_forward", "cluster.affinity",
       "run this read-then-write command, script or write plan: you coordinate its key"),
    _k(COMMAND_ANSWER, "reqid:int reply:bytes", "", "command_answer", "cluster.affinity",
       "its reply"),
    _k(COMMAND_PROGRESS, "reqid:int", "", "command_progress", "cluster.affinity",
       "still running it (its plan took a step): keep waiting"),
    _k(PUBSUB_PUBLISH, "reqid:int channel:bytes message:bytes shard:bool", PUBSUB_COUNT,
       "pubsub_publish", "cluster.pubsub",
       "deliver this message to your subscribers (reqid 0: no count wanted)"),
    _k(PUBSUB_COUNT, "reqid:int count:int", "", "pubsub_count", "cluster.pubsub",
       "that many of my subscribers received it"),
    _k(PUBSUB_QUERY, "reqid:int what:str args:seq", PUBSUB_ANSWER, "pubsub_query",
       "cluster.pubsub", "PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARD*: your own subscriptions"),
    _k(PUBSUB_ANSWER, "reqid:int result:any", "", "pubsub_answer", "cluster.pubsub",
       "mine"),
    _k(PUBSUB_EVENTS, "flags:str ms:int", "", "pubsub_events", "cluster.pubsub",
       "notify-keyspace-events is flags since ms (the latest setting wins)"),
)}

# Kinds handled outside core (registered by the Redis face with Node.register).
FACE_KINDS: Final = frozenset(k.kind for k in KINDS.values() if k.mechanism.startswith("cluster."))


# --- builders ----------------------------------------------------------------------------


PUT_FIELDS: Final = 6  # items per put in a REPLICA_PUTS batch


def replica_puts(puts: list[Any]) -> tuple:
    return (REPLICA_PUTS, puts)


def put_acks(reqids: list[int]) -> tuple:
    return (PUT_ACKS, reqids)


def replica_get(reqid: int, key: bytes, p: int, owner: str, have: bytes | None) -> tuple:
    return (REPLICA_GET, reqid, key, p, owner, have)


def get_answers(answers: list[Any]) -> tuple:
    return (GET_ANSWERS, answers)


def refused(reqid: int) -> tuple:
    return (REFUSED, reqid)


def read_repair(key: bytes, enc: bytes, p: int, owner: str) -> tuple:
    return (READ_REPAIR, key, enc, p, owner)


def fwd_get(reqid: int, key: bytes, r: int) -> tuple:
    return (FWD_GET, reqid, key, r)


def fwd_put(reqid: int, key: bytes, ctx: Any, data: Any, expire_at: int,
            w: int) -> tuple:
    return (FWD_PUT, reqid, key, ctx, data, expire_at, w)


def fwd_incr(reqid: int, key: bytes, delta: int, w: int) -> tuple:
    return (FWD_INCR, reqid, key, delta, w)


def fwd_answer(reqid: int, err: str | None, enc: bytes | None) -> tuple:
    return (FWD_ANSWER, reqid, err, enc)


def hint(hint: bytes, key: bytes, enc: bytes, p: int) -> tuple:
    return (HINT, hint, key, enc, p)


def hint_ack(hint: bytes, digest: bytes) -> tuple:
    return (HINT_ACK, hint, digest)


def ae_level(reqid: int, p: int, depth: int, indices: Any) -> tuple:
    return (AE_LEVEL, reqid, p, depth, indices)


def ae_level_reply(reqid: int, depth: int, hashes: Any) -> tuple:
    return (AE_LEVEL_REPLY, reqid, depth, hashes)


def ae_buckets(reqid: int, p: int, buckets: Any) -> tuple:
    return (AE_BUCKETS, reqid, p, buckets)


def ae_buckets_reply(reqid: int, items: Any) -> tuple:
    return (AE_BUCKETS_REPLY, reqid, items)


def ae_want(p: int, wanted: Any) -> tuple:
    return (AE_WANT, p, wanted)


def reap_query(reqid: int, key: bytes, p: int, digest: bytes) -> tuple:
    return (REAP_QUERY, reqid, key, p, digest)


def reap_answer(reqid: int, ok: bool) -> tuple:
    return (REAP_ANSWER, reqid, ok)


def reap(key: bytes, p: int, digest: bytes) -> tuple:
    return (REAP, key, p, digest)


def heartbeat() -> tuple:
    return (HEARTBEAT,)


def gossip(members: Any, ring: Any, zones: Any) -> tuple:
    return (GOSSIP, members, ring, zones)


def admin(reqid: int, op: str, args: Any) -> tuple:
    return (ADMIN, reqid, op, args)


def admin_answer(reqid: int, err: str | None, lines: Any) -> tuple:
    return (ADMIN_ANSWER, reqid, err, lines)


def transfers_done(transfers: Any) -> tuple:
    return (TRANSFERS_DONE, transfers)


def transfer_batch(reqid: int, p: int, items: Any) -> tuple:
    return (TRANSFER_BATCH, reqid, p, items)


def transfer_ack(reqid: int) -> tuple:
    return (TRANSFER_ACK, reqid)


def held_query(reqid: int, key: bytes, p: int, owner: str) -> tuple:
    return (HELD_QUERY, reqid, key, p, owner)


def held_answer(reqid: int, enc: bytes | None) -> tuple:
    return (HELD_ANSWER, reqid, enc)


def flush(reqid: int) -> tuple:
    return (FLUSH, reqid)


def flush_ack(reqid: int) -> tuple:
    return (FLUSH_ACK, reqid)


def coll_sync(reqid: int, p: int, key: bytes, owner: str, applied: Any,
              have: bytes = b"") -> tuple:
    return (COLL_SYNC, reqid, p, key, owner, applied, have)


def coll_sync_answer(reqid: int, records: Any, full: bool, applied: Any, parts: int) -> tuple:
    return (COLL_SYNC_ANSWER, reqid, records, full, applied, parts)


def coll_sync_part(reqid: int, records: Any) -> tuple:
    return (COLL_SYNC_PART, reqid, records)


def coll_write(reqid: int, p: int, key: bytes, owner: str, events: Any, deltas: Any,
               part: int = 0) -> tuple:
    return (COLL_WRITE, reqid, p, key, owner, events, deltas, part)


def coll_write_ack(reqid: int, part: int = 0) -> tuple:
    return (COLL_WRITE_ACK, reqid, part)


def coll_repair(p: int, key: bytes, owner: str, records: Any, events: Any) -> tuple:
    return (COLL_REPAIR, p, key, owner, records, events)


def coll_forward(reqid: int, key: bytes, payload: Any) -> tuple:
    return (COLL_FORWARD, reqid, key, payload)


def coll_forward_answer(reqid: int, err: str | None, reply: Any) -> tuple:
    return (COLL_FORWARD_ANSWER, reqid, err, reply)


def block_watch(keys: Any, ttl: int) -> tuple:
    return (BLOCK_WATCH, keys, ttl)


def block_changed(keys: list[Any]) -> tuple:
    return (BLOCK_CHANGED, keys)


def keyspace_query(reqid: int, what: str, partitions: Any, args: Any) -> tuple:
    return (KEYSPACE_QUERY, reqid, what, partitions, args)


def keyspace_answer(reqid: int, result: Any) -> tuple:
    return (KEYSPACE_ANSWER, reqid, result)


def cluster_port(port: int) -> tuple:
    return (CLUSTER_PORT, port)


def registry_put(reqid: int, entries: Any) -> tuple:
    return (REGISTRY_PUT, reqid, entries)


def registry_ack(reqid: int) -> tuple:
    return (REGISTRY_ACK, reqid)


def registry_digest(digest: bytes) -> tuple:
    return (REGISTRY_DIGEST, digest)


def registry_table(entries: Any, reply: bool) -> tuple:
    return (REGISTRY_TABLE, entries, reply)


def command_forward(reqid: int, args: Any, user: str, proto: int, r: int, w: int,
                    db: int) -> tuple:
    return (COMMAND_FORWARD, reqid, args, user, proto, r, w, db)


def command_answer(reqid: int, reply: bytes) -> tuple:
    return (COMMAND_ANSWER, reqid, reply)


def command_progress(reqid: int) -> tuple:
    return (COMMAND_PROGRESS, reqid)


def pubsub_publish(reqid: int, channel: bytes, message: bytes, shard: bool) -> tuple:
    return (PUBSUB_PUBLISH, reqid, channel, message, shard)


def pubsub_count(reqid: int, count: int) -> tuple:
    return (PUBSUB_COUNT, reqid, count)


def pubsub_query(reqid: int, what: str, args: Any) -> tuple:
    return (PUBSUB_QUERY, reqid, what, args)


def pubsub_answer(reqid: int, result: Any) -> tuple:
    return (PUBSUB_ANSWER, reqid, result)


def pubsub_events(flags: str, ms: int) -> tuple:
    return (PUBSUB_EVENTS, flags, ms)


# --- checking and describing -------------------------------------------------------------

_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "int": (int,), "bytes": (bytes,), "str": (str,), "bool": (bool,),
    "seq": (list, tuple), "any": (object,),
}


def check(msg: Any) -> str | None:
    """What is wrong with a decoded message, by its row (None if nothing)."""
    if not isinstance(msg, (tuple, list)) or not msg:
        return f"not a message: {msg!r:.60}"
    kind = KINDS.get(msg[0])
    if kind is None:
        return f"unknown kind {msg[0]!r}"
    if len(msg) != len(kind.fields) + 1:
        return f"{kind.kind}: {len(msg) - 1} fields, expected {len(kind.fields)}"
    for spec, value in zip(kind.fields, msg[1:], strict=True):
        name, _, typ = spec.partition(":")
        optional = typ.endswith("?")
        if value is None and optional:
            continue
        if not isinstance(value, _TYPES[typ.rstrip("?")]):
            return f"{kind.kind}: {name} is {type(value).__name__}, expected {typ}"
    return None


def summary() -> str:
    """The protocol as a text table: kind, fields, answering kind, handling module (the
    copy in core/node.py's docstring is this output)."""
    rows = [("kind", "fields", "answer", "handled by")]
    for k in KINDS.values():
        rows.append((k.kind, " ".join(k.names) or "-", k.answer or "-", k.mechanism))
    width = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
    return "\n".join(("".join(r[i].ljust(width[i]) for i in range(3)) + r[3]).rstrip()
                     for r in rows)


def markdown() -> str:
    """The protocol as a markdown table, with what each message says (ARCHITECTURE.md's
    copy is this output)."""
    lines = ["| kind | fields | answer | handled by | what it says |",
             "|---|---|---|---|---|"]
    for k in KINDS.values():
        fields = " ".join(k.names)
        lines.append(f"| `{k.kind}` | {fields or '-'} | {k.answer and f'`{k.answer}`' or '-'} "
                     f"| {k.mechanism} | {k.doc} |")
    return "\n".join(lines)
